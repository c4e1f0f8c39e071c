package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/idsync/idsync/reconcile"
)

// GroupMode says how an observation's Groups combine with what the source
// asserted before.
type GroupMode string

const (
	// GroupsReplace (default): the source now asserts exactly Groups; its
	// other edges are revoked. Directories and JIT "sync" mode use it.
	GroupsReplace GroupMode = "replace"
	// GroupsAdd: grant Groups, revoke nothing (JIT "append"/"assign").
	GroupsAdd GroupMode = "add"
)

// Observation is one source's statement about one subject. Every feed
// (login, SCIM request, directory page, admin action) turns its protocol into
// observations and hands them to Engine.Apply.
type Observation struct {
	SourceID string `json:"sourceId"`
	// Key is the source's immutable key for the subject.
	Key   string `json:"key"`
	Attrs Attrs  `json:"attributes,omitempty"`
	// EmailVerified says the source verified Attrs["email"].
	EmailVerified bool `json:"emailVerified,omitempty"`
	// Groups the source asserts (names in the organization); nil means the
	// source says nothing about groups.
	Groups    []string  `json:"groups,omitempty"`
	GroupMode GroupMode `json:"groupMode,omitempty"`
	// Roles in the organization; nil means the source says nothing.
	Roles []string `json:"roles,omitempty"`
	// Inactive: the source holds the subject but disabled.
	Inactive bool `json:"inactive,omitempty"`
	// Removed: the source no longer holds the subject.
	Removed bool `json:"removed,omitempty"`
	// Login marks an observation made at sign-in; it refreshes the
	// identity's last login (at most once per Options.TouchInterval).
	Login bool `json:"login,omitempty"`
	// Raw is the source's own document (a SCIM resource, an LDAP entry as
	// JSON). It must hold no secret: edges strip passwords before this.
	Raw json.RawMessage `json:"raw,omitempty"`

	// At is when the source made the statement; zero means now.
	At            time.Time `json:"at,omitzero"`
	Actor         string    `json:"actor,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
}

// hashInput is what the content hash covers: everything that can change the
// graph, not when or by whom it was said.
type hashInput struct {
	A  Attrs           `json:"a,omitempty"`
	V  bool            `json:"v,omitempty"`
	G  []string        `json:"g,omitempty"`
	GS bool            `json:"gs,omitempty"` // groups stated (nil vs empty)
	GM GroupMode       `json:"gm,omitempty"`
	R  []string        `json:"r,omitempty"`
	RS bool            `json:"rs,omitempty"`
	I  bool            `json:"i,omitempty"`
	X  bool            `json:"x,omitempty"`
	W  json.RawMessage `json:"w,omitempty"`
}

// ContentHash returns the hash of what the observation says. Two
// observations with the same hash have the same effect. It hashes the JSON
// encoding of hashInput, written by hand (this runs for every observation
// of every feed): the bytes are exactly encoding/json's, so hashes stored
// by earlier versions still compare equal (TestContentHashMatchesJSON).
func (o Observation) ContentHash() string {
	b, ok := o.appendHashInput(make([]byte, 0, 64+32*len(o.Attrs)))
	if !ok {
		b = o.hashInputJSON()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// hashInputJSON is json.Marshal(hashInput), the reference encoding.
func (o Observation) hashInputJSON() []byte {
	in := hashInput{A: o.Attrs, V: o.EmailVerified, GS: o.Groups != nil, GM: o.GroupMode,
		RS: o.Roles != nil, I: o.Inactive, X: o.Removed, W: o.Raw}
	if o.Groups != nil {
		in.G = sortedLower(o.Groups)
	}
	if o.Roles != nil {
		in.R = slices.Sorted(slices.Values(o.Roles))
	}
	b, err := json.Marshal(in)
	if err != nil { // Raw that is not JSON; Validate rejects it first
		b = fmt.Appendf(nil, "%v", in)
	}
	return b
}

// appendHashInput appends hashInput's JSON encoding; false when Raw is
// not JSON (the caller then falls back to hashInputJSON).
func (o Observation) appendHashInput(b []byte) ([]byte, bool) {
	b = append(b, '{')
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	if len(o.Attrs) > 0 {
		keys := make([]string, 0, len(o.Attrs))
		for k := range o.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `"a":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, k)
			b = append(b, ':')
			b = AppendJSONString(b, o.Attrs[k])
		}
		b = append(b, '}')
	}
	flag := func(name string, on bool) {
		if on {
			sep()
			b = append(b, '"')
			b = append(b, name...)
			b = append(b, `":true`...)
		}
	}
	list := func(name string, ss []string) {
		if len(ss) == 0 {
			return
		}
		sep()
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":[`...)
		for i, s := range ss {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, s)
		}
		b = append(b, ']')
	}
	flag("v", o.EmailVerified)
	if o.Groups != nil {
		list("g", sortedLower(o.Groups))
	}
	flag("gs", o.Groups != nil)
	if o.GroupMode != "" {
		sep()
		b = append(b, `"gm":`...)
		b = AppendJSONString(b, string(o.GroupMode))
	}
	if o.Roles != nil {
		list("r", slices.Sorted(slices.Values(o.Roles)))
	}
	flag("rs", o.Roles != nil)
	flag("i", o.Inactive)
	flag("x", o.Removed)
	if len(o.Raw) > 0 {
		w, err := json.Marshal(o.Raw) // compacted and escaped as encoding/json does
		if err != nil {
			return nil, false
		}
		sep()
		b = append(b, `"w":`...)
		b = append(b, w...)
	}
	return append(b, '}'), true
}

