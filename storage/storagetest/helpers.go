package storagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

// Helpers the cases share. They fail the test on any unexpected error so a
// case reads as the behaviour it checks.

var (
	bg      = context.Background()
	byTest  = engine.Admin{Actor: "test"}
	noGroup []string // nil: the observation says nothing about groups
)

// person returns the attributes of a person whose email and userName are
// name@acme.test.
func person(name string, more ...string) engine.Attrs {
	a := engine.Attrs{"email": name + "@acme.test", "userName": name + "@acme.test"}
	for i := 0; i+1 < len(more); i += 2 {
		a[more[i]] = more[i+1]
	}
	return a
}

// NewSource creates one more source of the fixture's organization.
func (f *Fixture) NewSource(kind engine.SourceKind, name string, prio int, trustEmails bool) engine.Source {
	f.T.Helper()
	s, err := f.Engine.CreateSource(bg, byTest, engine.Source{OrgID: f.Org.ID, Kind: kind, Name: name,
		Priority: prio, TrustEmails: trustEmails}, true)
	if err != nil {
		f.T.Fatalf("create source %s: %v", name, err)
	}
	return s
}

// Count counts the rows of table matching where (with ? placeholders).
func (f *Fixture) Count(table, where string, args ...any) int {
	f.T.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := f.DB.SQL().Get(&n, f.DB.SQL().Rebind(q), args...); err != nil {
		f.T.Fatalf("%s: %v", q, err)
	}
	return n
}

// Exec runs a raw statement (with ? placeholders) and returns the rows it
// changed.
func (f *Fixture) Exec(q string, args ...any) int64 {
	f.T.Helper()
	r, err := f.DB.SQL().Exec(f.DB.SQL().Rebind(q), args...)
	if err != nil {
		f.T.Fatalf("%s: %v", q, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		f.T.Fatal(err)
	}
	return n
}

// State is the lifecycle state of an identity.
func (f *Fixture) State(id string) engine.State {
	f.T.Helper()
	return f.Identity(id).State
}

// Account reads a source's account of key, failing when it is missing.
func (f *Fixture) Account(sourceID, key string) engine.Account {
	f.T.Helper()
	a, ok, err := f.DB.AccountByKey(bg, sourceID, key)
	if err != nil || !ok {
		f.T.Fatalf("account %s/%s: found %v, %v", sourceID, key, ok, err)
	}
	return a
}

// GroupsOf lists the names of the groups an identity is a member of (each
// once, whatever number of sources assert it).
func (f *Fixture) GroupsOf(identityID string) []string {
	f.T.Helper()
	ms, err := f.DB.IdentityMemberships(bg, identityID)
	if err != nil {
		f.T.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if !slices.Contains(out, m.GroupName) {
			out = append(out, m.GroupName)
		}
	}
	slices.Sort(out)
	return out
}

// Edges lists the group name and source of each membership edge.
func (f *Fixture) Edges(identityID string) []string {
	f.T.Helper()
	ms, err := f.DB.IdentityMemberships(bg, identityID)
	if err != nil {
		f.T.Fatal(err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.GroupName + "@" + m.SourceID
	}
	slices.Sort(out)
	return out
}

// Verify runs engine.VerifyAudit.
func (f *Fixture) Verify() engine.VerifyReport {
	f.T.Helper()
	r, err := engine.VerifyAudit(bg, f.DB)
	if err != nil {
		f.T.Fatalf("verify audit: %v", err)
	}
	return r
}

// OpenConflicts lists the organization's open conflicts.
func (f *Fixture) OpenConflicts() []engine.Conflict {
	f.T.Helper()
	cs, err := f.DB.Conflicts(bg, f.Org.ID, engine.ConflictOpen)
	if err != nil {
		f.T.Fatal(err)
	}
	return cs
}

// Snapshot applies a snapshot of src.
func (f *Fixture) Snapshot(src engine.Source, obs iter.Seq2[engine.Observation, error], opts engine.SnapshotOptions) (engine.Plan, error) {
	return f.Engine.ApplySnapshot(bg, src.ID, obs, opts)
}

// Of returns the events whose action is action.
func Of(evs []engine.AuditEvent, action string) []engine.AuditEvent {
	var out []engine.AuditEvent
	for _, e := range evs {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// For returns the events about identityID.
func For(evs []engine.AuditEvent, identityID string) []engine.AuditEvent {
	var out []engine.AuditEvent
	for _, e := range evs {
		if e.IdentityID == identityID {
			out = append(out, e)
		}
	}
	return out
}

// wantActions fails unless every action in want appears in evs.
func wantActions(t *testing.T, evs []engine.AuditEvent, want ...string) {
	t.Helper()
	got := Actions(evs)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("events %v lack %s", got, w)
		}
	}
}

// noActions fails if any action in bad appears in evs.
func noActions(t *testing.T, evs []engine.AuditEvent, bad ...string) {
	t.Helper()
	got := Actions(evs)
	for _, b := range bad {
		if slices.Contains(got, b) {
			t.Errorf("events %v hold %s", got, b)
		}
	}
}

// changesOf decodes the field-level changes of an event.
func changesOf(t *testing.T, ev engine.AuditEvent) []reconcile.Change {
	t.Helper()
	var d struct {
		Changes []reconcile.Change `json:"changes"`
	}
	if err := json.Unmarshal(ev.Changes, &d); err != nil {
		t.Fatalf("%s changes %s: %v", ev.Action, ev.Changes, err)
	}
	return d.Changes
}

// entry is snapshot entry i of a directory: key e-NN, person eNN.
func entry(i int) engine.Observation {
	name := fmt.Sprintf("e%02d", i)
	return engine.Observation{Key: fmt.Sprintf("e-%02d", i), Attrs: person(name, "displayName", "Entry "+name),
		EmailVerified: true}
}

// entries returns snapshot entries 0..n-1 except the skipped ones.
func entries(n int, skip ...int) []engine.Observation {
	var out []engine.Observation
	for i := range n {
		if !slices.Contains(skip, i) {
			out = append(out, entry(i))
		}
	}
	return out
}

// stream yields obs, then err if it is not nil.
func stream(obs []engine.Observation, err error) iter.Seq2[engine.Observation, error] {
	return func(yield func(engine.Observation, error) bool) {
		for _, o := range obs {
			if !yield(o, nil) {
				return
			}
		}
		if err != nil {
			yield(engine.Observation{}, err)
		}
	}
}

// identityOf returns the identity a source's key is linked to.
func (f *Fixture) identityOf(src engine.Source, key string) engine.Identity {
	f.T.Helper()
	return f.Identity(f.Account(src.ID, key).IdentityID)
}
