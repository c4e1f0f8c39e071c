// Package filter translates SCIM filters (RFC 7644 §3.4.2.2), parsed by
// github.com/scim2/filter-parser/v2, into parameterised SQL WHERE clauses
// over the scim_resources table of package storage (migration 0003), for
// SQLite (json_extract, json_each) and PostgreSQL (#>>,
// jsonb_array_elements). It also holds the attribute definitions of the
// User and Group resource types that package scim validates against and
// publishes at /Schemas.
//
// Values never enter the SQL text: they are ? arguments. Attribute names
// enter it only after they were resolved to a definition in this package,
// so the SQL holds only names spelled here. Indexed columns serve id,
// externalId, userName, displayName and meta.created/lastModified; every
// other attribute is read from the stored document. String comparisons
// follow caseExact (RFC 7643 §2.4): case-insensitive ones compare
// lower-cased values (SQLite's lower() folds ASCII only).
//
// It must not run queries or know about HTTP.
package filter

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	fp "github.com/scim2/filter-parser/v2"
)

// Error is a filter the translator refuses (RFC 7644 §3.12 invalidFilter).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// maxFilterLen bounds the filter text; maxNodes bounds its expressions.
const (
	maxFilterLen = 4096
	maxNodes     = 64
)

// entraValuePath matches Entra's `emails[type eq "work"].value eq "x"`,
// which RFC 7644's grammar lacks; it is rewritten to the equivalent
// `emails[type eq "work" and value eq "x"]`.
var entraValuePath = regexp.MustCompile(`([A-Za-z][\w:.\-]*)\[([^\[\]]*)\]\.([A-Za-z$][\w]*)\s+(?i:(eq|ne|co|sw|ew|gt|ge|lt|le)\s+("(?:[^"\\]|\\.)*"|true|false|null|[-\d.eE+]+)|(pr))`)

// Translate returns the SQL condition selecting the resources of res that
// match filter, and its arguments.
func Translate(res Resource, dialect, filter string) (string, []any, error) {
	if len(filter) > maxFilterLen {
		return "", nil, errf("filter is longer than %d bytes", maxFilterLen)
	}
	filter = entraValuePath.ReplaceAllString(filter, "$1[$2 and $3 $4$6 $5]")
	expr, err := parse(filter)
	if err != nil {
		return "", nil, err
	}
	b := &builder{res: res, d: dialect}
	sql, err := b.expr(expr, "")
	if err != nil {
		return "", nil, err
	}
	return sql, b.args, nil
}

var simplePath = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_-]*)(?:\.([A-Za-z$][A-Za-z0-9_-]*))?$`)

// ParseAttrPath parses an attribute path (RFC 7644 §3.10); plain
// `name` and `name.sub` skip the general parser.
func ParseAttrPath(s string) (p fp.AttributePath, err error) {
	if m := simplePath.FindStringSubmatch(s); m != nil {
		p.AttributeName = m[1]
		if m[2] != "" {
			sub := m[2]
			p.SubAttribute = &sub
		}
		return p, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = errf("attribute path %q is not valid", s)
		}
	}()
	return fp.ParseAttrPath([]byte(s))
}

// ParsePath parses a PATCH path (RFC 7644 §3.5.2), with the same fast
// path.
func ParsePath(s string) (p fp.Path, err error) {
	if m := simplePath.FindStringSubmatch(s); m != nil {
		ap, _ := ParseAttrPath(s)
		return fp.Path{AttributePath: ap}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = errf("path %q is not valid", s)
		}
	}()
	return fp.ParsePath([]byte(s))
}

// simpleEq is the filter IdPs send most (`userName eq "x"`); it skips the
// general parser, which costs more than the query it guards.
var simpleEq = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9_-]*)(?:\.([A-Za-z$][A-Za-z0-9_-]*))?\s+(?i:eq)\s+("(?:[^"\\]|\\.)*")\s*$`)

