// Package connectors groups the pull connectors: each subpackage (ldap,
// file, scimpull) reads one kind of source on a schedule, turns what it
// reads into engine.Observations and streams them into
// Engine.ApplySnapshot page by page. Connectors own their protocol and
// their config struct; they must not write to the database themselves,
// decide lifecycle, or hold a whole directory in memory.
package connectors