// AppendJSONString appends s JSON-encoded exactly as encoding/json does
// (HTML-safe escaping): as is when nothing needs escaping, which is nearly
// always, else through encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func sortedLower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var localeTag = regexp.MustCompile(`^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$`)

// validAttrName reports whether k matches ^[A-Za-z][A-Za-z0-9_.:-]{0,127}$
// (checked by hand: it runs for every attribute of every observation).
func validAttrName(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Limits on observation content.
const (
	maxAttrValue = 4096
	maxKey       = 1024
	maxGroups    = 10000
	maxRawBytes  = 256 << 10
)

// Validate reports every problem of the observation at once, wrapping
// ErrInvalid.
func (o *Observation) Validate() error {
	var probs []string
	if o.SourceID == "" {
		probs = append(probs, "sourceId is required")
	}
	if strings.TrimSpace(o.Key) == "" {
		probs = append(probs, "key is required")
	} else if len(o.Key) > maxKey || !utf8.ValidString(o.Key) {
		probs = append(probs, "key is longer than 1024 bytes or not UTF-8")
	}
	for k, v := range o.Attrs {
		if !validAttrName(k) {
			probs = append(probs, fmt.Sprintf("attribute name %q is not allowed", k))
			continue
		}
		if err := validValue(k, v); err != "" {
			probs = append(probs, fmt.Sprintf("attribute %s: %s", k, err))
		}
	}
	if len(o.Groups) > maxGroups {
		probs = append(probs, fmt.Sprintf("%d groups is more than %d", len(o.Groups), maxGroups))
	}
	for _, g := range o.Groups {
		if strings.TrimSpace(g) == "" || len(g) > 512 || hasControl(g) {
			probs = append(probs, fmt.Sprintf("group name %q is empty, too long or has control characters", g))
		}
	}
	switch o.GroupMode {
	case "", GroupsReplace, GroupsAdd:
	default:
		probs = append(probs, fmt.Sprintf("group mode %q is not replace or add", o.GroupMode))
	}
	for _, r := range o.Roles {
		if strings.TrimSpace(r) == "" || len(r) > 128 {
			probs = append(probs, fmt.Sprintf("role %q is empty or too long", r))
		}
	}
	if len(o.Raw) > 0 && (len(o.Raw) > maxRawBytes || !json.Valid(o.Raw)) {
		probs = append(probs, "raw document is not valid JSON or larger than 256 KiB")
	}
	if len(probs) > 0 {
		slices.Sort(probs)
		return fmt.Errorf("observation %q: %s: %w", o.Key, strings.Join(probs, "; "), ErrInvalid)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) >= 0
}

// validValue checks the value of a well-known attribute; "" means fine.
func validValue(k, v string) string {
	if !utf8.ValidString(v) {
		return "not valid UTF-8"
	}
	if len(v) > maxAttrValue {
		return fmt.Sprintf("longer than %d bytes", maxAttrValue)
	}
	if hasControl(v) {
		return "contains control characters"
	}
	if v == "" {
		return ""
	}
	switch k {
	case reconcile.AttrEmail:
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v || !strings.Contains(v, "@") {
			return fmt.Sprintf("%q is not an email address", v)
		}
	case reconcile.AttrLocale:
		if !localeTag.MatchString(v) {
			return fmt.Sprintf("%q is not a locale tag", v)
		}
	case reconcile.AttrUserName:
		if strings.TrimSpace(v) != v {
			return "has leading or trailing spaces"
		}
	}
	return ""
}

// NormalizeEmail lowercases an email for matching.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
