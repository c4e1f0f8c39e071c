package ldap

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/idsync/idsync/engine"
)

// GroupIndex is the directory's groups and their members, loaded once per
// run (groups are far fewer than people): member DNs (member,
// uniqueMember), member uids (memberUid, RFC 2307) and, for nested
// flattening, which groups hold which groups.
type GroupIndex struct {
	nested   bool
	names    []string         // by group index
	byDN     map[string]int   // normalized group DN → index
	byMember map[string][]int // normalized member DN → groups
	byUID    map[string][]int // memberUid → groups
	parents  [][]int          // group → groups that hold it (nested)
}

// memberAttrs are the attributes a group lists members in.
var memberAttrs = []string{"member", "uniqueMember", "memberUid"}

// LoadGroups reads every group under GroupBaseDN, page by page, fetching
// AD's ranged member;range=… values in full.
func (c *Client) LoadGroups(ctx context.Context) (*GroupIndex, error) {
	gi := &GroupIndex{nested: c.cfg.NestedGroups, byDN: map[string]int{}, byMember: map[string][]int{}, byUID: map[string][]int{}}
	attrs := append([]string{c.cfg.GroupNameAttr}, memberAttrs...)
	var memberDNs [][]string // per group, for the nesting pass
	for entries, err := range c.pages(ctx, c.cfg.GroupBaseDN, goldap.ScopeWholeSubtree, c.cfg.GroupFilter, attrs) {
		if err != nil {
			return nil, fmt.Errorf("ldap groups: %w", err)
		}
		for _, e := range entries {
			name := e.GetEqualFoldAttributeValue(c.cfg.GroupNameAttr)
			if name == "" {
				name = firstRDNValue(e.DN)
			}
			idx := len(gi.names)
			gi.names = append(gi.names, name)
			gi.byDN[normDN(e.DN)] = idx
			var dns []string
			for _, a := range e.Attributes {
				base, lo, hi, ranged := parseRange(a.Name)
				switch {
				case strings.EqualFold(base, "memberUid"):
					for _, v := range a.Values {
						gi.byUID[strings.ToLower(v)] = append(gi.byUID[strings.ToLower(v)], idx)
					}
				case strings.EqualFold(base, "member"), strings.EqualFold(base, "uniqueMember"):
					vals := a.Values
					if ranged && hi >= 0 {
						more, err := c.rangedValues(ctx, e.DN, base, lo+len(a.Values))
						if err != nil {
							return nil, err
						}
						vals = append(slices.Clip(vals), more...)
					}
					for _, v := range vals {
						if strings.EqualFold(base, "uniqueMember") { // "dn#'0101'B" optional UID suffix
							if i := strings.LastIndex(v, "#'"); i > 0 {
								v = v[:i]
							}
						}
						d := normDN(v)
						gi.byMember[d] = append(gi.byMember[d], idx)
						dns = append(dns, d)
					}
				}
			}
			memberDNs = append(memberDNs, dns)
		}
	}
	if gi.nested {
		gi.parents = make([][]int, len(gi.names))
		for parent, dns := range memberDNs {
			for _, d := range dns {
				if child, ok := gi.byDN[d]; ok {
					gi.parents[child] = append(gi.parents[child], parent)
				}
			}
		}
	}
	return gi, nil
}

// rangedValues reads the rest of an AD ranged attribute, from index from
// on, until the server answers with range=…-*.
func (c *Client) rangedValues(ctx context.Context, dn, attr string, from int) ([]string, error) {
	var out []string
	for guard := 0; guard < 10000; guard++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want := fmt.Sprintf("%s;range=%d-*", attr, from)
		req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{want}, nil)
		res, err := c.conn.Search(req)
		if err != nil {
			return nil, fmt.Errorf("ldap: ranged %s of %s: %s: %w", attr, dn, ldapErrText(err), engine.ErrUnavailable)
		}
		if len(res.Entries) != 1 {
			return out, nil
		}
		got := false
		for _, a := range res.Entries[0].Attributes {
			base, _, hi, ranged := parseRange(a.Name)
			if !strings.EqualFold(base, attr) || !ranged {
				continue
			}
			got = true
			out = append(out, a.Values...)
			if hi < 0 || len(a.Values) == 0 {
				return out, nil
			}
			from = hi + 1
		}
		if !got {
			return out, nil
		}
	}
	return nil, fmt.Errorf("ldap: ranged %s of %s does not end: %w", attr, dn, engine.ErrUnavailable)
}

// parseRange splits "member;range=0-1499" into member, 0, 1499; hi is -1
// for "*" (the last chunk). ranged is false for a plain name.
func parseRange(name string) (base string, lo, hi int, ranged bool) {
	base, opts, ok := strings.Cut(name, ";")
	if !ok {
		return name, 0, -1, false
	}
	for _, o := range strings.Split(opts, ";") {
		r, found := strings.CutPrefix(strings.ToLower(o), "range=")
		if !found {
			continue
		}
		l, h, _ := strings.Cut(r, "-")
		lo, _ = strconv.Atoi(l)
		if h == "*" {
			return base, lo, -1, true
		}
		hi, err := strconv.Atoi(h)
		if err != nil {
			return base, lo, -1, true
		}
		return base, lo, hi, true
	}
	return base, 0, -1, false
}

// For returns the sorted group names of a user: groups listing its DN or
// uid, plus its memberOf values, plus (nested) every group holding those.
func (gi *GroupIndex) For(dn, uid string, memberOf []string) []string {
	set := map[int]bool{}
	var extra []string
	for _, g := range gi.byMember[normDN(dn)] {
		set[g] = true
	}
	if uid != "" {
		for _, g := range gi.byUID[strings.ToLower(uid)] {
			set[g] = true
		}
	}
	for _, m := range memberOf {
		if g, ok := gi.byDN[normDN(m)]; ok {
			set[g] = true
		} else if n := firstRDNValue(m); n != "" {
			extra = append(extra, n) // a group outside groupBaseDN
		}
	}
	if gi.nested {
		queue := make([]int, 0, len(set))
		for g := range set {
			queue = append(queue, g)
		}
		for len(queue) > 0 {
			g := queue[0]
			queue = queue[1:]
			for _, p := range gi.parents[g] {
				if !set[p] { // cycles end here
					set[p] = true
					queue = append(queue, p)
				}
			}
		}
	}
	out := extra
	for g := range set {
		out = append(out, gi.names[g])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// normDN lowercases a DN and drops the spaces around its separators.
func normDN(dn string) string {
	if d, err := goldap.ParseDN(dn); err == nil {
		var b strings.Builder
		for i, rdn := range d.RDNs {
			if i > 0 {
				b.WriteByte(',')
			}
			for j, a := range rdn.Attributes {
				if j > 0 {
					b.WriteByte('+')
				}
				b.WriteString(strings.ToLower(a.Type))
				b.WriteByte('=')
				b.WriteString(strings.ToLower(a.Value))
			}
		}
		return b.String()
	}
	return strings.ToLower(strings.TrimSpace(dn))
}

func firstRDNValue(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
		return ""
	}
	return d.RDNs[0].Attributes[0].Value
}
