package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
)

const snapN = 20

// fullSync applies a snapshot of snapN entries to the LDAP source and
// returns the identity of each entry by key.
func fullSync(t *testing.T, f *Fixture) map[string]string {
	t.Helper()
	p, err := f.Snapshot(f.LDAP, stream(entries(snapN), nil), engine.SnapshotOptions{})
	if err != nil {
		t.Fatalf("full sync: %v", err)
	}
	if p.Counts.Seen != snapN || p.Counts.Created != snapN || p.Counts.Errors != 0 {
		t.Fatalf("full sync counts %+v, want %d seen and created", p.Counts, snapN)
	}
	ids := map[string]string{}
	for _, o := range entries(snapN) {
		ids[o.Key] = f.Account(f.LDAP.ID, o.Key).IdentityID
	}
	return ids
}

// states counts the identities in each state.
func (f *Fixture) states() map[engine.State]int {
	f.T.Helper()
	ids, err := f.DB.Identities(bg, engine.IdentityFilter{OrgID: f.Org.ID, Limit: 1000})
	if err != nil {
		f.T.Fatal(err)
	}
	out := map[engine.State]int{}
	for _, i := range ids {
		out[i.State]++
	}
	return out
}

// nobodyRemoved checks that every entry of the full sync is still live and
// active and that no removal was audited after seq.
func nobodyRemoved(t *testing.T, f *Fixture, seq int64) {
	t.Helper()
	if n, err := f.DB.CountAccounts(bg, f.LDAP.ID, true); err != nil || n != snapN {
		t.Errorf("live LDAP accounts %d (%v), want %d", n, err, snapN)
	}
	if s := f.states(); s[active] != snapN || len(s) != 1 {
		t.Errorf("states %v, want %d active", s, snapN)
	}
	noActions(t, f.Events(seq), "account.removed", "identity.deprovisioned")
}

