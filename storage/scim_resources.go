package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
)

// SCIM directory rows (migration 0003, package scim). Filters arrive as SQL
// built by scim/filter with ? placeholders; this file only runs them.

var (
	_ engine.SCIMReader = (*DB)(nil)
	_ engine.SCIMTx     = (*txConn)(nil)
)

type scimRow struct {
	SourceID    string  `db:"source_id"`
	Type        string  `db:"type"`
	ID          string  `db:"id"`
	ExternalID  *string `db:"external_id"`
	UserName    *string `db:"user_name_norm"`
	DisplayName *string `db:"display_name_norm"`
	Doc         string  `db:"doc"`
	Version     int64   `db:"version"`
	Created     ts      `db:"created"`
	Modified    ts      `db:"modified"`
}

func (r scimRow) res() engine.SCIMResource {
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return engine.SCIMResource{SourceID: r.SourceID, Type: r.Type, ID: r.ID, ExternalID: s(r.ExternalID),
		UserName: s(r.UserName), DisplayName: s(r.DisplayName), Doc: []byte(r.Doc), Version: r.Version,
		Created: r.Created.T(), Modified: r.Modified.T()}
}

const scimCols = `source_id, type, id, external_id, user_name_norm, display_name_norm, doc, version, created, modified`

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SCIMDialect names the SQL dialect filters must be written in.
func (c conn) SCIMDialect() string { return string(c.d) }

func (c conn) SCIMResource(ctx context.Context, sourceID, typ, id string) (engine.SCIMResource, error) {
	var r scimRow
	err := c.get(ctx, "scim "+typ+" "+id, &r, `SELECT `+scimCols+` FROM scim_resources WHERE source_id = ? AND type = ? AND id = ?`,
		sourceID, typ, id)
	return r.res(), err
}

func (c conn) SCIMResources(ctx context.Context, q engine.SCIMQuery) ([]engine.SCIMResource, int, error) {
	where := `source_id = ? AND type = ?`
	args := []any{q.SourceID, q.Type}
	if q.Where != "" {
		where += ` AND (` + q.Where + `)`
		args = append(args, q.Args...)
	}
	if q.After != "" && q.OrderBy == "" && !q.Descending {
		where += ` AND id > ?`
		args = append(args, q.After)
	} else {
		q.After = ""
	}
	count := func() (int, error) {
		var total int
		err := c.get(ctx, "count scim "+q.Type, &total, `SELECT COUNT(*) FROM scim_resources WHERE `+where, args...)
		return total, err
	}
	if q.Limit == 0 {
		total, err := count()
		return []engine.SCIMResource{}, total, err
	}
	dir := ""
	if q.Descending {
		dir = " DESC"
	}
	order := "id" + dir
	if q.OrderBy != "" {
		// Unassigned values sort last in either order (RFC 7644 §3.4.2.3).
		order = "(" + q.OrderBy + ") IS NULL, " + q.OrderBy + dir + ", id" + dir
	}
	limit := q.Limit
	if limit < 0 {
		limit = 1 << 30
	}
	var rows []scimRow
	if err := c.sel(ctx, "list scim "+q.Type, &rows, `SELECT `+scimCols+` FROM scim_resources WHERE `+where+
		` ORDER BY `+order+` LIMIT ? OFFSET ?`, append(args, limit, q.Offset)...); err != nil {
		return nil, 0, err
	}
	out := make([]engine.SCIMResource, len(rows))
	for i, r := range rows {
		out[i] = r.res()
	}
	if q.After != "" {
		return out, -1, nil
	}
	// A page that is neither full nor empty ends the result: its end is the
	// total, and the count query is not needed (the common lookup by
	// userName, the last page of an import).
	if len(rows) > 0 && len(rows) < limit {
		return out, q.Offset + len(rows), nil
	}
	if len(rows) == 0 && q.Offset == 0 {
		return out, 0, nil
	}
	total, err := count()
	return out, total, err
}

func (c conn) SCIMMembers(ctx context.Context, sourceID, groupID string) ([]engine.SCIMMember, error) {
	var rows []struct {
		Member  string `db:"member_id"`
		Display string `db:"display"`
	}
	if err := c.sel(ctx, "scim members", &rows, `SELECT member_id, display FROM scim_members WHERE source_id = ? AND group_id = ? ORDER BY member_id`,
		sourceID, groupID); err != nil {
		return nil, err
	}
	out := make([]engine.SCIMMember, len(rows))
	for i, r := range rows {
		out[i] = engine.SCIMMember{Value: r.Member, Display: r.Display}
	}
	return out, nil
}