func parse(filter string) (expr fp.Expression, err error) {
	if m := simpleEq.FindStringSubmatch(filter); m != nil {
		var v string
		if json.Unmarshal([]byte(m[3]), &v) == nil {
			p := fp.AttributePath{AttributeName: m[1]}
			if m[2] != "" {
				sub := m[2]
				p.SubAttribute = &sub
			}
			return &fp.AttributeExpression{AttributePath: p, Operator: fp.EQ, CompareValue: v}, nil
		}
	}
	defer func() { // the parser has panicked on odd input before
		if p := recover(); p != nil {
			expr, err = nil, errf("filter %q is not valid", filter)
		}
	}()
	expr, err = fp.ParseFilter([]byte(filter))
	if err != nil || expr == nil {
		return nil, errf("filter %q is not valid (RFC 7644 §3.4.2.2)", filter)
	}
	return expr, nil
}

type builder struct {
	res   Resource
	d     string
	args  []any
	nodes int
	elem  Attr // the multi-valued attribute whose elements are being filtered
}

// target is a resolved attribute path.
type target struct {
	attr Attr     // top-level attribute
	sub  *Attr    // sub-attribute, if named
	path []string // JSON path of attr in the document
}

// Resolve finds the definition of an attribute path of res.
func Resolve(res Resource, p fp.AttributePath) (Attr, *Attr, []string, error) {
	t, err := resolve(res, p)
	return t.attr, t.sub, t.path, err
}

func resolve(res Resource, p fp.AttributePath) (target, error) {
	var (
		a      Attr
		ok     bool
		prefix []string
	)
	switch uri := p.URI(); {
	case uri == "" || strings.EqualFold(uri, res.Core.ID):
		for _, c := range Common() {
			if strings.EqualFold(c.Name, p.AttributeName) {
				a, ok = c, true
			}
		}
		if !ok {
			a, ok = res.Core.Attr(p.AttributeName)
		}
	default:
		ext, found := res.Extension(uri)
		if !found {
			return target{}, errf("unknown schema %q", uri)
		}
		a, ok = ext.Attr(p.AttributeName)
		prefix = []string{ext.ID}
	}
	if !ok {
		return target{}, errf("unknown attribute %q", p.String())
	}
	t := target{attr: a, path: append(prefix, a.Name)}
	if p.SubAttribute != nil {
		s, ok := a.SubAttr(*p.SubAttribute)
		if !ok {
			return target{}, errf("unknown attribute %q", p.String())
		}
		t.sub = &s
	}
	return t, nil
}

func (b *builder) expr(e fp.Expression, elem string) (string, error) {
	if b.nodes++; b.nodes > maxNodes {
		return "", errf("filter has more than %d expressions", maxNodes)
	}
	switch e := e.(type) {
	case *fp.LogicalExpression:
		l, err := b.expr(e.Left, elem)
		if err != nil {
			return "", err
		}
		r, err := b.expr(e.Right, elem)
		if err != nil {
			return "", err
		}
		op := " AND "
		if e.Operator == fp.OR {
			op = " OR "
		}
		return "(" + l + op + r + ")", nil
	case *fp.NotExpression:
		x, err := b.expr(e.Expression, elem)
		if err != nil {
			return "", err
		}
		return "NOT (" + x + ")", nil
	case *fp.ValuePath:
		if elem != "" {
			return "", errf("value paths cannot nest")
		}
		t, err := resolve(b.res, e.AttributePath)
		if err != nil {
			return "", err
		}
		if !t.attr.Multi || t.attr.Type != Complex || t.sub != nil {
			return "", errf("%q is not a multi-valued complex attribute", e.AttributePath.String())
		}
		return b.elements(t, e.ValueFilter)
	case *fp.AttributeExpression:
		if elem != "" {
			return b.elemCompare(elem, e)
		}
		return b.attrExpr(e)
	}
	return "", errf("unsupported filter expression %T", e)
}

