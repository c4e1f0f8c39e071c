// Package scim is idsync's SCIM 2.0 service provider (RFC 7643, RFC 7644)
// that Entra ID, Okta and other IdPs provision into. It owns the
// /scim/v2/ endpoint, the scim_resources and scim_members tables (through
// engine.SCIMTx, implemented in package storage) and the mapping of SCIM
// users to engine observations. It must not write the identity graph other
// than through the engine (engine.SourceWriter), and nothing but cmd
// imports it.
//
// # Directories and tokens
//
// Every source of kind scim is one directory. A request carries a bearer
// token of kind scim (engine.CreateToken; `idsync scim token create`); the
// token names its source, and every read and write of the request is
// confined to that source's rows: another directory's resources do not
// exist for it (404), whatever id is asked for. A token of scope read may
// only read (GET and POST .search).
//
// # What is built on github.com/elimity-com/scim
//
// elimity's server binds resource handlers at start-up and evaluates
// filters in memory; a directory here is chosen per request by its token,
// filters run as SQL, and Entra and Okta need dialect quirks, so the HTTP
// handling is written here. From elimity this package uses the protocol
// error values (errors.ScimError, with their RFC 7644 §3.12 JSON form) and,
// through it, github.com/scim2/filter-parser/v2, which parses filters and
// PATCH paths (subpackages filter and patch).
//
// # Storage and the graph
//
// A resource is stored as the directory sent it, after Normalize (names
// spelled as the schema spells them, "True"/"False" as booleans, manager
// given as a string as {"value": …}, id, meta, password and read-only
// attributes dropped). GET returns exactly that document with id and meta;
// attribute values are never rewritten from the graph. Every user write is
// also an engine.Observation of the directory's source, in the same
// transaction: Key is the SCIM id, Attrs are mapped from the user (see
// observation), Inactive is active=false, Raw is the stored document (no
// password). SCIM directories are lifecycle-authoritative unless the
// source says otherwise, so active=false deprovisions.
//
// Groups are organization groups with the same displayName; the directory
// asserts one membership edge per member. Members are stored one row each
// (scim_members): adding or removing one member touches that member's rows
// and edge only, and bumps the group's version.
//
// # Decisions
//
//   - JIT adoption: a POST /Users is applied as a new account of the
//     directory, and the engine's link rules decide whom it belongs to
//     (organization match rules; default email, userName, externalId,
//     employeeNumber). A person JIT created earlier is adopted when a rule
//     matches exactly one person — for the email rule only when the
//     directory's source has trustEmails set (the engine never merges on
//     an unverified email), so set it on directories whose IdP verifies
//     emails, or order userName/externalId first. The answer is 201 with
//     the new SCIM resource either way: the directory owns its id space
//     and JIT never created a SCIM resource, so there is nothing to
//     conflict with. When the match is ambiguous or rests on an untrusted
//     email, the engine queues a conflict for an admin (the JIT person is
//     not touched) and the SCIM resource is still created and can be
//     read, patched and deleted meanwhile: no endless 409, no silent
//     takeover.
//   - A duplicate userName in the same directory (case-insensitively) is
//     409 uniqueness; so is a duplicate group displayName.
//   - DELETE /Users/{id} removes the directory's account (revoking its
//     group edges) and deletes the person when no other source holds a
//     live account of them; otherwise the person stays, held by the
//     others. The audit log keeps the history either way.
//   - DELETE /Groups/{id} revokes the directory's edges of that group; the
//     organization group stays (other sources may assert it).
//   - Members must be users of the same directory (400 invalidValue
//     otherwise); nested groups are not supported.
//   - PATCH answers 200 with the resource (Okta and Entra accept it); a
//     PATCH that changes nothing writes nothing and keeps the version.
//   - Root POST /.search searches Users, then Groups.
//   - A PUT of a group without a members attribute leaves the members as
//     they are (RFC 7644 §3.5.1 would clear them): one PUT that forgot
//     members must not revoke 50,000 edges. "members": [] clears them.
//   - An X-Request-Id header (printable, up to 128 bytes) becomes the audit
//     correlation id; otherwise a new id is used.
//
// # Configuration
//
// A scim source's Config (all optional):
//
//	maxBodyBytes: 1048576     # larger requests get 413
//	maxResults: 1000          # largest page of a query
//	bulkMaxOperations: 1000
//	bulkMaxPayloadBytes: 1048576
package scim
