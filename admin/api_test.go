package admin_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

var update = flag.Bool("update", false, "rewrite admin/openapi.json from the route table")

// TestOpenAPICoversRoutes: every route the router serves is in the served
// OpenAPI document, with its method, and the document is what the route
// table generates.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t, storagetest.SQLite(t))
	gen := admin.GenerateOpenAPI(e.h.Routes())
	if *update {
		if err := os.WriteFile("openapi.json", gen, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, served := e.do("", "GET", "/openapi.json", nil)
	if code != http.StatusOK {
		t.Fatalf("GET openapi.json = %d", code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(served, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v (version %q)", err, doc.OpenAPI)
	}
	for _, rt := range e.h.Routes() {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			if _, ok := doc.Paths[admin.Prefix+rt.Path][strings.ToLower(rt.Method)]; !ok {
				t.Errorf("openapi.json lacks %s %s%s (run go test ./admin -run TestOpenAPI -update)", rt.Method, admin.Prefix, rt.Path)
			}
		})
	}
	if string(served) != string(gen) {
		t.Errorf("openapi.json is stale: run go test ./admin -run TestOpenAPICoversRoutes -update")
	}
}

type ident struct {
	ID    string            `json:"id"`
	State string            `json:"state"`
	Attrs map[string]string `json:"attributes"`
}

// TestAPI walks every endpoint with a deployment-wide admin key on both
// databases; each step builds on the ones before.
func TestAPI(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			k := e.admin
			acme := e.f.Org
			var alice, fay, newOrg struct {
				ID string `json:"id"`
			}
			var conflictID, runID, srcID, tokID string
			steps := []struct {
				name string
				run  func(t *testing.T)
			}{
				{"organizations list, create, read, patch", func(t *testing.T) {
					var l admin.List[engine.Organization]
					e.call(k, "GET", "/orgs", nil, 200, &l)
					if len(l.Items) != 2 {
						t.Fatalf("orgs = %d, want 2", len(l.Items))
					}
					e.call(k, "POST", "/orgs", map[string]any{"slug": "initech", "name": "Initech"}, 201, &newOrg)
					e.wantErr(k, "POST", "/orgs", map[string]any{"slug": "initech"}, 409, admin.CodeExists)
					e.wantErr(k, "POST", "/orgs", map[string]any{"slug": "Bad Slug"}, 400, admin.CodeInvalid)
					var o engine.Organization
					e.call(k, "PATCH", "/orgs/initech", map[string]any{"name": "Initech Inc"}, 200, &o)
					if o.Name != "Initech Inc" || o.ID != newOrg.ID {
						t.Fatalf("patched org = %+v", o)
					}
					e.call(k, "GET", "/orgs/"+newOrg.ID, nil, 200, &o)
					e.wantErr(k, "GET", "/orgs/nope", nil, 404, admin.CodeNotFound)
				}},
				{"domains", func(t *testing.T) {
					e.call(k, "POST", "/orgs/acme/domains", map[string]any{"domain": "acme.test", "verified": true}, 201, nil)
					e.wantErr(k, "POST", "/orgs/globex/domains", map[string]any{"domain": "acme.test", "verified": true}, 409, admin.CodeExists)
					var l admin.List[engine.Domain]
					e.call(k, "GET", "/orgs/acme/domains", nil, 200, &l)
					if len(l.Items) != 1 || l.Items[0].Domain != "acme.test" {
						t.Fatalf("domains = %+v", l.Items)
					}
					e.call(k, "DELETE", "/orgs/acme/domains/acme.test", nil, 204, nil)
				}},
				{"sources", func(t *testing.T) {
					var s engine.Source
					e.call(k, "POST", "/orgs/acme/sources", map[string]any{"kind": "scim", "name": "okta-scim", "priority": 15}, 201, &s)
					if !s.Authoritative || s.Priority != 15 {
						t.Fatalf("created source = %+v, want authoritative by default", s)
					}
					srcID = s.ID
					e.call(k, "PATCH", "/sources/"+s.ID, map[string]any{"priority": 30}, 200, &s)
					if s.Priority != 30 {
						t.Fatalf("patched source priority = %d", s.Priority)
					}
					var l admin.List[engine.Source]
					e.call(k, "GET", "/orgs/acme/sources", nil, 200, &l)
					if len(l.Items) != 5 { // admin, entra, corp-ldap, okta-oidc, okta-scim
						t.Fatalf("sources = %d, want 5", len(l.Items))
					}
					e.call(k, "GET", "/sources/"+s.ID, nil, 200, nil)
				}},
				{"SCIM token shows its secret once", func(t *testing.T) {
					var nt admin.NewToken
					e.call(k, "POST", "/orgs/acme/tokens", map[string]any{"kind": "scim", "name": "okta", "sourceId": srcID}, 201, &nt)
					if !strings.HasPrefix(nt.Secret, "idss_") {
						t.Fatalf("secret = %q", nt.Secret)
					}
					tokID = nt.ID
					code, body := e.do(k, "GET", "/orgs/acme/tokens", nil)
					if code != 200 || strings.Contains(string(body), nt.Secret) || !strings.Contains(string(body), nt.ID) {
						t.Fatalf("token list = %d %s: must list the token without its secret", code, body)
					}
					e.wantErr(k, "POST", "/orgs/globex/tokens", map[string]any{"kind": "scim", "name": "x", "sourceId": srcID}, 404, admin.CodeNotFound)
					e.call(k, "DELETE", "/tokens/"+tokID, nil, 204, nil)
					if _, err := e.f.Engine.Authenticate(bg, nt.Secret); err == nil {
						t.Fatal("a revoked token still authenticates")
					}
				}},
				{"people create and bulk import through the engine", func(t *testing.T) {
					var res engine.Result
					e.call(k, "POST", "/orgs/acme/people", map[string]any{"attributes": person("alice", "alice@acme.test", "Engineer")}, 201, &res)
					if res.Outcome != engine.OutcomeCreated || res.IdentityID == "" {
						t.Fatalf("create person = %+v", res)
					}
					alice.ID = res.IdentityID
					var plan engine.Plan
					e.call(k, "POST", "/orgs/acme/plans?format=csv", "userName,email\nbob,bob@acme.test\ncarl,carl@acme.test\n", 200, &plan)
					if plan.Counts.Created != 2 {
						t.Fatalf("dry-run plan = %+v, want 2 created", plan.Counts)
					}
					var l admin.List[ident]
					e.call(k, "GET", "/orgs/acme/identities", nil, 200, &l)
					if len(l.Items) != 1 {
						t.Fatalf("a dry run wrote: %d people", len(l.Items))
					}
					e.call(k, "POST", "/orgs/acme/people/import?format=jsonl",
						`{"attributes":{"userName":"bob","email":"bob@acme.test"}}`+"\n"+`{"attributes":{"userName":"carl","email":"carl@acme.test"}}`+"\n", 200, &plan)
					if plan.Counts.Created != 2 {
						t.Fatalf("import = %+v, want 2 created", plan.Counts)
					}
					e.call(k, "GET", "/orgs/acme/identities?limit=2", nil, 200, &l)
					if len(l.Items) != 2 || l.Next == "" {
						t.Fatalf("page 1 = %d items next %q", len(l.Items), l.Next)
					}
					e.call(k, "GET", "/orgs/acme/identities?limit=2&after="+l.Next, nil, 200, &l)
					if len(l.Items) != 1 {
						t.Fatalf("page 2 = %d items, want 1", len(l.Items))
					}
					e.wantErr(k, "POST", "/orgs/acme/people/import?format=xml", "x", 400, admin.CodeInvalid)
				}},
				{"identity: golden record, accounts side by side, provenance, history", func(t *testing.T) {
					e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "scim-alice", Attrs: person("alice", "alice@acme.test", "Staff Engineer"),
						EmailVerified: true, Groups: []string{"eng"}})
					var v admin.IdentityView
					e.call(k, "GET", "/identities/"+alice.ID, nil, 200, &v)
					if len(v.Accounts) != 2 || v.Identity.Attrs["title"] != "Staff Engineer" ||
						v.Identity.Provenance["title"].SourceID != e.f.SCIM.ID || len(v.Memberships) != 1 || len(v.Organizations) != 1 {
						t.Fatalf("identity view = %+v", v)
					}
					var h admin.List[engine.AuditEvent]
					e.call(k, "GET", "/identities/"+alice.ID+"/history", nil, 200, &h)
					acts := storagetest.Actions(h.Items)
					if !slices.Contains(acts, "identity.created") || !slices.Contains(acts, "membership.granted") {
						t.Fatalf("history = %v", acts)
					}
					var g admin.List[engine.Group]
					e.call(k, "GET", "/orgs/acme/groups", nil, 200, &g)
					if len(g.Items) != 1 || g.Items[0].Name != "eng" {
						t.Fatalf("groups = %+v", g.Items)
					}
					var id engine.Identity
					e.call(k, "POST", "/identities/"+alice.ID+"/suspend", map[string]any{"reason": "audit"}, 200, &id)
					if id.State != "suspended" {
						t.Fatalf("suspended state = %s", id.State)
					}
					e.call(k, "POST", "/identities/"+alice.ID+"/restore", nil, 200, &id)
					if id.State != "active" {
						t.Fatalf("restored state = %s", id.State)
					}
				}},
				{"accounts split and link", func(t *testing.T) {
					var v admin.IdentityView
					e.call(k, "GET", "/identities/"+alice.ID, nil, 200, &v)
					var scimAcct string
					for _, a := range v.Accounts {
						if a.SourceID == e.f.SCIM.ID {
							scimAcct = a.ID
						}
					}
					var out map[string]string
					e.call(k, "POST", "/accounts/"+scimAcct+"/unlink", nil, 200, &out)
					if out["identityId"] == alice.ID || out["identityId"] == "" {
						t.Fatalf("unlink = %v", out)
					}
					e.call(k, "POST", "/accounts/"+scimAcct+"/link", map[string]any{"identityId": alice.ID}, 200, nil)
					e.call(k, "GET", "/identities/"+alice.ID, nil, 200, &v)
					if len(v.Accounts) != 2 {
						t.Fatalf("after link back: %d accounts", len(v.Accounts))
					}
				}},
				{"conflicts list and resolve", func(t *testing.T) {
					r := e.apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "https://idp|fay", EmailVerified: true, Login: true,
						Attrs: person("fay", "fay@acme.test", "")})
					fay.ID = r.IdentityID
					r = e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "scim-fay", Attrs: engine.Attrs{"email": "fay@acme.test", "userName": "fay.s"}})
					if r.ConflictID == "" {
						t.Fatalf("no conflict: %+v", r)
					}
					conflictID = r.ConflictID
					var l admin.List[engine.Conflict]
					e.call(k, "GET", "/orgs/acme/conflicts?status=open", nil, 200, &l)
					if len(l.Items) != 1 || l.Items[0].ID != conflictID {
						t.Fatalf("open conflicts = %+v", l.Items)
					}
					e.call(k, "GET", "/conflicts/"+conflictID, nil, 200, nil)
					e.wantErr(k, "POST", "/conflicts/"+conflictID+"/resolve", map[string]any{}, 400, admin.CodeInvalid)
					var res engine.Result
					e.call(k, "POST", "/conflicts/"+conflictID+"/resolve", map[string]any{"choice": fay.ID}, 200, &res)
					if res.IdentityID != fay.ID {
						t.Fatalf("resolved onto %s, want %s", res.IdentityID, fay.ID)
					}
					e.wantErr(k, "POST", "/conflicts/"+conflictID+"/resolve", map[string]any{"choice": "new"}, 409, admin.CodeConflict)
				}},
				{"jobs: run now, quarantine, approve, reject", func(t *testing.T) {
					var l admin.List[engine.Job]
					e.call(k, "GET", "/orgs/acme/jobs", nil, 200, &l)
					if len(l.Items) != 1 {
						t.Fatalf("jobs = %d", len(l.Items))
					}
					var run engine.JobRun
					e.call(k, "POST", "/jobs/"+e.job.ID+"/run", nil, 201, &run)
					if run.Status != engine.RunQuarantined {
						t.Fatalf("first run = %s, want quarantined", run.Status)
					}
					runID = run.ID
					e.call(k, "GET", "/runs/"+runID, nil, 200, &run)
					var next engine.JobRun
					e.call(k, "POST", "/runs/"+runID+"/approve", nil, 200, &next)
					if next.Status != engine.RunSucceeded || next.ID == runID {
						t.Fatalf("approved rerun = %+v", next)
					}
					e.call(k, "GET", "/runs/"+runID, nil, 200, &run)
					if run.Status != engine.RunApproved {
						t.Fatalf("quarantined run is %s after approval", run.Status)
					}
					e.wantErr(k, "POST", "/runs/"+runID+"/reject", nil, 409, admin.CodeConflict)
					var again, rejected engine.JobRun
					e.call(k, "POST", "/jobs/"+e.job.ID+"/run", nil, 201, &again)
					e.call(k, "POST", "/runs/"+again.ID+"/reject", nil, 200, &rejected)
					if rejected.Status != engine.RunRejected {
						t.Fatalf("rejected run = %s", rejected.Status)
					}
					e.wantErr(k, "POST", "/runs/"+again.ID+"/approve", nil, 409, admin.CodeConflict)
					var runs admin.List[engine.JobRun]
					e.call(k, "GET", "/jobs/"+e.job.ID+"/runs", nil, 200, &runs)
					if len(runs.Items) != 3 {
						t.Fatalf("runs = %d, want 3", len(runs.Items))
					}
					var j engine.Job
					e.call(k, "PATCH", "/jobs/"+e.job.ID, map[string]any{"enabled": false}, 200, &j)
					if j.Enabled {
						t.Fatal("job still enabled after pause")
					}
					e.call(k, "GET", "/jobs/"+e.job.ID, nil, 200, nil)
				}},
				{"audit filters and cursor paging", func(t *testing.T) {
					var all admin.List[engine.AuditEvent]
					e.call(k, "GET", "/audit?org=acme&limit=1000", nil, 200, &all)
					var paged []engine.AuditEvent
					after := "0"
					for range 100 {
						var p admin.List[engine.AuditEvent]
						e.call(k, "GET", "/audit?org=acme&limit=7&after="+after, nil, 200, &p)
						paged = append(paged, p.Items...)
						if p.Next == "" {
							break
						}
						after = p.Next
					}
					if len(paged) != len(all.Items) || len(paged) < 20 {
						t.Fatalf("paged %d events, all %d", len(paged), len(all.Items))
					}
					for _, ev := range paged {
						if ev.OrgID != acme.ID {
							t.Fatalf("event of org %s under org=acme", ev.OrgID)
						}
					}
					cases := map[string]func(engine.AuditEvent) bool{
						"action=identity.created":    func(ev engine.AuditEvent) bool { return ev.Action == "identity.created" },
						"channel=scim":               func(ev engine.AuditEvent) bool { return ev.Channel == "scim" },
						"identity=" + alice.ID:       func(ev engine.AuditEvent) bool { return ev.IdentityID == alice.ID },
						"source=" + e.f.SCIM.ID:      func(ev engine.AuditEvent) bool { return ev.SourceID == e.f.SCIM.ID },
						"since=2026-01-02T03:04:05Z": func(ev engine.AuditEvent) bool { return !ev.At.IsZero() },
					}
					for q, okf := range cases {
						var l admin.List[engine.AuditEvent]
						e.call(k, "GET", "/audit?"+q, nil, 200, &l)
						if len(l.Items) == 0 {
							t.Errorf("%s: no events", q)
						}
						for _, ev := range l.Items {
							if !okf(ev) {
								t.Errorf("%s: event %+v does not match", q, ev)
							}
						}
					}
					var none admin.List[engine.AuditEvent]
					e.call(k, "GET", "/audit?until=2000-01-01T00:00:00Z", nil, 200, &none)
					if len(none.Items) != 0 {
						t.Errorf("until=2000: %d events", len(none.Items))
					}
					e.wantErr(k, "GET", "/audit?since=yesterday", nil, 400, admin.CodeInvalid)
				}},
				{"events resume from the cursor", func(t *testing.T) {
					var p1, p2, all admin.EventPage
					e.call(k, "GET", "/events?org=acme&limit=5", nil, 200, &p1)
					e.call(k, "GET", "/events?org=acme&limit=1000&after="+p1.Cursor, nil, 200, &p2)
					e.call(k, "GET", "/events?org=acme&limit=1000", nil, 200, &all)
					if !p1.More || len(p1.Events) != 5 || len(p1.Events)+len(p2.Events) != len(all.Events) || p2.Events[0].Seq <= p1.Events[4].Seq {
						t.Fatalf("pages %d+%d, all %d", len(p1.Events), len(p2.Events), len(all.Events))
					}
					var f admin.EventPage
					e.call(k, "GET", "/events?org=acme&action=identity.*", nil, 200, &f)
					for _, ev := range f.Events {
						if !strings.HasPrefix(ev.Action, "identity.") {
							t.Fatalf("action filter let %s through", ev.Action)
						}
					}
					if len(f.Events) == 0 {
						t.Fatal("no identity events")
					}
				}},
				{"unknown route and missing key", func(t *testing.T) {
					e.wantErr(k, "GET", "/nope", nil, 404, admin.CodeNotFound)
					e.wantErr("", "GET", "/orgs", nil, 401, admin.CodeUnauthorized)
					e.wantErr("idsk_wrong", "GET", "/orgs", nil, 401, admin.CodeUnauthorized)
				}},
			}
			for _, s := range steps {
				if !t.Run(s.name, s.run) {
					return
				}
			}
		})
	}
}

