package reconcile_test

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// t0 is an arbitrary fixed instant; at(n) is n hours after it. Tests never
// read the clock.
var t0 = time.Date(2024, time.March, 1, 9, 0, 0, 0, time.UTC)

func at(hours int) time.Time { return t0.Add(time.Duration(hours) * time.Hour) }

// acct builds an account with the fields most cases need; options tweak it.
func acct(id, kind string, prio int, attrs reconcile.Attrs, opts ...func(*reconcile.Account)) reconcile.Account {
	a := reconcile.Account{
		ID:         id,
		SourceID:   "src-" + id,
		SourceKind: kind,
		SourceName: "name-" + id,
		Priority:   prio,
		Attrs:      attrs,
		Active:     true,
		ChangedAt:  t0,
	}
	for _, o := range opts {
		o(&a)
	}
	return a
}

func changedAt(t time.Time) func(*reconcile.Account) {
	return func(a *reconcile.Account) { a.ChangedAt = t }
}

func owns(attrs ...string) func(*reconcile.Account) {
	return func(a *reconcile.Account) { a.Owns = attrs }
}

func removed(a *reconcile.Account) { a.Removed = true }

func source(id, name string) func(*reconcile.Account) {
	return func(a *reconcile.Account) { a.SourceID, a.SourceName = id, name }
}

// goldenFrom is what Merge must return when, for each attribute, the named
// account wins: that account's value, and provenance pointing at it.
func goldenFrom(t *testing.T, accounts []reconcile.Account, winners map[string]string) reconcile.Golden {
	t.Helper()
	byID := map[string]reconcile.Account{}
	for _, a := range accounts {
		byID[a.ID] = a
	}
	g := reconcile.Golden{Attrs: reconcile.Attrs{}, Provenance: map[string]reconcile.Provenance{}}
	for attr, id := range winners {
		a, ok := byID[id]
		if !ok {
			t.Fatalf("bad test case: winner %q of %q is not an account", id, attr)
		}
		if a.Attrs[attr] == "" {
			t.Fatalf("bad test case: winner %q has no value for %q", id, attr)
		}
		g.Attrs[attr] = a.Attrs[attr]
		g.Provenance[attr] = reconcile.Provenance{SourceID: a.SourceID, AccountID: a.ID, At: a.ChangedAt}
	}
	return g
}

// assertGolden compares two golden records; nil and empty maps are equal.
func assertGolden(t *testing.T, got, want reconcile.Golden) {
	t.Helper()
	keys := map[string]bool{}
	for k := range got.Attrs {
		keys[k] = true
	}
	for k := range want.Attrs {
		keys[k] = true
	}
	for k := range got.Provenance {
		keys[k] = true
	}
	for k := range want.Provenance {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		gv, gok := got.Attrs[k]
		wv, wok := want.Attrs[k]
		if gv != wv || gok != wok {
			t.Errorf("attr %q = %q (present %v), want %q (present %v)", k, gv, gok, wv, wok)
		}
		gp, gpok := got.Provenance[k]
		wp, wpok := want.Provenance[k]
		if gpok != wpok || gp.SourceID != wp.SourceID || gp.AccountID != wp.AccountID || !gp.At.Equal(wp.At) {
			t.Errorf("provenance %q = %+v (present %v), want %+v (present %v)", k, gp, gpok, wp, wpok)
		}
	}
}

func reversed(accounts []reconcile.Account) []reconcile.Account {
	out := slices.Clone(accounts)
	slices.Reverse(out)
	return out
}

type mergeCase struct {
	name     string
	accounts []reconcile.Account
	priority reconcile.Priority
	// winners maps each attribute the golden record must hold to the ID of
	// the account that must supply it; attributes not listed must be absent.
	winners map[string]string
}

// runMergeCases runs every case in the given order and reversed, so a case
// cannot pass merely because the winner happened to come first or last.
func runMergeCases(t *testing.T, cases []mergeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			want := goldenFrom(t, tc.accounts, tc.winners)
			for _, order := range []struct {
				name     string
				accounts []reconcile.Account
			}{
				{"given", tc.accounts},
				{"reversed", reversed(tc.accounts)},
			} {
				t.Run("order="+order.name, func(t *testing.T) {
					assertGolden(t, reconcile.Merge(order.accounts, tc.priority), want)
				})
			}
		})
	}
}

