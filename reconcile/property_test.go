package reconcile_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// Property tests: random inputs from a fixed seed, so a failure is
// reproducible; the failing iteration is printed with its input.

const propIterations = 2000

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

var (
	propKinds = []string{"scim", "ldap", "scim-pull", "file", "admin", "saml", "oidc", "email-domain"}
	propAttrs = []string{
		reconcile.AttrEmail, reconcile.AttrUserName, reconcile.AttrDepartment,
		reconcile.AttrTitle, reconcile.AttrLastLogin,
	}
	propValues    = []string{"", "v0", "v1", "v2"}
	propSourceIDs = []string{"src-0", "src-1", "src-2", "src-3"}
	propNames     = []string{"hr", "ldap", "okta", ""}
	propSelectors = []string{
		"scim", "ldap", "jit", "saml", "oidc", "file", "admin",
		"source:hr", "source:okta", "source:src-1", "source:src-3",
	}
	propZone = time.FixedZone("UTC-5", -5*3600)
)

// genAccounts returns 0–6 accounts with unique IDs and many ties on
// priority, time and source, so every tie-break gets exercised.
func genAccounts(r *rand.Rand) []reconcile.Account {
	n := r.IntN(7)
	ids := r.Perm(100)[:n]
	out := make([]reconcile.Account, n)
	for i := range out {
		a := reconcile.Account{
			ID:            fmt.Sprintf("acc-%02d", ids[i]),
			SourceID:      pick(r, propSourceIDs),
			SourceKind:    pick(r, propKinds),
			SourceName:    pick(r, propNames),
			Priority:      r.IntN(3),
			Authoritative: r.IntN(2) == 0,
			Active:        r.IntN(3) != 0,
			Removed:       r.IntN(4) == 0,
			ChangedAt:     t0.Add(time.Duration(r.IntN(3)) * time.Hour),
		}
		if r.IntN(4) == 0 {
			a.ChangedAt = a.ChangedAt.In(propZone) // same instant, other zone
		}
		if r.IntN(3) == 0 {
			for _, attr := range propAttrs {
				if r.IntN(2) == 0 {
					if r.IntN(4) == 0 {
						attr = strings.ToUpper(attr)
					}
					a.Owns = append(a.Owns, attr)
				}
			}
		}
		if r.IntN(8) != 0 {
			a.Attrs = reconcile.Attrs{}
			for _, attr := range propAttrs {
				if r.IntN(5) < 3 {
					a.Attrs[attr] = pick(r, propValues)
				}
			}
		}
		out[i] = a
	}
	return out
}

func genPriority(r *rand.Rand) reconcile.Priority {
	var p reconcile.Priority
	for _, attr := range propAttrs {
		if r.IntN(2) == 0 {
			continue
		}
		if p.Attributes == nil {
			p.Attributes = map[string][]string{}
		}
		sel := []string{}
		for range r.IntN(4) {
			sel = append(sel, pick(r, propSelectors))
		}
		p.Attributes[attr] = sel
	}
	return p
}

