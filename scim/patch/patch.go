package patch

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	fp "github.com/scim2/filter-parser/v2"

	"github.com/idsync/idsync/scim/filter"
)

// PatchOpURN is the schema of a PATCH body (RFC 7644 §3.5.2).
const PatchOpURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// MaxOperations bounds the operations of one PATCH.
const MaxOperations = 1000

// Op is one PATCH operation as sent.
type Op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Request is a PATCH body.
type Request struct {
	Schemas    []string `json:"schemas"`
	Operations []Op     `json:"Operations"`
}

// Parse decodes and checks a PATCH body.
func Parse(body []byte) ([]Op, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, errf(InvalidSyntax, "the PATCH body is not a PatchOp message: %v", err)
	}
	found := false
	for _, s := range req.Schemas {
		found = found || strings.EqualFold(s, PatchOpURN)
	}
	if !found {
		return nil, errf(InvalidSyntax, "schemas must hold %s", PatchOpURN)
	}
	if len(req.Operations) == 0 {
		return nil, errf(InvalidSyntax, "Operations is empty")
	}
	if len(req.Operations) > MaxOperations {
		return nil, errf(InvalidSyntax, "more than %d operations", MaxOperations)
	}
	for i, op := range req.Operations {
		switch strings.ToLower(op.Op) {
		case "add", "replace", "remove":
			req.Operations[i].Op = strings.ToLower(op.Op)
		default:
			return nil, errf(InvalidSyntax, "op %q is not add, replace or remove", op.Op)
		}
	}
	return req.Operations, nil
}

// MemberOp is a change to a group's members, for the caller to apply.
type MemberOp struct {
	// Kind is add, remove, or replace (all members become Members).
	Kind string
	// Members to add, remove or set; for a remove, nil means all.
	Members []Member
}

// Member is a member reference as sent.
type Member struct {
	Value   string
	Display string
}

// Apply applies ops to doc (a normalised document of res whose id is id)
// in order, and returns the member changes of a group. On error doc may be
// partly changed: the caller discards it.
func Apply(res filter.Resource, doc map[string]any, id string, ops []Op) ([]MemberOp, error) {
	var members []MemberOp
	for _, op := range ops {
		var val any
		if len(op.Value) > 0 {
			dec := json.NewDecoder(bytes.NewReader(op.Value))
			dec.UseNumber()
			if err := dec.Decode(&val); err != nil {
				return nil, errf(InvalidSyntax, "value of %s %q is not JSON", op.Op, op.Path)
			}
		}
		if strings.TrimSpace(op.Path) == "" {
			if op.Op == "remove" {
				return nil, errf(NoTarget, "remove needs a path (RFC 7644 §3.5.2.2)")
			}
			obj, ok := val.(map[string]any)
			if !ok {
				return nil, errf(InvalidValue, "%s without a path needs an object value", op.Op)
			}
			for k, v := range obj {
				switch lk := strings.ToLower(k); {
				case lk == "schemas" || lk == "meta":
					continue
				case lk == "id":
					if s, _ := v.(string); s != id {
						return nil, errf(Mutability, "id is read-only")
					}
					continue
				case res.Name == filter.Group.Name && lk == "members":
					m, err := memberOp(op.Op, v, true)
					if err != nil {
						return nil, err
					}
					members = append(members, m)
					continue
				}
				if ext, ok := res.Extension(k); ok { // {"urn:…:User": {…}}
					sub, ok := v.(map[string]any)
					if !ok {
						return nil, errf(InvalidValue, "%s must be an object", ext.ID)
					}
					for sk, sv := range sub {
						p, err := parsePath(ext.ID + ":" + sk)
						if err != nil {
							return nil, err
						}
						if err := applyPath(res, doc, op.Op, p, sv); err != nil {
							return nil, err
						}
					}
					continue
				}
				p, err := parsePath(k)
				if err != nil {
					return nil, err
				}
				if err := applyPath(res, doc, op.Op, p, v); err != nil {
					return nil, err
				}
			}
			continue
		}
		p, err := parsePath(op.Path)
		if err != nil {
			return nil, err
		}
		if res.Name == filter.Group.Name && strings.EqualFold(p.AttributePath.AttributeName, "members") && p.AttributePath.URIPrefix == nil {
			m, err := memberPathOp(op.Op, p, val)
			if err != nil {
				return nil, err
			}
			members = append(members, m)
			continue
		}
		if err := applyPath(res, doc, op.Op, p, val); err != nil {
			return nil, err
		}
	}
	return members, nil
}

