// Package patch validates SCIM resource documents against the attribute
// definitions of package scim/filter (Normalize) and applies RFC 7644
// §3.5.2 PATCH operations to them (Apply), accepting the Entra ID and Okta
// dialects: capitalised op names, "True"/"False" strings for booleans, a
// value list on a remove of members, no-path values with dotted and
// URN-qualified keys, group renames carrying the id, manager as a string.
//
// It works on decoded JSON (map[string]any, numbers as json.Number) and
// never touches the database: group member changes come back as
// MemberOps for the caller to apply one member at a time.
package patch

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/idsync/idsync/scim/filter"
)

// SCIM error types (RFC 7644 §3.12).
const (
	InvalidSyntax = "invalidSyntax"
	InvalidValue  = "invalidValue"
	InvalidPath   = "invalidPath"
	NoTarget      = "noTarget"
	Mutability    = "mutability"
	InvalidFilter = "invalidFilter"
)

// Error is a request the resource's schema or PATCH rules refuse; it
// answers 400 with ScimType.
type Error struct {
	ScimType string
	Msg      string
}

func (e *Error) Error() string { return e.Msg }

func errf(typ, format string, args ...any) error {
	return &Error{ScimType: typ, Msg: fmt.Sprintf(format, args...)}
}

// Normalize checks a resource document sent by a client and returns it as
// it is to be stored: attribute names spelled as the schema spells them,
// "True"/"False" turned into booleans, manager given as a string turned
// into {"value": …}, null values dropped, and the attributes the client
// may not set (id, meta, read-only groups) and password dropped. Unknown
// attributes and wrong types are errors. Keys under an extension URN that
// is not ours are kept as they came when the URN is listed in schemas.
func Normalize(res filter.Resource, doc map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(doc))
	listed := map[string]bool{}
	if s, ok := doc["schemas"]; ok {
		arr, ok := s.([]any)
		if !ok {
			return nil, errf(InvalidValue, "schemas must be an array of URNs")
		}
		for _, u := range arr {
			us, ok := u.(string)
			if !ok {
				return nil, errf(InvalidValue, "schemas must be an array of URNs")
			}
			listed[strings.ToLower(us)] = true
		}
		out["schemas"] = arr
	}
	for k, v := range doc {
		lk := strings.ToLower(k)
		switch lk {
		case "schemas":
			continue
		case "id", "meta":
			continue // assigned by the service provider (RFC 7643 §3.1)
		}
		if strings.HasPrefix(lk, "urn:") {
			if ext, ok := res.Extension(k); ok {
				obj, ok := v.(map[string]any)
				if v == nil {
					continue
				}
				if !ok {
					return nil, errf(InvalidValue, "%s must be an object", ext.ID)
				}
				sub, err := normalizeObject(ext, obj)
				if err != nil {
					return nil, err
				}
				if len(sub) > 0 {
					out[ext.ID] = sub
				}
				continue
			}
			if listed[lk] {
				out[k] = v
				continue
			}
			return nil, errf(InvalidSyntax, "attribute %q is not defined (its schema is neither known nor listed in schemas)", k)
		}
		a, ok := lookup(res, k)
		if !ok {
			return nil, errf(InvalidSyntax, "attribute %q is not defined for %s", k, res.Name)
		}
		if a.Mutability == "readOnly" || a.Mutability == "writeOnly" {
			continue // password is never stored; read-only values are ignored (RFC 7644 §3.3)
		}
		if res.Name == filter.Group.Name && a.Name == "members" {
			out["members"] = v // the caller takes members out
			continue
		}
		nv, err := Value(a, v)
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out[a.Name] = nv
		}
	}
	return out, nil
}

func lookup(res filter.Resource, name string) (filter.Attr, bool) {
	if a, ok := res.Core.Attr(name); ok {
		return a, true
	}
	if strings.EqualFold(name, "externalId") {
		return filter.Common()[1], true
	}
	return filter.Attr{}, false
}

func normalizeObject(s filter.Schema, obj map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		a, ok := s.Attr(k)
		if !ok {
			return nil, errf(InvalidSyntax, "attribute %q is not defined in %s", k, s.ID)
		}
		nv, err := Value(a, v)
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out[a.Name] = nv
		}
	}
	return out, nil
}

// Value checks and normalises the value of attribute a; nil means
// unassigned.
func Value(a filter.Attr, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if a.Multi {
		arr, ok := v.([]any)
		if !ok {
			arr = []any{v} // a single value where a list belongs
		}
		out := make([]any, 0, len(arr))
		for _, e := range arr {
			one := a
			one.Multi = false
			ne, err := Value(one, e)
			if err != nil {
				return nil, err
			}
			if ne != nil {
				out = append(out, ne)
			}
		}
		return out, nil
	}
	switch a.Type {
	case filter.Complex:
		obj, ok := v.(map[string]any)
		if !ok {
			if s, isStr := v.(string); isStr { // manager (or an element) as a plain string
				if _, has := a.SubAttr("value"); has {
					return map[string]any{"value": s}, nil
				}
			}
			return nil, errf(InvalidValue, "%s must be an object", a.Name)
		}
		out := make(map[string]any, len(obj))
		for k, sv := range obj {
			s, ok := a.SubAttr(k)
			if !ok {
				return nil, errf(InvalidSyntax, "attribute %s.%s is not defined", a.Name, k)
			}
			ns, err := Value(s, sv)
			if err != nil {
				return nil, err
			}
			if ns != nil {
				out[s.Name] = ns
			}
		}
		return out, nil
	case filter.Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, errf(InvalidValue, "%s must be a boolean, not %s", a.Name, show(v))
	case filter.Integer:
		if n, ok := v.(json.Number); ok {
			if _, err := n.Int64(); err == nil {
				return n, nil
			}
		}
		return nil, errf(InvalidValue, "%s must be an integer, not %s", a.Name, show(v))
	default:
		s, ok := v.(string)
		if !ok {
			return nil, errf(InvalidValue, "%s must be a string, not %s", a.Name, show(v))
		}
		return s, nil
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 64 {
		return fmt.Sprintf("a %T", v)
	}
	return string(b)
}
