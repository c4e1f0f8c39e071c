package reconcile

import "fmt"

// DefaultRules is the default matching order for an account no source key
// links yet.
var DefaultRules = []string{AttrEmail, AttrUserName, AttrExternalID, AttrEmployeeNumber}

// Candidate is an identity whose golden attribute equals the incoming one
// (case-insensitively), found by the caller for one rule.
type Candidate struct {
	IdentityID string
	// HoldsSource is true when the identity already has another account of
	// the same source: one source never holds a person twice.
	HoldsSource bool
}

// MatchInput is everything Match needs to place an account that no source
// key links yet.
type MatchInput struct {
	// Linked is the identity an existing account of this source key belongs
	// to; it wins over every rule.
	Linked        string
	Attrs         Attrs
	EmailVerified bool
	Rules         []string
	// Candidates holds, per rule attribute, the identities that match it.
	Candidates map[string][]Candidate
}

// MatchKind is the outcome of Match.
type MatchKind string

const (
	MatchLinked   MatchKind = "linked"   // the source key is already linked
	MatchRule     MatchKind = "matched"  // a rule found exactly one identity
	MatchNew      MatchKind = "new"      // nobody matches: create
	MatchConflict MatchKind = "conflict" // ambiguous: queue, never guess
)

// MatchResult says which identity an account belongs to.
type MatchResult struct {
	Kind       MatchKind
	IdentityID string
	Rule       string
	Reason     string
	Candidates []string
}

// Match decides which identity an incoming account belongs to. Rules are
// tried in order and the first rule with any candidate decides: one
// candidate links, several open a conflict. A match on an email the source
// has not verified opens a conflict rather than merging, and so does a
// candidate that already holds an account of the same source.
func Match(in MatchInput) MatchResult {
	if in.Linked != "" {
		return MatchResult{Kind: MatchLinked, IdentityID: in.Linked}
	}
	for _, rule := range in.Rules {
		if in.Attrs[rule] == "" {
			continue
		}
		cands := dedupe(in.Candidates[rule])
		switch {
		case len(cands) == 0:
			continue
		case len(cands) > 1:
			return MatchResult{Kind: MatchConflict, Rule: rule, Candidates: ids(cands),
				Reason: fmt.Sprintf("%d identities match on %s", len(cands), rule)}
		case rule == AttrEmail && !in.EmailVerified:
			return MatchResult{Kind: MatchConflict, Rule: rule, Candidates: ids(cands),
				Reason: "matches an existing identity on an unverified email"}
		case cands[0].HoldsSource:
			return MatchResult{Kind: MatchConflict, Rule: rule, Candidates: ids(cands),
				Reason: fmt.Sprintf("matches on %s an identity that already holds an account of this source", rule)}
		default:
			return MatchResult{Kind: MatchRule, IdentityID: cands[0].IdentityID, Rule: rule}
		}
	}
	return MatchResult{Kind: MatchNew}
}

// dedupe keeps one candidate per identity; it holds the source if any of
// its repeats says so.
func dedupe(cs []Candidate) []Candidate {
	at := map[string]int{}
	var out []Candidate
	for _, c := range cs {
		if i, ok := at[c.IdentityID]; ok {
			out[i].HoldsSource = out[i].HoldsSource || c.HoldsSource
			continue
		}
		at[c.IdentityID] = len(out)
		out = append(out, c)
	}
	return out
}

func ids(cs []Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.IdentityID
	}
	return out
}