// TestAuthorization: a read-only key cannot write; an organization-scoped
// key can neither see nor change another organization's objects.
func TestAuthorization(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			r := e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-ann", Attrs: person("ann", "ann@acme.test", "x")})
			gsrc, err := e.f.Engine.CreateSource(bg, engine.Admin{}, engine.Source{OrgID: e.other.ID, Kind: engine.KindSCIM, Name: "g-scim"}, true)
			if err != nil {
				t.Fatal(err)
			}
			gr := e.apply(engine.Observation{SourceID: gsrc.ID, Key: "g-bo", Attrs: person("bo", "bo@globex.test", "y")})
			wh, _, err := admin.CreateWebhook(bg, e.h.Store(), e.other.ID, admin.WebhookInput{URL: ptr("http://127.0.0.1:1/x")}, e.f.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			t.Run("read-only key cannot write", func(t *testing.T) {
				for _, c := range []struct{ method, path string }{
					{"POST", "/orgs"}, {"PATCH", "/orgs/acme"}, {"POST", "/orgs/acme/people"}, {"POST", "/orgs/acme/sources"},
					{"POST", "/jobs/" + e.job.ID + "/run"}, {"DELETE", "/orgs/acme/domains/x.test"}, {"POST", "/orgs/acme/webhooks"},
				} {
					e.wantErr(e.read, c.method, c.path, map[string]any{}, 403, admin.CodeForbidden)
				}
				e.call(e.read, "GET", "/orgs/acme", nil, 200, nil)
				e.call(e.read, "GET", "/identities/"+r.IdentityID, nil, 200, nil)
			})
			t.Run("scoped key sees its organization only", func(t *testing.T) {
				var l admin.List[engine.Organization]
				e.call(e.scoped, "GET", "/orgs", nil, 200, &l)
				if len(l.Items) != 1 || l.Items[0].ID != e.f.Org.ID {
					t.Fatalf("scoped org list = %+v", l.Items)
				}
				e.call(e.scoped, "GET", "/identities/"+r.IdentityID, nil, 200, nil)
				for _, path := range []string{"/orgs/globex", "/orgs/" + e.other.ID, "/orgs/globex/sources", "/orgs/globex/identities",
					"/identities/" + gr.IdentityID, "/identities/" + gr.IdentityID + "/history", "/sources/" + gsrc.ID,
					"/audit?org=globex", "/events?org=globex", "/orgs/globex/compare", "/webhooks/" + wh.ID,
					"/orgs/globex/conflicts", "/orgs/globex/tokens", "/accounts/" + gr.AccountID + "/unlink"} {
					method := "GET"
					if strings.HasSuffix(path, "unlink") {
						method = "POST"
					}
					e.wantErr(e.scoped, method, path, nil, 404, admin.CodeNotFound)
				}
				for _, c := range []struct {
					method, path string
					body         any
				}{
					{"PATCH", "/orgs/globex", map[string]any{"name": "pwned"}},
					{"POST", "/orgs/globex/people", map[string]any{"attributes": map[string]string{"userName": "evil"}}},
					{"PATCH", "/sources/" + gsrc.ID, map[string]any{"priority": 1}},
					{"POST", "/orgs/globex/tokens", map[string]any{"kind": "admin", "name": "x"}},
					{"DELETE", "/webhooks/" + wh.ID, nil},
					{"POST", "/identities/" + gr.IdentityID + "/suspend", nil},
				} {
					e.wantErr(e.scoped, c.method, c.path, c.body, 404, admin.CodeNotFound)
				}
				e.wantErr(e.scoped, "POST", "/orgs", map[string]any{"slug": "mine"}, 403, admin.CodeForbidden)
				var ev admin.List[engine.AuditEvent]
				e.call(e.scoped, "GET", "/audit?limit=1000", nil, 200, &ev)
				for _, x := range ev.Items {
					if x.OrgID != e.f.Org.ID {
						t.Fatalf("scoped key read an event of org %q: %s", x.OrgID, x.Action)
					}
				}
				var g engine.Organization
				e.call(e.admin, "GET", "/orgs/globex", nil, 200, &g)
				if g.Name != "Globex" {
					t.Fatalf("globex was changed: %+v", g)
				}
				if st := e.f.State(gr.IdentityID); st != "active" {
					t.Fatalf("globex person is %s", st)
				}
			})
		})
	}
}

func ptr[T any](v T) *T { return &v }
