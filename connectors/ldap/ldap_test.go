package ldap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/connectors/ldap/ldaptest"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

const pwEnv = "IDSYNC_TEST_LDAP_PASSWORD"

func seeded(t *testing.T) *ldaptest.Server {
	t.Helper()
	d := ldaptest.TestdataDir()
	return ldaptest.Start(t, ldaptest.Options{LDIF: []string{filepath.Join(d, "users.ldif"), filepath.Join(d, "groups.ldif")}})
}

// people is the config of the openldap-profile source of ou=people.
func people(s *ldaptest.Server, more map[string]any) map[string]any {
	c := map[string]any{"url": s.URL, "bindDN": ldaptest.AdminDN, "passwordEnv": pwEnv, "profile": "openldap",
		"baseDN": "ou=people," + ldaptest.Base, "groupBaseDN": "ou=groups," + ldaptest.Base, "pageSize": 50,
		"nestedGroups": true, "timeout": "10s"}
	for k, v := range more {
		c[k] = v
	}
	return c
}

func newSource(t testing.TB, f *storagetest.Fixture, name string, cfg map[string]any) engine.Source {
	t.Helper()
	b, _ := json.Marshal(cfg)
	src, err := f.Engine.CreateSource(bg, engine.Admin{Actor: "test"}, engine.Source{OrgID: f.Org.ID, Kind: engine.KindLDAP,
		Name: name, Priority: 30, TrustEmails: true, Config: b}, true)
	if err != nil {
		t.Fatalf("create source: %v", err)
	}
	return src
}

func sync(t *testing.T, f *storagetest.Fixture, src engine.Source, full bool, mark string, opts engine.SnapshotOptions) (engine.Plan, string, error) {
	t.Helper()
	src, err := f.DB.Source(bg, src.ID) // config may have changed
	if err != nil {
		t.Fatal(err)
	}
	return ldap.Sync(bg, f.Engine, src, full, mark, opts)
}

func mustSync(t *testing.T, f *storagetest.Fixture, src engine.Source, full bool, mark string) (engine.Plan, string) {
	t.Helper()
	p, m, err := sync(t, f, src, full, mark, engine.SnapshotOptions{})
	if err != nil {
		t.Fatalf("sync (full=%v): %v", full, err)
	}
	return p, m
}

func live(t *testing.T, f *storagetest.Fixture, src engine.Source) int {
	t.Helper()
	n, err := f.DB.CountAccounts(bg, src.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// accountOf finds the account of an LDAP user by its uid.
func accountOf(t *testing.T, f *storagetest.Fixture, src engine.Source, email string) engine.Account {
	t.Helper()
	var found *engine.Account
	err := f.DB.LiveAccountKeys(bg, src.ID, func(key, id string) error {
		a, err := f.DB.Account(bg, id)
		if err != nil {
			return err
		}
		if a.Attrs["email"] == email {
			found = &a
		}
		return nil
	})
	if err != nil || found == nil {
		t.Fatalf("no live account with email %s (%v)", email, err)
	}
	return *found
}

func backends(t *testing.T, fn func(t *testing.T, f *storagetest.Fixture)) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			t.Setenv(pwEnv, ldaptest.AdminPassword)
			fn(t, storagetest.NewFixture(t, b.Open(t)))
		})
	}
}