func TestMergeDefaultOrder(t *testing.T) {
	runMergeCases(t, []mergeCase{
		{
			// The loser is fresher and has the smaller ID, so neither
			// tie-breaker can explain the result: only the priority number.
			name: "higher priority wins",
			accounts: []reconcile.Account{
				acct("z-hr", "scim", 10, reconcile.Attrs{reconcile.AttrEmail: "ada@hr.example"}, changedAt(at(1))),
				acct("a-jit", "saml", 20, reconcile.Attrs{reconcile.AttrEmail: "ada@idp.example"}, changedAt(at(5))),
			},
			winners: map[string]string{reconcile.AttrEmail: "z-hr"},
		},
		{
			name: "negative priority beats zero",
			accounts: []reconcile.Account{
				acct("a", "ldap", 0, reconcile.Attrs{reconcile.AttrTitle: "Engineer"}, changedAt(at(9))),
				acct("b", "file", -5, reconcile.Attrs{reconcile.AttrTitle: "Staff Engineer"}),
			},
			winners: map[string]string{reconcile.AttrTitle: "b"},
		},
		{
			name: "lowest of three priorities wins",
			accounts: []reconcile.Account{
				acct("a", "ldap", 30, reconcile.Attrs{reconcile.AttrDepartment: "R&D"}, changedAt(at(3))),
				acct("b", "scim", 10, reconcile.Attrs{reconcile.AttrDepartment: "Research"}),
				acct("c", "oidc", 20, reconcile.Attrs{reconcile.AttrDepartment: "Eng"}, changedAt(at(2))),
			},
			winners: map[string]string{reconcile.AttrDepartment: "b"},
		},
		{
			name: "merge is per attribute: lower priority fills what the winner lacks",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrEmail: "ada@hr.example", reconcile.AttrGivenName: "Ada"}),
				acct("idp", "saml", 9, reconcile.Attrs{
					reconcile.AttrEmail:     "ada@idp.example",
					reconcile.AttrLastLogin: "2024-03-01T09:00:00Z",
					reconcile.AttrLocale:    "en-GB",
				}),
			},
			winners: map[string]string{
				reconcile.AttrEmail:     "hr",
				reconcile.AttrGivenName: "hr",
				reconcile.AttrLastLogin: "idp",
				reconcile.AttrLocale:    "idp",
			},
		},
		{
			name: "non-canonical attributes merge by the same rules",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{"costCenter": "CC-1"}),
				acct("ldap", "ldap", 2, reconcile.Attrs{"costCenter": "CC-2", "shell": "/bin/zsh"}),
			},
			winners: map[string]string{"costCenter": "hr", "shell": "ldap"},
		},
		{
			name: "single account supplies everything",
			accounts: []reconcile.Account{
				acct("only", "email-domain", 50, reconcile.Attrs{reconcile.AttrEmail: "x@example.com", reconcile.AttrUserName: "x"}),
			},
			winners: map[string]string{reconcile.AttrEmail: "only", reconcile.AttrUserName: "only"},
		},
		{
			name:     "no accounts gives an empty record",
			accounts: nil,
			winners:  map[string]string{},
		},
	})
}

