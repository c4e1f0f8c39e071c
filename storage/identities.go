package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

type identityRow struct {
	ID            string  `db:"id"`
	OrgID         string  `db:"org_id"`
	State         string  `db:"state"`
	Suspended     bool    `db:"suspended"`
	SuspendReason string  `db:"suspend_reason"`
	Attrs         string  `db:"attrs"`
	Provenance    string  `db:"provenance"`
	EmailNorm     *string `db:"email_norm"`
	UserNameNorm  *string `db:"user_name_norm"`
	ExtIDNorm     *string `db:"external_id_norm"`
	EmpNoNorm     *string `db:"employee_number_norm"`
	Version       int64   `db:"version"`
	CreatedAt     ts      `db:"created_at"`
	UpdatedAt     ts      `db:"updated_at"`
	FirstLoginAt  ts      `db:"first_login_at"`
	LastLoginAt   ts      `db:"last_login_at"`
}

const identityCols = `id, org_id, state, suspended, suspend_reason, attrs, provenance, email_norm, user_name_norm,
	external_id_norm, employee_number_norm, version, created_at, updated_at, first_login_at, last_login_at`

func (r identityRow) identity() engine.Identity {
	i := engine.Identity{ID: r.ID, OrgID: r.OrgID, State: engine.State(r.State), Suspended: r.Suspended,
		SuspendReason: r.SuspendReason, Version: r.Version, CreatedAt: r.CreatedAt.T(), UpdatedAt: r.UpdatedAt.T(),
		FirstLoginAt: r.FirstLoginAt.T(), LastLoginAt: r.LastLoginAt.T(), Attrs: engine.Attrs{},
		Provenance: DecodeProvenance(r.Provenance)}
	fromJSON(r.Attrs, &i.Attrs)
	return i
}

// matchColumns maps a matching rule attribute to its lower-cased column.
var matchColumns = map[string]string{
	reconcile.AttrEmail:          "email_norm",
	reconcile.AttrUserName:       "user_name_norm",
	reconcile.AttrExternalID:     "external_id_norm",
	reconcile.AttrEmployeeNumber: "employee_number_norm",
}

