package storage

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

// Provenance is stored grouped by origin. A golden record nearly always
// takes most of its attributes from one account at one time, so instead of
// repeating the source, account and time for each attribute (the map form,
// ~130 bytes an attribute, which made an identity row outgrow a page) a
// row holds
//
//	[{"s":"<source id>","a":"<account id>","t":<unix µs>,"k":["department","email"]}, …]
//
// one element per origin, attribute names sorted. Rows written before this
// form hold the map form {"email":{"sourceId":…,"accountId":…,"at":"…"}};
// DecodeProvenance reads both.

type provenanceGroup struct {
	S string   `json:"s"`
	A string   `json:"a"`
	T int64    `json:"t"`
	K []string `json:"k"`
}

// encodeProvenance writes p in the grouped form, deterministically (groups
// ordered by their first attribute name).
func encodeProvenance(p map[string]reconcile.Provenance) string {
	if len(p) == 0 {
		return "[]"
	}
	type origin struct {
		s, a string
		t    int64
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var order []origin
	groups := make(map[origin][]string, 2)
	for _, k := range keys {
		v := p[k]
		o := origin{v.SourceID, v.AccountID, v.At.UnixMicro()}
		if _, ok := groups[o]; !ok {
			order = append(order, o)
		}
		groups[o] = append(groups[o], k)
	}
	b := make([]byte, 0, 128+24*len(keys))
	b = append(b, '[')
	for i, o := range order {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"s":`...)
		b = engine.AppendJSONString(b, o.s)
		b = append(b, `,"a":`...)
		b = engine.AppendJSONString(b, o.a)
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, o.t, 10)
		b = append(b, `,"k":[`...)
		for j, k := range groups[o] {
			if j > 0 {
				b = append(b, ',')
			}
			b = engine.AppendJSONString(b, k)
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	return string(b)
}

// DecodeProvenance reads a stored provenance column, in either form. A
// value it cannot read decodes as empty (it was written by this package).
func DecodeProvenance(s string) map[string]reconcile.Provenance {
	out := map[string]reconcile.Provenance{}
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "["):
		var groups []provenanceGroup
		if json.Unmarshal([]byte(s), &groups) != nil {
			return out
		}
		for _, g := range groups {
			at := time.UnixMicro(g.T).UTC()
			for _, k := range g.K {
				out[k] = reconcile.Provenance{SourceID: g.S, AccountID: g.A, At: at}
			}
		}
	case strings.HasPrefix(s, "{"):
		var legacy map[string]reconcile.Provenance
		if json.Unmarshal([]byte(s), &legacy) != nil {
			return out
		}
		for k, v := range legacy {
			v.At = v.At.UTC()
			out[k] = v
		}
	}
	return out
}