func TestMergeOverrides(t *testing.T) {
	dept := reconcile.AttrDepartment
	cases := []mergeCase{
		{
			name: "kind selector beats a better priority number",
			accounts: []reconcile.Account{
				acct("ldap", "ldap", 1, reconcile.Attrs{dept: "LDAP Dept", reconcile.AttrTitle: "LDAP Title"}, changedAt(at(5))),
				acct("scim", "scim", 50, reconcile.Attrs{dept: "SCIM Dept", reconcile.AttrTitle: "SCIM Title"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim"}}},
			// The override is for department only: title keeps the default order.
			winners: map[string]string{dept: "scim", reconcile.AttrTitle: "ldap"},
		},
		{
			name: "first listed selector wins over later ones (ldap first)",
			accounts: []reconcile.Account{
				acct("ldap", "ldap", 50, reconcile.Attrs{dept: "LDAP Dept"}),
				acct("scim", "scim", 1, reconcile.Attrs{dept: "SCIM Dept"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"ldap", "scim"}}},
			winners:  map[string]string{dept: "ldap"},
		},
		{
			name: "first listed selector wins over later ones (scim first)",
			accounts: []reconcile.Account{
				acct("ldap", "ldap", 1, reconcile.Attrs{dept: "LDAP Dept"}),
				acct("scim", "scim", 50, reconcile.Attrs{dept: "SCIM Dept"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim", "ldap"}}},
			winners:  map[string]string{dept: "scim"},
		},
		{
			name: "kind selector matches its kind only",
			accounts: []reconcile.Account{
				acct("oidc", "oidc", 1, reconcile.Attrs{dept: "OIDC Dept"}),
				acct("saml", "saml", 9, reconcile.Attrs{dept: "SAML Dept"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"saml"}}},
			winners:  map[string]string{dept: "saml"},
		},
		{
			name: "source selector by name",
			accounts: []reconcile.Account{
				acct("csv", "file", 1, reconcile.Attrs{reconcile.AttrEmployeeNumber: "E-1"}, source("src-a", "payroll-csv")),
				acct("wd", "file", 90, reconcile.Attrs{reconcile.AttrEmployeeNumber: "E-2"}, source("src-b", "workday")),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrEmployeeNumber: {"source:workday"}}},
			winners:  map[string]string{reconcile.AttrEmployeeNumber: "wd"},
		},
		{
			name: "source selector by id",
			accounts: []reconcile.Account{
				acct("csv", "file", 1, reconcile.Attrs{reconcile.AttrEmployeeNumber: "E-1"}, source("src-a", "payroll-csv")),
				acct("wd", "file", 90, reconcile.Attrs{reconcile.AttrEmployeeNumber: "E-2"}, source("src-7", "workday")),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrEmployeeNumber: {"source:src-7"}}},
			winners:  map[string]string{reconcile.AttrEmployeeNumber: "wd"},
		},
		{
			name: "source selector naming no account changes nothing",
			accounts: []reconcile.Account{
				acct("csv", "file", 1, reconcile.Attrs{reconcile.AttrEmployeeNumber: "E-1"}, source("src-a", "payroll-csv")),
				acct("wd", "file", 90, reconcile.Attrs{reconcile.AttrEmployeeNumber: "E-2"}, source("src-7", "workday")),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrEmployeeNumber: {"source:bamboo"}}},
			winners:  map[string]string{reconcile.AttrEmployeeNumber: "csv"},
		},
		{
			name: "source selector beats a kind selector listed after it",
			accounts: []reconcile.Account{
				acct("scim", "scim", 1, reconcile.Attrs{dept: "SCIM"}),
				acct("wd", "file", 90, reconcile.Attrs{dept: "Workday"}, source("src-7", "workday")),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"source:workday", "scim"}}},
			winners:  map[string]string{dept: "wd"},
		},
		{
			name: "unlisted sources rank after listed ones",
			accounts: []reconcile.Account{
				acct("file", "file", 1, reconcile.Attrs{dept: "File"}),
				acct("ldap", "ldap", 60, reconcile.Attrs{dept: "LDAP"}),
				acct("scim", "scim", 70, reconcile.Attrs{dept: "SCIM"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim", "ldap"}}},
			winners:  map[string]string{dept: "scim"},
		},
		{
			name: "unlisted sources keep default order among themselves",
			accounts: []reconcile.Account{
				acct("file", "file", 5, reconcile.Attrs{dept: "File"}, changedAt(at(1))),
				acct("admin", "admin", 3, reconcile.Attrs{dept: "Admin"}),
				acct("scim", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "no department here"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim"}}},
			winners:  map[string]string{dept: "admin", reconcile.AttrTitle: "scim"},
		},
		{
			name: "several accounts under one selector use default order",
			accounts: []reconcile.Account{
				acct("scim-a", "scim", 30, reconcile.Attrs{dept: "A"}, changedAt(at(4))),
				acct("scim-b", "scim", 20, reconcile.Attrs{dept: "B"}),
				acct("ldap", "ldap", 1, reconcile.Attrs{dept: "LDAP"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim"}}},
			winners:  map[string]string{dept: "scim-b"},
		},
		{
			name: "override for another attribute does not apply",
			accounts: []reconcile.Account{
				acct("ldap", "ldap", 1, reconcile.Attrs{dept: "LDAP"}),
				acct("scim", "scim", 50, reconcile.Attrs{dept: "SCIM"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrTitle: {"scim"}}},
			winners:  map[string]string{dept: "ldap"},
		},
		{
			name: "empty override list keeps default order",
			accounts: []reconcile.Account{
				acct("ldap", "ldap", 1, reconcile.Attrs{dept: "LDAP"}),
				acct("scim", "scim", 50, reconcile.Attrs{dept: "SCIM"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {}}},
			winners:  map[string]string{dept: "ldap"},
		},
		{
			name: "listed source without a value falls through to the next",
			accounts: []reconcile.Account{
				acct("scim", "scim", 50, reconcile.Attrs{dept: ""}),
				acct("ldap", "ldap", 40, reconcile.Attrs{dept: "LDAP"}),
				acct("file", "file", 1, reconcile.Attrs{dept: "File"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim", "ldap"}}},
			winners:  map[string]string{dept: "ldap"},
		},
		{
			name: "listed source that does not own the attribute falls through",
			accounts: []reconcile.Account{
				acct("scim", "scim", 50, reconcile.Attrs{dept: "SCIM"}, owns(reconcile.AttrEmail)),
				acct("file", "file", 1, reconcile.Attrs{dept: "File"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{dept: {"scim"}}},
			winners:  map[string]string{dept: "file"},
		},
	}
	// The jit selector matches every login kind.
	for _, kind := range []string{"saml", "oidc", "email-domain"} {
		cases = append(cases, mergeCase{
			name: "jit selector matches " + kind,
			accounts: []reconcile.Account{
				acct("scim", "scim", 1, reconcile.Attrs{reconcile.AttrLastLogin: "from scim"}, changedAt(at(8))),
				acct("login", kind, 99, reconcile.Attrs{reconcile.AttrLastLogin: "from " + kind}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrLastLogin: {"jit"}}},
			winners:  map[string]string{reconcile.AttrLastLogin: "login"},
		})
	}
	// ... and no other kind: a non-login source with a worse priority number
	// must still lose to an unlisted source with a better one.
	for _, kind := range []string{"scim", "ldap", "scim-pull", "file", "admin"} {
		cases = append(cases, mergeCase{
			name: "jit selector does not match " + kind,
			accounts: []reconcile.Account{
				acct("other", "custom", 1, reconcile.Attrs{reconcile.AttrLastLogin: "from custom"}),
				acct("cand", kind, 99, reconcile.Attrs{reconcile.AttrLastLogin: "from " + kind}, changedAt(at(8))),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrLastLogin: {"jit"}}},
			winners:  map[string]string{reconcile.AttrLastLogin: "other"},
		})
	}
	runMergeCases(t, cases)
}

func TestMergeTieBreaks(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("UTC+1", 3600)
	}
	runMergeCases(t, []mergeCase{
		{
			// "b" would win on ID, so only freshness explains "z".
			name: "equal priority: newer ChangedAt wins",
			accounts: []reconcile.Account{
				acct("b", "scim", 5, reconcile.Attrs{reconcile.AttrTitle: "old"}, changedAt(at(1))),
				acct("z", "ldap", 5, reconcile.Attrs{reconcile.AttrTitle: "new"}, changedAt(at(2))),
			},
			winners: map[string]string{reconcile.AttrTitle: "z"},
		},
		{
			name: "equal priority: newer wins by a nanosecond",
			accounts: []reconcile.Account{
				acct("b", "scim", 5, reconcile.Attrs{reconcile.AttrTitle: "old"}, changedAt(t0)),
				acct("z", "ldap", 5, reconcile.Attrs{reconcile.AttrTitle: "new"}, changedAt(t0.Add(time.Nanosecond))),
			},
			winners: map[string]string{reconcile.AttrTitle: "z"},
		},
		{
			name: "equal priority and time: smaller ID wins",
			accounts: []reconcile.Account{
				acct("acc-2", "scim", 5, reconcile.Attrs{reconcile.AttrTitle: "two"}),
				acct("acc-1", "ldap", 5, reconcile.Attrs{reconcile.AttrTitle: "one"}),
				acct("acc-3", "file", 5, reconcile.Attrs{reconcile.AttrTitle: "three"}),
			},
			winners: map[string]string{reconcile.AttrTitle: "acc-1"},
		},
		{
			name: "same instant in another time zone is a tie broken by ID",
			accounts: []reconcile.Account{
				acct("acc-2", "scim", 5, reconcile.Attrs{reconcile.AttrTitle: "two"}, changedAt(t0)),
				acct("acc-1", "ldap", 5, reconcile.Attrs{reconcile.AttrTitle: "one"}, changedAt(t0.In(paris))),
			},
			winners: map[string]string{reconcile.AttrTitle: "acc-1"},
		},
		{
			name: "priority outranks freshness",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "stale"}, changedAt(at(-100))),
				acct("b", "ldap", 2, reconcile.Attrs{reconcile.AttrTitle: "fresh"}, changedAt(at(100))),
			},
			winners: map[string]string{reconcile.AttrTitle: "a"},
		},
		{
			name: "override rank outranks freshness and priority",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "fresh"}, changedAt(at(100))),
				acct("b", "ldap", 2, reconcile.Attrs{reconcile.AttrTitle: "stale"}, changedAt(at(-100))),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrTitle: {"ldap"}}},
			winners:  map[string]string{reconcile.AttrTitle: "b"},
		},
		{
			name: "freshness breaks ties within one override rank",
			accounts: []reconcile.Account{
				acct("a", "saml", 3, reconcile.Attrs{reconcile.AttrLastLogin: "older login"}, changedAt(at(1))),
				acct("b", "oidc", 3, reconcile.Attrs{reconcile.AttrLastLogin: "newer login"}, changedAt(at(2))),
				acct("c", "scim", 1, reconcile.Attrs{reconcile.AttrLastLogin: "scim"}, changedAt(at(3))),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrLastLogin: {"jit"}}},
			winners:  map[string]string{reconcile.AttrLastLogin: "b"},
		},
		{
			name: "tie-breaks are decided per attribute",
			accounts: []reconcile.Account{
				acct("a", "scim", 5, reconcile.Attrs{reconcile.AttrTitle: "A title", reconcile.AttrLocale: "A locale"}, changedAt(at(2))),
				acct("b", "ldap", 5, reconcile.Attrs{reconcile.AttrTitle: "B title", reconcile.AttrPhone: "B phone"}, changedAt(at(1))),
			},
			winners: map[string]string{
				reconcile.AttrTitle:  "a",
				reconcile.AttrLocale: "a",
				reconcile.AttrPhone:  "b",
			},
		},
	})
}

func TestMergeOwns(t *testing.T) {
	runMergeCases(t, []mergeCase{
		{
			name: "source may not set attributes it does not own",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{
					reconcile.AttrDepartment: "HR Dept",
					reconcile.AttrTitle:      "HR Title",
				}, owns(reconcile.AttrDepartment)),
				acct("ldap", "ldap", 9, reconcile.Attrs{
					reconcile.AttrDepartment: "LDAP Dept",
					reconcile.AttrTitle:      "LDAP Title",
				}),
			},
			winners: map[string]string{reconcile.AttrDepartment: "hr", reconcile.AttrTitle: "ldap"},
		},
		{
			name: "attribute owned by nobody is absent",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrEmail: "a@x", reconcile.AttrManager: "boss"}, owns(reconcile.AttrEmail)),
				acct("ldap", "ldap", 9, reconcile.Attrs{reconcile.AttrManager: "other boss"}, owns(reconcile.AttrEmail, reconcile.AttrTitle)),
			},
			winners: map[string]string{reconcile.AttrEmail: "hr"},
		},
		{
			name: "empty Owns means every attribute",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrManager: "boss", "custom": "c"}, owns([]string{}...)),
				acct("ldap", "ldap", 9, reconcile.Attrs{reconcile.AttrManager: "other", "custom": "d"}),
			},
			winners: map[string]string{reconcile.AttrManager: "hr", "custom": "hr"},
		},
		{
			name: "nil Owns means every attribute",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrManager: "boss"}, owns()),
				acct("ldap", "ldap", 9, reconcile.Attrs{reconcile.AttrManager: "other"}),
			},
			winners: map[string]string{reconcile.AttrManager: "hr"},
		},
		{
			name: "Owns with several attributes",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{
					reconcile.AttrGivenName:  "Ada",
					reconcile.AttrFamilyName: "Lovelace",
					reconcile.AttrPhone:      "+44 1",
				}, owns(reconcile.AttrGivenName, reconcile.AttrFamilyName)),
				acct("idp", "oidc", 9, reconcile.Attrs{
					reconcile.AttrGivenName: "A.",
					reconcile.AttrPhone:     "+44 2",
				}),
			},
			winners: map[string]string{
				reconcile.AttrGivenName:  "hr",
				reconcile.AttrFamilyName: "hr",
				reconcile.AttrPhone:      "idp",
			},
		},
		{
			name: "Owns matches attribute names case-insensitively",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrEmail: "hr@x"}, owns("EMAIL")),
				acct("idp", "oidc", 9, reconcile.Attrs{reconcile.AttrEmail: "idp@x"}),
			},
			winners: map[string]string{reconcile.AttrEmail: "hr"},
		},
		{
			name: "Owns restricts even a source chosen by override",
			accounts: []reconcile.Account{
				acct("idp", "saml", 9, reconcile.Attrs{reconcile.AttrLastLogin: "login", reconcile.AttrTitle: "t"}, owns(reconcile.AttrTitle)),
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrLastLogin: "hr-login"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrLastLogin: {"jit"}}},
			winners:  map[string]string{reconcile.AttrLastLogin: "hr", reconcile.AttrTitle: "idp"},
		},
	})
}

