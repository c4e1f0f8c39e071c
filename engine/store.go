package engine

import (
	"context"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// AccountHead is the little the hot path needs to tell that an observation
// changes nothing: one indexed read, no transaction.
type AccountHead struct {
	AccountID     string
	IdentityID    string
	Hash          string
	IdentityState State
	LastLoginAt   time.Time
}

// LinkedAccount is an account with the source facts the merge needs.
type LinkedAccount struct {
	Account
	SourceKind    SourceKind
	SourceName    string
	Priority      int
	Authoritative bool
	Owns          []string
}

// AuditFilter selects audit events; zero fields select everything.
type AuditFilter struct {
	OrgID      string
	IdentityID string
	Action     string
	Channel    string
	SourceID   string
	Since      time.Time
	Until      time.Time
	AfterSeq   int64
	Limit      int
}

// IdentityFilter selects identities of an organization.
type IdentityFilter struct {
	OrgID    string
	State    State
	AfterID  string
	Limit    int
	Email    string
	UserName string
}

// Reader is what both the store and a transaction can read.
type Reader interface {
	Organization(ctx context.Context, id string) (Organization, error)
	OrganizationBySlug(ctx context.Context, slug string) (Organization, error)
	Organizations(ctx context.Context) ([]Organization, error)
	Domains(ctx context.Context, orgID string) ([]Domain, error)
	DomainOwner(ctx context.Context, domain string) (Domain, error)
	Source(ctx context.Context, id string) (Source, error)
	SourceByName(ctx context.Context, orgID, name string) (Source, error)
	Sources(ctx context.Context, orgID string) ([]Source, error)

	Identity(ctx context.Context, id string) (Identity, error)
	Identities(ctx context.Context, f IdentityFilter) ([]Identity, error)
	Account(ctx context.Context, id string) (Account, error)
	AccountByKey(ctx context.Context, sourceID, key string) (Account, bool, error)
	LinkedAccounts(ctx context.Context, identityID string) ([]LinkedAccount, error)
	// FindCandidates returns, for each rule attribute in values (one of
	// MatchableAttrs), the identities that belong to orgID and whose golden
	// attribute equals the value case-insensitively — in one query.
	FindCandidates(ctx context.Context, orgID, sourceID string, values map[string]string) (map[string][]reconcile.Candidate, error)
	// FindCandidatesMany is FindCandidates for each of values, in one
	// query: out[i] holds the candidates of values[i].
	FindCandidatesMany(ctx context.Context, orgID, sourceID string, values []map[string]string) ([]map[string][]reconcile.Candidate, error)
	CountAccounts(ctx context.Context, sourceID string, live bool) (int, error)
	IdentityMemberships(ctx context.Context, identityID string) ([]Membership, error)
	OrgMemberships(ctx context.Context, identityID string) ([]OrgMembership, error)
	OrgMembership(ctx context.Context, orgID, identityID string) (OrgMembership, bool, error)
	Groups(ctx context.Context, orgID string) ([]Group, error)

	Conflict(ctx context.Context, id string) (Conflict, error)
	OpenConflictByKey(ctx context.Context, sourceID, key string) (Conflict, bool, error)
	Conflicts(ctx context.Context, orgID, status string) ([]Conflict, error)

	Job(ctx context.Context, id string) (Job, error)
	Jobs(ctx context.Context, orgID string) ([]Job, error)
	JobRun(ctx context.Context, id string) (JobRun, error)
	JobRuns(ctx context.Context, jobID string, limit int) ([]JobRun, error)

	TokenByHash(ctx context.Context, hash string) (Token, error)
	Tokens(ctx context.Context, kind, orgID string) ([]Token, error)
}

// Tx is one write transaction. The engine runs every change in one.
type Tx interface {
	Reader

	CreateOrganization(ctx context.Context, o Organization) error
	UpdateOrganization(ctx context.Context, o Organization) error
	AddDomain(ctx context.Context, d Domain) error
	RemoveDomain(ctx context.Context, orgID, domain string) error
	CreateSource(ctx context.Context, s Source) error
	UpdateSource(ctx context.Context, s Source) error

	InsertIdentity(ctx context.Context, i Identity) error
	// UpdateIdentity writes i if the stored version is still prevVersion,
	// and returns an error wrapping ErrRetry otherwise.
	UpdateIdentity(ctx context.Context, i Identity, prevVersion int64) error
	DeleteIdentity(ctx context.Context, id string) error
	TouchLogin(ctx context.Context, identityID, accountID string, at time.Time) error

	InsertAccount(ctx context.Context, a Account) error
	// InsertNew writes the rows of people created together (identities,
	// their accounts, organization memberships and group edges) in few
	// statements; a source key that has an account already fails with
	// ErrRetry.
	InsertNew(ctx context.Context, rows NewRows) error
	UpdateAccount(ctx context.Context, a Account) error
	EnsureGroup(ctx context.Context, orgID, name string, at time.Time) (g Group, created bool, err error)
	AddMembership(ctx context.Context, m Membership) error
	RemoveMembership(ctx context.Context, groupID, identityID, sourceID string) error
	UpsertOrgMembership(ctx context.Context, m OrgMembership) error

	InsertConflict(ctx context.Context, c Conflict) error
	UpdateConflict(ctx context.Context, c Conflict) error

	CreateJob(ctx context.Context, j Job) error
	UpdateJob(ctx context.Context, j Job) error
	DeleteJob(ctx context.Context, id string) error
	CreateJobRun(ctx context.Context, r JobRun) error
	UpdateJobRun(ctx context.Context, r JobRun) error

	CreateToken(ctx context.Context, t Token) error
	RevokeToken(ctx context.Context, id string, at time.Time) error

	// AppendAudit assigns each event its sequence number and chains its
	// hash to the previous event (see ChainHash), in this transaction.
	AppendAudit(ctx context.Context, events []AuditEvent) error
}

// Store is the persistence the engine needs; package storage implements it
// for SQLite and PostgreSQL.
type Store interface {
	Reader
	// AccountHead reads the hot-path summary of a source's account.
	AccountHead(ctx context.Context, sourceID, key string) (AccountHead, bool, error)
	// AccountHashes returns the content hash of each of a source's keys
	// that has an account, in one query (a snapshot page's unchanged check).
	AccountHashes(ctx context.Context, sourceID string, keys []string) (map[string]string, error)
	// InTx runs fn in one write transaction: committed if fn returns nil,
	// rolled back otherwise. Errors that wrap ErrRetry may succeed on rerun.
	InTx(ctx context.Context, fn func(Tx) error) error
	// LiveAccountKeys streams the keys and account IDs of a source's
	// accounts not yet removed, in key order.
	LiveAccountKeys(ctx context.Context, sourceID string, fn func(key, accountID string) error) error
	// StreamAudit streams events matching f in sequence order.
	StreamAudit(ctx context.Context, f AuditFilter, fn func(AuditEvent) error) error
	// AuditHead is the last sequence number and hash appended.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	// TryLease takes or renews the lease of a job for owner until the given
	// time; false if another owner holds an unexpired lease.
	TryLease(ctx context.Context, jobID, owner string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, jobID, owner string) error
	Ping(ctx context.Context) error
	Close() error
}
