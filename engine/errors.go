package engine

import "errors"

// The error kinds that survive every layer. Wrap them with %w and a message
// naming what was wrong; map them to HTTP or SCIM status only at the edge.
var (
	// ErrNotFound: the organization, source, identity, … does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a unique name, key or value is already taken.
	ErrExists = errors.New("already exists")
	// ErrConflict: a concurrent change won, or the request contradicts the
	// current state (stale version, open conflict, wrong lifecycle state).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed or breaks a rule.
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the caller may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the database (or a peer) is down, locked or timing out;
	// the caller may retry later.
	ErrUnavailable = errors.New("unavailable")
	// ErrQuarantined: a snapshot would remove more than its threshold allows
	// and stopped before removing anything.
	ErrQuarantined = errors.New("quarantined")

	// errRetry is returned by a Store for a transaction that lost a race
	// (serialization failure, deadlock, unique race, stale version); the
	// engine retries the whole transaction.
	errRetry = errors.New("retry")
)

// ErrRetry is exported for Store implementations: wrap it when a transaction
// lost a race and may succeed if run again from the start.
var ErrRetry = errRetry