func parsePath(s string) (fp.Path, error) {
	p, err := filter.ParsePath(s)
	if err != nil {
		return p, errf(InvalidPath, "path %q is not valid (RFC 7644 §3.5.2)", s)
	}
	return p, nil
}

// members given as a list of {value, display} (or one such object).
func memberList(v any) ([]Member, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		arr = []any{v}
	}
	out := make([]Member, 0, len(arr))
	for _, e := range arr {
		obj, ok := e.(map[string]any)
		if !ok {
			return nil, errf(InvalidValue, "a member must be an object with a value")
		}
		var m Member
		for k, x := range obj {
			switch strings.ToLower(k) {
			case "value":
				m.Value, _ = x.(string)
			case "display":
				m.Display, _ = x.(string)
			case "$ref", "type":
			default:
				return nil, errf(InvalidSyntax, "attribute members.%s is not defined", k)
			}
		}
		if m.Value == "" {
			return nil, errf(InvalidValue, "a member needs a value (the id of a user)")
		}
		out = append(out, m)
	}
	return out, nil
}

func memberOp(op string, v any, noPath bool) (MemberOp, error) {
	list, err := memberList(v)
	if err != nil {
		return MemberOp{}, err
	}
	if op == "remove" && list == nil {
		return MemberOp{Kind: "remove"}, nil // all
	}
	if op == "replace" && list == nil {
		list = []Member{}
	}
	return MemberOp{Kind: op, Members: list}, nil
}

// memberPathOp handles path "members" and members[value eq "id"].
func memberPathOp(op string, p fp.Path, val any) (MemberOp, error) {
	if p.SubAttribute != nil || p.AttributePath.SubAttribute != nil {
		return MemberOp{}, errf(InvalidPath, "members sub-attributes cannot be changed")
	}
	if p.ValueExpression == nil {
		return memberOp(op, val, false)
	}
	ids, err := memberFilterIDs(p.ValueExpression)
	if err != nil {
		return MemberOp{}, err
	}
	switch op {
	case "remove":
		list := make([]Member, len(ids))
		for i, id := range ids {
			list[i] = Member{Value: id}
		}
		return MemberOp{Kind: "remove", Members: list}, nil
	default: // add/replace on members[value eq "x"]: the member is added
		list := make([]Member, len(ids))
		for i, id := range ids {
			list[i] = Member{Value: id}
		}
		return MemberOp{Kind: "add", Members: list}, nil
	}
}

// memberFilterIDs reads `value eq "a" or value eq "b"`.
func memberFilterIDs(e fp.Expression) ([]string, error) {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		v, ok := e.CompareValue.(string)
		if strings.EqualFold(e.AttributePath.AttributeName, "value") && e.AttributePath.SubAttribute == nil &&
			strings.EqualFold(string(e.Operator), "eq") && ok {
			return []string{v}, nil
		}
	case *fp.LogicalExpression:
		if e.Operator == fp.OR {
			l, err := memberFilterIDs(e.Left)
			if err != nil {
				return nil, err
			}
			r, err := memberFilterIDs(e.Right)
			if err != nil {
				return nil, err
			}
			return append(l, r...), nil
		}
	}
	return nil, errf(InvalidFilter, `members filters must be value eq "id" (joined by or)`)
}