// TestFullAndIncrementalSync: a full sync over several pages brings every
// user with attributes and groups of each membership style (flattened
// nesting); a second full sync writes nothing; an incremental sync after a
// modify and an add sees only those; a full sync removes a deleted entry;
// the entry returning (new entryUUID) rejoins the same identity.
func TestFullAndIncrementalSync(t *testing.T) {
	backends(t, func(t *testing.T, f *storagetest.Fixture) {
		s := seeded(t)
		src := newSource(t, f, "corp", people(s, nil))

		plan, mark := mustSync(t, f, src, true, "")
		if plan.Counts.Seen != 240 || plan.Counts.Created != 240 || plan.Counts.Errors != 0 {
			t.Fatalf("first full sync counts = %+v, want 240 seen and created", plan.Counts)
		}
		if mark == "" || !strings.HasSuffix(mark, "Z") {
			t.Fatalf("watermark %q is not a generalized time", mark)
		}
		u0 := accountOf(t, f, src, "u0000@acme.test")
		if got := f.GroupsOf(u0.IdentityID); !slices.Equal(got, []string{"all-staff", "engineering", "ops"}) {
			t.Errorf("u0000 groups = %v, want member (engineering), nested (all-staff) and memberUid (ops)", got)
		}
		if got := f.GroupsOf(accountOf(t, f, src, "u0003@acme.test").IdentityID); !slices.Equal(got, []string{"sales"}) {
			t.Errorf("u0003 groups = %v, want uniqueMember (sales)", got)
		}
		if u0.Attrs["familyName"] != "N0000" || u0.Attrs["department"] != "D0" || u0.Attrs["userName"] != "u0000" {
			t.Errorf("u0000 attributes = %v", u0.Attrs)
		}
		if strings.Contains(string(u0.Raw), "entryUUID") || !strings.Contains(string(u0.Raw), "uid=u0000,ou=people") {
			t.Errorf("raw = %s: want the entry with its DN, without the key or change stamp", u0.Raw)
		}

		seq := f.AuditSeq()
		plan, _ = mustSync(t, f, src, true, "")
		if plan.Counts.Unchanged != 240 || plan.Counts.Created+plan.Counts.Updated+plan.Counts.Removed != 0 {
			t.Fatalf("second full sync counts = %+v, want all unchanged", plan.Counts)
		}
		if f.AuditSeq() != seq {
			t.Fatalf("a full sync with no change wrote %d audit events", f.AuditSeq()-seq)
		}

		// modifyTimestamp has a second's resolution and the watermark is
		// inclusive, so everything seeded in the first second is read again
		// until a later change moves the mark on.
		time.Sleep(1100 * time.Millisecond)
		s.Modify(t, "ldapmodify", "dn: uid=u0200,ou=people,dc=test\nchangetype: modify\nreplace: title\ntitle: Touched\n")
		plan, mark = mustSync(t, f, src, false, mark)
		if plan.Counts.Updated != 1 {
			t.Fatalf("incremental after touching u0200: %+v", plan.Counts)
		}
		time.Sleep(1100 * time.Millisecond)
		s.Modify(t, "ldapmodify", "dn: uid=u0001,ou=people,dc=test\nchangetype: modify\nreplace: title\ntitle: Manager\n")
		s.Modify(t, "ldapadd", "dn: uid=u0300,ou=people,dc=test\nobjectClass: inetOrgPerson\nuid: u0300\ncn: New\nsn: New\nmail: u0300@acme.test\n")
		plan, mark2 := mustSync(t, f, src, false, mark)
		if plan.Counts.Created != 1 || plan.Counts.Updated != 1 || plan.Counts.Seen != 3 {
			t.Fatalf("incremental counts = %+v, want 1 created, 1 updated, 3 seen (u0200 at the mark again)", plan.Counts)
		}
		if mark2 < mark {
			t.Fatalf("watermark went back: %s < %s", mark2, mark)
		}
		if a := accountOf(t, f, src, "u0001@acme.test"); a.Attrs["title"] != "Manager" {
			t.Fatalf("u0001 title = %q after incremental", a.Attrs["title"])
		}

		// Deletion by full sync: the entry leaves the base (moved away; an
		// incremental sync cannot see it), then comes back with the same
		// entryUUID and is the same identity, active again.
		gone := accountOf(t, f, src, "u0239@acme.test")
		s.Modify(t, "ldapmodify", "dn: uid=u0239,ou=people,dc=test\nchangetype: modrdn\nnewrdn: uid=u0239\ndeleteoldrdn: 1\nnewsuperior: ou=ad,dc=test\n")
		mustSync(t, f, src, false, mark2)
		if live(t, f, src) != 241 {
			t.Fatalf("an incremental sync cannot see deletions; live = %d, want 241", live(t, f, src))
		}
		plan, _ = mustSync(t, f, src, true, "")
		if plan.Counts.Removed != 1 || live(t, f, src) != 240 {
			t.Fatalf("full sync after the move: counts %+v, live %d; want 1 removed, 240 live", plan.Counts, live(t, f, src))
		}
		if st := f.State(gone.IdentityID); st != engine.State("deprovisioned") {
			t.Fatalf("removed person's state = %s, want deprovisioned", st)
		}
		s.Modify(t, "ldapmodify", "dn: uid=u0239,ou=ad,dc=test\nchangetype: modrdn\nnewrdn: uid=u0239\ndeleteoldrdn: 1\nnewsuperior: ou=people,dc=test\n")
		plan, _ = mustSync(t, f, src, true, "")
		back := f.Account(src.ID, gone.Key)
		if back.Removed || !back.Active || back.IdentityID != gone.IdentityID || f.State(back.IdentityID) != engine.State("active") {
			t.Fatalf("returning entry: %+v, state %s; want the same identity %s active again", back, f.State(back.IdentityID), gone.IdentityID)
		}
	})
}