func TestMergeEmptyValues(t *testing.T) {
	runMergeCases(t, []mergeCase{
		{
			name: "empty value falls through to the next source",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "", reconcile.AttrEmail: "hr@x"}),
				acct("idp", "saml", 9, reconcile.Attrs{reconcile.AttrTitle: "Engineer", reconcile.AttrEmail: "idp@x"}),
			},
			winners: map[string]string{reconcile.AttrTitle: "idp", reconcile.AttrEmail: "hr"},
		},
		{
			name: "empty value falls through two sources",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: ""}),
				acct("b", "ldap", 2, reconcile.Attrs{reconcile.AttrTitle: ""}),
				acct("c", "file", 3, reconcile.Attrs{reconcile.AttrTitle: "Engineer"}),
			},
			winners: map[string]string{reconcile.AttrTitle: "c"},
		},
		{
			name: "empty everywhere leaves the attribute absent",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "", reconcile.AttrEmail: "a@x"}),
				acct("b", "ldap", 2, reconcile.Attrs{reconcile.AttrTitle: ""}),
			},
			winners: map[string]string{reconcile.AttrEmail: "a"},
		},
		{
			name: "account without attributes contributes nothing",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, nil),
				acct("b", "ldap", 2, reconcile.Attrs{}),
				acct("c", "file", 3, reconcile.Attrs{reconcile.AttrUserName: "ada"}),
			},
			winners: map[string]string{reconcile.AttrUserName: "c"},
		},
		{
			name: "empty value under an override falls through to the default order",
			accounts: []reconcile.Account{
				acct("idp", "oidc", 9, reconcile.Attrs{reconcile.AttrLastLogin: ""}),
				acct("ldap", "ldap", 2, reconcile.Attrs{reconcile.AttrLastLogin: "ldap"}),
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrLastLogin: "scim"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrLastLogin: {"jit"}}},
			winners:  map[string]string{reconcile.AttrLastLogin: "hr"},
		},
		{
			name: "whitespace is a value, not empty",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: " "}),
				acct("b", "ldap", 2, reconcile.Attrs{reconcile.AttrTitle: "Engineer"}),
			},
			winners: map[string]string{reconcile.AttrTitle: "a"},
		},
	})
}