// applyPath applies one add/replace/remove at path p.
func applyPath(res filter.Resource, doc map[string]any, op string, p fp.Path, val any) error {
	a, sub, path, err := filter.Resolve(res, p.AttributePath)
	if err != nil {
		return errf(InvalidPath, "%v", err)
	}
	if p.SubAttribute != nil { // members[…].display form: attr[filter].sub
		if sub != nil {
			return errf(InvalidPath, "path %q names two sub-attributes", p.String())
		}
		s, ok := a.SubAttr(*p.SubAttribute)
		if !ok {
			return errf(InvalidPath, "unknown attribute %s.%s", a.Name, *p.SubAttribute)
		}
		sub = &s
	}
	switch a.Mutability {
	case "readOnly":
		if strings.EqualFold(a.Name, "id") {
			if s, _ := val.(string); s != "" && op != "remove" {
				return nil // Okta sends the id it already has
			}
		}
		return errf(Mutability, "%s is read-only", a.Name)
	case "writeOnly":
		return nil // password: accepted, never stored
	}
	container := doc
	if len(path) == 2 { // extension
		c, ok := doc[path[0]].(map[string]any)
		if !ok {
			if op == "remove" {
				return nil
			}
			c = map[string]any{}
			doc[path[0]] = c
		}
		container = c
		defer func() {
			if len(c) == 0 {
				delete(doc, path[0])
			}
		}()
	}
	key := a.Name
	if p.ValueExpression != nil {
		if !a.Multi || a.Type != filter.Complex {
			return errf(InvalidPath, "%s is not multi-valued: it takes no filter", a.Name)
		}
		return applyFiltered(container, a, sub, op, p.ValueExpression, val)
	}
	if sub == nil {
		switch op {
		case "remove":
			if a.Multi && val != nil { // remove the listed values only
				list, err := Value(a, val)
				if err != nil {
					return err
				}
				cur, _ := container[key].([]any)
				kept := cur[:0:0]
				for _, e := range cur {
					if !containsValue(list.([]any), e) {
						kept = append(kept, e)
					}
				}
				setOrDelete(container, key, kept)
				return nil
			}
			delete(container, key)
			return nil
		case "add":
			nv, err := Value(a, val)
			if err != nil {
				return err
			}
			if nv == nil {
				return errf(InvalidValue, "add %s needs a value", a.Name)
			}
			switch {
			case a.Multi:
				cur, _ := container[key].([]any)
				for _, e := range nv.([]any) {
					if !containsExact(cur, e) {
						cur = append(cur, e)
					}
				}
				setOrDelete(container, key, cur)
			case a.Type == filter.Complex:
				merge(container, key, nv.(map[string]any))
			default:
				container[key] = nv
			}
			return nil
		default: // replace
			nv, err := Value(a, val)
			if err != nil {
				return err
			}
			switch {
			case nv == nil:
				delete(container, key)
			case a.Type == filter.Complex && !a.Multi:
				merge(container, key, nv.(map[string]any))
			case a.Multi:
				setOrDelete(container, key, nv.([]any))
			default:
				container[key] = nv
			}
			return nil
		}
	}
	// a sub-attribute: name.givenName, or emails.value (every element)
	var nv any
	if op != "remove" {
		if nv, err = Value(*sub, val); err != nil {
			return err
		}
	}
	if a.Multi {
		cur, _ := container[key].([]any)
		for _, e := range cur {
			if obj, ok := e.(map[string]any); ok {
				setSub(obj, sub.Name, nv)
			}
		}
		return nil
	}
	obj, ok := container[key].(map[string]any)
	if !ok {
		if op == "remove" {
			return nil
		}
		obj = map[string]any{}
		container[key] = obj
	}
	setSub(obj, sub.Name, nv)
	if len(obj) == 0 {
		delete(container, key)
	}
	return nil
}

func setSub(obj map[string]any, name string, v any) {
	if v == nil {
		delete(obj, name)
		return
	}
	obj[name] = v
}

func setOrDelete(m map[string]any, k string, list []any) {
	if len(list) == 0 {
		delete(m, k)
		return
	}
	m[k] = list
}

func merge(container map[string]any, key string, v map[string]any) {
	cur, ok := container[key].(map[string]any)
	if !ok {
		container[key] = v
		return
	}
	for k, x := range v {
		cur[k] = x
	}
}

func containsExact(list []any, e any) bool {
	for _, x := range list {
		if reflect.DeepEqual(x, e) {
			return true
		}
	}
	return false
}

// containsValue matches elements by their value sub-attribute when both
// have one, exactly otherwise.
func containsValue(list []any, e any) bool {
	ev, _ := e.(map[string]any)
	for _, x := range list {
		xv, _ := x.(map[string]any)
		if ev != nil && xv != nil && xv["value"] != nil {
			if reflect.DeepEqual(xv["value"], ev["value"]) {
				return true
			}
			continue
		}
		if reflect.DeepEqual(x, e) {
			return true
		}
	}
	return false
}