// TestNothingRemovedOnFailure: a bind failure, an empty result, a referral
// loop, an unreachable directory and a stream cut mid-way never remove or
// deprovision anyone.
func TestNothingRemovedOnFailure(t *testing.T) {
	backends(t, func(t *testing.T, f *storagetest.Fixture) {
		s := seeded(t)
		good := newSource(t, f, "corp", people(s, nil))
		mustSync(t, f, good, true, "")
		if live(t, f, good) != 240 {
			t.Fatalf("live = %d after the first sync", live(t, f, good))
		}
		referral := func() {
			// A referral to the directory itself under the base: a loop if followed.
			s.Modify(t, "ldapadd", fmt.Sprintf("dn: ou=elsewhere,ou=people,dc=test\nobjectClass: referral\nobjectClass: extensibleObject\nou: elsewhere\nref: %s/ou=people,dc=test??sub\n", s.URL), "-M")
		}
		cases := []struct {
			name  string
			cfg   map[string]any
			env   string
			want  error
			setup func()
		}{
			{"bind failure", people(s, nil), "wrong-password", engine.ErrUnavailable, nil},
			{"empty result", people(s, map[string]any{"userFilter": "(uid=nobody-at-all)"}), ldaptest.AdminPassword, engine.ErrQuarantined, nil},
			{"no such base", people(s, map[string]any{"baseDN": "ou=gone,dc=test"}), ldaptest.AdminPassword, engine.ErrUnavailable, nil},
			{"referral loop", people(s, nil), ldaptest.AdminPassword, engine.ErrUnavailable, referral},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Setenv(pwEnv, tc.env)
				if tc.setup != nil {
					tc.setup()
				}
				b, _ := json.Marshal(tc.cfg)
				src := good
				src.Config = b
				_, _, err := ldap.Sync(bg, f.Engine, src, true, "", engine.SnapshotOptions{})
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if strings.Contains(fmt.Sprint(err), ldaptest.AdminPassword) {
					t.Fatalf("the error shows the password: %v", err)
				}
				if n := live(t, f, good); n != 240 {
					t.Fatalf("live = %d after %s, want 240", n, tc.name)
				}
			})
		}
		s.Modify(t, "ldapdelete", "ou=elsewhere,ou=people,dc=test\n", "-M")
		t.Run("cut mid-stream", func(t *testing.T) {
			ctx, cancel := context.WithCancel(bg)
			src, _ := f.DB.Source(bg, good.ID)
			// Half the directory disappears, and the stream is cut after
			// two pages: the sweep never runs.
			plan, _, err := ldap.Sync(ctx, f.Engine, src, true, "", engine.SnapshotOptions{PageSize: 50,
				Progress: func(c engine.Counts) {
					if c.Seen >= 100 {
						cancel()
					}
				}})
			if !errors.Is(err, context.Canceled) || plan.Counts.Removed != 0 || live(t, f, good) != 240 {
				t.Fatalf("cut sync: err %v, counts %+v, live %d", err, plan.Counts, live(t, f, good))
			}
		})
		t.Run("unreachable", func(t *testing.T) {
			s.Stop()
			_, _, err := sync(t, f, good, true, "", engine.SnapshotOptions{})
			if !errors.Is(err, engine.ErrUnavailable) || live(t, f, good) != 240 {
				t.Fatalf("err = %v, live %d", err, live(t, f, good))
			}
		})
	})
}