// elements is EXISTS over the elements of a multi-valued attribute.
func (b *builder) elements(t target, inner fp.Expression) (string, error) {
	if b.res.Name == Group.Name && strings.EqualFold(t.attr.Name, "members") {
		return b.members(inner)
	}
	elem := b.elemAlias(t)
	cond, err := b.expr(inner, elem.name)
	if err != nil {
		return "", err
	}
	return "EXISTS (SELECT 1 FROM " + elem.from + " WHERE " + cond + ")", nil
}

type elemSrc struct{ name, from string }

func (b *builder) elemAlias(t target) elemSrc {
	b.elem = t.attr
	if b.d == Postgres {
		arr := "(doc::jsonb #> '" + pgPath(t.path) + "')"
		return elemSrc{name: "e", from: "jsonb_array_elements(CASE WHEN jsonb_typeof(" + arr + ") = 'array' THEN " + arr + " ELSE '[]'::jsonb END) AS e(v)"}
	}
	return elemSrc{name: "e", from: "json_each(doc, '" + sqlitePath(t.path) + "') AS e"}
}

// members filters groups by member through scim_members (values only).
func (b *builder) members(inner fp.Expression) (string, error) {
	ae, ok := inner.(*fp.AttributeExpression)
	if !ok || !strings.EqualFold(ae.AttributePath.AttributeName, "value") || ae.AttributePath.SubAttribute != nil ||
		ae.Operator != fp.EQ {
		return "", errf(`members can only be filtered as members[value eq "id"] or members.value eq "id"`)
	}
	v, ok := ae.CompareValue.(string)
	if !ok {
		return "", errf("members.value compares with a string")
	}
	b.args = append(b.args, v)
	return "EXISTS (SELECT 1 FROM scim_members m WHERE m.source_id = scim_resources.source_id AND m.group_id = scim_resources.id AND m.member_id = ?)", nil
}

func (b *builder) attrExpr(e *fp.AttributeExpression) (string, error) {
	t, err := resolve(b.res, e.AttributePath)
	if err != nil {
		return "", err
	}
	a := t.attr
	if a.Type == Complex && a.Multi {
		if t.sub == nil && e.Operator == fp.PR {
			return b.arrayPresent(t), nil
		}
		sub := "value"
		if t.sub != nil {
			sub = t.sub.Name
		}
		return b.elements(target{attr: a, path: t.path}, &fp.AttributeExpression{
			AttributePath: fp.AttributePath{AttributeName: sub}, Operator: e.Operator, CompareValue: e.CompareValue})
	}
	if a.Type == Complex {
		if t.sub == nil {
			if e.Operator == fp.PR {
				return "(" + b.json(t.path, true) + " IS NOT NULL)", nil
			}
			if s, ok := a.SubAttr("value"); ok { // manager eq "id"
				t.sub = &s
			} else {
				return "", errf("%q is complex: name a sub-attribute", e.AttributePath.String())
			}
		}
		if a.Name == "meta" {
			return b.meta(*t.sub, e)
		}
		return b.compare(b.json(append(t.path, t.sub.Name), false), *t.sub, e)
	}
	if a.Mutability == "writeOnly" {
		return "", errf("%q cannot be filtered", a.Name)
	}
	if a.column != "" {
		return b.compareColumn(a, e)
	}
	return b.compare(b.json(t.path, false), a, e)
}

func (b *builder) arrayPresent(t target) string {
	if b.d == Postgres {
		arr := "(doc::jsonb #> '" + pgPath(t.path) + "')"
		return "(jsonb_typeof(" + arr + ") = 'array' AND jsonb_array_length(CASE WHEN jsonb_typeof(" + arr + ") = 'array' THEN " + arr + " ELSE '[]'::jsonb END) > 0)"
	}
	return "(json_type(doc, '" + sqlitePath(t.path) + "') = 'array' AND json_array_length(doc, '" + sqlitePath(t.path) + "') > 0)"
}

