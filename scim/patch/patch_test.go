package patch_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/idsync/idsync/scim/filter"
	"github.com/idsync/idsync/scim/patch"
)

func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNormalize: what a client sends becomes what is stored.
func TestNormalize(t *testing.T) {
	cases := []struct {
		name, in, want, errType string
	}{
		{"string boolean", `{"userName":"a","active":"False"}`, `{"userName":"a","active":false}`, ""},
		{"attribute names are case-insensitive", `{"USERNAME":"a","Name":{"GivenName":"g"}}`, `{"userName":"a","name":{"givenName":"g"}}`, ""},
		{"manager as a string", `{"userName":"a","` + filter.EnterpriseURN + `":{"manager":"m"}}`, `{"userName":"a","` + filter.EnterpriseURN + `":{"manager":{"value":"m"}}}`, ""},
		{"password, id, meta and read-only groups dropped", `{"userName":"a","password":"p","id":"x","meta":{},"groups":[]}`, `{"userName":"a"}`, ""},
		{"null is unassigned", `{"userName":"a","title":null}`, `{"userName":"a"}`, ""},
		{"listed foreign extension kept", `{"schemas":["urn:x:ext"],"userName":"a","urn:x:ext":{"k":1}}`, `{"schemas":["urn:x:ext"],"userName":"a","urn:x:ext":{"k":1}}`, ""},
		{"unknown attribute", `{"userName":"a","shoe":1}`, "", patch.InvalidSyntax},
		{"unlisted extension", `{"userName":"a","urn:x:ext":{}}`, "", patch.InvalidSyntax},
		{"wrong type", `{"userName":["a"]}`, "", patch.InvalidValue},
		{"bad boolean", `{"userName":"a","active":"maybe"}`, "", patch.InvalidValue},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			got, err := patch.Normalize(filter.User, obj(t, tc.in))
			if tc.errType != "" {
				var pe *patch.Error
				if !errors.As(err, &pe) || pe.ScimType != tc.errType {
					t.Fatalf("err %v, want %s", err, tc.errType)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			if !reflect.DeepEqual(obj(t, string(b)), obj(t, tc.want)) {
				t.Fatalf("got %s, want %s", b, tc.want)
			}
		})
	}
}

// TestMemberOps: every dialect form of a member change.
func TestMemberOps(t *testing.T) {
	cases := []struct {
		name, ops string
		want      []patch.MemberOp
	}{
		{"Entra add with $ref null", `[{"op":"Add","path":"members","value":[{"$ref":null,"value":"u1"}]}]`,
			[]patch.MemberOp{{Kind: "add", Members: []patch.Member{{Value: "u1"}}}}},
		{"Entra remove by value list", `[{"op":"Remove","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]`,
			[]patch.MemberOp{{Kind: "remove", Members: []patch.Member{{Value: "u1"}, {Value: "u2"}}}}},
		{"filtered remove", `[{"op":"remove","path":"members[value eq \"u1\"]"}]`,
			[]patch.MemberOp{{Kind: "remove", Members: []patch.Member{{Value: "u1"}}}}},
		{"remove all", `[{"op":"remove","path":"members"}]`, []patch.MemberOp{{Kind: "remove"}}},
		{"Okta add with display", `[{"op":"add","path":"members","value":[{"value":"u1","display":"one"}]}]`,
			[]patch.MemberOp{{Kind: "add", Members: []patch.Member{{Value: "u1", Display: "one"}}}}},
		{"replace all", `[{"op":"replace","path":"members","value":[]}]`, []patch.MemberOp{{Kind: "replace", Members: []patch.Member{}}}},
		{"no-path replace", `[{"op":"replace","value":{"members":[{"value":"u3"}]}}]`,
			[]patch.MemberOp{{Kind: "replace", Members: []patch.Member{{Value: "u3"}}}}},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			ops, err := patch.Parse([]byte(`{"schemas":["` + patch.PatchOpURN + `"],"Operations":` + tc.ops + `}`))
			if err != nil {
				t.Fatal(err)
			}
			got, err := patch.Apply(filter.Group, map[string]any{"displayName": "g"}, "gid", ops)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