var _ = register(
	Case{"a full snapshot creates every entry", func(t *testing.T, f *Fixture) {
		seq := f.AuditSeq()
		ids := fullSync(t, f)
		distinct := map[string]bool{}
		for _, id := range ids {
			distinct[id] = true
		}
		if len(distinct) != snapN || f.Count("identities", "") != snapN {
			t.Errorf("%d distinct identities, %d rows; want %d", len(distinct), f.Count("identities", ""), snapN)
		}
		evs := f.Events(seq)
		if n := len(Of(evs, "identity.created")); n != snapN {
			t.Errorf("%d identity.created events, want %d", n, snapN)
		}
		for _, e := range Of(evs, "identity.created") {
			if e.Channel != engine.ChannelLDAP || e.SourceID != f.LDAP.ID {
				t.Errorf("event %+v: want channel ldap from the LDAP source", e)
				break
			}
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit after a paged snapshot: %+v", r)
		}
	}},

	Case{"an identical second snapshot writes nothing", func(t *testing.T, f *Fixture) {
		fullSync(t, f)
		seq := f.AuditSeq()
		p, err := f.Snapshot(f.LDAP, stream(entries(snapN), nil), engine.SnapshotOptions{})
		if err != nil {
			t.Fatalf("second snapshot: %v", err)
		}
		if p.Counts.Unchanged != snapN || p.Counts.Seen != snapN || p.Counts.Created+p.Counts.Updated+p.Counts.Removed != 0 {
			t.Errorf("counts %+v, want %d unchanged", p.Counts, snapN)
		}
		if got := f.AuditSeq(); got != seq {
			t.Errorf("an identical snapshot wrote events: %v", Actions(f.Events(seq)))
		}
		if len(p.Removals) != 0 {
			t.Errorf("removals %v", p.Removals)
		}
	}},

	Case{"a snapshot missing one of twenty entries removes it", func(t *testing.T, f *Fixture) {
		ids := fullSync(t, f)
		gone := ids["e-07"]
		seq := f.AuditSeq()
		p, err := f.Snapshot(f.LDAP, stream(entries(snapN, 7), nil), engine.SnapshotOptions{})
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		if !slices.Equal(p.Removals, []string{"e-07"}) || p.Counts.Removed != 1 || p.Counts.Unchanged != snapN-1 {
			t.Errorf("plan removals %v counts %+v, want e-07 removed, %d unchanged", p.Removals, p.Counts, snapN-1)
		}
		evs := f.Events(seq)
		for _, a := range []string{"account.removed", "identity.deprovisioned"} {
			got := Of(evs, a)
			if len(got) != 1 || got[0].IdentityID != gone {
				t.Errorf("%s events %+v, want one for %s", a, got, gone)
			}
		}
		if s := f.State(gone); s != deprovisioned {
			t.Errorf("removed entry: %q, want deprovisioned", s)
		}
		if !f.Account(f.LDAP.ID, "e-07").Removed {
			t.Errorf("account e-07 not marked removed")
		}
		if s := f.states(); s[active] != snapN-1 {
			t.Errorf("states %v, want %d active", s, snapN-1)
		}
		// The removed person keeps their last known record.
		if e := f.Identity(gone).Attrs["email"]; e != "e07@acme.test" {
			t.Errorf("removed person's email = %q, want e07@acme.test", e)
		}
	}},

	Case{"a snapshot missing half the entries is quarantined and removes nobody", func(t *testing.T, f *Fixture) {
		fullSync(t, f)
		seq := f.AuditSeq()
		var skip []int
		for i := range snapN / 2 {
			skip = append(skip, 2*i)
		}
		p, err := f.Snapshot(f.LDAP, stream(entries(snapN, skip...), nil), engine.SnapshotOptions{})
		if !errors.Is(err, engine.ErrQuarantined) {
			t.Fatalf("err = %v, want ErrQuarantined", err)
		}
		if len(p.Removals) != snapN/2 {
			t.Errorf("plan lists %d removals, want %d", len(p.Removals), snapN/2)
		}
		nobodyRemoved(t, f, seq)
	}},

	Case{"an empty snapshot removes nobody", func(t *testing.T, f *Fixture) {
		fullSync(t, f)
		seq := f.AuditSeq()
		_, err := f.Snapshot(f.LDAP, stream(nil, nil), engine.SnapshotOptions{Threshold: -1})
		if err == nil {
			t.Fatal("an empty snapshot of a populated source succeeded")
		}
		if !errors.Is(err, engine.ErrQuarantined) {
			t.Errorf("err = %v, want ErrQuarantined", err)
		}
		nobodyRemoved(t, f, seq)
	}},

	Case{"a snapshot stream that fails midway removes nobody", func(t *testing.T, f *Fixture) {
		fullSync(t, f)
		seq := f.AuditSeq()
		broken := errors.New("ldap: connection reset")
		_, err := f.Snapshot(f.LDAP, stream(entries(5), broken), engine.SnapshotOptions{PageSize: 2, Threshold: -1})
		if !errors.Is(err, broken) {
			t.Fatalf("err = %v, want the stream's error", err)
		}
		nobodyRemoved(t, f, seq)
	}},

	Case{"a dry-run snapshot plans without writing", func(t *testing.T, f *Fixture) {
		seq := f.AuditSeq()
		p, err := f.Snapshot(f.LDAP, stream(entries(5), nil), engine.SnapshotOptions{DryRun: true})
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if p.Counts.Created != 5 || p.Events["identity.created"] != 5 {
			t.Errorf("plan counts %+v events %v, want 5 created", p.Counts, p.Events)
		}
		if f.AuditSeq() != seq || f.Count("identities", "") != 0 || f.Count("accounts", "") != 0 {
			t.Errorf("a dry run wrote: head %d→%d, %d identities, %d accounts",
				seq, f.AuditSeq(), f.Count("identities", ""), f.Count("accounts", ""))
		}

		ids := fullSync(t, f)
		seq = f.AuditSeq()
		obs := append(entries(snapN, 3), entry(99))
		p, err = f.Snapshot(f.LDAP, stream(obs, nil), engine.SnapshotOptions{DryRun: true})
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if !slices.Equal(p.Removals, []string{"e-03"}) || p.Counts.Removed != 1 || p.Counts.Created != 1 ||
			p.Counts.Unchanged != snapN-1 {
			t.Errorf("plan removals %v counts %+v, want e-03 removed, 1 created", p.Removals, p.Counts)
		}
		if p.Events["identity.deprovisioned"] != 1 {
			t.Errorf("plan events %v, want one identity.deprovisioned", p.Events)
		}
		if f.AuditSeq() != seq {
			t.Errorf("a dry run wrote events %v", Actions(f.Events(seq)))
		}
		if f.State(ids["e-03"]) != active || f.Account(f.LDAP.ID, "e-03").Removed {
			t.Errorf("a dry run removed e-03")
		}
		if _, ok, _ := f.DB.AccountByKey(bg, f.LDAP.ID, "e-99"); ok || f.Count("identities", "") != snapN {
			t.Errorf("a dry run created e-99")
		}
	}},

	Case{"a removed entry reappearing reactivates the same identity", func(t *testing.T, f *Fixture) {
		ids := fullSync(t, f)
		if _, err := f.Snapshot(f.LDAP, stream(entries(snapN, 11), nil), engine.SnapshotOptions{}); err != nil {
			t.Fatalf("snapshot without e-11: %v", err)
		}
		if f.State(ids["e-11"]) != deprovisioned {
			t.Fatalf("e-11 not deprovisioned")
		}
		seq := f.AuditSeq()
		p, err := f.Snapshot(f.LDAP, stream(entries(snapN), nil), engine.SnapshotOptions{})
		if err != nil {
			t.Fatalf("snapshot with e-11 back: %v", err)
		}
		if p.Counts.Unchanged != snapN-1 || p.Counts.Created != 0 {
			t.Errorf("counts %+v", p.Counts)
		}
		if a := f.Account(f.LDAP.ID, "e-11"); a.IdentityID != ids["e-11"] || a.Removed || !a.Active {
			t.Errorf("account e-11 = %+v, want live on %s", a, ids["e-11"])
		}
		if s := f.State(ids["e-11"]); s != active {
			t.Errorf("e-11: %q, want active", s)
		}
		evs := f.Events(seq)
		wantActions(t, evs, "account.restored", "identity.reactivated")
		noActions(t, evs, "identity.created", "account.linked")
		if n := f.Count("identities", ""); n != snapN {
			t.Errorf("%d identities, want %d", n, snapN)
		}
	}},

	Case{"invalid snapshot entries are counted and skipped", func(t *testing.T, f *Fixture) {
		obs := entries(6)
		p, err := f.Snapshot(f.LDAP, stream(obs, nil), engine.SnapshotOptions{})
		if err != nil || p.Counts.Created != 6 {
			t.Fatalf("first snapshot: %+v, %v", p.Counts, err)
		}
		bad := obs[3]
		bad.Attrs = person("e03", "email", "not-an-email")
		obs[3] = bad
		obs = append(obs, engine.Observation{Key: "e-50", Attrs: engine.Attrs{"bad name": "x"}}, entry(51))
		seq := f.AuditSeq()
		p, err = f.Snapshot(f.LDAP, stream(obs, nil), engine.SnapshotOptions{})
		if !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("err = %v, want one wrapping ErrInvalid", err)
		}
		if p.Counts.Errors != 2 || p.Counts.Seen != 8 || p.Counts.Created != 1 || p.Counts.Unchanged != 5 {
			t.Errorf("counts %+v, want 2 errors, 1 created, 5 unchanged of 8", p.Counts)
		}
		if _, ok, _ := f.DB.AccountByKey(bg, f.LDAP.ID, "e-50"); ok {
			t.Errorf("an invalid entry was stored")
		}
		// An entry the snapshot held, if invalid, is not missing: no removal.
		if a := f.Account(f.LDAP.ID, "e-03"); a.Removed || a.Attrs["email"] != "e03@acme.test" {
			t.Errorf("account e-03 = %+v, want untouched", a)
		}
		noActions(t, f.Events(seq), "account.removed")
		f.Account(f.LDAP.ID, "e-51")
	}},
)