// normValue is the form matching compares: trimmed, lower-cased.
func normValue(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

func norm(a engine.Attrs, k string) *string {
	v := normValue(a[k])
	if v == "" {
		return nil
	}
	return &v
}

// Identity reads an identity. Inside a PostgreSQL transaction it locks the
// row until the transaction ends: the engine reads a person in order to
// write them, and concurrent writers of one person then take turns instead
// of failing their version check and rerunning until they give up. (SQLite
// write transactions already run one at a time.)
func (c conn) Identity(ctx context.Context, id string) (engine.Identity, error) {
	q := `SELECT ` + identityCols + ` FROM identities WHERE id = ?`
	if c.inTx() && c.d == Postgres {
		q += ` FOR UPDATE`
	}
	var r identityRow
	err := c.get(ctx, "identity "+id, &r, q, id)
	return r.identity(), err
}

// Identities lists the members of an organization, ordered by ID (IDs are
// time-ordered UUIDv7), after AfterID.
func (c conn) Identities(ctx context.Context, f engine.IdentityFilter) ([]engine.Identity, error) {
	q := `SELECT ` + prefixed("i.", identityCols) + ` FROM identities i JOIN org_memberships m ON m.identity_id = i.id WHERE m.org_id = ? AND i.id > ?`
	args := []any{f.OrgID, f.AfterID}
	if f.State != "" {
		q += ` AND i.state = ?`
		args = append(args, string(f.State))
	}
	if f.Email != "" {
		q += ` AND i.email_norm = ?`
		args = append(args, strings.ToLower(f.Email))
	}
	if f.UserName != "" {
		q += ` AND i.user_name_norm = ?`
		args = append(args, strings.ToLower(f.UserName))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += fmt.Sprintf(` ORDER BY i.id LIMIT %d`, f.Limit)
	var rows []identityRow
	if err := c.sel(ctx, "identities", &rows, q, args...); err != nil {
		return nil, err
	}
	out := make([]engine.Identity, len(rows))
	for i, r := range rows {
		out[i] = r.identity()
	}
	return out, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, s := range parts {
		parts[i] = p + strings.TrimSpace(s)
	}
	return strings.Join(parts, ", ")
}

func (c conn) FindCandidates(ctx context.Context, orgID, sourceID string, values map[string]string) (map[string][]reconcile.Candidate, error) {
	attrs := make([]string, 0, len(values))
	for a := range values {
		if _, ok := matchColumns[a]; !ok {
			return nil, fmt.Errorf("match on %q: only %v can be matching rules: %w", a, engine.MatchableAttrs(), engine.ErrInvalid)
		}
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	var conds []string
	args := []any{sourceID}
	for _, a := range attrs {
		conds = append(conds, "i."+matchColumns[a]+" = ?")
		args = append(args, normValue(values[a]))
	}
	args = append(args, orgID)
	if err := c.lockMatchValues(ctx, orgID, []map[string]string{values}); err != nil {
		return nil, err
	}
	var rows []candidateRow
	// Each OR arm uses its attribute's index; membership is checked per hit.
	err := c.sel(ctx, "find candidates", &rows, candidatesQuery(conds)+` LIMIT 100`, args...)
	if err != nil {
		return nil, err
	}
	return candidatesOf(rows, values), nil
}

// lockMatchValues, in a PostgreSQL transaction, takes transaction-scoped
// advisory locks covering the organization's matching values before the
// candidates are read. Two transactions creating people with one email
// (two SCIM creates, a SCIM create and a first login) would otherwise each
// see no candidate and create two people; the second now waits for the
// first to commit, then finds its person. Values hash into one of
// matchLockBuckets locks per organization, so that a snapshot page (2,000
// values) takes at most that many, not one per value — PostgreSQL's lock
// table is small — at the price of unrelated values sometimes waiting for
// each other. The locks are taken in one statement, in key order, and
// released at commit. SQLite needs none: its writers take turns.
func (c conn) lockMatchValues(ctx context.Context, orgID string, values []map[string]string) error {
	if !c.inTx() || c.d != Postgres {
		return nil
	}
	var keys []int64
	for _, vs := range values {
		for a, v := range vs {
			h := fnv.New64a()
			h.Write([]byte(a + "\x00" + normValue(v)))
			o := fnv.New64a()
			fmt.Fprintf(o, "%s\x00%d", orgID, h.Sum64()%matchLockBuckets)
			keys = append(keys, int64(o.Sum64()))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	_, err := c.exec(ctx, "lock matching values", `SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k ORDER BY k`, keys)
	return err
}

const matchLockBuckets = 64

// candidatesQuery selects the identities of an organization matching any
// of conds, with whether each holds an account of a source; its arguments
// are the source, those of conds, then the organization.
func candidatesQuery(conds []string) string {
	return `SELECT i.id, i.email_norm, i.user_name_norm, i.external_id_norm, i.employee_number_norm,
			(SELECT COUNT(*) FROM accounts a WHERE a.identity_id = i.id AND a.source_id = ?) AS holds
		FROM identities i
		WHERE (` + strings.Join(conds, " OR ") + `)
		  AND EXISTS (SELECT 1 FROM org_memberships m WHERE m.identity_id = i.id AND m.org_id = ?)
		ORDER BY i.id`
}

type candidateRow struct {
	ID    string  `db:"id"`
	Email *string `db:"email_norm"`
	User  *string `db:"user_name_norm"`
	Ext   *string `db:"external_id_norm"`
	Emp   *string `db:"employee_number_norm"`
	Holds int     `db:"holds"`
}

func (r candidateRow) norm(attr string) *string {
	switch attr {
	case reconcile.AttrEmail:
		return r.Email
	case reconcile.AttrUserName:
		return r.User
	case reconcile.AttrExternalID:
		return r.Ext
	case reconcile.AttrEmployeeNumber:
		return r.Emp
	}
	return nil
}

// candidatesOf sorts rows (in identity order) under the rule attributes of
// values they match.
func candidatesOf(rows []candidateRow, values map[string]string) map[string][]reconcile.Candidate {
	out := map[string][]reconcile.Candidate{}
	for _, r := range rows {
		for a, v := range values {
			if n := r.norm(a); n != nil && *n == normValue(v) {
				out[a] = append(out[a], reconcile.Candidate{IdentityID: r.ID, HoldsSource: r.Holds > 0})
			}
		}
	}
	return out
}

// FindCandidatesMany is FindCandidates for many observations in one query
// (a snapshot page's newcomers): the values of each rule attribute travel
// as one JSON array (SQLite) or text array (PostgreSQL), so the statement
// has one shape whatever their number.
func (c conn) FindCandidatesMany(ctx context.Context, orgID, sourceID string, values []map[string]string) ([]map[string][]reconcile.Candidate, error) {
	byAttr := map[string][]string{}
	for _, vs := range values {
		for a, v := range vs {
			if _, ok := matchColumns[a]; !ok {
				return nil, fmt.Errorf("match on %q: only %v can be matching rules: %w", a, engine.MatchableAttrs(), engine.ErrInvalid)
			}
			byAttr[a] = append(byAttr[a], normValue(v))
		}
	}
	args := []any{sourceID}
	var conds []string
	for _, a := range engine.MatchableAttrs() {
		list := nonNil(byAttr[a])
		if c.d == Postgres {
			conds = append(conds, "i."+matchColumns[a]+" = ANY(?)")
			args = append(args, list)
		} else {
			conds = append(conds, "i."+matchColumns[a]+" IN (SELECT value FROM json_each(?))")
			args = append(args, jsonOf(list))
		}
	}
	args = append(args, orgID)
	if err := c.lockMatchValues(ctx, orgID, values); err != nil {
		return nil, err
	}
	var rows []candidateRow
	if err := c.sel(ctx, "find candidates", &rows, candidatesQuery(conds), args...); err != nil {
		return nil, err
	}
	// Index the rows by attribute and value, then give each observation
	// the rows it matches, in identity order and at most 100 as
	// FindCandidates does.
	index := map[string][]int{}
	for k, r := range rows {
		for _, a := range engine.MatchableAttrs() {
			if n := r.norm(a); n != nil {
				index[a+"\x00"+*n] = append(index[a+"\x00"+*n], k)
			}
		}
	}
	out := make([]map[string][]reconcile.Candidate, len(values))
	for i, vs := range values {
		var hits []int
		for a, v := range vs {
			hits = append(hits, index[a+"\x00"+normValue(v)]...)
		}
		if len(hits) == 0 {
			out[i] = map[string][]reconcile.Candidate{}
			continue
		}
		slices.Sort(hits)
		hits = slices.Compact(hits)
		mine := make([]candidateRow, 0, min(len(hits), 100))
		for _, k := range hits[:min(len(hits), 100)] {
			mine = append(mine, rows[k])
		}
		out[i] = candidatesOf(mine, vs)
	}
	return out, nil
}

func (c txConn) InsertIdentity(ctx context.Context, i engine.Identity) error {
	_, err := c.exec(ctx, "insert identity", multiInsert("identities", identityCols, identityNCols, 1), identityArgs(nil, i)...)
	return err
}

const identityNCols = 16

// identityArgs appends the values of identityCols for i.
func identityArgs(args []any, i engine.Identity) []any {
	return append(args, i.ID, i.OrgID, string(i.State), i.Suspended, i.SuspendReason, attrsJSON(i.Attrs), encodeProvenance(i.Provenance),
		norm(i.Attrs, reconcile.AttrEmail), norm(i.Attrs, reconcile.AttrUserName), norm(i.Attrs, reconcile.AttrExternalID),
		norm(i.Attrs, reconcile.AttrEmployeeNumber), i.Version, tsOf(i.CreatedAt), tsOf(i.UpdatedAt),
		tsOf(i.FirstLoginAt), tsOf(i.LastLoginAt))
}

func (c txConn) UpdateIdentity(ctx context.Context, i engine.Identity, prevVersion int64) error {
	r, err := c.exec(ctx, "update identity", `UPDATE identities SET state = ?, suspended = ?, suspend_reason = ?, attrs = ?, provenance = ?,
		email_norm = ?, user_name_norm = ?, external_id_norm = ?, employee_number_norm = ?, version = ?, updated_at = ?,
		first_login_at = ?, last_login_at = ? WHERE id = ? AND version = ?`,
		string(i.State), i.Suspended, i.SuspendReason, attrsJSON(i.Attrs), encodeProvenance(i.Provenance),
		norm(i.Attrs, reconcile.AttrEmail), norm(i.Attrs, reconcile.AttrUserName), norm(i.Attrs, reconcile.AttrExternalID),
		norm(i.Attrs, reconcile.AttrEmployeeNumber), i.Version, tsOf(i.UpdatedAt), tsOf(i.FirstLoginAt), tsOf(i.LastLoginAt),
		i.ID, prevVersion)
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("identity %s changed since version %d: %w", i.ID, prevVersion, engine.ErrRetry)
	}
	return nil
}

func (c txConn) DeleteIdentity(ctx context.Context, id string) error {
	for _, q := range []string{
		`DELETE FROM group_memberships WHERE identity_id = ?`,
		`DELETE FROM org_memberships WHERE identity_id = ?`,
		`DELETE FROM accounts WHERE identity_id = ?`,
	} {
		if _, err := c.exec(ctx, "delete identity "+id, q, id); err != nil {
			return err
		}
	}
	r, err := c.exec(ctx, "delete identity "+id, `DELETE FROM identities WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return mustAffect(r, "delete identity "+id)
}

func (c txConn) TouchLogin(ctx context.Context, identityID, accountID string, at time.Time) error {
	if _, err := c.exec(ctx, "touch login", `UPDATE identities SET last_login_at = ?, first_login_at = COALESCE(first_login_at, ?) WHERE id = ?`,
		tsOf(at), tsOf(at), identityID); err != nil {
		return err
	}
	_, err := c.exec(ctx, "touch login", `UPDATE accounts SET last_seen = ? WHERE id = ?`, tsOf(at), accountID)
	return err
}

type accountRow struct {
	ID            string  `db:"id"`
	SourceID      string  `db:"source_id"`
	OrgID         string  `db:"org_id"`
	IdentityID    string  `db:"identity_id"`
	Key           string  `db:"source_key"`
	Attrs         string  `db:"attrs"`
	Raw           *string `db:"raw"`
	Groups        *string `db:"groups"`
	EmailVerified bool    `db:"email_verified"`
	Hash          string  `db:"hash"`
	Active        bool    `db:"active"`
	Removed       bool    `db:"removed"`
	FirstSeen     ts      `db:"first_seen"`
	LastSeen      ts      `db:"last_seen"`
	ChangedAt     ts      `db:"changed_at"`
}

const accountCols = `id, source_id, org_id, identity_id, source_key, attrs, raw, groups, email_verified, hash, active, removed, first_seen, last_seen, changed_at`

func (r accountRow) account() engine.Account {
	a := engine.Account{ID: r.ID, SourceID: r.SourceID, OrgID: r.OrgID, IdentityID: r.IdentityID, Key: r.Key,
		EmailVerified: r.EmailVerified, Hash: r.Hash, Active: r.Active, Removed: r.Removed,
		FirstSeen: r.FirstSeen.T(), LastSeen: r.LastSeen.T(), ChangedAt: r.ChangedAt.T(), Attrs: engine.Attrs{}}
	fromJSON(r.Attrs, &a.Attrs)
	if r.Raw != nil {
		a.Raw = json.RawMessage(*r.Raw)
	}
	if r.Groups != nil {
		fromJSON(*r.Groups, &a.Groups)
	}
	return a
}

func (c conn) Account(ctx context.Context, id string) (engine.Account, error) {
	var r accountRow
	err := c.get(ctx, "account "+id, &r, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id)
	return r.account(), err
}

func (c conn) AccountByKey(ctx context.Context, sourceID, key string) (engine.Account, bool, error) {
	var r accountRow
	err := c.get(ctx, "account", &r, `SELECT `+accountCols+` FROM accounts WHERE source_id = ? AND source_key = ?`, sourceID, key)
	if isNotFound(err) {
		return engine.Account{}, false, nil
	}
	return r.account(), err == nil, err
}

func (c conn) LinkedAccounts(ctx context.Context, identityID string) ([]engine.LinkedAccount, error) {
	var rows []struct {
		accountRow
		Kind          string `db:"kind"`
		Name          string `db:"name"`
		Priority      int    `db:"priority"`
		Authoritative bool   `db:"authoritative"`
		Owns          string `db:"owns"`
	}
	if err := c.sel(ctx, "linked accounts", &rows, `SELECT `+prefixed("a.", accountCols)+`, s.kind, s.name, s.priority, s.authoritative, s.owns
		FROM accounts a JOIN sources s ON s.id = a.source_id WHERE a.identity_id = ? ORDER BY a.id`, identityID); err != nil {
		return nil, err
	}
	out := make([]engine.LinkedAccount, len(rows))
	for i, r := range rows {
		out[i] = engine.LinkedAccount{Account: r.account(), SourceKind: engine.SourceKind(r.Kind), SourceName: r.Name,
			Priority: r.Priority, Authoritative: r.Authoritative}
		fromJSON(r.Owns, &out[i].Owns)
	}
	return out, nil
}

func (c conn) CountAccounts(ctx context.Context, sourceID string, live bool) (int, error) {
	var n int
	q := `SELECT COUNT(*) FROM accounts WHERE source_id = ?`
	args := []any{sourceID}
	if live {
		q += ` AND removed = ?`
		args = append(args, false)
	}
	err := c.get(ctx, "count accounts", &n, q, args...)
	return n, err
}

func groupsText(g []string) any {
	if g == nil {
		return nil
	}
	return stringsJSON(g)
}

func (c txConn) InsertAccount(ctx context.Context, a engine.Account) error {
	_, err := c.exec(ctx, "insert account", multiInsert("accounts", accountCols, accountNCols, 1), accountArgs(nil, a)...)
	if isExists(err) {
		// Another transaction linked the same source key first: rerun and
		// find its account.
		return fmt.Errorf("account %q of source %s: %w", a.Key, a.SourceID, engine.ErrRetry)
	}
	return err
}

const accountNCols = 15

// accountArgs appends the values of accountCols for a.
func accountArgs(args []any, a engine.Account) []any {
	return append(args, a.ID, a.SourceID, a.OrgID, a.IdentityID, a.Key, attrsJSON(a.Attrs), nullText(a.Raw), groupsText(a.Groups),
		a.EmailVerified, a.Hash, a.Active, a.Removed, tsOf(a.FirstSeen), tsOf(a.LastSeen), tsOf(a.ChangedAt))
}

func (c txConn) UpdateAccount(ctx context.Context, a engine.Account) error {
	r, err := c.exec(ctx, "update account", `UPDATE accounts SET identity_id = ?, attrs = ?, raw = ?, groups = ?, email_verified = ?, hash = ?,
		active = ?, removed = ?, last_seen = ?, changed_at = ? WHERE id = ?`,
		a.IdentityID, attrsJSON(a.Attrs), nullText(a.Raw), groupsText(a.Groups), a.EmailVerified, a.Hash, a.Active, a.Removed,
		tsOf(a.LastSeen), tsOf(a.ChangedAt), a.ID)
	if err != nil {
		return err
	}
	return mustAffect(r, "update account "+a.ID)
}

// AccountHashes reads the hashes of many keys of one source in one query:
// the keys travel as one JSON array (SQLite) or text array (PostgreSQL),
// so the statement has one shape whatever their number.
func (s *DB) AccountHashes(ctx context.Context, sourceID string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	q := `SELECT source_key, hash FROM accounts WHERE source_id = ? AND source_key IN (SELECT value FROM json_each(?))`
	var arg any = jsonOf(keys)
	if s.dialect == Postgres {
		q = `SELECT source_key, hash FROM accounts WHERE source_id = ? AND source_key = ANY(?)`
		arg = keys
	}
	var rows []struct {
		Key  string `db:"source_key"`
		Hash string `db:"hash"`
	}
	if err := s.sel(ctx, "account hashes", &rows, q, sourceID, arg); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.Key] = r.Hash
	}
	return out, nil
}

// LiveAccountKeys streams a source's accounts not yet removed, by key.
func (s *DB) LiveAccountKeys(ctx context.Context, sourceID string, fn func(key, accountID string) error) error {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT source_key, id FROM accounts WHERE source_id = ? AND removed = ? ORDER BY source_key`), sourceID, false)
	if err != nil {
		return fmt.Errorf("live accounts: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			return fmt.Errorf("live accounts: %w", mapErr(err))
		}
		if err := fn(k, id); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

type groupRow struct {
	ID        string `db:"id"`
	OrgID     string `db:"org_id"`
	Name      string `db:"name"`
	CreatedAt ts     `db:"created_at"`
}

func (r groupRow) group() engine.Group {
	return engine.Group{ID: r.ID, OrgID: r.OrgID, Name: r.Name, CreatedAt: r.CreatedAt.T()}
}

func (c conn) Groups(ctx context.Context, orgID string) ([]engine.Group, error) {
	var rows []groupRow
	if err := c.sel(ctx, "groups", &rows, `SELECT id, org_id, name, created_at FROM org_groups WHERE org_id = ? ORDER BY name_norm`, orgID); err != nil {
		return nil, err
	}
	out := make([]engine.Group, len(rows))
	for i, r := range rows {
		out[i] = r.group()
	}
	return out, nil
}

func (c txConn) EnsureGroup(ctx context.Context, orgID, name string, at time.Time) (engine.Group, bool, error) {
	memoKey := orgID + "\x00" + strings.ToLower(name)
	if g, ok := c.memo.groups[memoKey]; ok {
		return g, false, nil
	}
	if g, ok := c.groups.get(memoKey); ok { // committed: see groupCache
		c.memo.groups[memoKey] = g
		return g, false, nil
	}
	var g groupRow
	err := c.get(ctx, "group "+name, &g, `SELECT id, org_id, name, created_at FROM org_groups WHERE org_id = ? AND name_norm = ?`, orgID, strings.ToLower(name))
	if err == nil {
		// Shared once the transaction commits: the row may be this
		// transaction's own, if a savepoint rollback cleared the memo.
		c.memo.groups[memoKey] = g.group()
		c.memo.created = append(c.memo.created, memoKey)
	}
	if err == nil || !isNotFound(err) {
		return g.group(), false, err
	}
	id := engine.NewID()
	if _, err := c.exec(ctx, "create group "+name, `INSERT INTO org_groups (id, org_id, name, name_norm, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, orgID, name, strings.ToLower(name), tsOf(at)); err != nil {
		if isExists(err) { // created by a concurrent transaction
			return engine.Group{}, false, fmt.Errorf("group %q: %w", name, engine.ErrRetry)
		}
		return engine.Group{}, false, err
	}
	created := engine.Group{ID: id, OrgID: orgID, Name: name, CreatedAt: at}
	c.memo.groups[memoKey] = created
	c.memo.created = append(c.memo.created, memoKey)
	return created, true, nil
}

func (c conn) IdentityMemberships(ctx context.Context, identityID string) ([]engine.Membership, error) {
	var rows []struct {
		GroupID   string `db:"group_id"`
		Name      string `db:"name"`
		SourceID  string `db:"source_id"`
		GrantedAt ts     `db:"granted_at"`
	}
	if err := c.sel(ctx, "memberships", &rows, `SELECT m.group_id, g.name, m.source_id, m.granted_at
		FROM group_memberships m JOIN org_groups g ON g.id = m.group_id WHERE m.identity_id = ? ORDER BY g.name_norm, m.source_id`, identityID); err != nil {
		return nil, err
	}
	out := make([]engine.Membership, len(rows))
	for i, r := range rows {
		out[i] = engine.Membership{GroupID: r.GroupID, GroupName: r.Name, IdentityID: identityID, SourceID: r.SourceID, GrantedAt: r.GrantedAt.T()}
	}
	return out, nil
}

func (c txConn) AddMembership(ctx context.Context, m engine.Membership) error {
	_, err := c.exec(ctx, "add membership", `INSERT INTO group_memberships (group_id, identity_id, source_id, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (group_id, identity_id, source_id) DO NOTHING`, m.GroupID, m.IdentityID, m.SourceID, tsOf(m.GrantedAt))
	return err
}

func (c txConn) RemoveMembership(ctx context.Context, groupID, identityID, sourceID string) error {
	_, err := c.exec(ctx, "remove membership", `DELETE FROM group_memberships WHERE group_id = ? AND identity_id = ? AND source_id = ?`,
		groupID, identityID, sourceID)
	return err
}

type orgMembershipRow struct {
	OrgID      string `db:"org_id"`
	IdentityID string `db:"identity_id"`
	Roles      string `db:"roles"`
	GrantedVia string `db:"granted_via"`
	SourceID   string `db:"source_id"`
	CreatedAt  ts     `db:"created_at"`
}

func (r orgMembershipRow) m() engine.OrgMembership {
	m := engine.OrgMembership{OrgID: r.OrgID, IdentityID: r.IdentityID, GrantedVia: r.GrantedVia, SourceID: r.SourceID, CreatedAt: r.CreatedAt.T()}
	fromJSON(r.Roles, &m.Roles)
	return m
}

func (c conn) OrgMemberships(ctx context.Context, identityID string) ([]engine.OrgMembership, error) {
	var rows []orgMembershipRow
	if err := c.sel(ctx, "org memberships", &rows, `SELECT org_id, identity_id, roles, granted_via, source_id, created_at FROM org_memberships WHERE identity_id = ? ORDER BY org_id`, identityID); err != nil {
		return nil, err
	}
	out := make([]engine.OrgMembership, len(rows))
	for i, r := range rows {
		out[i] = r.m()
	}
	return out, nil
}

func (c conn) OrgMembership(ctx context.Context, orgID, identityID string) (engine.OrgMembership, bool, error) {
	var r orgMembershipRow
	err := c.get(ctx, "org membership", &r, `SELECT org_id, identity_id, roles, granted_via, source_id, created_at FROM org_memberships WHERE org_id = ? AND identity_id = ?`, orgID, identityID)
	if isNotFound(err) {
		return engine.OrgMembership{}, false, nil
	}
	return r.m(), err == nil, err
}

func (c txConn) UpsertOrgMembership(ctx context.Context, m engine.OrgMembership) error {
	_, err := c.exec(ctx, "org membership", `INSERT INTO org_memberships (org_id, identity_id, roles, granted_via, source_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, identity_id) DO UPDATE SET roles = excluded.roles`,
		m.OrgID, m.IdentityID, stringsJSON(m.Roles), m.GrantedVia, m.SourceID, tsOf(m.CreatedAt))
	return err
}
