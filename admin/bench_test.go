package admin_test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/storage/storagetest"
)

// bulk inserts rows of cols into table, many rows per statement, in one
// transaction.
func bulk(b *testing.B, db *sqlx.DB, table string, cols []string, n int, row func(i int) []any) {
	b.Helper()
	per := 30000 / len(cols)
	tx, err := db.Beginx()
	if err != nil {
		b.Fatal(err)
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	for start := 0; start < n; start += per {
		end := min(n, start+per)
		args := make([]any, 0, (end-start)*len(cols))
		for i := start; i < end; i++ {
			args = append(args, row(i)...)
		}
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ",") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+",", end-start), ",")
		if _, err := tx.Exec(tx.Rebind(q), args...); err != nil {
			b.Fatalf("%s: %v", table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCompare: the comparison report of an organization with
// IDSYNC_BENCH_PEOPLE people (default 100,000) and ten audit events each
// (1,000,000), seeded straight into the tables; and the console's
// comparison and organization pages at that size.
//
//	go test ./admin -run '^$' -bench BenchmarkCompare -benchtime 3x
func BenchmarkCompare(b *testing.B) {
	n := 100_000
	if s := os.Getenv("IDSYNC_BENCH_PEOPLE"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, be := range storagetest.Backends() {
		b.Run("database="+be.Name, func(b *testing.B) {
			db := be.Open(b)
			f := storagetest.NewFixture(b, db)
			org := f.Org.ID
			x := db.SQL()
			t0 := f.Clock.Now().UnixMicro()
			hour := int64(time.Hour / time.Microsecond)
			_, key, err := f.Engine.CreateToken(bg, adminBy, tokenAdmin())
			if err != nil {
				b.Fatal(err)
			}
			base := int(f.AuditSeq())
			id := func(i int) string { return fmt.Sprintf("p%08d", i) }
			bulk(b, x, "identities", []string{"id", "org_id", "state", "attrs", "provenance", "version", "created_at", "updated_at", "first_login_at"}, n,
				func(i int) []any {
					var login any
					if i%10 >= 5 {
						login = t0 + int64(i%48)*hour
					}
					prov := `{"title":{"sourceId":"` + f.SCIM.ID + `","accountId":"a` + id(i) + `"}}`
					state := "active"
					if i%50 == 0 {
						state = "deprovisioned"
					}
					return []any{id(i), org, state, `{"userName":"` + id(i) + `","title":"Eng"}`, prov, 1, t0, t0, login}
				})
			acctCols := []string{"id", "source_id", "org_id", "identity_id", "source_key", "attrs", "email_verified", "hash", "active", "first_seen", "last_seen", "changed_at"}
			bulk(b, x, "accounts", acctCols, n, func(i int) []any {
				src := f.SCIM.ID
				switch i % 10 {
				case 6, 7:
					src = f.LDAP.ID
				case 8, 9:
					src = f.OIDC.ID
				}
				return []any{"a" + id(i), src, org, id(i), "k" + id(i), `{"userName":"` + id(i) + `","title":"Eng"}`, true, "h", i%50 != 0, t0, t0, t0}
			})
			bulk(b, x, "accounts", acctCols, n/10, func(j int) []any { // people 5, 15, 25, …: SCIM and JIT, drifting title
				i := j*10 + 5
				return []any{"o" + id(i), f.OIDC.ID, org, id(i), "ok" + id(i), `{"userName":"` + id(i) + `","title":"Engineer"}`, true, "h", true, t0, t0, t0}
			})
			actions := []string{"identity.created", "account.linked", "org.joined", "identity.updated", "membership.granted",
				"identity.updated", "membership.granted", "identity.first_login", "identity.updated", "account.deactivated"}
			bulk(b, x, "audit_events", []string{"seq", "id", "at", "org_id", "channel", "source_id", "actor", "action", "subject_type",
				"subject_id", "identity_id", "changes", "prev_hash", "hash"}, n*10, func(k int) []any {
				i, a := k/10, k%10
				act, ch := actions[a], "scim"
				switch {
				case a == 7:
					ch = "jit"
				case a == 9 && i%50 != 0:
					act = "identity.updated"
				}
				return []any{base + k + 1, fmt.Sprintf("e%09d", k), t0 + int64(a)*hour, org, ch, f.SCIM.ID, "bench", act, "identity",
					id(i), id(i), `{"changes":[]}`, "", ""}
			})
			bulk(b, x, "audit_events", []string{"seq", "id", "at", "org_id", "channel", "source_id", "actor", "action", "subject_type",
				"subject_id", "identity_id", "prev_hash", "hash"}, n/50, func(j int) []any {
				i := j * 50
				return []any{base + n*10 + j + 1, fmt.Sprintf("d%09d", j), t0 + 10*hour, org, "scim", f.SCIM.ID, "bench", "identity.deprovisioned",
					"identity", id(i), id(i), "", ""}
			})
			h, err := admin.New(f.Engine, admin.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Run("report", func(b *testing.B) {
				for b.Loop() {
					c, err := admin.BuildCompare(bg, h.Store(), org, time.Time{}, time.Time{})
					if err != nil {
						b.Fatal(err)
					}
					if c.People < n || c.DriftCount != n/10 || c.Deprovisioning.Count != n/50 {
						b.Fatalf("report: people %d drift %d deprovisioning %d", c.People, c.DriftCount, c.Deprovisioning.Count)
					}
				}
			})
			con := admin.NewConsole(h)
			cookie := signIn(b, con, key)
			for _, pg := range []string{"/console/orgs/acme/compare", "/console/orgs/acme", "/console/people/" + id(5), "/console/audit?org=acme"} {
				b.Run("page="+pg, func(b *testing.B) {
					for b.Loop() {
						rec := serve(con, "GET", pg, cookie)
						if rec.Code != http.StatusOK {
							b.Fatalf("GET %s = %d", pg, rec.Code)
						}
					}
				})
			}
		})
	}
}