var _ = register(
	Case{"snapshot repeating a new key in one page holds one account", func(t *testing.T, f *Fixture) {
		obs := func(yield func(engine.Observation, error) bool) {
			for _, dept := range []string{"R&D", "Ops"} {
				if !yield(engine.Observation{Key: "dup", Attrs: engine.Attrs{"userName": "dup", "department": dept}}, nil) {
					return
				}
			}
		}
		if _, err := f.Snapshot(f.LDAP, obs, engine.SnapshotOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := f.Count("accounts", "source_id = ? AND source_key = ?", f.LDAP.ID, "dup"); n != 1 {
			t.Fatalf("%d accounts for the repeated key, want 1", n)
		}
		if n := f.Count("identities", "user_name_norm = ?", "dup"); n != 1 {
			t.Fatalf("%d identities, want 1", n)
		}
		acct, _, err := f.DB.AccountByKey(bg, f.LDAP.ID, "dup")
		if err != nil || acct.Attrs["department"] != "Ops" {
			t.Fatalf("the later statement should win: %+v %v", acct, err)
		}
	}},
)

// A snapshot page writes the people it creates together, at the end of the
// page (engine/newcomers.go); these cases check that a statement later in
// the same page still sees them.
var _ = register(
	Case{"snapshot page: an entry matching a person created earlier in the page opens a conflict, not a second person", func(t *testing.T, f *Fixture) {
		dup := engine.Observation{Key: "e-dup", Attrs: person("e00", "displayName", "Another e00"), EmailVerified: true}
		dup.Attrs["userName"] = "other@acme.test"
		p, err := f.Snapshot(f.LDAP, stream([]engine.Observation{entry(0), entry(1), dup, entry(2)}, nil), engine.SnapshotOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Counts.Created != 3 || p.Counts.Conflicts != 1 {
			t.Fatalf("counts %+v, want 3 created and 1 conflict", p.Counts)
		}
		if n := f.Count("identities", "email_norm = ?", "e00@acme.test"); n != 1 {
			t.Fatalf("%d identities hold e00's email, want 1", n)
		}
		cs := f.OpenConflicts()
		e00 := f.Account(f.LDAP.ID, "e-00").IdentityID
		if len(cs) != 1 || cs[0].Key != "e-dup" || !slices.Equal(cs[0].Candidates, []string{e00}) {
			t.Fatalf("open conflicts %+v, want one for e-dup naming %s", cs, e00)
		}
		f.Account(f.LDAP.ID, "e-02")
		if r := f.Verify(); !r.OK {
			t.Errorf("audit: %+v", r)
		}
	}},

	Case{"snapshot page: a new entry matching what an earlier entry of the page changed to opens a conflict", func(t *testing.T, f *Fixture) {
		one := f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "l-1", Attrs: person("one"), EmailVerified: true})
		moved := engine.Observation{Key: "l-1", Attrs: person("moved"), EmailVerified: true}
		newcomer := engine.Observation{Key: "l-new", Attrs: person("moved"), EmailVerified: true}
		newcomer.Attrs["userName"] = "newcomer@acme.test"
		p, err := f.Snapshot(f.LDAP, stream([]engine.Observation{entry(0), moved, newcomer, entry(1)}, nil), engine.SnapshotOptions{Upsert: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Counts.Conflicts != 1 || p.Counts.Updated != 1 || p.Counts.Created != 2 {
			t.Fatalf("counts %+v, want 1 updated, 2 created, 1 conflict", p.Counts)
		}
		if n := f.Count("identities", "email_norm = ?", "moved@acme.test"); n != 1 {
			t.Fatalf("%d identities hold moved@, want 1 (the one that moved)", n)
		}
		if cs := f.OpenConflicts(); len(cs) != 1 || !slices.Equal(cs[0].Candidates, []string{one.IdentityID}) {
			t.Fatalf("conflicts %+v, want one naming %s", cs, one.IdentityID)
		}
	}},

	Case{"snapshot page: an entry linking to an existing person between new ones links, and the new ones are written", func(t *testing.T, f *Fixture) {
		zed := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-zed", Attrs: person("zed"), EmailVerified: true})
		page := []engine.Observation{entry(0), {Key: "e-zed", Attrs: person("zed", "title", "CTO"), EmailVerified: true}, entry(1)}
		p, err := f.Snapshot(f.LDAP, stream(page, nil), engine.SnapshotOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Counts.Created != 3 || p.Counts.Conflicts != 0 {
			t.Fatalf("counts %+v, want 3 (two new, one linked)", p.Counts)
		}
		if got := f.Account(f.LDAP.ID, "e-zed").IdentityID; got != zed.IdentityID {
			t.Fatalf("e-zed linked to %s, want %s", got, zed.IdentityID)
		}
		if n := f.Count("identities", ""); n != 3 {
			t.Fatalf("%d identities, want 3", n)
		}
		for _, key := range []string{"e-00", "e-01"} {
			id := f.identityOf(f.LDAP, key)
			if id.State != active {
				t.Errorf("%s: %+v", key, id)
			}
			if n := f.Count("org_memberships", "identity_id = ?", id.ID); n != 1 {
				t.Errorf("%s has %d organization memberships, want 1", key, n)
			}
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit: %+v", r)
		}
	}},

	Case{"snapshot page: new people with groups get their edges, written together", func(t *testing.T, f *Fixture) {
		var page []engine.Observation
		for i := range 70 { // more than one multi-row chunk of each table
			o := entry(i)
			o.Groups = []string{"All", fmt.Sprintf("team-%d", i%3)}
			page = append(page, o)
		}
		p, err := f.Snapshot(f.LDAP, stream(page, nil), engine.SnapshotOptions{})
		if err != nil || p.Counts.Created != 70 {
			t.Fatalf("snapshot: %+v %v", p.Counts, err)
		}
		for _, i := range []int{0, 31, 32, 69} {
			id := f.Account(f.LDAP.ID, entry(i).Key).IdentityID
			want := []string{"All", fmt.Sprintf("team-%d", i%3)}
			slices.Sort(want)
			if got := f.GroupsOf(id); !slices.Equal(got, want) {
				t.Errorf("entry %d groups %v, want %v", i, got, want)
			}
		}
		if n := f.Count("group_memberships", "source_id = ?", f.LDAP.ID); n != 140 {
			t.Errorf("%d edges, want 140", n)
		}
		if n := len(Of(f.Events(0), "membership.granted")); n != 140 {
			t.Errorf("%d membership.granted events, want 140", n)
		}
	}},

	Case{"InsertNew of a source key that has an account fails with ErrRetry and writes nothing", func(t *testing.T, f *Fixture) {
		taken := f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "taken", Attrs: person("taken")})
		now := f.Clock.Now()
		ident := engine.Identity{ID: engine.NewID(), OrgID: f.Org.ID, State: active, Attrs: person("fresh"),
			Version: 1, CreatedAt: now, UpdatedAt: now}
		rows := engine.NewRows{
			Identities: []engine.Identity{ident},
			Accounts: []engine.Account{{ID: engine.NewID(), SourceID: f.LDAP.ID, OrgID: f.Org.ID, IdentityID: ident.ID, Key: "taken",
				Hash: "h", Active: true, FirstSeen: now, LastSeen: now, ChangedAt: now}},
		}
		err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.InsertNew(bg, rows) })
		if !errors.Is(err, engine.ErrRetry) {
			t.Fatalf("InsertNew of a taken key: %v, want ErrRetry", err)
		}
		if n := f.Count("identities", "id = ?", ident.ID); n != 0 {
			t.Errorf("the identity of the failed batch was kept")
		}
		if got := f.Account(f.LDAP.ID, "taken").IdentityID; got != taken.IdentityID {
			t.Errorf("the taken key now points at %s", got)
		}
		rows.Accounts[0].Key = "free"
		if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.InsertNew(bg, rows) }); err != nil {
			t.Fatal(err)
		}
		got := f.Identity(ident.ID)
		if got.Attrs["email"] != "fresh@acme.test" || got.Version != 1 || f.Account(f.LDAP.ID, "free").IdentityID != ident.ID {
			t.Errorf("InsertNew wrote %+v", got)
		}
	}},
)

