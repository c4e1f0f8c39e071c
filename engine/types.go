package engine

import (
	"encoding/json"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// Attrs are attributes by canonical name (see reconcile.Attr*).
type Attrs = reconcile.Attrs

// State is a person's lifecycle state.
type State = reconcile.State

// Organization is a customer workspace.
type Organization struct {
	ID          string      `json:"id" db:"id"`
	Slug        string      `json:"slug" db:"slug"`
	Name        string      `json:"name" db:"name"`
	Roles       []string    `json:"roles"`
	DefaultRole string      `json:"defaultRole" db:"default_role"`
	Settings    OrgSettings `json:"settings"`
	CreatedAt   time.Time   `json:"createdAt"`
	UpdatedAt   time.Time   `json:"updatedAt"`
}

// OrgSettings are an organization's reconciliation rules.
type OrgSettings struct {
	// MatchRules is the order in which an unlinked account is matched to an
	// existing person; empty means reconcile.DefaultRules.
	MatchRules []string `json:"matchRules,omitempty"`
	// Priority overrides the default source order per attribute.
	Priority reconcile.Priority `json:"priority,omitempty"`
	// JITInactiveAfter suspends people only login sources know when they
	// have not signed in for this long (0: never); used by reconcile jobs.
	JITInactiveAfter Duration `json:"jitInactiveAfter,omitempty"`
}

// Rules returns the matching rules in effect.
func (s OrgSettings) Rules() []string {
	if len(s.MatchRules) == 0 {
		return reconcile.DefaultRules
	}
	return s.MatchRules
}

// Domain is an email domain an organization claims.
type Domain struct {
	OrgID     string    `json:"orgId"`
	Domain    string    `json:"domain"`
	Verified  bool      `json:"verified"`
	CreatedAt time.Time `json:"createdAt"`
}

// SourceKind names what feeds a source.
type SourceKind string

const (
	KindSAML        SourceKind = "saml"
	KindOIDC        SourceKind = "oidc"
	KindEmailDomain SourceKind = "email-domain"
	KindSCIM        SourceKind = "scim"
	KindLDAP        SourceKind = "ldap"
	KindSCIMPull    SourceKind = "scim-pull"
	KindFile        SourceKind = "file"
	KindAdmin       SourceKind = "admin"
)

// Valid reports whether k is a known kind.
func (k SourceKind) Valid() bool {
	switch k {
	case KindSAML, KindOIDC, KindEmailDomain, KindSCIM, KindLDAP, KindSCIMPull, KindFile, KindAdmin:
		return true
	}
	return false
}

// Channel is the audit channel observations of this kind arrive on.
func (k SourceKind) Channel() string {
	switch k {
	case KindSAML, KindOIDC, KindEmailDomain:
		return ChannelJIT
	case KindSCIM:
		return ChannelSCIM
	case KindLDAP:
		return ChannelLDAP
	case KindSCIMPull, KindFile:
		return ChannelPull
	default:
		return ChannelAdmin
	}
}

// DefaultAuthoritative says whether a source of this kind decides lifecycle
// unless configured otherwise: directories do, logins do not.
func (k SourceKind) DefaultAuthoritative() bool {
	switch k {
	case KindSCIM, KindLDAP, KindSCIMPull, KindFile:
		return true
	}
	return false
}

// Audit channels.
const (
	ChannelJIT    = "jit"
	ChannelSCIM   = "scim"
	ChannelLDAP   = "ldap"
	ChannelPull   = "pull"
	ChannelAdmin  = "admin"
	ChannelSystem = "system"
)

// Source is one configured feed of one organization.
type Source struct {
	ID    string     `json:"id"`
	OrgID string     `json:"orgId"`
	Kind  SourceKind `json:"kind"`
	Name  string     `json:"name"`
	// Priority orders sources in the merge: lower wins.
	Priority int `json:"priority"`
	// Owns lists the attributes this source may set; empty: all.
	Owns []string `json:"owns,omitempty"`
	// Authoritative sources decide lifecycle (deprovision, reactivate).
	Authoritative bool `json:"authoritative"`
	// TrustEmails treats every email this source asserts as verified.
	TrustEmails bool            `json:"trustEmails"`
	Config      json.RawMessage `json:"config,omitempty"`
	Enabled     bool            `json:"enabled"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
}

// Identity is the golden person record.
type Identity struct {
	ID string `json:"id"`
	// OrgID is the organization that first held the person; its merge
	// rules apply. Other organizations reach the person through
	// OrgMembership.
	OrgID string `json:"orgId"`
	State State  `json:"state"`
	// Suspended is an admin suspension; it sticks until lifted.
	Suspended     bool                            `json:"suspended"`
	SuspendReason string                          `json:"suspendReason,omitempty"`
	Attrs         Attrs                           `json:"attributes"`
	Provenance    map[string]reconcile.Provenance `json:"provenance"`
	Version       int64                           `json:"version"`
	CreatedAt     time.Time                       `json:"createdAt"`
	UpdatedAt     time.Time                       `json:"updatedAt"`
	FirstLoginAt  time.Time                       `json:"firstLoginAt,omitzero"`
	LastLoginAt   time.Time                       `json:"lastLoginAt,omitzero"`
}

// Account is what one source holds about one identity.
type Account struct {
	ID         string `json:"id"`
	SourceID   string `json:"sourceId"`
	OrgID      string `json:"orgId"`
	IdentityID string `json:"identityId"`
	// Key is the source's immutable key for the subject (SAML NameID or a
	// named attribute, OIDC iss|sub, SCIM id, LDAP entryUUID/objectGUID).
	Key           string          `json:"key"`
	Attrs         Attrs           `json:"attributes"`
	Raw           json.RawMessage `json:"raw,omitempty"`
	Groups        []string        `json:"groups,omitempty"`
	EmailVerified bool            `json:"emailVerified"`
	// Hash is the content hash of the last observation applied; an
	// observation with the same hash changes nothing.
	Hash      string    `json:"-"`
	Active    bool      `json:"active"`
	Removed   bool      `json:"removed"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	ChangedAt time.Time `json:"changedAt"`
}

// Group is a group of one organization.
type Group struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"orgId"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Membership is one source's assertion that an identity is in a group; the
// identity is a member while any source asserts it.
type Membership struct {
	GroupID    string    `json:"groupId"`
	GroupName  string    `json:"groupName"`
	IdentityID string    `json:"identityId"`
	SourceID   string    `json:"sourceId"`
	GrantedAt  time.Time `json:"grantedAt"`
}

// OrgMembership joins an identity to an organization.
type OrgMembership struct {
	OrgID      string    `json:"orgId"`
	IdentityID string    `json:"identityId"`
	Roles      []string  `json:"roles"`
	GrantedVia string    `json:"grantedVia"` // jit, email-domain, scim, ldap, invitation, admin, …
	SourceID   string    `json:"sourceId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

// Conflict statuses.
const (
	ConflictOpen     = "open"
	ConflictResolved = "resolved"
)

// Conflict is an ambiguity the reconciler refused to guess.
type Conflict struct {
	ID         string   `json:"id"`
	OrgID      string   `json:"orgId"`
	SourceID   string   `json:"sourceId"`
	Key        string   `json:"key"`
	Rule       string   `json:"rule"`
	Reason     string   `json:"reason"`
	Candidates []string `json:"candidates"`
	// Observation is the observation that could not be placed; it is
	// applied when the conflict is resolved.
	Observation Observation `json:"observation"`
	Status      string      `json:"status"`
	Resolution  string      `json:"resolution,omitempty"`
	ResolvedBy  string      `json:"resolvedBy,omitempty"`
	CreatedAt   time.Time   `json:"createdAt"`
	ResolvedAt  time.Time   `json:"resolvedAt,omitzero"`
}

// AuditEvent is one entry of the hash-chained lifecycle log.
type AuditEvent struct {
	Seq           int64           `json:"seq"`
	ID            string          `json:"id"`
	At            time.Time       `json:"at"`
	OrgID         string          `json:"orgId,omitempty"`
	Channel       string          `json:"channel"`
	SourceID      string          `json:"sourceId,omitempty"`
	Actor         string          `json:"actor,omitempty"`
	Action        string          `json:"action"`
	SubjectType   string          `json:"subjectType,omitempty"`
	SubjectID     string          `json:"subjectId,omitempty"`
	IdentityID    string          `json:"identityId,omitempty"`
	Changes       json.RawMessage `json:"changes,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	PrevHash      string          `json:"prevHash"`
	Hash          string          `json:"hash"`
}

// Job is a scheduled pull or reconcile run of one source or organization.
type Job struct {
	ID       string `json:"id"`
	OrgID    string `json:"orgId"`
	SourceID string `json:"sourceId,omitempty"`
	Name     string `json:"name"`
	Kind     string `json:"kind"` // full, incremental, reconcile
	Schedule string `json:"schedule"`
	TimeZone string `json:"timeZone,omitempty"`
	Enabled  bool   `json:"enabled"`
	// Threshold is the largest share of the source (0..1) one run may
	// remove or deprovision before it is quarantined; 0 means 0.1.
	Threshold  float64         `json:"threshold"`
	Config     json.RawMessage `json:"config,omitempty"`
	Watermark  string          `json:"watermark,omitempty"`
	LeaseOwner string          `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time       `json:"leaseUntil,omitzero"`
	LastRunAt  time.Time       `json:"lastRunAt,omitzero"`
	NextRunAt  time.Time       `json:"nextRunAt,omitzero"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

// JobRun statuses.
const (
	RunRunning     = "running"
	RunSucceeded   = "succeeded"
	RunFailed      = "failed"
	RunQuarantined = "quarantined"
	RunApproved    = "approved"
	RunRejected    = "rejected"
)

// Counts are what a run or snapshot did.
type Counts struct {
	Seen      int `json:"seen"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Removed   int `json:"removed"`
	Conflicts int `json:"conflicts"`
	Errors    int `json:"errors"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Seen += o.Seen
	c.Created += o.Created
	c.Updated += o.Updated
	c.Unchanged += o.Unchanged
	c.Removed += o.Removed
	c.Conflicts += o.Conflicts
	c.Errors += o.Errors
}

// JobRun is one execution of a job.
type JobRun struct {
	ID         string          `json:"id"`
	JobID      string          `json:"jobId"`
	Status     string          `json:"status"`
	DryRun     bool            `json:"dryRun"`
	StartedAt  time.Time       `json:"startedAt"`
	FinishedAt time.Time       `json:"finishedAt,omitzero"`
	Counts     Counts          `json:"counts"`
	Error      string          `json:"error,omitempty"`
	Plan       json.RawMessage `json:"plan,omitempty"`
}

// Token kinds.
const (
	TokenAdmin = "admin" // admin API key
	TokenSCIM  = "scim"  // bearer token of one SCIM directory (source)
)

// Token is an API key or SCIM bearer token. Only its hash is stored.
type Token struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	OrgID      string    `json:"orgId,omitempty"`
	SourceID   string    `json:"sourceId,omitempty"`
	Name       string    `json:"name"`
	Scope      string    `json:"scope"` // read, admin
	Prefix     string    `json:"prefix"`
	Hash       string    `json:"-"`
	CreatedAt  time.Time `json:"createdAt"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
}

// Duration is a time.Duration that reads and writes as "90s", "24h".
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return err
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// NewRows are the rows of people created together — a snapshot page's
// newcomers — which Tx.InsertNew writes in a few multi-row statements.
type NewRows struct {
	Identities  []Identity
	Accounts    []Account
	OrgMembers  []OrgMembership
	Memberships []Membership
}
