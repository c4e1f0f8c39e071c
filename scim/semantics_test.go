package scim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim"
	"github.com/idsync/idsync/storage"
)

// TestErrors: RFC 7644 §3.12 — each rejected request gets its status,
// scimType and a readable detail, and writes nothing.
func TestErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		small := e.f.NewSource(engine.KindSCIM, "small", 30, false)
		if _, err := e.f.Engine.UpdateSource(bg, engine.Admin{Actor: "test"}, small.ID, func(s *engine.Source) error {
			s.Config = json.RawMessage(`{"maxBodyBytes":512}`)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		smallTok := e.newToken(small.ID, "admin")
		id := e.must(201, "POST", "/Users", userBody("err@acme.test"))["id"].(string)
		gid := e.must(201, "POST", "/Groups", `{"displayName":"G"}`)["id"].(string)
		resources, audit := e.f.Count("scim_resources", ""), e.f.Count("audit_events", "")
		cases := []struct {
			name, token, method, path, body string
			status                          int
			scimType                        string
			hdr                             []string
		}{
			{"malformed JSON", "", "POST", "/Users", `{"userName":`, 400, "invalidSyntax", nil},
			{"not an object", "", "POST", "/Users", `[1,2]`, 400, "invalidSyntax", nil},
			{"trailing garbage", "", "POST", "/Users", `{"userName":"a@b.c"} {}`, 400, "invalidSyntax", nil},
			{"unknown attribute", "", "POST", "/Users", `{"userName":"x@acme.test","shoeSize":42}`, 400, "invalidSyntax", nil},
			{"unknown sub-attribute", "", "POST", "/Users", `{"userName":"x@acme.test","name":{"nick":"n"}}`, 400, "invalidSyntax", nil},
			{"unknown extension", "", "POST", "/Users", `{"userName":"x@acme.test","urn:x:y":{"a":1}}`, 400, "invalidSyntax", nil},
			{"wrong type", "", "POST", "/Users", `{"userName":5}`, 400, "invalidValue", nil},
			{"wrong boolean", "", "POST", "/Users", `{"userName":"x@acme.test","active":"yes"}`, 400, "invalidValue", nil},
			{"missing userName", "", "POST", "/Users", `{"active":true}`, 400, "invalidValue", nil},
			{"invalid email for the graph", "", "POST", "/Users", `{"userName":"x@acme.test","emails":[{"value":"not an email"}]}`, 400, "invalidValue", nil},
			{"missing displayName", "", "POST", "/Groups", `{"members":[]}`, 400, "invalidValue", nil},
			{"duplicate userName", "", "POST", "/Users", userBody("ERR@acme.test"), 409, "uniqueness", nil},
			{"duplicate group", "", "POST", "/Groups", `{"displayName":"g"}`, 409, "uniqueness", nil},
			{"rename onto a taken userName", "", "PUT", "/Users/" + id + "x", userBody("err@acme.test"), 404, "", nil},
			{"bad filter", "", "GET", "/Users?filter=" + strings.ReplaceAll(`userName eq`, " ", "%20"), "", 400, "invalidFilter", nil},
			{"bad count", "", "GET", "/Users?count=ten", "", 400, "invalidValue", nil},
			{"bad sortBy", "", "GET", "/Users?sortBy=shoeSize", "", 400, "invalidFilter", nil},
			{"bad sortOrder", "", "GET", "/Users?sortOrder=up", "", 400, "invalidValue", nil},
			{"not a PatchOp", "", "PATCH", "/Users/" + id, `{"Operations":[{"op":"add","path":"title","value":"x"}]}`, 400, "invalidSyntax", nil},
			{"empty PatchOp", "", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`, 400, "invalidSyntax", nil},
			{"stale If-Match", "", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"title","value":"x"}]}`, 412, "", []string{"If-Match", `W/"7"`}},
			{"stale If-Match on PUT", "", "PUT", "/Users/" + id, userBody("err@acme.test"), 412, "", []string{"If-Match", `W/"0"`}},
			{"stale If-Match on DELETE", "", "DELETE", "/Groups/" + gid, "", 412, "", []string{"If-Match", `W/"3"`}},
			{"unknown resource", "", "GET", "/Users/nope", "", 404, "", nil},
			{"unknown endpoint", "", "GET", "/Widgets", "", 404, "", nil},
			{"method not allowed", "", "POST", "/Users/" + id, "{}", 405, "", nil},
			{"oversized body", smallTok, "POST", "/Users", userBody("big@acme.test", "title", strings.Repeat("x", 600)), 413, "", nil},
			{"bulk without schema", "", "POST", "/Bulk", `{"Operations":[]}`, 400, "invalidSyntax", nil},
			{"search without schema", "", "POST", "/Users/.search", `{}`, 400, "invalidSyntax", nil},
		}
		for _, tc := range cases {
			t.Run("case="+tc.name, func(t *testing.T) {
				tok := tc.token
				if tok == "" {
					tok = e.token
				}
				code, got, hdr := e.callAs(tok, tc.method, tc.path, tc.body, tc.hdr...)
				if code != tc.status {
					t.Fatalf("status %d, want %d: %s", code, tc.status, got)
				}
				r := decode(t, got)
				if r["status"] != http.StatusText(0)+itoa(tc.status) || r["detail"] == "" || r["detail"] == nil {
					t.Fatalf("not an RFC 7644 §3.12 error: %s", got)
				}
				if s, _ := r["scimType"].(string); s != tc.scimType {
					t.Fatalf("scimType %q, want %q: %s", s, tc.scimType, got)
				}
				if !strings.Contains(hdr.Get("Content-Type"), "application/scim+json") {
					t.Fatalf("content type %q", hdr.Get("Content-Type"))
				}
			})
		}
		if r, a := e.f.Count("scim_resources", ""), e.f.Count("audit_events", ""); r != resources || a != audit {
			t.Fatalf("rejected requests wrote: resources %d→%d, audit events %d→%d", resources, r, audit, a)
		}
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestETags: RFC 7644 §3.14.
func TestETags(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		code, body, hdr := e.call("POST", "/Users", userBody("etag@acme.test"))
		if code != 201 || hdr.Get("ETag") != `W/"1"` || !strings.HasSuffix(hdr.Get("Location"), "/scim/v2/Users/"+decode(t, body)["id"].(string)) {
			t.Fatalf("create: %d %v %s", code, hdr, body)
		}
		id := decode(t, body)["id"].(string)
		patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"v2"}]}`
		steps := []struct {
			name, method, path, body string
			hdr                      []string
			status                   int
			etag                     string
		}{
			{"unchanged: 304", "GET", "/Users/" + id, "", []string{"If-None-Match", `W/"1"`}, 304, `W/"1"`},
			{"changed: 200", "GET", "/Users/" + id, "", []string{"If-None-Match", `W/"9"`}, 200, `W/"1"`},
			{"stale If-Match", "PATCH", "/Users/" + id, patch, []string{"If-Match", `W/"0"`}, 412, ""},
			{"current If-Match", "PATCH", "/Users/" + id, patch, []string{"If-Match", `W/"1"`}, 200, `W/"2"`},
			{"If-Match *", "PUT", "/Users/" + id, userBody("etag@acme.test"), []string{"If-Match", "*"}, 200, `W/"3"`},
			{"stale delete", "DELETE", "/Users/" + id, "", []string{"If-Match", `W/"2"`}, 412, ""},
			{"delete", "DELETE", "/Users/" + id, "", []string{"If-Match", `W/"3"`}, 204, ""},
		}
		for _, s := range steps {
			code, got, hdr := e.call(s.method, s.path, s.body, s.hdr...)
			if code != s.status || hdr.Get("ETag") != s.etag {
				t.Fatalf("%s: %d %q, want %d %q: %s", s.name, code, hdr.Get("ETag"), s.status, s.etag, got)
			}
		}
	})
}

// TestBulk: RFC 7644 §3.7.
func TestBulk(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		req := func(fail int, ops ...string) string {
			return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"failOnErrors":` + itoa(fail) + `,"Operations":[` + strings.Join(ops, ",") + `]}`
		}
		t.Run("case=bulkId references, forward too", func(t *testing.T) {
			r := e.must(200, "POST", "/Bulk", req(0,
				`{"method":"POST","path":"/Groups","bulkId":"g1","data":{"displayName":"Bulk","members":[{"value":"bulkId:u1"}]}}`,
				`{"method":"POST","path":"/Users","bulkId":"u1","data":`+userBody("bulk1@acme.test")+`}`,
				`{"method":"PATCH","path":"/Users/bulkId:u1","data":{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"title","value":"T"}]}}`))
			ops := r["Operations"].([]any)
			if len(ops) != 3 {
				t.Fatalf("%v", r)
			}
			var uid string
			for _, o := range ops {
				m := o.(map[string]any)
				if m["bulkId"] == "u1" {
					uid = m["location"].(string)[strings.LastIndex(m["location"].(string), "/")+1:]
				}
				if m["status"] != "201" && m["status"] != "200" {
					t.Fatalf("operation failed: %v", m)
				}
			}
			a := e.f.Account(e.f.SCIM.ID, uid)
			if g := e.f.GroupsOf(a.IdentityID); len(g) != 1 || g[0] != "Bulk" {
				t.Fatalf("groups %v", g)
			}
			if u := e.must(200, "GET", "/Users/"+uid, ""); u["title"] != "T" {
				t.Fatalf("%v", u)
			}
		})
		t.Run("case=failOnErrors stops", func(t *testing.T) {
			r := e.must(200, "POST", "/Bulk", req(1,
				`{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":5}}`,
				`{"method":"POST","path":"/Users","bulkId":"b","data":`+userBody("bulk2@acme.test")+`}`))
			ops := r["Operations"].([]any)
			if len(ops) != 1 || ops[0].(map[string]any)["status"] != "400" {
				t.Fatalf("%v", r)
			}
			if e.f.Count("scim_resources", "user_name_norm = ?", "bulk2@acme.test") != 0 {
				t.Fatal("ran past failOnErrors")
			}
		})
		t.Run("case=unresolvable bulkId", func(t *testing.T) {
			r := e.must(200, "POST", "/Bulk", req(0, `{"method":"DELETE","path":"/Users/bulkId:never"}`))
			if ops := r["Operations"].([]any); ops[0].(map[string]any)["status"] != "409" {
				t.Fatalf("%v", r)
			}
		})
		t.Run("case=too many operations", func(t *testing.T) {
			ops := make([]string, 1001)
			for i := range ops {
				ops[i] = `{"method":"DELETE","path":"/Users/x"}`
			}
			e.must(413, "POST", "/Bulk", req(0, ops...))
		})
		t.Run("case=advertised", func(t *testing.T) {
			c := e.must(200, "GET", "/ServiceProviderConfig", "")
			b := c["bulk"].(map[string]any)
			if b["supported"] != true || b["maxOperations"] != float64(1000) || b["maxPayloadSize"] != float64(1<<20) {
				t.Fatalf("%v", c)
			}
		})
	})
}

