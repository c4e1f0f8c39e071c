package engine

import (
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestContentHashMatchesJSON: the hand-written encoding that ContentHash
// hashes is byte for byte encoding/json's (hashes stored by earlier
// versions were of json.Marshal(hashInput)), over random observations with
// strings that need every kind of escaping.
func TestContentHashMatchesJSON(t *testing.T) {
	pieces := []string{"", "a", "Ada", "R&D", "<b>", "x\"y", `back\slash`, "tab\there", "nl\n", "é", "日本", "\u2028", "\x7f",
		"\xff\xfe", "ctl\x01", "user@example.com", "  spaced  ", "mixed CASE"}
	str := func(r *rand.Rand) string {
		s := ""
		for n := r.IntN(3); n >= 0; n-- {
			s += pieces[r.IntN(len(pieces))]
		}
		return s
	}
	strs := func(r *rand.Rand) []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		out := make([]string, 1+r.IntN(4))
		for i := range out {
			out[i] = str(r)
		}
		return out
	}
	raws := []json.RawMessage{nil, json.RawMessage(`{"a": 1, "b": "<x>"}`), json.RawMessage(" [1, 2 ,3] "), json.RawMessage(`"s&t"`), json.RawMessage(`{not json`)}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		o := Observation{Key: "k", EmailVerified: r.IntN(2) == 0, Inactive: r.IntN(4) == 0, Removed: r.IntN(8) == 0,
			Groups: strs(r), Roles: strs(r), Raw: raws[r.IntN(len(raws))]}
		if r.IntN(3) > 0 {
			o.Attrs = Attrs{}
			for n := r.IntN(6); n >= 0; n-- {
				o.Attrs[str(r)] = str(r)
			}
		}
		if r.IntN(3) == 0 {
			o.GroupMode = GroupMode(str(r))
		}
		want := o.hashInputJSON()
		got, ok := o.appendHashInput(nil)
		if !ok {
			if json.Valid(o.Raw) {
				t.Fatalf("case %d: fast encoding refused valid raw %q", i, o.Raw)
			}
			continue
		}
		if string(got) != string(want) {
			t.Fatalf("case %d (%+v):\n got  %s\n want %s", i, o, got, want)
		}
	}
}

func TestValidAttrNameMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]{0,127}$`)
	names := []string{"", "a", "A", "1a", "_a", "a1", "a_b.c:d-e", "a b", "a/b", "é", "urn:ietf:params:scim", "a\x00",
		string(make([]byte, 128)), "a" + string(make([]byte, 127))}
	long := make([]byte, 128)
	for i := range long {
		long[i] = 'x'
	}
	names = append(names, string(long), string(long)+"x", string(long[:127]))
	for _, n := range names {
		if got, want := validAttrName(n), re.MatchString(n); got != want {
			t.Errorf("validAttrName(%q) = %v, pattern says %v", n, got, want)
		}
	}
}