func shuffled[T any](r *rand.Rand, xs []T) []T {
	out := slices.Clone(xs)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func dump(accounts []reconcile.Account, p reconcile.Priority) string {
	var b strings.Builder
	fmt.Fprintf(&b, "priority: %v\n", p.Attributes)
	for _, a := range accounts {
		fmt.Fprintf(&b, "  %s src=%s kind=%s name=%q prio=%d removed=%v at=%s owns=%v attrs=%v\n",
			a.ID, a.SourceID, a.SourceKind, a.SourceName, a.Priority, a.Removed,
			a.ChangedAt.UTC().Format(time.Kitchen), a.Owns, a.Attrs)
	}
	return b.String()
}

func TestPropertyMergeOrderIndependent(t *testing.T) {
	r := newRand(1)
	for i := range propIterations {
		accounts, p := genAccounts(r), genPriority(r)
		want := reconcile.Merge(accounts, p)
		for range 3 {
			order := shuffled(r, accounts)
			if got := reconcile.Merge(order, p); !reflect.DeepEqual(got, want) {
				t.Fatalf("iteration %d: Merge depends on account order\noriginal %s-> %+v\nshuffled %s-> %+v",
					i, dump(accounts, p), want, dump(order, p), got)
			}
		}
	}
}

func TestPropertyMergeIdempotent(t *testing.T) {
	r := newRand(2)
	for i := range propIterations {
		accounts, p := genAccounts(r), genPriority(r)
		before := cloneAccounts(accounts)
		first := reconcile.Merge(accounts, p)
		if !reflect.DeepEqual(accounts, before) {
			t.Fatalf("iteration %d: Merge modified its input\n%s", i, dump(before, p))
		}
		if second := reconcile.Merge(accounts, p); !reflect.DeepEqual(first, second) {
			t.Fatalf("iteration %d: merging twice differs\n%s first %+v\nsecond %+v", i, dump(accounts, p), first, second)
		}
		// Seeing every account twice must not change the record either.
		doubled := append(slices.Clone(accounts), accounts...)
		if got := reconcile.Merge(doubled, p); !reflect.DeepEqual(first, got) {
			t.Fatalf("iteration %d: duplicated accounts change the record\n%s once %+v\ntwice %+v", i, dump(accounts, p), first, got)
		}
	}
}

// oracleRank is where the spec puts an account in attr's override list.
func oracleRank(p reconcile.Priority, attr string, a reconcile.Account) int {
	sels := p.Attributes[attr]
	for i, s := range sels {
		var hit bool
		switch {
		case s == "jit":
			hit = a.SourceKind == "saml" || a.SourceKind == "oidc" || a.SourceKind == "email-domain"
		case strings.HasPrefix(s, "source:"):
			hit = s == "source:"+a.SourceName || s == "source:"+a.SourceID
		default:
			hit = s == a.SourceKind
		}
		if hit {
			return i
		}
	}
	return len(sels)
}

func oracleOwns(a reconcile.Account, attr string) bool {
	if len(a.Owns) == 0 {
		return true
	}
	return slices.ContainsFunc(a.Owns, func(o string) bool { return strings.EqualFold(o, attr) })
}

// oracleMerge states the documented order directly: among accounts that own
// the attribute and hold a value, sort live before removed, then override
// rank, then priority number, then newest first, then ID; take the first.
func oracleMerge(accounts []reconcile.Account, p reconcile.Priority) map[string]reconcile.Account {
	out := map[string]reconcile.Account{}
	attrs := map[string]bool{}
	for _, a := range accounts {
		for k := range a.Attrs {
			attrs[k] = true
		}
	}
	for attr := range attrs {
		var eligible []reconcile.Account
		for _, a := range accounts {
			if a.Attrs[attr] != "" && oracleOwns(a, attr) {
				eligible = append(eligible, a)
			}
		}
		if len(eligible) == 0 {
			continue
		}
		type key struct {
			removed  int
			rank     int
			priority int
			age      int64
			id       string
		}
		keyOf := func(a reconcile.Account) key {
			k := key{rank: oracleRank(p, attr, a), priority: a.Priority, age: -a.ChangedAt.UnixNano(), id: a.ID}
			if a.Removed {
				k.removed = 1
			}
			return k
		}
		sort.Slice(eligible, func(i, j int) bool {
			x, y := keyOf(eligible[i]), keyOf(eligible[j])
			switch {
			case x.removed != y.removed:
				return x.removed < y.removed
			case x.rank != y.rank:
				return x.rank < y.rank
			case x.priority != y.priority:
				return x.priority < y.priority
			case x.age != y.age:
				return x.age < y.age
			default:
				return x.id < y.id
			}
		})
		out[attr] = eligible[0]
	}
	return out
}

func TestPropertyMergeMatchesDocumentedOrder(t *testing.T) {
	r := newRand(3)
	for i := range propIterations {
		accounts, p := genAccounts(r), genPriority(r)
		got := reconcile.Merge(accounts, p)
		want := oracleMerge(accounts, p)
		if len(got.Attrs) != len(want) || len(got.Provenance) != len(want) {
			t.Fatalf("iteration %d: %d attrs / %d provenance, want %d\n%s got %+v",
				i, len(got.Attrs), len(got.Provenance), len(want), dump(accounts, p), got)
		}
		for attr, w := range want {
			prov := got.Provenance[attr]
			if got.Attrs[attr] != w.Attrs[attr] || prov.AccountID != w.ID || prov.SourceID != w.SourceID || !prov.At.Equal(w.ChangedAt) {
				t.Fatalf("iteration %d: %s = %q from %+v, want %q from account %s\n%s",
					i, attr, got.Attrs[attr], prov, w.Attrs[attr], w.ID, dump(accounts, p))
			}
		}
	}
}

func genState(r *rand.Rand) reconcile.State {
	return pick(r, []reconcile.State{"", reconcile.StateActive, reconcile.StateSuspended, reconcile.StateDeprovisioned})
}

func TestPropertyLifecycleOrderIndependent(t *testing.T) {
	r := newRand(4)
	for i := range propIterations {
		accounts, current, adminSuspended := genAccounts(r), genState(r), r.IntN(2) == 0
		want := reconcile.Lifecycle(current, adminSuspended, accounts)
		for range 3 {
			order := shuffled(r, accounts)
			if got := reconcile.Lifecycle(current, adminSuspended, order); got != want {
				t.Fatalf("iteration %d: Lifecycle(%q, %v) = %q in one order, %q in another\n%s",
					i, current, adminSuspended, want, got, dump(order, reconcile.Priority{}))
			}
		}
	}
}

// Non-authoritative accounts can neither deprovision nor keep alive: once a
// person has an authoritative account, dropping every non-authoritative one
// must not change the state.
func TestPropertyLifecycleIgnoresNonAuthoritativeWhenAuthoritativeExists(t *testing.T) {
	r := newRand(5)
	checked := 0
	for i := range propIterations {
		accounts, current, adminSuspended := genAccounts(r), genState(r), r.IntN(2) == 0
		var auth []reconcile.Account
		for _, a := range accounts {
			if a.Authoritative {
				auth = append(auth, a)
			}
		}
		if len(auth) == 0 {
			continue
		}
		checked++
		all := reconcile.Lifecycle(current, adminSuspended, accounts)
		if only := reconcile.Lifecycle(current, adminSuspended, auth); all != only {
			t.Fatalf("iteration %d: non-authoritative accounts changed the state %q -> %q\n%s",
				i, only, all, dump(accounts, reconcile.Priority{}))
		}
	}
	if checked < propIterations/4 {
		t.Fatalf("generator produced too few authoritative cases: %d", checked)
	}
}

// A live, active authoritative account always makes the person active, or
// suspended exactly when an admin suspended them, whatever else is there.
func TestPropertyLifecycleAuthoritativeActiveDecides(t *testing.T) {
	r := newRand(6)
	for i := range propIterations {
		accounts, current, adminSuspended := genAccounts(r), genState(r), r.IntN(2) == 0
		accounts = append(accounts, authActive("acc-live-auth"))
		accounts = shuffled(r, accounts)
		want := reconcile.StateActive
		if adminSuspended {
			want = reconcile.StateSuspended
		}
		if got := reconcile.Lifecycle(current, adminSuspended, accounts); got != want {
			t.Fatalf("iteration %d: Lifecycle(%q, %v) = %q, want %q\n%s",
				i, current, adminSuspended, got, want, dump(accounts, reconcile.Priority{}))
		}
	}
}

// Without a live active authoritative account the person is deprovisioned
// if they have an authoritative account or were deprovisioned already.
func TestPropertyLifecycleDeprovisioning(t *testing.T) {
	r := newRand(7)
	for i := range propIterations {
		accounts, current, adminSuspended := genAccounts(r), genState(r), r.IntN(2) == 0
		hasAuth, authAlive := false, false
		for _, a := range accounts {
			if a.Authoritative {
				hasAuth = true
				authAlive = authAlive || (a.Active && !a.Removed)
			}
		}
		if authAlive {
			continue
		}
		got := reconcile.Lifecycle(current, adminSuspended, accounts)
		wantDeprov := hasAuth || current == reconcile.StateDeprovisioned
		if (got == reconcile.StateDeprovisioned) != wantDeprov {
			t.Fatalf("iteration %d: Lifecycle(%q, %v) = %q, deprovisioned expected: %v\n%s",
				i, current, adminSuspended, got, wantDeprov, dump(accounts, reconcile.Priority{}))
		}
	}
}

// Match must not depend on the order or repetition of candidates, as long as
// HoldsSource is consistent for each identity.
func TestPropertyMatchCandidateOrderIndependent(t *testing.T) {
	r := newRand(8)
	identities := []string{"id-a", "id-b", "id-c", "id-d"}
	for i := range propIterations {
		holds := map[string]bool{}
		for _, id := range identities {
			holds[id] = r.IntN(4) == 0
		}
		in := reconcile.MatchInput{
			Attrs:         reconcile.Attrs{},
			EmailVerified: r.IntN(2) == 0,
			Rules:         shuffled(r, reconcile.DefaultRules)[:r.IntN(len(reconcile.DefaultRules)+1)],
			Candidates:    map[string][]reconcile.Candidate{},
		}
		for _, attr := range reconcile.DefaultRules {
			if r.IntN(3) != 0 {
				in.Attrs[attr] = pick(r, []string{"", "x"})
			}
			for range r.IntN(3) {
				id := pick(r, identities)
				in.Candidates[attr] = append(in.Candidates[attr], reconcile.Candidate{IdentityID: id, HoldsSource: holds[id]})
			}
		}
		want := reconcile.Match(in)
		slices.Sort(want.Candidates)
		variant := in
		variant.Candidates = map[string][]reconcile.Candidate{}
		for attr, cs := range in.Candidates {
			variant.Candidates[attr] = shuffled(r, append(slices.Clone(cs), cs...))
		}
		got := reconcile.Match(variant)
		slices.Sort(got.Candidates)
		if got.Kind != want.Kind || got.IdentityID != want.IdentityID || got.Rule != want.Rule ||
			!slices.Equal(got.Candidates, want.Candidates) {
			t.Fatalf("iteration %d: candidate order changed the result\ninput %+v -> %+v\nvariant %+v -> %+v",
				i, in, want, variant, got)
		}
	}
}

func TestPropertyDiff(t *testing.T) {
	r := newRand(9)
	keys := []string{"a", "b", "c", "d", "e", "f"}
	genAttrs := func() reconcile.Attrs {
		if r.IntN(6) == 0 {
			return nil
		}
		m := reconcile.Attrs{}
		for _, k := range keys {
			if r.IntN(2) == 0 {
				m[k] = pick(r, []string{"", "1", "2"})
			}
		}
		return m
	}
	for i := range propIterations {
		before, after := genAttrs(), genAttrs()
		got := reconcile.Diff(before, after)
		var differing []string
		for _, k := range keys {
			if before[k] != after[k] {
				differing = append(differing, k)
			}
		}
		var fields []string
		for _, c := range got {
			fields = append(fields, c.Field)
			if c.Before != before[c.Field] || c.After != after[c.Field] {
				t.Fatalf("iteration %d: change %+v does not match before=%v after=%v", i, c, before, after)
			}
		}
		// differing is in key order, so this checks content, sorting and
		// uniqueness at once.
		if !slices.Equal(fields, differing) {
			t.Fatalf("iteration %d: Diff(%v, %v) fields = %v, want %v", i, before, after, fields, differing)
		}
		if len(differing) == 0 && got != nil {
			t.Fatalf("iteration %d: Diff(%v, %v) = %#v, want nil", i, before, after, got)
		}
		if self := reconcile.Diff(before, before); self != nil {
			t.Fatalf("iteration %d: Diff of a map with itself = %#v, want nil", i, self)
		}
	}
}
