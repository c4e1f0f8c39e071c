// Package reconcile holds idsync's merge rules: which identity an account
// belongs to (Match), what the golden record says when several sources
// disagree (Merge), and which lifecycle state a person is in (Lifecycle).
//
// It is pure: values in, decisions out. It does no I/O and never reads the
// clock; callers pass time in. That keeps the hardest rules testable with
// table tests and property tests, and lets a dry run ("plan") use exactly
// the same decisions as a real apply. The engine gathers the inputs from
// storage, calls these functions, and writes what they decide.
//
// It must not import engine, storage or any protocol package.
package reconcile
