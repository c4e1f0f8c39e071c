package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// Fixture is a fresh graph with one organization and a few sources.
type Fixture struct {
	T      testing.TB
	DB     *storage.DB
	Engine *engine.Engine
	Org    engine.Organization
	SCIM   engine.Source // authoritative directory, priority 10
	LDAP   engine.Source // authoritative directory, priority 20
	OIDC   engine.Source // login source, not authoritative, priority 90
	Clock  *Clock
}

// Clock is a settable test clock.
type Clock struct{ t time.Time }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.t }

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// NewFixture builds a Fixture on db.
func NewFixture(t testing.TB, db *storage.DB) *Fixture {
	t.Helper()
	clock := &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := engine.New(db, engine.Options{Now: clock.Now})
	ctx := context.Background()
	org, err := e.CreateOrganization(ctx, engine.Admin{Actor: "test"}, engine.Organization{Slug: "acme", Name: "Acme"})
	if err != nil {
		t.Fatalf("create organization: %v", err)
	}
	f := &Fixture{T: t, DB: db, Engine: e, Org: org, Clock: clock}
	mk := func(kind engine.SourceKind, name string, prio int) engine.Source {
		s, err := e.CreateSource(ctx, engine.Admin{Actor: "test"}, engine.Source{OrgID: org.ID, Kind: kind, Name: name, Priority: prio}, true)
		if err != nil {
			t.Fatalf("create source %s: %v", name, err)
		}
		return s
	}
	f.SCIM = mk(engine.KindSCIM, "entra", 10)
	f.LDAP = mk(engine.KindLDAP, "corp-ldap", 20)
	f.OIDC = mk(engine.KindOIDC, "okta-oidc", 90)
	return f
}

// Apply applies an observation and fails the test on error.
func (f *Fixture) Apply(obs engine.Observation) engine.Result {
	f.T.Helper()
	r, err := f.Engine.Apply(context.Background(), obs)
	if err != nil {
		f.T.Fatalf("apply %s/%s: %v", obs.SourceID, obs.Key, err)
	}
	return r
}

// Identity reads an identity and fails the test on error.
func (f *Fixture) Identity(id string) engine.Identity {
	f.T.Helper()
	i, err := f.DB.Identity(context.Background(), id)
	if err != nil {
		f.T.Fatalf("identity %s: %v", id, err)
	}
	return i
}

// AuditSeq is the sequence number of the last audit event.
func (f *Fixture) AuditSeq() int64 {
	f.T.Helper()
	seq, _, err := f.DB.AuditHead(context.Background())
	if err != nil {
		f.T.Fatal(err)
	}
	return seq
}

// Events returns the actions of the audit events after seq.
func (f *Fixture) Events(after int64) []engine.AuditEvent {
	f.T.Helper()
	var out []engine.AuditEvent
	err := f.DB.StreamAudit(context.Background(), engine.AuditFilter{AfterSeq: after}, func(e engine.AuditEvent) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		f.T.Fatal(err)
	}
	return out
}

// Actions lists the actions of events.
func Actions(evs []engine.AuditEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Action
	}
	return out
}

// Case is one conformance case.
type Case struct {
	Name string
	Run  func(t *testing.T, f *Fixture)
}

// Run runs every conformance case against fresh databases from open.
func Run(t *testing.T, open func(t testing.TB) *storage.DB) {
	for _, c := range Cases() {
		t.Run("case="+c.Name, func(t *testing.T) {
			c.Run(t, NewFixture(t, open(t)))
		})
	}
}

var registered []Case

// Cases lists the conformance cases.
func Cases() []Case { return registered }

func register(cs ...Case) bool {
	registered = append(registered, cs...)
	return true
}