func TestMergeRemovedAccounts(t *testing.T) {
	runMergeCases(t, []mergeCase{
		{
			name: "live account beats a removed one with better priority and freshness",
			accounts: []reconcile.Account{
				acct("a-hr", "scim", 1, reconcile.Attrs{reconcile.AttrEmail: "old@hr"}, removed, changedAt(at(10))),
				acct("z-idp", "saml", 99, reconcile.Attrs{reconcile.AttrEmail: "new@idp"}, changedAt(at(1))),
			},
			winners: map[string]string{reconcile.AttrEmail: "z-idp"},
		},
		{
			name: "live account beats a removed one chosen by override",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrDepartment: "old"}, removed),
				acct("ldap", "ldap", 99, reconcile.Attrs{reconcile.AttrDepartment: "live"}),
			},
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrDepartment: {"scim"}}},
			winners:  map[string]string{reconcile.AttrDepartment: "ldap"},
		},
		{
			name: "removed account supplies values no live account has",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{
					reconcile.AttrEmail:      "old@hr",
					reconcile.AttrDepartment: "Finance",
				}, removed),
				acct("idp", "saml", 9, reconcile.Attrs{reconcile.AttrEmail: "live@idp", reconcile.AttrDepartment: ""}),
			},
			winners: map[string]string{reconcile.AttrEmail: "idp", reconcile.AttrDepartment: "hr"},
		},
		{
			name: "removed account supplies values a live account may not set",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrManager: "boss"}, removed),
				acct("idp", "saml", 9, reconcile.Attrs{reconcile.AttrManager: "idp boss", reconcile.AttrEmail: "e"}, owns(reconcile.AttrEmail)),
			},
			winners: map[string]string{reconcile.AttrManager: "hr", reconcile.AttrEmail: "idp"},
		},
		{
			name: "all removed: the last known record survives by the usual order",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "HR title"}, removed, changedAt(at(1))),
				acct("ldap", "ldap", 2, reconcile.Attrs{reconcile.AttrTitle: "LDAP title", reconcile.AttrPhone: "123"}, removed, changedAt(at(5))),
			},
			winners: map[string]string{reconcile.AttrTitle: "hr", reconcile.AttrPhone: "ldap"},
		},
		{
			name: "removed accounts tie-break by freshness among themselves",
			accounts: []reconcile.Account{
				acct("a", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "older"}, removed, changedAt(at(1))),
				acct("b", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "newer"}, removed, changedAt(at(2))),
			},
			winners: map[string]string{reconcile.AttrTitle: "b"},
		},
		{
			name: "inactive but not removed still counts as live",
			accounts: []reconcile.Account{
				acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrTitle: "inactive"}, func(a *reconcile.Account) { a.Active = false }),
				acct("idp", "saml", 9, reconcile.Attrs{reconcile.AttrTitle: "active"}),
			},
			winners: map[string]string{reconcile.AttrTitle: "hr"},
		},
	})
}

