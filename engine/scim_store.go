package engine

import (
	"context"
	"time"
)

// SCIMResource is one resource of a SCIM directory (package scim) as the
// directory wrote it. Doc is the JSON object without id, meta and password.
type SCIMResource struct {
	SourceID    string
	Type        string // User, Group
	ID          string
	ExternalID  string
	UserName    string // users: userName (stored lower-cased for uniqueness)
	DisplayName string
	Doc         []byte
	Version     int64
	Created     time.Time
	Modified    time.Time
}

// SCIMMember is one member of a SCIM group.
type SCIMMember struct {
	Value   string
	Display string
}

// SCIMQuery selects resources of one type of one directory. Where is an SQL
// boolean expression over the columns of scim_resources with ? placeholders
// (built by package scim/filter, never from request text); Args are its
// values.
type SCIMQuery struct {
	SourceID string
	Type     string
	Where    string
	Args     []any
	// OrderBy is an SQL expression; the resource id always breaks ties so
	// pages are stable.
	OrderBy    string
	Descending bool
	Offset     int
	// Limit < 0: no limit; 0: count only.
	Limit int
	// After, with the default order, selects rows whose id sorts after it
	// (a keyset cursor: Offset then counts from there). The total is then
	// not computed: SCIMResources returns -1 for it.
	After string
}

// SCIMReader reads SCIM directories. *storage.DB implements it; callers
// type-assert Engine.Store() to it.
type SCIMReader interface {
	SCIMDialect() string
	SCIMResource(ctx context.Context, sourceID, typ, id string) (SCIMResource, error)
	SCIMResources(ctx context.Context, q SCIMQuery) (list []SCIMResource, total int, err error)
	SCIMMembers(ctx context.Context, sourceID, groupID string) ([]SCIMMember, error)
	SCIMHasMember(ctx context.Context, sourceID, groupID, memberID string) (bool, error)
}

// SCIMTx writes SCIM directories inside an engine transaction; the storage
// transaction implements it.
type SCIMTx interface {
	SCIMReader
	// InsertSCIMResource wraps ErrExists when userName (users) or
	// displayName (groups) is taken in the directory.
	InsertSCIMResource(ctx context.Context, r SCIMResource) error
	// UpdateSCIMResource writes r if the stored version is prevVersion
	// (ErrConflict otherwise).
	UpdateSCIMResource(ctx context.Context, r SCIMResource, prevVersion int64) error
	// TouchSCIMResource bumps a resource's version and modified time.
	TouchSCIMResource(ctx context.Context, sourceID, typ, id string, at time.Time) (version int64, err error)
	DeleteSCIMResource(ctx context.Context, sourceID, typ, id string) error
	// AddSCIMMember reports whether the member was new.
	AddSCIMMember(ctx context.Context, sourceID, groupID string, m SCIMMember) (bool, error)
	// RemoveSCIMMember reports whether the member was there.
	RemoveSCIMMember(ctx context.Context, sourceID, groupID, memberID string) (bool, error)
	RemoveSCIMGroupMembers(ctx context.Context, sourceID, groupID string) error
	// RemoveSCIMMemberships drops a member from every group of the directory
	// and returns the groups it was in.
	RemoveSCIMMemberships(ctx context.Context, sourceID, memberID string) ([]string, error)
}