func (b *builder) meta(s Attr, e *fp.AttributeExpression) (string, error) {
	switch s.Name {
	case "created", "lastModified":
		if e.Operator == fp.PR {
			return "TRUE", nil
		}
		v, ok := e.CompareValue.(string)
		if !ok {
			return "", errf("meta.%s compares with a dateTime string", s.Name)
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return "", errf("meta.%s: %q is not an RFC 3339 dateTime", s.Name, v)
		}
		op, err := sqlOp(e.Operator, false)
		if err != nil {
			return "", err
		}
		b.args = append(b.args, at.UnixMicro())
		return "(" + s.column + " " + op + " ?)", nil
	case "resourceType":
		v, _ := e.CompareValue.(string)
		match := strings.EqualFold(v, b.res.Name)
		switch e.Operator {
		case fp.PR:
			return "TRUE", nil
		case fp.EQ:
			return map[bool]string{true: "TRUE", false: "FALSE"}[match], nil
		case fp.NE:
			return map[bool]string{true: "FALSE", false: "TRUE"}[match], nil
		}
	}
	return "", errf("meta.%s %s is not supported", s.Name, e.Operator)
}

func sqlOp(op fp.CompareOperator, boolean bool) (string, error) {
	switch strings.ToLower(string(op)) {
	case "eq":
		return "=", nil
	case "ne":
		return "<>", nil
	}
	if boolean {
		return "", errf("operator %s does not apply to a boolean", op)
	}
	switch strings.ToLower(string(op)) {
	case "gt":
		return ">", nil
	case "ge":
		return ">=", nil
	case "lt":
		return "<", nil
	case "le":
		return "<=", nil
	}
	return "", errf("operator %q is not supported", op)
}

// compareColumn compares an indexed column.
func (b *builder) compareColumn(a Attr, e *fp.AttributeExpression) (string, error) {
	lhs := a.column
	if a.lowerColumn {
		a.CaseExact = true // the column is lower-cased; compare lower-cased values
		if v, ok := e.CompareValue.(string); ok {
			e = &fp.AttributeExpression{AttributePath: e.AttributePath, Operator: e.Operator, CompareValue: strings.ToLower(v)}
		}
	}
	return b.compare(lhs, a, e)
}

// compare renders lhs OP value for attribute a. NULL (absent) compares
// false, except ne which is true, so NOT is well defined.
func (b *builder) compare(lhs string, a Attr, e *fp.AttributeExpression) (string, error) {
	op := fp.CompareOperator(strings.ToLower(string(e.Operator)))
	if op == fp.PR {
		if a.Type == Boolean {
			return "(" + lhs + " IS NOT NULL)", nil
		}
		return "(" + lhs + " IS NOT NULL AND " + lhs + " <> '')", nil
	}
	if a.Type == Boolean {
		v, ok := e.CompareValue.(bool)
		if !ok {
			return "", errf("%s compares with true or false", a.Name)
		}
		sqlop, err := sqlOp(op, true)
		if err != nil {
			return "", err
		}
		if b.d == Postgres {
			b.args = append(b.args, fmt.Sprint(v))
		} else {
			b.args = append(b.args, map[bool]int{true: 1, false: 0}[v])
		}
		return b.nullSafe(lhs+" "+sqlop+" ?", lhs, op), nil
	}
	v, ok := e.CompareValue.(string)
	if !ok {
		return "", errf("%s compares with a string, not %v", a.Name, e.CompareValue)
	}
	if !a.CaseExact {
		lhs = "lower(" + lhs + ")"
		v = strings.ToLower(v)
	}
	switch op {
	case fp.CO, fp.SW, fp.EW:
		if b.d == SQLite && a.CaseExact { // SQLite's LIKE ignores ASCII case
			switch op {
			case fp.CO:
				b.args = append(b.args, v)
				return b.nullSafe("instr("+lhs+", ?) > 0", lhs, op), nil
			case fp.SW:
				b.args = append(b.args, v, v)
				return b.nullSafe("substr("+lhs+", 1, length(?)) = ?", lhs, op), nil
			default:
				b.args = append(b.args, v, v)
				return b.nullSafe("substr("+lhs+", -length(?)) = ?", lhs, op), nil
			}
		}
		pat := likeEscape(v)
		switch op {
		case fp.CO:
			pat = "%" + pat + "%"
		case fp.SW:
			pat += "%"
		default:
			pat = "%" + pat
		}
		b.args = append(b.args, pat)
		return b.nullSafe(lhs+` LIKE ? ESCAPE '\'`, lhs, op), nil
	}
	sqlop, err := sqlOp(op, false)
	if err != nil {
		return "", err
	}
	b.args = append(b.args, v)
	return b.nullSafe(lhs+" "+sqlop+" ?", lhs, op), nil
}

