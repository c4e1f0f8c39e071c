package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/idsync/idsync/engine"
)

// InsertNew writes the rows of people created together (a snapshot page's
// newcomers) in multi-row INSERTs: each statement carries up to 32 rows,
// which is what makes a page of new people cheap — per row, a statement's
// overhead (binding, stepping, resetting, a round trip on PostgreSQL)
// costs about as much as SQLite's own work. Tables go in foreign-key
// order. A source key that already has an account fails with ErrRetry, as
// InsertAccount does.
func (c txConn) InsertNew(ctx context.Context, rows engine.NewRows) error {
	if err := insertRows(ctx, c, "insert identities", "identities", identityCols, identityNCols, len(rows.Identities), func(args []any, k int) []any {
		return identityArgs(args, rows.Identities[k])
	}); err != nil {
		return err
	}
	err := insertRows(ctx, c, "insert accounts", "accounts", accountCols, accountNCols, len(rows.Accounts), func(args []any, k int) []any {
		return accountArgs(args, rows.Accounts[k])
	})
	if isExists(err) {
		return fmt.Errorf("a source key of the batch has an account already: %w", engine.ErrRetry)
	}
	if err != nil {
		return err
	}
	if err := insertRows(ctx, c, "insert org memberships", "org_memberships", "org_id, identity_id, roles, granted_via, source_id, created_at", 6,
		len(rows.OrgMembers), func(args []any, k int) []any {
			m := rows.OrgMembers[k]
			return append(args, m.OrgID, m.IdentityID, stringsJSON(m.Roles), m.GrantedVia, m.SourceID, tsOf(m.CreatedAt))
		}); err != nil {
		return err
	}
	return insertRows(ctx, c, "insert memberships", "group_memberships", "group_id, identity_id, source_id, granted_at", 4,
		len(rows.Memberships), func(args []any, k int) []any {
			m := rows.Memberships[k]
			return append(args, m.GroupID, m.IdentityID, m.SourceID, tsOf(m.GrantedAt))
		}, ` ON CONFLICT (group_id, identity_id, source_id) DO NOTHING`)
}

// Chunk sizes of the multi-row inserts, largest first; a remainder of up
// to 8 rows goes in one statement of its exact size. Few statement shapes
// to prepare (10 a table), and a person's 3 group edges are one statement.
var insertChunks = []int{32, 16, 8}

// insertRows inserts n rows of ncols columns; row appends row k's values.
func insertRows(ctx context.Context, c txConn, what, table, cols string, ncols, n int, row func(args []any, k int) []any, suffix ...string) error {
	args := make([]any, 0, min(n, insertChunks[0])*ncols)
	for k := 0; k < n; {
		size := n - k // the remainder, when 8 rows or fewer
		for _, s := range insertChunks {
			if n-k >= s {
				size = s
				break
			}
		}
		args = args[:0]
		for j := k; j < k+size; j++ {
			args = row(args, j)
		}
		if err := c.execBulk(ctx, what, multiInsert(table, cols, ncols, size)+strings.Join(suffix, ""), args); err != nil {
			return err
		}
		k += size
	}
	return nil
}

var multiInserts sync.Map // table + size → statement text

func multiInsert(table, cols string, ncols, rows int) string {
	key := fmt.Sprint(table, "/", rows)
	if q, ok := multiInserts.Load(key); ok {
		return q.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
	q := `INSERT INTO ` + table + ` (` + cols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
	multiInserts.Store(key, q)
	return q
}
