package scim_test

import (
	"fmt"
	"testing"

	"github.com/idsync/idsync/storage"
)

// TestMemberChangeTouchesOneMember: adding or removing one member of a
// large group writes that member's rows and edge only, and audits only it.
func TestMemberChangeTouchesOneMember(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		var members []string
		for i := range 60 {
			members = append(members, `{"value":"`+e.must(201, "POST", "/Users", userBody(fmt.Sprintf("m%d@acme.test", i)))["id"].(string)+`"}`)
		}
		body := `{"displayName":"Large","members":[` + members[0]
		for _, m := range members[1:] {
			body += "," + m
		}
		g := e.must(201, "POST", "/Groups", body+`]}`)["id"].(string)
		newcomer := e.must(201, "POST", "/Users", userBody("new@acme.test"))["id"].(string)
		before := map[string]int{"scim_members": e.f.Count("scim_members", ""), "group_memberships": e.f.Count("group_memberships", ""),
			"audit_events": e.f.Count("audit_events", "")}
		op := func(kind string) string {
			return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"` + kind + `","path":"members","value":[{"value":"` + newcomer + `"}]}]}`
		}
		r := e.must(200, "PATCH", "/Groups/"+g+"?excludedAttributes=members", op("Add"))
		if _, ok := r["members"]; ok {
			t.Fatal("members returned despite excludedAttributes")
		}
		if d := e.f.Count("scim_members", "") - before["scim_members"]; d != 1 {
			t.Fatalf("scim_members grew by %d", d)
		}
		if d := e.f.Count("group_memberships", "") - before["group_memberships"]; d != 1 {
			t.Fatalf("edges grew by %d", d)
		}
		nid := e.f.Account(e.f.SCIM.ID, newcomer).IdentityID
		if n := e.f.Count("group_memberships", "identity_id <> ?", nid); n != before["group_memberships"] {
			t.Fatalf("other edges changed: %d, were %d", n, before["group_memberships"])
		}
		if d := e.f.Count("audit_events", "") - before["audit_events"]; d != 1 {
			t.Fatalf("%d audit events for one member added", d)
		}
		e.must(200, "PATCH", "/Groups/"+g+"?excludedAttributes=members", op("Remove"))
		if e.f.Count("scim_members", "") != before["scim_members"] || e.f.Count("group_memberships", "") != before["group_memberships"] {
			t.Fatal("remove did not undo exactly the add")
		}
		if d := e.f.Count("audit_events", "") - before["audit_events"]; d != 2 {
			t.Fatalf("%d audit events for one add and one remove", d)
		}
	})
}
