package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// TestTenantIsolation sends directory A's token against every endpoint of
// directory B (same organization) and of directory C (another
// organization): nothing of theirs is visible or writable.
func TestTenantIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		b := e.f.NewSource(engine.KindSCIM, "okta-b", 15, false)
		org2, err := e.f.Engine.CreateOrganization(bg, engine.Admin{Actor: "test"}, engine.Organization{Slug: "globex", Name: "Globex"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.f.Engine.CreateSource(bg, engine.Admin{Actor: "test"}, engine.Source{OrgID: org2.ID, Kind: engine.KindSCIM, Name: "entra-c", Priority: 10}, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, victim := range []engine.Source{b, c} {
			t.Run("victim="+victim.Name, func(t *testing.T) {
				vt := e.newToken(victim.ID, "admin")
				as := func(tok string, want int, method, path, body string) []byte {
					t.Helper()
					code, got, _ := e.callAs(tok, method, path, body)
					if code != want {
						t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, got)
					}
					return got
				}
				uname := "secret-" + victim.Name + "@acme.test"
				vu := decode(t, as(vt, 201, "POST", "/Users", userBody(uname)))["id"].(string)
				vg := decode(t, as(vt, 201, "POST", "/Groups", `{"displayName":"vg-`+victim.Name+`","members":[{"value":"`+vu+`"}]}`))["id"].(string)
				patchBody := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
				cases := []struct {
					name, method, path, body string
					want                     int
				}{
					{"get user", "GET", "/Users/" + vu, "", 404},
					{"put user", "PUT", "/Users/" + vu, userBody(uname), 404},
					{"patch user", "PATCH", "/Users/" + vu, patchBody, 404},
					{"delete user", "DELETE", "/Users/" + vu, "", 404},
					{"get group", "GET", "/Groups/" + vg, "", 404},
					{"put group", "PUT", "/Groups/" + vg, `{"displayName":"stolen"}`, 404},
					{"patch group", "PATCH", "/Groups/" + vg, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members"}]}`, 404},
					{"delete group", "DELETE", "/Groups/" + vg, "", 404},
				}
				for _, tc := range cases {
					t.Run("case="+tc.name, func(t *testing.T) { as(e.token, tc.want, tc.method, tc.path, tc.body) })
				}
				t.Run("case=lists and filters", func(t *testing.T) {
					for _, path := range []string{"/Users", "/Groups", `/Users?filter=userName+eq+"` + uname + `"`,
						`/Users?filter=id+eq+"` + vu + `"`, `/Groups?filter=members.value+eq+"` + vu + `"`} {
						got := string(as(e.token, 200, "GET", path, ""))
						if strings.Contains(got, vu) || strings.Contains(got, vg) {
							t.Fatalf("GET %s shows the other directory: %s", path, got)
						}
					}
					got := string(as(e.token, 200, "POST", "/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}`))
					if strings.Contains(got, vu) || strings.Contains(got, vg) {
						t.Fatalf("/.search shows the other directory: %s", got)
					}
				})
				t.Run("case=member from another directory", func(t *testing.T) {
					g := decode(t, as(e.token, 201, "POST", "/Groups", `{"displayName":"mine-`+victim.Name+`"}`))["id"].(string)
					as(e.token, 400, "PATCH", "/Groups/"+g, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+vu+`"}]}]}`)
				})
				t.Run("case=bulk", func(t *testing.T) {
					got := string(as(e.token, 200, "POST", "/Bulk", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[
						{"method":"DELETE","path":"/Users/`+vu+`"},{"method":"PATCH","path":"/Groups/`+vg+`","data":{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members"}]}}]}`))
					if strings.Count(got, `"status":"404","response"`) != 2 {
						t.Fatalf("bulk reached the other directory: %s", got)
					}
				})
				t.Run("case=same userName is free in another directory", func(t *testing.T) {
					as(e.token, 201, "POST", "/Users", userBody(strings.ToUpper(uname)))
				})
				t.Run("case=untouched", func(t *testing.T) {
					u := decode(t, as(vt, 200, "GET", "/Users/"+vu, ""))
					if u["meta"].(map[string]any)["version"] != `W/"1"` || u["active"] != true {
						t.Fatalf("the other directory's user changed: %v", u)
					}
					g := decode(t, as(vt, 200, "GET", "/Groups/"+vg, ""))
					if len(g["members"].([]any)) != 1 || g["displayName"] != "vg-"+victim.Name {
						t.Fatalf("the other directory's group changed: %v", g)
					}
				})
			})
		}
	})
}

// TestAuthentication covers missing, wrong, revoked and foreign tokens and
// read-only scope.
func TestAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, admin, err := e.f.Engine.CreateToken(bg, engine.Admin{Actor: "test"}, engine.Token{Kind: engine.TokenAdmin, Name: "adm"})
		if err != nil {
			t.Fatal(err)
		}
		revokedTok, revokedSecret, err := e.f.Engine.CreateToken(bg, engine.Admin{Actor: "test"}, engine.Token{Kind: engine.TokenSCIM, SourceID: e.f.SCIM.ID, Name: "old"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.f.Engine.RevokeToken(bg, engine.Admin{Actor: "test"}, revokedTok.ID); err != nil {
			t.Fatal(err)
		}
		read := e.newToken(e.f.SCIM.ID, "read")
		cases := []struct {
			name, token, method, path, body string
			want                            int
		}{
			{"no token", "", "GET", "/Users", "", http.StatusUnauthorized},
			{"wrong token", "idss_nope", "GET", "/Users", "", http.StatusUnauthorized},
			{"revoked token", revokedSecret, "GET", "/Users", "", http.StatusUnauthorized},
			{"admin API key is not a directory token", admin, "GET", "/Users", "", http.StatusUnauthorized},
			{"read scope reads", read, "GET", "/Users", "", http.StatusOK},
			{"read scope searches", read, "POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}`, http.StatusOK},
			{"read scope may not write", read, "POST", "/Users", userBody("r@acme.test"), http.StatusForbidden},
			{"directory token", e.token, "GET", "/ServiceProviderConfig", "", http.StatusOK},
		}
		for _, tc := range cases {
			t.Run("case="+tc.name, func(t *testing.T) {
				code, got, hdr := e.callAs(tc.token, tc.method, tc.path, tc.body)
				if code != tc.want {
					t.Fatalf("%d, want %d: %s", code, tc.want, got)
				}
				if code == http.StatusUnauthorized {
					if hdr.Get("WWW-Authenticate") == "" || !strings.Contains(string(got), `"status":"401"`) {
						t.Fatalf("401 without a challenge or SCIM error: %v %s", hdr, got)
					}
				}
			})
		}
		if n := e.f.Count("scim_resources", ""); n != 0 {
			t.Fatalf("%d resources written by refused requests", n)
		}
	})
}
