package scim_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/storage"
)

const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// seed creates three users whose attributes the filter cases select by,
// and returns their ids by short name.
func seed(t *testing.T, e *env) map[string]string {
	ids := map[string]string{}
	for _, u := range []struct{ key, body string }{
		{"alice", js(map[string]any{"userName": "Alice@Example.com", "externalId": "ext-A", "title": "Engineer", "active": true,
			"name":   map[string]any{"givenName": "Alice", "familyName": "Smith"},
			"emails": []any{map[string]any{"value": "alice@example.com", "type": "work", "primary": true}, map[string]any{"value": "alice@home.test", "type": "home"}},
			ent:      map[string]any{"employeeNumber": "100", "department": "R&D", "manager": map[string]any{"value": "m1"}}})},
		{"bob", js(map[string]any{"userName": "bob@example.com", "externalId": "ext-b", "title": "Manager", "active": false,
			"name":   map[string]any{"givenName": "Bob", "familyName": "Jones"},
			"emails": []any{map[string]any{"value": "bob@example.com", "type": "work"}},
			ent:      map[string]any{"employeeNumber": "200"}})},
		{"carol", js(map[string]any{"userName": "carol_x@other.test", "displayName": "Carol 100%", "active": true})},
	} {
		ids[u.key] = e.must(201, "POST", "/Users", u.body)["id"].(string)
	}
	return ids
}

func names(t *testing.T, ids map[string]string, list map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range list["Resources"].([]any) {
		id := r.(map[string]any)["id"].(string)
		for k, v := range ids {
			if v == id {
				out = append(out, k)
			}
		}
	}
	return out
}