// applyFiltered changes the elements of a multi-valued attribute that
// match expr. An add or replace that matches nothing adds an element made
// of the filter's eq terms and the value (Entra sets a missing work email
// with `emails[type eq "work"].value`).
func applyFiltered(container map[string]any, a filter.Attr, sub *filter.Attr, op string, expr fp.Expression, val any) error {
	cur, _ := container[a.Name].([]any)
	var nv any
	if op != "remove" {
		one := a
		if sub != nil {
			one = *sub
		} else {
			one.Multi = false
		}
		var err error
		if nv, err = Value(one, val); err != nil {
			return err
		}
	}
	matched := false
	kept := cur[:0:0]
	for _, e := range cur {
		obj, ok := e.(map[string]any)
		m := false
		if ok {
			var err error
			if m, err = evalElem(a, expr, obj); err != nil {
				return err
			}
		}
		if !m {
			kept = append(kept, e)
			continue
		}
		matched = true
		switch {
		case op == "remove" && sub == nil:
			continue // drop the element
		case op == "remove":
			delete(obj, sub.Name)
		case sub != nil:
			setSub(obj, sub.Name, nv)
		default:
			if m, ok := nv.(map[string]any); ok {
				for k, x := range m {
					obj[k] = x
				}
			}
		}
		kept = append(kept, obj)
	}
	if !matched && op != "remove" {
		elem, ok := eqTerms(a, expr)
		if !ok {
			return errf(NoTarget, "no value of %s matches the filter", a.Name)
		}
		if sub != nil {
			setSub(elem, sub.Name, nv)
		} else if m, ok := nv.(map[string]any); ok {
			for k, x := range m {
				elem[k] = x
			}
		}
		kept = append(kept, elem)
	}
	setOrDelete(container, a.Name, kept)
	return nil
}

// eqTerms turns `type eq "work" and primary eq true` into an element.
func eqTerms(a filter.Attr, e fp.Expression) (map[string]any, bool) {
	switch e := e.(type) {
	case *fp.AttributeExpression:
		s, ok := a.SubAttr(e.AttributePath.AttributeName)
		if !ok || !strings.EqualFold(string(e.Operator), "eq") || e.AttributePath.SubAttribute != nil {
			return nil, false
		}
		return map[string]any{s.Name: e.CompareValue}, true
	case *fp.LogicalExpression:
		if e.Operator != fp.AND {
			return nil, false
		}
		l, ok := eqTerms(a, e.Left)
		if !ok {
			return nil, false
		}
		r, ok := eqTerms(a, e.Right)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			l[k] = v
		}
		return l, true
	}
	return nil, false
}

// evalElem evaluates a value filter on one element in memory.
func evalElem(a filter.Attr, e fp.Expression, obj map[string]any) (bool, error) {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		l, err := evalElem(a, e.Left, obj)
		if err != nil {
			return false, err
		}
		r, err := evalElem(a, e.Right, obj)
		if err != nil {
			return false, err
		}
		if e.Operator == fp.OR {
			return l || r, nil
		}
		return l && r, nil
	case *fp.NotExpression:
		x, err := evalElem(a, e.Expression, obj)
		return !x, err
	case *fp.AttributeExpression:
		s, ok := a.SubAttr(e.AttributePath.AttributeName)
		if !ok || e.AttributePath.SubAttribute != nil {
			return false, errf(InvalidFilter, "unknown attribute %s.%s", a.Name, e.AttributePath.AttributeName)
		}
		have, present := obj[s.Name]
		op := strings.ToLower(string(e.Operator))
		if op == "pr" {
			return present && have != nil && have != "", nil
		}
		if s.Type == filter.Boolean {
			want, ok := e.CompareValue.(bool)
			if !ok {
				return false, errf(InvalidFilter, "%s.%s compares with true or false", a.Name, s.Name)
			}
			hb, _ := have.(bool)
			switch op {
			case "eq":
				return present && hb == want, nil
			case "ne":
				return !present || hb != want, nil
			}
			return false, errf(InvalidFilter, "operator %s does not apply to a boolean", op)
		}
		want, ok := e.CompareValue.(string)
		if !ok {
			return false, errf(InvalidFilter, "%s.%s compares with a string", a.Name, s.Name)
		}
		hs, _ := have.(string)
		if !s.CaseExact {
			hs, want = strings.ToLower(hs), strings.ToLower(want)
		}
		switch op {
		case "eq":
			return present && hs == want, nil
		case "ne":
			return !present || hs != want, nil
		case "co":
			return present && strings.Contains(hs, want), nil
		case "sw":
			return present && strings.HasPrefix(hs, want), nil
		case "ew":
			return present && strings.HasSuffix(hs, want), nil
		case "gt":
			return present && hs > want, nil
		case "ge":
			return present && hs >= want, nil
		case "lt":
			return present && hs < want, nil
		case "le":
			return present && hs <= want, nil
		}
	}
	return false, errf(InvalidFilter, "unsupported value filter %v", e)
}