// TestActiveDirectoryProfile: objectGUID keys in GUID form, the
// userAccountControl disabled bit, uSNChanged watermarks.
func TestActiveDirectoryProfile(t *testing.T) {
	backends(t, func(t *testing.T, f *storagetest.Fixture) {
		s := seeded(t)
		src := newSource(t, f, "ad", map[string]any{"url": s.URL, "bindDN": ldaptest.AdminDN, "passwordEnv": pwEnv,
			"profile": "ad", "baseDN": "ou=ad,dc=test", "groupBaseDN": "ou=groups,dc=test",
			"userFilter": "(objectClass=idsyncADUser)", "groupFilter": "(objectClass=groupOfNames)"})
		plan, mark := mustSync(t, f, src, true, "")
		if plan.Counts.Created != 2 || mark != "101" {
			t.Fatalf("counts %+v, watermark %q; want 2 created, watermark 101", plan.Counts, mark)
		}
		ada := f.Account(src.ID, "03020100-0504-0706-0809-0a0b0c0d0e0f")
		dan := f.Account(src.ID, "13121110-1514-1716-1819-1a1b1c1d1e1f")
		if !ada.Active || dan.Active {
			t.Fatalf("ada active %v, dan active %v; dan has the ACCOUNTDISABLE bit", ada.Active, dan.Active)
		}
		if ada.Attrs["userName"] != "ada" || f.State(dan.IdentityID) == engine.State("active") {
			t.Fatalf("ada %v; dan state %s", ada.Attrs, f.State(dan.IdentityID))
		}
		if got := f.GroupsOf(ada.IdentityID); !slices.Equal(got, []string{"ad-users"}) {
			t.Fatalf("ada groups %v", got)
		}
		s.Modify(t, "ldapmodify", "dn: cn=Ada Admin,ou=ad,dc=test\nchangetype: modify\nreplace: title\ntitle: CTO\n-\nreplace: uSNChanged\nuSNChanged: 200\n")
		plan, mark = mustSync(t, f, src, false, mark)
		if plan.Counts.Seen != 1 || plan.Counts.Updated != 1 || mark != "200" {
			t.Fatalf("incremental: counts %+v, watermark %q; want only ada, watermark 200", plan.Counts, mark)
		}
	})
}

// TestRangedMemberRetrieval checks the member;range=lo-hi parser that AD's
// ranged retrieval uses (slapd does not range values, so only the parser
// is tested against a real server's absence).
func TestRangedMemberRetrieval(t *testing.T) {
	for _, tc := range []struct {
		name, in, base string
		lo, hi         int
		ranged         bool
	}{
		{"plain", "member", "member", 0, -1, false},
		{"first chunk", "member;range=0-1499", "member", 0, 1499, true},
		{"last chunk", "member;range=1500-*", "member", 1500, -1, true},
		{"other option", "member;binary", "member", 0, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, lo, hi, ranged := ldap.ParseRange(tc.in)
			if base != tc.base || lo != tc.lo || hi != tc.hi || ranged != tc.ranged {
				t.Fatalf("ParseRange(%q) = %q %d %d %v", tc.in, base, lo, hi, ranged)
			}
		})
	}
}

// TestConfigValidate: every problem is reported at once; defaults come
// from the profile.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  string
		want []string
	}{
		{"ok openldap", `{"url":"ldap://h","baseDN":"dc=x"}`, nil},
		{"ok ad ldaps", `{"url":"ldaps://h:636","baseDN":"dc=x","profile":"ad","bindDN":"cn=a","passwordFile":"/dev/null"}`, nil},
		{"all wrong", `{"url":"http://h","profile":"novell","scope":"deep","bindDN":"cn=a","userFilter":"uid=x","pageSize":-1}`,
			[]string{"url", "profile", "baseDN", "scope", "bindDN needs", "userFilter", "pageSize"}},
		{"starttls on ldaps", `{"url":"ldaps://h","baseDN":"dc=x","startTLS":true}`, []string{"startTLS"}},
		{"unknown field", `{"url":"ldap://h","baseDN":"dc=x","pasword":"x"}`, []string{"unknown field"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ldap.ParseConfig(json.RawMessage(tc.cfg))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.KeyAttr == "" || c.PageSize != 500 {
					t.Fatalf("defaults not filled: %+v", c)
				}
				return
			}
			if !errors.Is(err, engine.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