// TestFilters: RFC 7644 §3.4.2.2, every operator, translated to SQL.
func TestFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ids := seed(t, e)
		cases := []struct {
			filter string
			want   []string
		}{
			{`userName eq "alice@example.com"`, []string{"alice"}},
			{`UserName EQ "ALICE@EXAMPLE.COM"`, []string{"alice"}},
			{`userName ne "alice@example.com"`, []string{"bob", "carol"}},
			{`userName co "EXAMPLE"`, []string{"alice", "bob"}},
			{`userName sw "bo"`, []string{"bob"}},
			{`userName ew ".test"`, []string{"carol"}},
			{`userName gt "b"`, []string{"bob", "carol"}},
			{`userName ge "bob@example.com"`, []string{"bob", "carol"}},
			{`userName lt "bob"`, []string{"alice"}},
			{`userName le "bob@example.com"`, []string{"alice", "bob"}},
			{`title pr`, []string{"alice", "bob"}},
			{`not (title pr)`, []string{"carol"}},
			{`active eq true`, []string{"alice", "carol"}},
			{`active eq false`, []string{"bob"}},
			{`active ne true`, []string{"bob"}},
			{`name.givenName eq "alice"`, []string{"alice"}},
			{`name.familyName sw "J"`, []string{"bob"}},
			{`name pr`, []string{"alice", "bob"}},
			{`emails[type eq "work" and value co "bob"]`, []string{"bob"}},
			{`emails[type eq "home"]`, []string{"alice"}},
			{`emails[not (type eq "work")]`, []string{"alice"}},
			{`emails.value eq "alice@home.test"`, []string{"alice"}},
			{`emails eq "bob@example.com"`, []string{"bob"}},
			{`emails pr`, []string{"alice", "bob"}},
			{`emails[type eq "work"].value eq "BOB@example.com"`, []string{"bob"}},
			{`emails[primary eq true]`, []string{"alice"}},
			{`externalId eq "ext-A"`, []string{"alice"}},
			{`externalId eq "ext-a"`, nil},
			{`externalId sw "ext"`, []string{"alice", "bob"}},
			{`externalId co "A"`, []string{"alice"}},
			{ent + `:employeeNumber eq "100"`, []string{"alice"}},
			{ent + `:manager.value eq "m1"`, []string{"alice"}},
			{ent + `:department pr`, []string{"alice"}},
			{`userName sw "a" or userName sw "b"`, []string{"alice", "bob"}},
			{`(userName sw "a" or userName sw "b") and active eq true`, []string{"alice"}},
			{`displayName co "100%"`, []string{"carol"}},
			{`userName co "_"`, []string{"carol"}},
			{`displayName co "_"`, nil},
			{`meta.created gt "2000-01-01T00:00:00Z"`, []string{"alice", "bob", "carol"}},
			{`meta.lastModified lt "2000-01-01T00:00:00Z"`, nil},
			{`meta.resourceType eq "User"`, []string{"alice", "bob", "carol"}},
			{`id eq "` + ids["bob"] + `"`, []string{"bob"}},
			{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"`, []string{"bob"}},
		}
		for _, tc := range cases {
			t.Run("filter="+tc.filter, func(t *testing.T) {
				got := names(t, ids, e.must(200, "GET", "/Users?filter="+url.QueryEscape(tc.filter), ""))
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
		for _, bad := range []string{`userName eq`, `shoeSize eq "x"`, `active gt true`, `userName eq 1`, `emails[type eq "work"`,
			`meta.version eq "x"`, `password eq "x"`, `urn:unknown:x:attr eq "x"`, `name eq "x"`, `emails[type eq "a"][value eq "b"]`,
			`userName eq "x" and`, strings.Repeat(`userName eq "x" or `, 80) + `userName eq "y"`} {
			t.Run("invalid="+bad[:min(len(bad), 40)], func(t *testing.T) {
				r := e.must(400, "GET", "/Users?filter="+url.QueryEscape(bad), "")
				if r["scimType"] != "invalidFilter" {
					t.Fatalf("scimType %v", r["scimType"])
				}
			})
		}
	})
}

// TestListing: RFC 7644 §3.4.2.3-5 sorting, paging, attributes, and
// §3.4.3 POST .search.
func TestListing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ids := seed(t, e)
		g := e.must(201, "POST", "/Groups", `{"displayName":"All","members":[{"value":"`+ids["alice"]+`"}]}`)["id"].(string)
		cases := []struct {
			name, query string
			want        []string
			total       int
		}{
			{"creation order", "", []string{"alice", "bob", "carol"}, 3},
			{"sort by userName", "sortBy=userName", []string{"alice", "bob", "carol"}, 3},
			{"sort descending", "sortBy=userName&sortOrder=descending", []string{"carol", "bob", "alice"}, 3},
			{"sort by sub-attribute", "sortBy=name.familyName&sortOrder=descending", []string{"alice", "bob", "carol"}, 3},
			{"sort by multi-valued", "sortBy=emails&filter=" + url.QueryEscape("emails pr"), []string{"alice", "bob"}, 2},
			{"page 2 of 1", "startIndex=2&count=1", []string{"bob"}, 3},
			{"count=0 counts", "count=0", nil, 3},
			{"startIndex below 1", "startIndex=-4&count=1", []string{"alice"}, 3},
			{"past the end", "startIndex=10", nil, 3},
			{"filter and page", "filter=" + url.QueryEscape(`userName co "example"`) + "&startIndex=2&count=5", []string{"bob"}, 2},
		}
		for _, tc := range cases {
			t.Run("case="+tc.name, func(t *testing.T) {
				r := e.must(200, "GET", "/Users?"+tc.query, "")
				if got := names(t, ids, r); !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				if r["totalResults"] != float64(tc.total) || r["Resources"] == nil {
					t.Fatalf("totalResults %v, want %d (Resources %v)", r["totalResults"], tc.total, r["Resources"])
				}
			})
		}
		t.Run("case=attributes", func(t *testing.T) {
			u := e.must(200, "GET", "/Users/"+ids["alice"]+"?attributes=userName,"+ent+":employeeNumber", "")
			keys := slices.Sorted(mapsKeys(u))
			if !slices.Equal(keys, []string{"id", "schemas", ent, "userName"}) {
				t.Fatalf("keys %v", keys)
			}
			if x := u[ent].(map[string]any); len(x) != 1 || x["employeeNumber"] != "100" {
				t.Fatalf("extension %v", x)
			}
		})
		t.Run("case=excludedAttributes", func(t *testing.T) {
			u := e.must(200, "GET", "/Users/"+ids["alice"]+"?excludedAttributes=emails,name,id", "")
			if u["emails"] != nil || u["name"] != nil || u["id"] != ids["alice"] || u["userName"] == nil {
				t.Fatalf("got %v", u)
			}
			gr := e.must(200, "GET", "/Groups/"+g+"?excludedAttributes=members", "")
			if _, ok := gr["members"]; ok {
				t.Fatalf("members returned: %v", gr)
			}
			gr = e.must(200, "GET", "/Groups?attributes=displayName", "")
			if _, ok := gr["Resources"].([]any)[0].(map[string]any)["members"]; ok {
				t.Fatalf("members returned: %v", gr)
			}
		})
		t.Run("case=search", func(t *testing.T) {
			r := e.must(200, "POST", "/Users/.search", js(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
				"filter": `userName sw "b"`, "attributes": []string{"userName"}, "startIndex": 1, "count": 10}))
			if got := names(t, ids, r); !slices.Equal(got, []string{"bob"}) {
				t.Fatalf("got %v", got)
			}
			root := e.must(200, "POST", "/.search", js(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
				"filter": `displayName pr`}))
			if root["totalResults"] != float64(2) { // carol and the group
				t.Fatalf("root search: %v", root)
			}
			page := e.must(200, "POST", "/.search", js(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
				"startIndex": 4, "count": 1}))
			if res := page["Resources"].([]any); page["totalResults"] != float64(4) || len(res) != 1 || res[0].(map[string]any)["id"] != g {
				t.Fatalf("root search page: %v", page)
			}
		})
	})
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestPatch: RFC 7644 §3.5.2 add/replace/remove with and without paths,
// value filters, sub-attributes, URN paths, and the dialect forms.
func TestPatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		base := map[string]any{"userName": "p@acme.test", "title": "T", "active": true,
			"name":   map[string]any{"givenName": "G", "familyName": "F"},
			"emails": []any{map[string]any{"value": "p@acme.test", "type": "work", "primary": true}},
			ent:      map[string]any{"department": "D"}}
		cases := []struct {
			name   string
			ops    string
			status int
			want   string // JSON subset of the result, or scimType on error
			absent []string
		}{
			{"add without path", `[{"op":"add","value":{"nickName":"N","emails":[{"value":"o@x.test","type":"other"}]}}]`, 200,
				`{"nickName":"N","emails":[{"value":"p@acme.test"},{"value":"o@x.test","type":"other"}]}`, nil},
			{"replace multi-valued", `[{"op":"replace","path":"emails","value":[{"value":"n@x.test","type":"work"}]}]`, 200,
				`{"emails":[{"value":"n@x.test","type":"work"}]}`, nil},
			{"remove attribute", `[{"op":"remove","path":"title"}]`, 200, `{}`, []string{"title"}},
			{"remove by value filter", `[{"op":"remove","path":"emails[type eq \"work\"]"}]`, 200, `{}`, []string{"emails"}},
			{"replace sub-attribute by filter", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"w@x.test"}]`, 200,
				`{"emails":[{"value":"w@x.test","type":"work","primary":true}]}`, nil},
			{"add to a filter that matches nothing creates it", `[{"op":"add","path":"emails[type eq \"home\"].value","value":"h@x.test"}]`, 200,
				`{"emails":[{"value":"p@acme.test"},{"type":"home","value":"h@x.test"}]}`, nil},
			{"remove sub-attribute", `[{"op":"remove","path":"name.givenName"}]`, 200, `{"name":{"familyName":"F"}}`, nil},
			{"replace sub-attribute", `[{"op":"replace","path":"name.familyName","value":"X"}]`, 200, `{"name":{"givenName":"G","familyName":"X"}}`, nil},
			{"add complex merges", `[{"op":"add","path":"name","value":{"middleName":"M"}}]`, 200, `{"name":{"givenName":"G","familyName":"F","middleName":"M"}}`, nil},
			{"URN path", `[{"op":"replace","path":"` + ent + `:department","value":"Ops"}]`, 200, `{"` + ent + `":{"department":"Ops"}}`, nil},
			{"URN object without path", `[{"op":"replace","value":{"` + ent + `":{"costCenter":"C1"}}}]`, 200, `{"` + ent + `":{"department":"D","costCenter":"C1"}}`, nil},
			{"dotted and URN keys without path", `[{"op":"Replace","value":{"name.givenName":"Z","` + ent + `:division":"V"}}]`, 200,
				`{"name":{"givenName":"Z"},"` + ent + `":{"division":"V"}}`, nil},
			{"capitalised ops", `[{"op":"Add","path":"nickName","value":"n"},{"op":"Remove","path":"title"}]`, 200, `{"nickName":"n"}`, []string{"title"}},
			{"string booleans", `[{"op":"replace","path":"active","value":"false"}]`, 200, `{"active":false}`, nil},
			{"manager as a string", `[{"op":"replace","path":"` + ent + `:manager","value":"m-9"}]`, 200, `{"` + ent + `":{"manager":{"value":"m-9"}}}`, nil},
			{"remove values by list", `[{"op":"remove","path":"emails","value":[{"value":"p@acme.test"}]}]`, 200, `{}`, []string{"emails"}},
			{"password accepted, not stored", `[{"op":"replace","path":"password","value":"pw"}]`, 200, `{}`, []string{"password"}},
			{"remove without path", `[{"op":"remove"}]`, 400, "noTarget", nil},
			{"unknown op", `[{"op":"move","path":"title"}]`, 400, "invalidSyntax", nil},
			{"unknown attribute", `[{"op":"add","path":"shoeSize","value":"42"}]`, 400, "invalidPath", nil},
			{"bad path", `[{"op":"add","path":"emails[","value":"x"}]`, 400, "invalidPath", nil},
			{"wrong type", `[{"op":"replace","path":"active","value":42}]`, 400, "invalidValue", nil},
			{"read-only id", `[{"op":"replace","path":"id","value":""}]`, 400, "mutability", nil},
			{"filter on a single-valued attribute", `[{"op":"replace","path":"title[value eq \"x\"]","value":"y"}]`, 400, "invalidPath", nil},
			{"replace with a non-eq filter matching nothing", `[{"op":"replace","path":"emails[value co \"zzz\"].type","value":"x"}]`, 400, "noTarget", nil},
			{"userName removed", `[{"op":"remove","path":"userName"}]`, 400, "invalidValue", nil},
			{"one bad op rolls back all", `[{"op":"replace","path":"title","value":"NEW"},{"op":"replace","path":"active","value":42}]`, 400, "invalidValue", nil},
		}
		for i, tc := range cases {
			t.Run("case="+tc.name, func(t *testing.T) {
				doc := map[string]any{}
				for k, v := range base {
					doc[k] = v
				}
				doc["userName"] = "p" + string(rune('a'+i)) + "@acme.test"
				id := e.must(201, "POST", "/Users", js(doc))["id"].(string)
				code, got, _ := e.call("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+tc.ops+`}`)
				if code != tc.status {
					t.Fatalf("status %d, want %d: %s", code, tc.status, got)
				}
				res := decode(t, got)
				if code != 200 {
					if res["scimType"] != tc.want {
						t.Fatalf("scimType %v, want %s: %s", res["scimType"], tc.want, got)
					}
					after := e.must(200, "GET", "/Users/"+id, "")
					if after["meta"].(map[string]any)["version"] != `W/"1"` || after["title"] != "T" {
						t.Fatalf("a refused PATCH wrote: %v", after)
					}
					return
				}
				var want any
				if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
					t.Fatal(err)
				}
				if err := subset(want, any(res), "$"); err != nil {
					t.Fatalf("%v\ngot %s", err, got)
				}
				for _, k := range tc.absent {
					if _, ok := res[k]; ok {
						t.Fatalf("%s still there: %s", k, got)
					}
				}
				if again := e.must(200, "GET", "/Users/"+id, ""); js(again) != js(res) {
					t.Fatalf("GET differs from the PATCH response:\n%v\n%v", js(again), js(res))
				}
			})
		}
	})
}
