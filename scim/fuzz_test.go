package scim_test

import (
	"net/url"
	"testing"

	"github.com/idsync/idsync/storage/storagetest"
)

// FuzzFilter sends arbitrary filters (and sort keys) to GET /Users over
// real HTTP on SQLite: never a panic, never a 5xx, never a write.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a@b.c"`, `userName Eq "A"`, `emails[type eq "work"].value eq "x"`, `emails[type eq "work" and value co "@"]`,
		`not (title pr)`, `(a eq "b") or c sw "d"`, `meta.created gt "2020-01-01T00:00:00Z"`, `active eq true`, `active eq "True"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`, `members[value eq "x"]`,
		`userName co "%_\\"`, `userName eq "' OR 1=1 --"`, `name.givenName gt 5`, `emails[`, `]`, `"`, `userName eq "x" and`,
		`x.y.z eq "a"`, `emails[type eq "a"].value.more eq "b"`, "userName eq \"\x00\"",
	} {
		f.Add(s, "userName")
	}
	e := newEnv(f, storagetest.SQLite(f))
	id := e.must(201, "POST", "/Users", userBody("fuzz@acme.test", "title", "T"))["id"].(string)
	_ = id
	audit := e.count(f, "audit_events")
	f.Fuzz(func(t *testing.T, filter, sortBy string) {
		e := e.with(t)
		code, body, _ := e.call("GET", "/Users?filter="+url.QueryEscape(filter)+"&sortBy="+url.QueryEscape(sortBy), "")
		if code != 200 && code != 400 {
			t.Fatalf("filter %q sortBy %q: status %d: %s", filter, sortBy, code, body)
		}
		if n := e.count(t, "audit_events"); n != audit {
			t.Fatalf("filter %q wrote", filter)
		}
	})
}

// FuzzPatch sends arbitrary PATCH bodies to a user and a group over real
// HTTP on SQLite: never a panic or 5xx, and a refused PATCH writes nothing.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false,"name.givenName":"x"}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"x"}]}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"x\"]"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":"a@b.c"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"x","displayName":"y"}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails","value":{"value":null}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"other@acme.test"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[value co \"\"]","value":[1]}]}`,
		`{"Operations":null}`, `[]`, `{`, `null`, ``,
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	e := newEnv(f, storagetest.SQLite(f))
	uid := e.must(201, "POST", "/Users", userBody("fuzz@acme.test"))["id"].(string)
	e.must(201, "POST", "/Users", userBody("other@acme.test"))
	gid := e.must(201, "POST", "/Groups", `{"displayName":"fuzz","members":[{"value":"`+uid+`"}]}`)["id"].(string)
	f.Fuzz(func(t *testing.T, body string, user bool) {
		e := e.with(t)
		path := "/Groups/" + gid
		if user {
			path = "/Users/" + uid
		}
		before := e.count(t, "audit_events")
		_, prev, _ := e.call("GET", path, "")
		code, got, _ := e.call("PATCH", path, body)
		if code >= 500 || code == 0 {
			t.Fatalf("PATCH %s %q: status %d: %s", path, body, code, got)
		}
		if code != 200 {
			_, after, _ := e.call("GET", path, "")
			if string(after) != string(prev) || e.count(t, "audit_events") != before {
				t.Fatalf("PATCH %s %q refused (%d) but wrote", path, body, code)
			}
		}
	})
}
