// Package engine owns idsync's domain: the identity graph's types
// (Organization, Source, Identity, Account, Group, Conflict, AuditEvent, Job),
// the one error vocabulary every layer wraps (ErrNotFound, ErrInvalid, …),
// and the Engine service that every feed writes through.
//
// Every feed — a SAML or OIDC login, a SCIM request, an LDAP page, an admin
// action — becomes an Observation: one source's statement about one subject.
// Engine.Apply commits one observation in one transaction (or nothing), and
// Engine.ApplySnapshot streams a full pull and sweeps what the source no
// longer holds. The decisions (which identity, which golden values, which
// lifecycle state) come from the pure reconcile package; this package reads
// their inputs from storage, writes their outcome and the audit events that
// describe it, in the same transaction.
//
// Where things are: engine.go (Apply, the per-observation rules' inputs and
// outputs), snapshot.go (ApplySnapshot: pages, hold-back of destructive
// changes, sweep, quarantine), newcomers.go (new people of a page or a
// grouped transaction buffered for multi-row inserts, and what a page's
// observations share), writer.go (group commit and SourceWriter,
// the per-request transaction of push sources), admin.go (organizations,
// sources, people, link/unlink, suspend, conflicts, tokens), import.go
// (CSV/JSON-lines import), audit.go (hash chain, VerifyAudit),
// scheduler.go and pull_jobs.go (jobs, leases, runs, approval).
//
// It declares the storage it needs (Store, Tx) and never imports a protocol
// library, a driver or the storage package.
package engine