func (b *builder) nullSafe(cond string, lhs string, op fp.CompareOperator) string {
	// Never NULL, so NOT is well defined, and still index-friendly.
	if op == fp.NE {
		return "(" + lhs + " IS NULL OR " + cond + ")"
	}
	return "(" + lhs + " IS NOT NULL AND " + cond + ")"
}

// elemCompare compares a sub-attribute of the current element.
func (b *builder) elemCompare(elem string, e *fp.AttributeExpression) (string, error) {
	parent := b.elem
	if e.AttributePath.SubAttribute != nil || e.AttributePath.URIPrefix != nil {
		return "", errf("%q: name a sub-attribute of %s", e.AttributePath.String(), parent.Name)
	}
	s, ok := parent.SubAttr(e.AttributePath.AttributeName)
	if !ok {
		return "", errf("unknown attribute %s.%s", parent.Name, e.AttributePath.AttributeName)
	}
	var lhs string
	if b.d == Postgres {
		lhs = "(" + elem + ".v #>> '" + pgPath([]string{s.Name}) + "')"
	} else {
		lhs = "json_extract(" + elem + ".value, '" + sqlitePath([]string{s.Name}) + "')"
	}
	return b.compare(lhs, s, e)
}

// json reads a path of the document as text (raw: as JSON, for presence).
func (b *builder) json(path []string, raw bool) string {
	if b.d == Postgres {
		op := "#>>"
		if raw {
			op = "#>"
		}
		return "(doc::jsonb " + op + " '" + pgPath(path) + "')"
	}
	if raw {
		return "json_type(doc, '" + sqlitePath(path) + "')"
	}
	return "json_extract(doc, '" + sqlitePath(path) + "')"
}

// Paths hold only names defined in this package (letters, digits, $ : . -).
func sqlitePath(path []string) string {
	var sb strings.Builder
	sb.WriteString("$")
	for _, p := range path {
		if p != "" && p[0] >= '0' && p[0] <= '9' {
			sb.WriteString("[" + p + "]")
			continue
		}
		sb.WriteString(`."` + p + `"`)
	}
	return sb.String()
}

func pgPath(path []string) string {
	q := make([]string, len(path))
	for i, p := range path {
		q[i] = `"` + p + `"`
	}
	return "{" + strings.Join(q, ",") + "}"
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// SortExpr returns the SQL expression to sort resources of res by the
// attribute path sortBy (RFC 7644 §3.4.2.3); a multi-valued attribute
// sorts by its first value.
func SortExpr(res Resource, dialect, sortBy string) (string, error) {
	p, err := ParseAttrPath(sortBy)
	if err != nil {
		return "", errf("sortBy %q is not an attribute path", sortBy)
	}
	t, err := resolve(res, p)
	if err != nil {
		return "", err
	}
	a := t.attr
	path := t.path
	switch {
	case a.Name == "meta" && t.sub != nil && t.sub.column != "":
		return t.sub.column, nil
	case a.column != "":
		return a.column, nil
	case a.Type == Complex && a.Multi:
		sub := "value"
		if t.sub != nil {
			sub = t.sub.Name
		}
		path = append(path, "0", sub)
	case a.Type == Complex:
		if t.sub == nil {
			return "", errf("sortBy %q is complex: name a sub-attribute", sortBy)
		}
		path = append(path, t.sub.Name)
	}
	b := &builder{d: dialect}
	return "lower(" + b.json(path, false) + ")", nil
}
