package storage

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

func TestProvenanceEncoding(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 0, 0, 123456000, time.UTC)
	later := at.Add(time.Hour)
	for _, tc := range []struct {
		name string
		in   map[string]reconcile.Provenance
	}{
		{"empty", map[string]reconcile.Provenance{}},
		{"one origin", map[string]reconcile.Provenance{
			"email": {SourceID: "s1", AccountID: "a1", At: at}, "department": {SourceID: "s1", AccountID: "a1", At: at}}},
		{"two origins", map[string]reconcile.Provenance{
			"email": {SourceID: "s1", AccountID: "a1", At: at}, "department": {SourceID: "s2", AccountID: "a2", At: later},
			"title": {SourceID: "s1", AccountID: "a1", At: later}}},
		{"names that need escaping", map[string]reconcile.Provenance{
			`we"ird\name`: {SourceID: "s<1>", AccountID: "a&1", At: at}, "é": {SourceID: "s1", AccountID: "a1", At: at}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := encodeProvenance(tc.in)
			if !strings.HasPrefix(enc, "[") {
				t.Fatalf("encoded %q is not the grouped form", enc)
			}
			got := DecodeProvenance(enc)
			// == on the values, as the engine's maps.Equal compares them.
			if !maps.Equal(got, tc.in) {
				t.Errorf("round trip of %s:\n got  %v\n want %v", enc, got, tc.in)
			}
			if enc2 := encodeProvenance(got); enc2 != enc {
				t.Errorf("not deterministic: %s then %s", enc, enc2)
			}
		})
	}
}

func TestProvenanceGroupsByOrigin(t *testing.T) {
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	p := map[string]reconcile.Provenance{}
	for _, k := range []string{"a", "b", "c", "d"} {
		p[k] = reconcile.Provenance{SourceID: "src", AccountID: "acct", At: at}
	}
	want := `[{"s":"src","a":"acct","t":` + "1796317200000000" + `,"k":["a","b","c","d"]}]`
	if got := encodeProvenance(p); got != want {
		t.Errorf("encodeProvenance = %s, want %s", got, want)
	}
}

func TestProvenanceReadsLegacyMapForm(t *testing.T) {
	legacy := `{"email":{"sourceId":"s1","accountId":"a1","at":"2026-12-03T17:56:50.478348Z"}}`
	got := DecodeProvenance(legacy)
	want := reconcile.Provenance{SourceID: "s1", AccountID: "a1", At: time.Date(2026, 12, 3, 17, 56, 50, 478348000, time.UTC)}
	if got["email"] != want || len(got) != 1 {
		t.Errorf("legacy decode = %v, want email: %v", got, want)
	}
	if len(DecodeProvenance("garbage")) != 0 || len(DecodeProvenance("")) != 0 {
		t.Error("unreadable values should decode as empty")
	}
}

func TestAttrsJSONMatchesEncodingJSON(t *testing.T) {
	for _, a := range []engine.Attrs{nil, {}, {"b": "2", "a": "1"}, {"department": "R&D", "title": `<b>"x"</b>`, "é": "\u2028\x01", "bad": "\xff"}} {
		want, _ := json.Marshal(a)
		if got := attrsJSON(a); got != string(want) {
			t.Errorf("attrsJSON(%v) = %s, want %s", a, got, want)
		}
	}
}

func TestStringsJSONMatchesEncodingJSON(t *testing.T) {
	for _, l := range [][]string{nil, {}, {"member"}, {"a", "R&D", "<x>", "q\"uote", "é\u2028"}} {
		want, _ := json.Marshal(nonNil(l))
		if got := stringsJSON(l); got != string(want) {
			t.Errorf("stringsJSON(%q) = %s, want %s", l, got, want)
		}
	}
}