func (c conn) SCIMHasMember(ctx context.Context, sourceID, groupID, memberID string) (bool, error) {
	var n int
	err := c.get(ctx, "scim member", &n, `SELECT COUNT(*) FROM scim_members WHERE source_id = ? AND group_id = ? AND member_id = ?`,
		sourceID, groupID, memberID)
	return n > 0, err
}

func (c txConn) InsertSCIMResource(ctx context.Context, r engine.SCIMResource) error {
	_, err := c.exec(ctx, "insert scim "+r.Type, `INSERT INTO scim_resources (`+scimCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.SourceID, r.Type, r.ID, nullStr(r.ExternalID), nullStr(strings.ToLower(r.UserName)), nullStr(strings.ToLower(r.DisplayName)),
		string(r.Doc), r.Version, tsOf(r.Created), tsOf(r.Modified))
	return err
}

func (c txConn) UpdateSCIMResource(ctx context.Context, r engine.SCIMResource, prevVersion int64) error {
	res, err := c.exec(ctx, "update scim "+r.Type, `UPDATE scim_resources SET external_id = ?, user_name_norm = ?, display_name_norm = ?,
		doc = ?, version = ?, modified = ? WHERE source_id = ? AND type = ? AND id = ? AND version = ?`,
		nullStr(r.ExternalID), nullStr(strings.ToLower(r.UserName)), nullStr(strings.ToLower(r.DisplayName)),
		string(r.Doc), r.Version, tsOf(r.Modified), r.SourceID, r.Type, r.ID, prevVersion)
	if err != nil {
		return err
	}
	if err := mustAffect(res, "update scim "+r.Type+" "+r.ID); err != nil {
		return fmt.Errorf("scim %s %s changed meanwhile: %w", r.Type, r.ID, engine.ErrConflict)
	}
	return nil
}

func (c txConn) TouchSCIMResource(ctx context.Context, sourceID, typ, id string, at time.Time) (int64, error) {
	var v int64
	err := c.get(ctx, "touch scim "+typ, &v, `UPDATE scim_resources SET version = version + 1, modified = ?
		WHERE source_id = ? AND type = ? AND id = ? RETURNING version`, tsOf(at), sourceID, typ, id)
	return v, err
}

func (c txConn) DeleteSCIMResource(ctx context.Context, sourceID, typ, id string) error {
	res, err := c.exec(ctx, "delete scim "+typ, `DELETE FROM scim_resources WHERE source_id = ? AND type = ? AND id = ?`, sourceID, typ, id)
	if err != nil {
		return err
	}
	return mustAffect(res, "delete scim "+typ+" "+id)
}

func (c txConn) AddSCIMMember(ctx context.Context, sourceID, groupID string, m engine.SCIMMember) (bool, error) {
	res, err := c.exec(ctx, "add scim member", `INSERT INTO scim_members (source_id, group_id, member_id, display) VALUES (?, ?, ?, ?)
		ON CONFLICT (source_id, group_id, member_id) DO NOTHING`, sourceID, groupID, m.Value, m.Display)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, mapErr(err)
}

func (c txConn) RemoveSCIMMember(ctx context.Context, sourceID, groupID, memberID string) (bool, error) {
	res, err := c.exec(ctx, "remove scim member", `DELETE FROM scim_members WHERE source_id = ? AND group_id = ? AND member_id = ?`,
		sourceID, groupID, memberID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, mapErr(err)
}

func (c txConn) RemoveSCIMGroupMembers(ctx context.Context, sourceID, groupID string) error {
	_, err := c.exec(ctx, "remove scim members", `DELETE FROM scim_members WHERE source_id = ? AND group_id = ?`, sourceID, groupID)
	return err
}

func (c txConn) RemoveSCIMMemberships(ctx context.Context, sourceID, memberID string) ([]string, error) {
	var groups []string
	if err := c.sel(ctx, "scim memberships", &groups, `SELECT group_id FROM scim_members WHERE source_id = ? AND member_id = ?`,
		sourceID, memberID); err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, nil
	}
	_, err := c.exec(ctx, "remove scim memberships", `DELETE FROM scim_members WHERE source_id = ? AND member_id = ?`, sourceID, memberID)
	return groups, err
}