// TestMergeProvenance spells the expected provenance out literally instead of
// deriving it from the winning account.
func TestMergeProvenance(t *testing.T) {
	hrTime := time.Date(2023, 11, 5, 8, 30, 0, 0, time.UTC)
	idpTime := time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)
	accounts := []reconcile.Account{
		{
			ID: "acc-hr-42", SourceID: "src-workday", SourceKind: "scim", SourceName: "workday",
			Priority: 1, Active: true, ChangedAt: hrTime,
			Attrs: reconcile.Attrs{reconcile.AttrEmail: "ada@corp", reconcile.AttrDepartment: "R&D"},
		},
		{
			ID: "acc-idp-7", SourceID: "src-okta", SourceKind: "saml", SourceName: "okta",
			Priority: 5, Active: true, ChangedAt: idpTime,
			Attrs: reconcile.Attrs{reconcile.AttrEmail: "ada@okta", reconcile.AttrLastLogin: "2024-02-29T23:59:59Z"},
		},
	}
	cases := []struct {
		name     string
		priority reconcile.Priority
		want     map[string]reconcile.Provenance
		values   reconcile.Attrs
	}{
		{
			name: "default order",
			want: map[string]reconcile.Provenance{
				reconcile.AttrEmail:      {SourceID: "src-workday", AccountID: "acc-hr-42", At: hrTime},
				reconcile.AttrDepartment: {SourceID: "src-workday", AccountID: "acc-hr-42", At: hrTime},
				reconcile.AttrLastLogin:  {SourceID: "src-okta", AccountID: "acc-idp-7", At: idpTime},
			},
			values: reconcile.Attrs{
				reconcile.AttrEmail:      "ada@corp",
				reconcile.AttrDepartment: "R&D",
				reconcile.AttrLastLogin:  "2024-02-29T23:59:59Z",
			},
		},
		{
			name:     "override moves email provenance to the login source",
			priority: reconcile.Priority{Attributes: map[string][]string{reconcile.AttrEmail: {"source:okta"}}},
			want: map[string]reconcile.Provenance{
				reconcile.AttrEmail:      {SourceID: "src-okta", AccountID: "acc-idp-7", At: idpTime},
				reconcile.AttrDepartment: {SourceID: "src-workday", AccountID: "acc-hr-42", At: hrTime},
				reconcile.AttrLastLogin:  {SourceID: "src-okta", AccountID: "acc-idp-7", At: idpTime},
			},
			values: reconcile.Attrs{
				reconcile.AttrEmail:      "ada@okta",
				reconcile.AttrDepartment: "R&D",
				reconcile.AttrLastLogin:  "2024-02-29T23:59:59Z",
			},
		},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			g := reconcile.Merge(accounts, tc.priority)
			if !reflect.DeepEqual(g.Attrs, tc.values) {
				t.Errorf("Attrs = %v, want %v", g.Attrs, tc.values)
			}
			if !reflect.DeepEqual(g.Provenance, tc.want) {
				t.Errorf("Provenance = %v, want %v", g.Provenance, tc.want)
			}
		})
	}
}