// TestDiscovery: RFC 7644 §4.
func TestDiscovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		c := e.must(200, "GET", "/ServiceProviderConfig", "")
		for _, k := range []string{"patch", "filter", "sort", "etag", "bulk"} {
			if c[k].(map[string]any)["supported"] != true {
				t.Fatalf("%s not advertised: %v", k, c)
			}
		}
		if c["changePassword"].(map[string]any)["supported"] != false {
			t.Fatal("changePassword advertised")
		}
		s := e.must(200, "GET", "/Schemas", "")
		if s["totalResults"] != float64(3) {
			t.Fatalf("%v", s)
		}
		u := e.must(200, "GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "")
		if !strings.Contains(js(u), `"name":"userName"`) || !strings.Contains(js(u), `"uniqueness":"server"`) {
			t.Fatalf("%v", u)
		}
		rt := e.must(200, "GET", "/ResourceTypes", "")
		if rt["totalResults"] != float64(2) || !strings.Contains(js(rt), ent) {
			t.Fatalf("%v", rt)
		}
		e.must(200, "GET", "/ResourceTypes/Group", "")
		e.must(404, "GET", "/Schemas/urn:nope", "")
	})
}

// TestSemantics: JIT adoption, DELETE, deprovisioning, no password
// anywhere.
func TestSemantics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		t.Run("case=JIT identity adopted by a directory that trusts its emails", func(t *testing.T) {
			trusted := e.f.NewSource(engine.KindSCIM, "trusted", 12, true)
			tok := e.newToken(trusted.ID, "admin")
			jit := e.f.Apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "iss|sub-1", Login: true, EmailVerified: true,
				Attrs: engine.Attrs{"email": "jit@acme.test", "userName": "jit@acme.test"}})
			code, body, _ := e.callAs(tok, "POST", "/Users", userBody("jit@acme.test"))
			if code != 201 {
				t.Fatalf("%d %s", code, body)
			}
			a := e.f.Account(trusted.ID, decode(t, body)["id"].(string))
			if a.IdentityID != jit.IdentityID {
				t.Fatalf("SCIM create made person %s, JIT person is %s", a.IdentityID, jit.IdentityID)
			}
			if n := e.f.Count("identities", "email_norm = ?", "jit@acme.test"); n != 1 {
				t.Fatalf("%d people with the email", n)
			}
		})
		t.Run("case=unverified email match queues a conflict, no takeover, no 409", func(t *testing.T) {
			jit := e.f.Apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "iss|sub-2", Login: true, EmailVerified: true,
				Attrs: engine.Attrs{"email": "jit2@acme.test", "userName": "jit2@acme.test", "givenName": "Before"}})
			u := e.must(201, "POST", "/Users", userBody("jit2@acme.test", "name", map[string]any{"givenName": "After"}))
			if n := e.f.Count("conflicts", "source_id = ? AND source_key = ? AND status = 'open'", e.f.SCIM.ID, u["id"]); n != 1 {
				t.Fatalf("%d open conflicts", n)
			}
			if got := e.f.Identity(jit.IdentityID).Attrs["givenName"]; got != "Before" {
				t.Fatalf("JIT person taken over: givenName %q", got)
			}
			// The directory keeps working on its resource meanwhile.
			e.must(200, "PATCH", "/Users/"+u["id"].(string), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"T"}]}`)
			e.must(200, "GET", "/Users/"+u["id"].(string), "")
		})
		t.Run("case=DELETE keeps a person another source holds", func(t *testing.T) {
			u := e.must(201, "POST", "/Users", userBody("both@acme.test"))
			a := e.f.Account(e.f.SCIM.ID, u["id"].(string))
			e.f.Apply(engine.Observation{SourceID: e.f.LDAP.ID, Key: "uid=both", EmailVerified: true, Attrs: engine.Attrs{"email": "both@acme.test", "userName": "both@acme.test"}})
			e.must(204, "DELETE", "/Users/"+u["id"].(string), "")
			if id := e.f.Identity(a.IdentityID); id.ID == "" {
				t.Fatal("person deleted")
			}
			if acc := e.f.Account(e.f.SCIM.ID, u["id"].(string)); !acc.Removed {
				t.Fatal("account not removed")
			}
		})
		t.Run("case=DELETE deletes a person only the directory held", func(t *testing.T) {
			u := e.must(201, "POST", "/Users", userBody("only@acme.test"))
			a := e.f.Account(e.f.SCIM.ID, u["id"].(string))
			e.must(204, "DELETE", "/Users/"+u["id"].(string), "")
			if n := e.f.Count("identities", "id = ?", a.IdentityID); n != 0 {
				t.Fatal("person kept")
			}
			if n := e.f.Count("audit_events", "action = ? AND identity_id = ?", "identity.deleted", a.IdentityID); n != 1 {
				t.Fatalf("%d identity.deleted events", n)
			}
		})
		t.Run("case=password never stored or audited", func(t *testing.T) {
			e.must(201, "POST", "/Users", userBody("pw@acme.test", "password", "S3cr3t-Passw0rd"))
			for _, q := range []struct{ table, col string }{{"scim_resources", "doc"}, {"accounts", "raw"}, {"audit_events", "changes"}, {"conflicts", "observation"}} {
				if n := e.f.Count(q.table, q.col+" LIKE ?", "%S3cr3t-Passw0rd%"); n != 0 {
					t.Fatalf("%s.%s holds the password", q.table, q.col)
				}
			}
		})
		t.Run("case=audited on the scim channel by token", func(t *testing.T) {
			if n := e.f.Count("audit_events", "channel = 'scim' AND actor LIKE 'scim-token:%'"); n == 0 {
				t.Fatal("no scim audit events")
			}
		})
	})
}

// TestConfigValidate reports every problem at once.
func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  scim.Config
		want []string
	}{
		{"defaults", scim.Config{}, nil},
		{"all bad", scim.Config{MaxBodyBytes: -1, MaxResults: 20000, BulkMaxOperations: -2, BulkMaxPayloadBytes: 1 << 40},
			[]string{"maxBodyBytes", "maxResults", "bulkMaxOperations", "bulkMaxPayloadBytes"}},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == nil) {
				t.Fatalf("err %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%v does not name %s", err, w)
				}
			}
		})
	}
}
