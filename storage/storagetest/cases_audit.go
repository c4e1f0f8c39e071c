package storagetest

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
)

// populate writes a few dozen audit events through several paths (apply,
// admin, snapshot pages) and returns the head sequence number.
func populate(t *testing.T, f *Fixture) int64 {
	t.Helper()
	r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("lou", "department", "R&D"),
		Groups: []string{"Staff"}})
	f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("lou", "department", "Ops")})
	if _, err := f.Engine.Suspend(bg, byTest, r.IdentityID, "audit"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Snapshot(f.LDAP, stream(entries(5), nil), engine.SnapshotOptions{PageSize: 2}); err != nil {
		t.Fatal(err)
	}
	seq := f.AuditSeq()
	if seq < 20 {
		t.Fatalf("populate wrote only %d events", seq)
	}
	if r := f.Verify(); !r.OK || r.Events != seq || r.LastSeq != seq {
		t.Fatalf("verify a populated log: %+v, want OK over %d events", r, seq)
	}
	return seq
}

// wantBroken fails unless the audit no longer verifies, first breaking at
// one of at.
func wantBroken(t *testing.T, f *Fixture, at ...int64) {
	t.Helper()
	r := f.Verify()
	if r.OK {
		t.Fatalf("tampered log verifies: %+v", r)
	}
	for _, s := range at {
		if r.FirstBad == s {
			return
		}
	}
	t.Errorf("first bad event %d (%s), want one of %v", r.FirstBad, r.Problem, at)
}

// rowsHolding returns "table.column" for each value of table holding s.
func rowsHolding(t *testing.T, f *Fixture, table, s string) []string {
	t.Helper()
	rows, err := f.DB.SQL().Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var hits []string
	n := 0
	for rows.Next() {
		n++
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if strings.Contains(v.String, s) {
				hits = append(hits, table+"."+cols[i])
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("table %s is empty: nothing was scanned", table)
	}
	return hits
}

var _ = register(
	Case{"the audit chain verifies on a populated log", func(t *testing.T, f *Fixture) {
		seq := populate(t, f)
		_, hash, err := f.DB.AuditHead(bg)
		if err != nil {
			t.Fatal(err)
		}
		r := f.Verify()
		if r.LastHash != hash || r.FirstBad != 0 || r.Problem != "" {
			t.Errorf("report %+v, want last hash %s", r, hash)
		}
		evs := f.Events(0)
		if int64(len(evs)) != seq {
			t.Fatalf("%d events streamed, head %d", len(evs), seq)
		}
		for i, e := range evs {
			if e.Seq != int64(i+1) || (i > 0 && e.PrevHash != evs[i-1].Hash) || engine.ChainHash(e.PrevHash, e) != e.Hash {
				t.Fatalf("event %d does not chain: %+v", i+1, e)
			}
		}
	}},

	Case{"audit verification catches an edited event", func(t *testing.T, f *Fixture) {
		seq := populate(t, f)
		k := seq / 2
		if n := f.Exec(`UPDATE audit_events SET changes = ? WHERE seq = ?`, `{"changes":[{"field":"department","after":"forged"}]}`, k); n != 1 {
			t.Fatalf("edited %d rows", n)
		}
		wantBroken(t, f, k)
	}},

	Case{"audit verification catches a deleted event", func(t *testing.T, f *Fixture) {
		seq := populate(t, f)
		k := seq / 2
		if n := f.Exec(`DELETE FROM audit_events WHERE seq = ?`, k); n != 1 {
			t.Fatalf("deleted %d rows", n)
		}
		wantBroken(t, f, k, k+1)
	}},

	Case{"audit verification catches reordered events", func(t *testing.T, f *Fixture) {
		seq := populate(t, f)
		k := seq / 2
		f.Exec(`UPDATE audit_events SET seq = ? WHERE seq = ?`, -1, k)
		f.Exec(`UPDATE audit_events SET seq = ? WHERE seq = ?`, k, k+1)
		f.Exec(`UPDATE audit_events SET seq = ? WHERE seq = ?`, k+1, -1)
		wantBroken(t, f, k)
	}},

	Case{"audit verification catches a removed tail", func(t *testing.T, f *Fixture) {
		seq := populate(t, f)
		if n := f.Exec(`DELETE FROM audit_events WHERE seq > ?`, seq-2); n != 2 {
			t.Fatalf("deleted %d rows", n)
		}
		wantBroken(t, f, seq-1)
	}},

	Case{"token secrets are stored only as hashes", func(t *testing.T, f *Fixture) {
		tok, secret, err := f.Engine.CreateToken(bg, byTest, engine.Token{Kind: engine.TokenAdmin, OrgID: f.Org.ID, Name: "ci"})
		if err != nil {
			t.Fatalf("create token: %v", err)
		}
		scimTok, scimSecret, err := f.Engine.CreateToken(bg, byTest, engine.Token{Kind: engine.TokenSCIM, SourceID: f.SCIM.ID, Name: "entra"})
		if err != nil {
			t.Fatalf("create SCIM token: %v", err)
		}
		for _, s := range []string{secret, scimSecret} {
			if len(s) < 40 {
				t.Fatalf("secret %q is too short to be a 256-bit token", s)
			}
			for _, table := range []string{"audit_events", "tokens"} {
				if hits := rowsHolding(t, f, table, s); len(hits) > 0 {
					t.Errorf("the secret is stored in %v", hits)
				}
			}
		}
		var hash string
		if err := f.DB.SQL().Get(&hash, f.DB.SQL().Rebind(`SELECT hash FROM tokens WHERE id = ?`), tok.ID); err != nil {
			t.Fatal(err)
		}
		if hash == secret || hash != engine.HashSecret(secret) {
			t.Errorf("stored hash %q is not the hash of the secret", hash)
		}
		got, err := f.Engine.Authenticate(bg, secret)
		if err != nil || got.ID != tok.ID || got.OrgID != f.Org.ID {
			t.Fatalf("authenticate = %+v, %v; want token %s", got, err, tok.ID)
		}
		if got, err := f.Engine.Authenticate(bg, scimSecret); err != nil || got.ID != scimTok.ID || got.SourceID != f.SCIM.ID ||
			got.OrgID != f.Org.ID {
			t.Errorf("authenticate SCIM token = %+v, %v", got, err)
		}
		if _, err := f.Engine.Authenticate(bg, secret+"x"); !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("a wrong secret: %v, want ErrForbidden", err)
		}
		if err := f.Engine.RevokeToken(bg, byTest, tok.ID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if _, err := f.Engine.Authenticate(bg, secret); !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("a revoked token authenticates: %v", err)
		}
		if _, err := f.Engine.Authenticate(bg, scimSecret); err != nil {
			t.Errorf("revoking one token revoked another: %v", err)
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit: %+v", r)
		}
	}},
)
