package reconcile_test

import (
	"slices"
	"testing"

	"github.com/idsync/idsync/reconcile"
)

func cand(id string) reconcile.Candidate { return reconcile.Candidate{IdentityID: id} }

func holder(id string) reconcile.Candidate {
	return reconcile.Candidate{IdentityID: id, HoldsSource: true}
}

// fullAttrs carries a value for every default rule attribute.
func fullAttrs() reconcile.Attrs {
	return reconcile.Attrs{
		reconcile.AttrEmail:          "ada@example.com",
		reconcile.AttrUserName:       "ada",
		reconcile.AttrExternalID:     "ext-1",
		reconcile.AttrEmployeeNumber: "E-1",
	}
}

func without(attrs reconcile.Attrs, keys ...string) reconcile.Attrs {
	out := reconcile.Attrs{}
	for k, v := range attrs {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func with(attrs reconcile.Attrs, k, v string) reconcile.Attrs {
	out := without(attrs)
	out[k] = v
	return out
}

type matchWant struct {
	kind       reconcile.MatchKind
	identity   string
	rule       string
	candidates []string // as a set; nil means none expected
}

func TestMatch(t *testing.T) {
	email, user, ext, emp := reconcile.AttrEmail, reconcile.AttrUserName, reconcile.AttrExternalID, reconcile.AttrEmployeeNumber
	rules := []string{email, user, ext, emp}
	cases := []struct {
		name string
		in   reconcile.MatchInput
		want matchWant
	}{
		// Linked.
		{
			name: "linked wins over a rule that would link elsewhere",
			in: reconcile.MatchInput{
				Linked: "id-linked", Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("id-other")}},
			},
			want: matchWant{kind: reconcile.MatchLinked, identity: "id-linked"},
		},
		{
			name: "linked wins over a rule that would conflict",
			in: reconcile.MatchInput{
				Linked: "id-linked", Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a"), cand("b")}, user: {holder("c")}},
			},
			want: matchWant{kind: reconcile.MatchLinked, identity: "id-linked"},
		},
		{
			name: "linked wins with no rules and no attributes",
			in:   reconcile.MatchInput{Linked: "id-linked"},
			want: matchWant{kind: reconcile.MatchLinked, identity: "id-linked"},
		},

		// Rules in order; the first rule with candidates decides.
		{
			name: "single candidate on the first rule links",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("id-1")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "id-1", rule: email},
		},
		{
			name: "earlier rule decides over a later one (email first)",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: []string{email, user},
				Candidates: map[string][]reconcile.Candidate{email: {cand("by-email")}, user: {cand("by-user")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-email", rule: email},
		},
		{
			name: "earlier rule decides over a later one (userName first)",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: []string{user, email},
				Candidates: map[string][]reconcile.Candidate{email: {cand("by-email")}, user: {cand("by-user")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-user", rule: user},
		},
		{
			name: "rule without candidates falls through to the next",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {}, user: nil, ext: {cand("by-ext")}, emp: {cand("by-emp")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-ext", rule: ext},
		},
		{
			name: "last rule can decide",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{emp: {cand("by-emp")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-emp", rule: emp},
		},
		{
			name: "first rule with candidates decides even when a later rule would link",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a"), cand("b")}, user: {cand("c")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: email, candidates: []string{"a", "b"}},
		},
		{
			name: "first rule with candidates decides even when a later rule would conflict",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: []string{user, ext},
				Candidates: map[string][]reconcile.Candidate{user: {cand("a")}, ext: {cand("b"), cand("c")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "a", rule: user},
		},
		{
			name: "candidates for attributes not in the rules are ignored",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: []string{ext},
				Candidates: map[string][]reconcile.Candidate{email: {cand("by-email")}, user: {cand("x"), cand("y")}},
			},
			want: matchWant{kind: reconcile.MatchNew},
		},
		{
			name: "custom rule attribute",
			in: reconcile.MatchInput{
				Attrs: reconcile.Attrs{"badgeId": "B-7"}, Rules: []string{"badgeId"},
				Candidates: map[string][]reconcile.Candidate{"badgeId": {cand("by-badge")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-badge", rule: "badgeId"},
		},
		{
			name: "default rules try email first",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: reconcile.DefaultRules,
				Candidates: map[string][]reconcile.Candidate{
					email: {cand("by-email")}, user: {cand("by-user")}, ext: {cand("by-ext")}, emp: {cand("by-emp")},
				},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-email", rule: email},
		},

		// Several candidates.
		{
			name: "several candidates conflict",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{user: {cand("a"), cand("b"), cand("c")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: user, candidates: []string{"a", "b", "c"}},
		},
		{
			name: "several candidates on a verified email conflict",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a"), cand("b")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: email, candidates: []string{"a", "b"}},
		},
		{
			name: "several candidates on an unverified email conflict",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a"), cand("b")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: email, candidates: []string{"a", "b"}},
		},

		// Email verification.
		{
			name: "unverified email match conflicts",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: false, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("id-1")}, user: {cand("id-1")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: email, candidates: []string{"id-1"}},
		},
		{
			name: "verified email match links",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("id-1")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "id-1", rule: email},
		},
		{
			name: "unverified email only matters to the email rule",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: false, Rules: []string{user, email},
				Candidates: map[string][]reconcile.Candidate{user: {cand("by-user")}, email: {cand("by-email")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-user", rule: user},
		},
		{
			name: "unverified email without candidates falls through",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: false, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{user: {cand("by-user")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-user", rule: user},
		},

		// A candidate that already holds an account of this source.
		{
			name: "candidate holding the source conflicts",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {holder("id-1")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: email, candidates: []string{"id-1"}},
		},
		{
			name: "candidate holding the source conflicts on a non-email rule",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: []string{ext, user},
				Candidates: map[string][]reconcile.Candidate{ext: {holder("id-1")}, user: {cand("id-2")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: ext, candidates: []string{"id-1"}},
		},
		{
			name: "several candidates, one holding the source, conflict",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{user: {cand("a"), holder("b")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: user, candidates: []string{"a", "b"}},
		},

		// Absent attributes.
		{
			name: "rule whose attribute is absent is skipped despite candidates",
			in: reconcile.MatchInput{
				Attrs: without(fullAttrs(), email), EmailVerified: true, Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a"), cand("b")}, user: {cand("by-user")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-user", rule: user},
		},
		{
			name: "rule whose attribute is empty is skipped despite candidates",
			in: reconcile.MatchInput{
				Attrs: with(fullAttrs(), user, ""), Rules: []string{user, ext},
				Candidates: map[string][]reconcile.Candidate{user: {cand("by-user")}, ext: {cand("by-ext")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "by-ext", rule: ext},
		},
		{
			name: "unverified email absent is skipped, not a conflict",
			in: reconcile.MatchInput{
				Attrs: without(fullAttrs(), email), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("by-email")}},
			},
			want: matchWant{kind: reconcile.MatchNew},
		},
		{
			name: "nil attributes skip every rule",
			in: reconcile.MatchInput{
				Rules:      rules,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a")}, user: {cand("b")}},
			},
			want: matchWant{kind: reconcile.MatchNew},
		},

		// Duplicates.
		{
			name: "duplicate candidates of one identity count once and link",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{user: {cand("id-1"), cand("id-1"), cand("id-1")}},
			},
			want: matchWant{kind: reconcile.MatchRule, identity: "id-1", rule: user},
		},
		{
			name: "duplicates count once among several identities",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{user: {cand("a"), cand("b"), cand("a"), cand("b")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: user, candidates: []string{"a", "b"}},
		},
		{
			name: "duplicate holder still conflicts",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{user: {holder("id-1"), holder("id-1")}},
			},
			want: matchWant{kind: reconcile.MatchConflict, rule: user, candidates: []string{"id-1"}},
		},

		// Nothing matches.
		{
			name: "no candidates anywhere gives new",
			in:   reconcile.MatchInput{Attrs: fullAttrs(), EmailVerified: true, Rules: rules},
			want: matchWant{kind: reconcile.MatchNew},
		},
		{
			name: "empty candidate lists give new",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), Rules: rules,
				Candidates: map[string][]reconcile.Candidate{email: {}, user: {}, ext: {}, emp: {}},
			},
			want: matchWant{kind: reconcile.MatchNew},
		},
		{
			name: "no rules gives new",
			in: reconcile.MatchInput{
				Attrs: fullAttrs(), EmailVerified: true,
				Candidates: map[string][]reconcile.Candidate{email: {cand("a")}},
			},
			want: matchWant{kind: reconcile.MatchNew},
		},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			checkMatch(t, reconcile.Match(tc.in), tc.want)
		})
	}
}

func checkMatch(t *testing.T, got reconcile.MatchResult, want matchWant) {
	t.Helper()
	if got.Kind != want.kind {
		t.Fatalf("Kind = %q, want %q (result %+v)", got.Kind, want.kind, got)
	}
	if got.IdentityID != want.identity {
		t.Errorf("IdentityID = %q, want %q", got.IdentityID, want.identity)
	}
	if got.Rule != want.rule {
		t.Errorf("Rule = %q, want %q", got.Rule, want.rule)
	}
	gotC := slices.Clone(got.Candidates)
	slices.Sort(gotC)
	wantC := slices.Clone(want.candidates)
	slices.Sort(wantC)
	if !slices.Equal(gotC, wantC) {
		t.Errorf("Candidates = %v, want %v", got.Candidates, want.candidates)
	}
	if want.kind == reconcile.MatchConflict && got.Reason == "" {
		t.Errorf("conflict without a Reason")
	}
}

// TestMatchConflictReasonsDiffer makes sure a reviewer can tell the three
// kinds of conflict apart from the reason alone.
func TestMatchConflictReasonsDiffer(t *testing.T) {
	attrs := fullAttrs()
	inputs := map[string]reconcile.MatchInput{
		"several": {Attrs: attrs, EmailVerified: true, Rules: []string{reconcile.AttrEmail},
			Candidates: map[string][]reconcile.Candidate{reconcile.AttrEmail: {cand("a"), cand("b")}}},
		"unverified": {Attrs: attrs, Rules: []string{reconcile.AttrEmail},
			Candidates: map[string][]reconcile.Candidate{reconcile.AttrEmail: {cand("a")}}},
		"holds source": {Attrs: attrs, EmailVerified: true, Rules: []string{reconcile.AttrEmail},
			Candidates: map[string][]reconcile.Candidate{reconcile.AttrEmail: {holder("a")}}},
	}
	seen := map[string]string{}
	for name, in := range inputs {
		t.Run("case="+name, func(t *testing.T) {
			r := reconcile.Match(in)
			if r.Kind != reconcile.MatchConflict {
				t.Fatalf("Kind = %q, want conflict", r.Kind)
			}
			if other, dup := seen[r.Reason]; dup {
				t.Errorf("reason %q shared by %q and %q", r.Reason, name, other)
			}
			seen[r.Reason] = name
		})
	}
}

// A candidate listed twice (once per matching account row) holds the source
// if any of its rows says so, whatever the order.
func TestMatchRepeatedCandidateHoldingSource(t *testing.T) {
	for _, order := range [][]reconcile.Candidate{{cand("X"), holder("X")}, {holder("X"), cand("X")}} {
		in := reconcile.MatchInput{Attrs: reconcile.Attrs{reconcile.AttrUserName: "ada"},
			Rules: []string{reconcile.AttrUserName}, Candidates: map[string][]reconcile.Candidate{reconcile.AttrUserName: order}}
		if got := reconcile.Match(in); got.Kind != reconcile.MatchConflict {
			t.Errorf("candidates %v: kind %s, want conflict", order, got.Kind)
		}
	}
}