var _ = register(
	Case{"snapshot repeating a key pages apart: the later statement wins, one account", func(t *testing.T, f *Fixture) {
		obs := []engine.Observation{
			{Key: "dup", Attrs: person("dup", "department", "R&D")}, entry(0), entry(1), entry(2),
			{Key: "dup", Attrs: person("dup", "department", "Ops")}, entry(3),
			{Key: "dup", Attrs: person("dup", "department", "Ops")}, // unchanged by now
		}
		p, err := f.Snapshot(f.LDAP, stream(obs, nil), engine.SnapshotOptions{PageSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		if p.Counts.Seen != 7 || p.Counts.Created != 5 || p.Counts.Updated != 1 || p.Counts.Unchanged != 1 {
			t.Fatalf("counts %+v, want 7 seen, 5 created, 1 updated, 1 unchanged", p.Counts)
		}
		if n := f.Count("accounts", "source_id = ? AND source_key = ?", f.LDAP.ID, "dup"); n != 1 {
			t.Fatalf("%d accounts for the repeated key, want 1", n)
		}
		if a := f.Account(f.LDAP.ID, "dup"); a.Attrs["department"] != "Ops" {
			t.Fatalf("the later statement should win: %+v", a.Attrs)
		}
	}},

	Case{"snapshot changing a key and changing it back a page later ends as the later statement says", func(t *testing.T, f *Fixture) {
		f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "flip", Attrs: person("flip", "department", "R&D")})
		obs := []engine.Observation{{Key: "flip", Attrs: person("flip", "department", "Ops")}, entry(0),
			{Key: "flip", Attrs: person("flip", "department", "R&D")}}
		for range 5 { // the stream runs a page ahead of the commits: give a stale read every chance
			if _, err := f.Snapshot(f.LDAP, stream(obs, nil), engine.SnapshotOptions{PageSize: 2, Upsert: true}); err != nil {
				t.Fatal(err)
			}
			if a := f.Account(f.LDAP.ID, "flip"); a.Attrs["department"] != "R&D" {
				t.Fatalf("department %q, want R&D (the snapshot's last word)", a.Attrs["department"])
			}
		}
	}},

	Case{"snapshot stating a new key then disabling it later holds the deprovision back and counts it", func(t *testing.T, f *Fixture) {
		fullSync(t, f)
		obs := append(entries(snapN), engine.Observation{Key: "late", Attrs: person("late")},
			engine.Observation{Key: "x1", Attrs: person("x1")}, engine.Observation{Key: "x2", Attrs: person("x2")},
			engine.Observation{Key: "late", Attrs: person("late"), Inactive: true})
		p, err := f.Snapshot(f.LDAP, stream(obs, nil), engine.SnapshotOptions{PageSize: 3, Threshold: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		if a := f.Account(f.LDAP.ID, "late"); a.Active {
			t.Fatalf("the later statement disabled %q: %+v", "late", a)
		}
		if p.Counts.Created != 3 {
			t.Errorf("counts %+v, want 3 created", p.Counts)
		}
		if f.State(f.Account(f.LDAP.ID, "late").IdentityID) != deprovisioned {
			t.Errorf("late's state %s, want deprovisioned", f.State(f.Account(f.LDAP.ID, "late").IdentityID))
		}
	}},
)

var _ = register(
	Case{"snapshot page of 300: a late entry matching an early one, a link and new people with groups", func(t *testing.T, f *Fixture) {
		zed := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-zed", Attrs: person("zed"), EmailVerified: true})
		var page []engine.Observation
		for i := range 300 {
			o := entry(i)
			o.Groups = []string{"All", fmt.Sprintf("team-%d", i%4)}
			switch i {
			case 150: // links to an existing person
				o = engine.Observation{Key: "e-zed", Attrs: person("zed"), EmailVerified: true}
			case 250: // on the email of entry 10, written in an earlier chunk
				o = engine.Observation{Key: "e-dup", Attrs: person("e10"), EmailVerified: true}
				o.Attrs["userName"] = "dup@acme.test"
			}
			page = append(page, o)
		}
		p, err := f.Snapshot(f.LDAP, stream(page, nil), engine.SnapshotOptions{PageSize: 300, Upsert: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Counts.Created != 299 || p.Counts.Conflicts != 1 {
			t.Fatalf("counts %+v, want 299 created (one of them linked) and 1 conflict", p.Counts)
		}
		if n := f.Count("identities", "email_norm = ?", "e10@acme.test"); n != 1 {
			t.Errorf("e10's email is on %d people", n)
		}
		if got := f.Account(f.LDAP.ID, "e-zed").IdentityID; got != zed.IdentityID {
			t.Errorf("e-zed linked to %s, want %s", got, zed.IdentityID)
		}
		if n := f.Count("accounts", "source_id = ?", f.LDAP.ID); n != 299 {
			t.Errorf("%d LDAP accounts, want 299", n)
		}
		if n := f.Count("group_memberships", "source_id = ?", f.LDAP.ID); n != 2*298 {
			t.Errorf("%d edges, want %d", n, 2*298)
		}
		for _, i := range []int{0, 63, 64, 65, 200, 299} {
			id := f.Account(f.LDAP.ID, entry(i).Key).IdentityID
			want := []string{"All", fmt.Sprintf("team-%d", i%4)}
			slices.Sort(want)
			if got := f.GroupsOf(id); !slices.Equal(got, want) {
				t.Errorf("entry %d groups %v, want %v", i, got, want)
			}
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit: %+v", r)
		}
	}},
)
