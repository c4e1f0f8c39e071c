package reconcile

import (
	"sort"
	"strings"
	"time"
)

// Attrs are attributes by canonical name (see the Attr* constants). An absent
// key and an empty value both mean "no value".
type Attrs map[string]string

// Canonical attribute names of the golden record. Sources may carry others;
// they merge by the same rules.
const (
	AttrUserName       = "userName"
	AttrEmail          = "email"
	AttrExternalID     = "externalId"
	AttrEmployeeNumber = "employeeNumber"
	AttrGivenName      = "givenName"
	AttrFamilyName     = "familyName"
	AttrDisplayName    = "displayName"
	AttrTitle          = "title"
	AttrDepartment     = "department"
	AttrManager        = "manager"
	AttrPhone          = "phoneNumber"
	AttrLocale         = "locale"
	AttrLastLogin      = "lastLogin"
)

// Source kinds that count as "jit" in priority selectors.
var jitKinds = map[string]bool{"saml": true, "oidc": true, "email-domain": true}

// Account is what one source says about one identity, as the merge sees it.
type Account struct {
	ID            string
	SourceID      string
	SourceKind    string // saml, oidc, email-domain, scim, ldap, scim-pull, file, admin
	SourceName    string
	Priority      int  // lower wins; ties are broken by freshness
	Authoritative bool // may decide lifecycle (deprovision, reactivate)
	// Owns lists the attributes this source may set in the golden record;
	// empty means all of them.
	Owns      []string
	Attrs     Attrs
	Active    bool
	Removed   bool      // the source no longer holds this subject
	ChangedAt time.Time // when Attrs last changed
}

func (a Account) owns(attr string) bool {
	if len(a.Owns) == 0 {
		return true
	}
	for _, o := range a.Owns {
		if strings.EqualFold(o, attr) {
			return true
		}
	}
	return false
}

// Provenance says which account (of which source) set a golden attribute,
// and when that account last changed.
type Provenance struct {
	SourceID  string    `json:"sourceId"`
	AccountID string    `json:"accountId"`
	At        time.Time `json:"at"`
}

// Golden is the merged record of one identity.
type Golden struct {
	Attrs      Attrs
	Provenance map[string]Provenance
}

// Priority holds per-attribute overrides of the default order (which is each
// source's Priority number, lower first). Each override is an ordered list
// of selectors: a source kind ("scim", "ldap", "saml", …), "jit" for any
// login source (saml, oidc, email-domain), or "source:<name or id>".
// Sources no selector names come after the named ones, in default order.
//
// YAML example:
//
//	attributes:
//	  department: [scim, ldap, jit]
//	  lastLogin:  [jit]
type Priority struct {
	Attributes map[string][]string `json:"attributes,omitempty"`
}

// rank returns where a account's source stands in the override list of attr
// (0 first); sources not listed rank after all listed ones.
func (p Priority) rank(attr string, a Account) int {
	sel := p.Attributes[attr]
	for i, s := range sel {
		if selects(s, a) {
			return i
		}
	}
	return len(sel)
}

func selects(sel string, a Account) bool {
	switch {
	case sel == "jit":
		return jitKinds[a.SourceKind]
	case strings.HasPrefix(sel, "source:"):
		n := strings.TrimPrefix(sel, "source:")
		return n == a.SourceName || n == a.SourceID
	default:
		return sel == a.SourceKind
	}
}

// better reports whether account x beats y for attr: live before removed,
// then override rank, then priority number, then freshness, then ID (so the
// result never depends on input order).
func (p Priority) better(attr string, x, y Account) bool {
	if x.Removed != y.Removed {
		return !x.Removed
	}
	if rx, ry := p.rank(attr, x), p.rank(attr, y); rx != ry {
		return rx < ry
	}
	if x.Priority != y.Priority {
		return x.Priority < y.Priority
	}
	if !x.ChangedAt.Equal(y.ChangedAt) {
		return x.ChangedAt.After(y.ChangedAt)
	}
	return x.ID < y.ID
}

// Merge computes the golden record from every account of one identity. For
// each attribute the best account that owns it and holds a non-empty value
// wins (see Priority). Accounts whose source removed them rank below every
// live account, so a deprovisioned person keeps their last known record.
// Merge is independent of the order of accounts.
func Merge(accounts []Account, p Priority) Golden {
	n := 0
	for _, a := range accounts {
		n = max(n, len(a.Attrs))
	}
	g := Golden{Attrs: make(Attrs, n), Provenance: make(map[string]Provenance, n)}
	winner := make(map[string]int, n)
	for i, a := range accounts {
		for k, v := range a.Attrs {
			if v == "" || !a.owns(k) {
				continue
			}
			if w, ok := winner[k]; !ok || p.better(k, a, accounts[w]) {
				winner[k] = i
			}
		}
	}
	for k, i := range winner {
		a := accounts[i]
		g.Attrs[k] = a.Attrs[k]
		g.Provenance[k] = Provenance{SourceID: a.SourceID, AccountID: a.ID, At: a.ChangedAt}
	}
	return g
}

// Change is one field's before and after value.
type Change struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Diff lists the fields whose values differ, sorted by name.
func Diff(before, after Attrs) []Change {
	var out []Change
	for k, b := range before {
		if a := after[k]; a != b {
			out = append(out, Change{Field: k, Before: b, After: a})
		}
	}
	for k, a := range after {
		if _, ok := before[k]; !ok && a != "" {
			out = append(out, Change{Field: k, After: a})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}