// TestMergeDoesNotModifyInput guards the "values in, decisions out" contract.
func TestMergeDoesNotModifyInput(t *testing.T) {
	accounts := []reconcile.Account{
		acct("hr", "scim", 1, reconcile.Attrs{reconcile.AttrEmail: "a@x", reconcile.AttrTitle: ""}, owns(reconcile.AttrEmail)),
		acct("idp", "saml", 2, reconcile.Attrs{reconcile.AttrEmail: "b@x", reconcile.AttrTitle: "T"}, removed),
	}
	before := cloneAccounts(accounts)
	g := reconcile.Merge(accounts, reconcile.Priority{Attributes: map[string][]string{reconcile.AttrTitle: {"jit"}}})
	if !reflect.DeepEqual(accounts, before) {
		t.Fatalf("Merge modified its input:\n got %+v\nwant %+v", accounts, before)
	}
	// Writing to the result must not write through to an account.
	g.Attrs[reconcile.AttrEmail] = "changed"
	if accounts[0].Attrs[reconcile.AttrEmail] != "a@x" {
		t.Fatalf("golden Attrs alias an account's Attrs")
	}
}

func cloneAccounts(in []reconcile.Account) []reconcile.Account {
	if in == nil {
		return nil
	}
	out := make([]reconcile.Account, len(in))
	for i, a := range in {
		out[i] = a
		out[i].Owns = slices.Clone(a.Owns)
		if a.Attrs != nil {
			out[i].Attrs = reconcile.Attrs{}
			for k, v := range a.Attrs {
				out[i].Attrs[k] = v
			}
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	type ch = reconcile.Change
	cases := []struct {
		name          string
		before, after reconcile.Attrs
		want          []reconcile.Change
	}{
		{name: "both nil gives nil"},
		{name: "both empty gives nil", before: reconcile.Attrs{}, after: reconcile.Attrs{}},
		{name: "nil and empty are equal", before: nil, after: reconcile.Attrs{}},
		{
			name:   "equal maps give nil",
			before: reconcile.Attrs{"a": "1", "b": "2"},
			after:  reconcile.Attrs{"b": "2", "a": "1"},
		},
		{
			name:   "absent and empty mean the same",
			before: reconcile.Attrs{"a": "1", "gone": ""},
			after:  reconcile.Attrs{"a": "1", "new": ""},
		},
		{
			name:   "changed field",
			before: reconcile.Attrs{"title": "Engineer", "email": "a@x"},
			after:  reconcile.Attrs{"title": "Staff Engineer", "email": "a@x"},
			want:   []reconcile.Change{{Field: "title", Before: "Engineer", After: "Staff Engineer"}},
		},
		{
			name:   "changes are case-sensitive",
			before: reconcile.Attrs{"email": "Ada@X"},
			after:  reconcile.Attrs{"email": "ada@x"},
			want:   []reconcile.Change{{Field: "email", Before: "Ada@X", After: "ada@x"}},
		},
		{
			name:   "added field",
			before: reconcile.Attrs{"email": "a@x"},
			after:  reconcile.Attrs{"email": "a@x", "phoneNumber": "123"},
			want:   []reconcile.Change{{Field: "phoneNumber", After: "123"}},
		},
		{
			name:   "added to nil",
			before: nil,
			after:  reconcile.Attrs{"email": "a@x"},
			want:   []reconcile.Change{{Field: "email", After: "a@x"}},
		},
		{
			name:   "empty value filled is an addition",
			before: reconcile.Attrs{"title": ""},
			after:  reconcile.Attrs{"title": "Engineer"},
			want:   []reconcile.Change{{Field: "title", After: "Engineer"}},
		},
		{
			name:   "removed field",
			before: reconcile.Attrs{"email": "a@x", "manager": "boss"},
			after:  reconcile.Attrs{"email": "a@x"},
			want:   []reconcile.Change{{Field: "manager", Before: "boss"}},
		},
		{
			name:   "removed to nil",
			before: reconcile.Attrs{"email": "a@x"},
			after:  nil,
			want:   []reconcile.Change{{Field: "email", Before: "a@x"}},
		},
		{
			name:   "value emptied is a removal",
			before: reconcile.Attrs{"title": "Engineer"},
			after:  reconcile.Attrs{"title": ""},
			want:   []reconcile.Change{{Field: "title", Before: "Engineer"}},
		},
		{
			name:   "changed, added and removed sorted by field",
			before: reconcile.Attrs{"zeta": "1", "mid": "old", "alpha": "a", "same": "s", "beta": "b"},
			after:  reconcile.Attrs{"mid": "new", "gamma": "g", "same": "s", "alpha": "A", "aardvark": "x"},
			want: []reconcile.Change{
				ch{Field: "aardvark", After: "x"},
				ch{Field: "alpha", Before: "a", After: "A"},
				ch{Field: "beta", Before: "b"},
				ch{Field: "gamma", After: "g"},
				ch{Field: "mid", Before: "old", After: "new"},
				ch{Field: "zeta", Before: "1"},
			},
		},
		{
			name:   "sort is by byte order (upper case first)",
			before: reconcile.Attrs{"b": "1", "B": "1"},
			after:  reconcile.Attrs{"a": "1", "A": "1"},
			want: []reconcile.Change{
				ch{Field: "A", After: "1"},
				ch{Field: "B", Before: "1"},
				ch{Field: "a", After: "1"},
				ch{Field: "b", Before: "1"},
			},
		},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			got := reconcile.Diff(tc.before, tc.after)
			if tc.want == nil {
				if got != nil {
					t.Fatalf("Diff = %#v, want nil", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Diff =\n%s\nwant\n%s", fmtChanges(got), fmtChanges(tc.want))
			}
		})
	}
}

func fmtChanges(cs []reconcile.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s: %q -> %q\n", c.Field, c.Before, c.After)
	}
	return b.String()
}
