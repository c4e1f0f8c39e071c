package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	scimerr "github.com/elimity-com/scim/errors"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim/filter"
)

func resourceOf(typ string) filter.Resource {
	if typ == typeGroup {
		return filter.Group
	}
	return filter.User
}

func endpoint(typ string) string {
	if typ == typeGroup {
		return "/Groups"
	}
	return "/Users"
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func timeStr(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// document is the resource as returned: id, meta, the stored document and
// (groups) members.
func document(base string, r engine.SCIMResource, mems []engine.SCIMMember, withMembers bool) []byte {
	var b bytes.Buffer
	b.Grow(len(r.Doc) + 256 + 64*len(mems))
	b.WriteString(`{"id":`)
	b.WriteString(jsonStr(r.ID))
	b.WriteString(`,"meta":{"resourceType":"`)
	b.WriteString(r.Type)
	b.WriteString(`","created":"`)
	b.WriteString(timeStr(r.Created))
	b.WriteString(`","lastModified":"`)
	b.WriteString(timeStr(r.Modified))
	b.WriteString(`","location":`)
	b.WriteString(jsonStr(base + endpoint(r.Type) + "/" + r.ID))
	b.WriteString(`,"version":`)
	b.WriteString(jsonStr(etag(r.Version)))
	b.WriteString(`}`)
	if withMembers {
		b.WriteString(`,"members":[`)
		for i, m := range mems {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"value":`)
			b.WriteString(jsonStr(m.Value))
			if m.Display != "" {
				b.WriteString(`,"display":`)
				b.WriteString(jsonStr(m.Display))
			}
			b.WriteString(`,"$ref":`)
			b.WriteString(jsonStr(base + "/Users/" + m.Value))
			b.WriteString(`,"type":"User"}`)
		}
		b.WriteString(`]`)
	}
	doc := bytes.TrimSpace(r.Doc)
	if len(doc) > 2 {
		b.WriteByte(',')
		b.Write(doc[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// projection is what attributes/excludedAttributes ask for (RFC 7644
// §3.4.2.5); zero means the default set.
type projection struct {
	include map[string]map[string]bool // container ("" or extension URN) → attribute → true
	exclude map[string]map[string]bool
}

func (p projection) zero() bool { return p.include == nil && p.exclude == nil }

func parseProjection(res filter.Resource, q url.Values) projection {
	var p projection
	parse := func(v string) map[string]map[string]bool {
		if strings.TrimSpace(v) == "" {
			return nil
		}
		out := map[string]map[string]bool{}
		for _, name := range strings.Split(v, ",") {
			ap, err := filter.ParseAttrPath(strings.TrimSpace(name))
			if err != nil {
				continue // unknown names select nothing
			}
			a, _, path, err := filter.Resolve(res, ap)
			if err != nil {
				continue
			}
			c := ""
			if len(path) == 2 {
				c = path[0]
			}
			if out[c] == nil {
				out[c] = map[string]bool{}
			}
			out[c][a.Name] = true
		}
		return out
	}
	p.include = parse(q.Get("attributes"))
	p.exclude = parse(q.Get("excludedAttributes"))
	return p
}

// wants reports whether the projection returns a top-level attribute.
func (p projection) wants(name string) bool {
	if p.include != nil {
		return p.include[""][name]
	}
	return !p.exclude[""][name]
}

// apply projects a full document; id (returned always) always stays, and
// so do schemas.
func (p projection) apply(full []byte) []byte {
	if p.zero() {
		return full
	}
	dec := json.NewDecoder(bytes.NewReader(full))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return full
	}
	keep := func(c, name string) bool {
		if name == "id" || name == "schemas" {
			return true
		}
		if p.include != nil {
			return p.include[c][name] || (c != "" && p.include[""][c])
		}
		return !p.exclude[c][name]
	}
	for k, v := range doc {
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			sub, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if p.include != nil && p.include[""][k] {
				continue
			}
			if p.exclude != nil && p.exclude[""][k] {
				delete(doc, k)
				continue
			}
			for sk := range sub {
				if !keep(k, sk) {
					delete(sub, sk)
				}
			}
			if len(sub) == 0 {
				delete(doc, k)
			}
			continue
		}
		if !keep("", k) {
			delete(doc, k)
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return full
	}
	return b
}

func (h *Handler) render(req request, r engine.SCIMResource, mems []engine.SCIMMember, status int) (response, error) {
	p := parseProjection(resourceOf(r.Type), req.query)
	body := p.apply(document(req.base, r, mems, r.Type == typeGroup))
	return response{status: status, body: body, etag: etag(r.Version), location: req.base + endpoint(r.Type) + "/" + r.ID}, nil
}

func (h *Handler) renderGroup(ctx context.Context, d *dir, req request, r engine.SCIMResource, status int) (response, error) {
	var mems []engine.SCIMMember
	if parseProjection(filter.Group, req.query).wants("members") {
		var err error
		if mems, err = h.rd.SCIMMembers(ctx, d.src.ID, r.ID); err != nil {
			return response{}, err
		}
	}
	p := parseProjection(filter.Group, req.query)
	body := p.apply(document(req.base, r, mems, p.wants("members")))
	return response{status: status, body: body, etag: etag(r.Version), location: req.base + "/Groups/" + r.ID}, nil
}

func (h *Handler) get(ctx context.Context, d *dir, req request, users bool, id string) (response, error) {
	typ := typeUser
	if !users {
		typ = typeGroup
	}
	r, err := h.rd.SCIMResource(ctx, d.src.ID, typ, id)
	if err != nil {
		return response{}, err
	}
	if inm := strings.TrimSpace(req.ifNoneMatch); inm != "" && (inm == "*" || matchesIfMatch(inm, r.Version)) {
		return response{status: http.StatusNotModified, etag: etag(r.Version)}, nil
	}
	if users {
		return h.render(req, r, nil, http.StatusOK)
	}
	return h.renderGroup(ctx, d, req, r, http.StatusOK)
}

const listResponseURN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

// page reads startIndex and count (RFC 7644 §3.4.2.4).
func page(q url.Values, limit int) (start, count int, err error) {
	start, count = 1, limit
	if s := q.Get("startIndex"); s != "" {
		if start, err = strconv.Atoi(s); err != nil {
			return 0, 0, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "startIndex must be an integer")
		}
		if start < 1 {
			start = 1
		}
	}
	if s := q.Get("count"); s != "" {
		if count, err = strconv.Atoi(s); err != nil {
			return 0, 0, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "count must be an integer")
		}
		count = max(0, min(count, limit))
	}
	return start, count, nil
}

// query builds the SQL query of a list request.
func (h *Handler) query(d *dir, res filter.Resource, q url.Values) (engine.SCIMQuery, error) {
	dialect := h.rd.SCIMDialect()
	sq := engine.SCIMQuery{SourceID: d.src.ID, Type: res.Name}
	if f := q.Get("filter"); strings.TrimSpace(f) != "" {
		where, args, err := filter.Translate(res, dialect, f)
		if err != nil {
			return sq, err
		}
		sq.Where, sq.Args = where, args
	}
	if s := q.Get("sortBy"); s != "" {
		order, err := filter.SortExpr(res, dialect, s)
		if err != nil {
			return sq, err
		}
		sq.OrderBy = order
	}
	switch strings.ToLower(q.Get("sortOrder")) {
	case "", "ascending":
	case "descending":
		sq.Descending = true
	default:
		return sq, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "sortOrder must be ascending or descending")
	}
	return sq, nil
}

func (h *Handler) list(ctx context.Context, d *dir, req request, users bool, q url.Values) (response, error) {
	res := filter.User
	if !users {
		res = filter.Group
	}
	start, count, err := page(q, d.cfg.MaxResults)
	if err != nil {
		return response{}, err
	}
	sq, err := h.query(d, res, q)
	if err != nil {
		return response{}, err
	}
	list, total, err := h.page(ctx, sq, start, count)
	if err != nil {
		return response{}, err
	}
	req.query = q
	docs, err := h.docs(ctx, d, req, list)
	if err != nil {
		return response{}, err
	}
	return listResponse(total, start, docs), nil
}

// page reads one page of a query, continuing from the cursor an earlier
// page left when there is one (see pageCache).
func (h *Handler) page(ctx context.Context, sq engine.SCIMQuery, start, count int) ([]engine.SCIMResource, int, error) {
	keyset := sq.OrderBy == "" && !sq.Descending && count > 0
	sq.Offset, sq.Limit = start-1, count
	if keyset && start > 1 {
		if after, ok := h.pages.cursor(sq, start); ok {
			cq := sq
			cq.After, cq.Offset = after, 0
			list, _, err := h.rd.SCIMResources(ctx, cq)
			if err != nil {
				return nil, 0, err
			}
			total := start - 1 + len(list)
			if len(list) == count || len(list) == 0 {
				n, ok := h.pages.total(sq)
				if !ok {
					cq.After, cq.Limit = "", 0
					if _, n, err = h.rd.SCIMResources(ctx, cq); err != nil {
						return nil, 0, err
					}
					h.pages.setTotal(sq, n)
				}
				total = max(n, total)
			}
			if len(list) == count {
				h.pages.setCursor(sq, start+count, list[len(list)-1].ID)
			}
			return list, total, nil
		}
	}
	list, total, err := h.rd.SCIMResources(ctx, sq)
	if err != nil {
		return nil, 0, err
	}
	if keyset && len(list) == count {
		h.pages.setCursor(sq, start+count, list[len(list)-1].ID)
		h.pages.setTotal(sq, total)
	}
	return list, total, nil
}

func (h *Handler) docs(ctx context.Context, d *dir, req request, list []engine.SCIMResource) ([][]byte, error) {
	docs := make([][]byte, 0, len(list))
	for _, r := range list {
		var resp response
		var err error
		if r.Type == typeGroup {
			resp, err = h.renderGroup(ctx, d, req, r, http.StatusOK)
		} else {
			resp, err = h.render(req, r, nil, http.StatusOK)
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, resp.body)
	}
	return docs, nil
}

func listResponse(total, start int, docs [][]byte) response {
	var b bytes.Buffer
	b.WriteString(`{"schemas":["` + listResponseURN + `"],"totalResults":`)
	b.WriteString(strconv.Itoa(total))
	b.WriteString(`,"startIndex":`)
	b.WriteString(strconv.Itoa(start))
	b.WriteString(`,"itemsPerPage":`)
	b.WriteString(strconv.Itoa(len(docs)))
	b.WriteString(`,"Resources":[`)
	for i, d := range docs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(d)
	}
	b.WriteString(`]}`)
	return response{status: http.StatusOK, body: b.Bytes()}
}

const searchRequestURN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

// searchQuery turns a SearchRequest body (RFC 7644 §3.4.3) into query
// parameters.
func searchQuery(body []byte) (url.Values, error) {
	var s struct {
		Schemas            []string `json:"schemas"`
		Attributes         []string `json:"attributes"`
		ExcludedAttributes []string `json:"excludedAttributes"`
		Filter             string   `json:"filter"`
		SortBy             string   `json:"sortBy"`
		SortOrder          string   `json:"sortOrder"`
		StartIndex         *int     `json:"startIndex"`
		Count              *int     `json:"count"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "the body is not a SearchRequest")
	}
	ok := false
	for _, u := range s.Schemas {
		ok = ok || strings.EqualFold(u, searchRequestURN)
	}
	if !ok {
		return nil, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "schemas must hold "+searchRequestURN)
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("attributes", strings.Join(s.Attributes, ","))
	set("excludedAttributes", strings.Join(s.ExcludedAttributes, ","))
	set("filter", s.Filter)
	set("sortBy", s.SortBy)
	set("sortOrder", s.SortOrder)
	if s.StartIndex != nil {
		q.Set("startIndex", strconv.Itoa(*s.StartIndex))
	}
	if s.Count != nil {
		q.Set("count", strconv.Itoa(*s.Count))
	}
	return q, nil
}

// rootSearch searches Users, then Groups (RFC 7644 §3.4.3). A filter that
// names attributes of one type only selects nothing of the other.
func (h *Handler) rootSearch(ctx context.Context, d *dir, req request) (response, error) {
	q, err := searchQuery(req.body)
	if err != nil {
		return response{}, err
	}
	start, count, err := page(q, d.cfg.MaxResults)
	if err != nil {
		return response{}, err
	}
	req.query = q
	var (
		docs    [][]byte
		total   int
		ferr    error
		matched int
	)
	offset := start - 1
	for _, res := range []filter.Resource{filter.User, filter.Group} {
		sq, err := h.query(d, res, q)
		if err != nil {
			ferr = err
			continue
		}
		matched++
		sq.Offset, sq.Limit = offset, count-len(docs)
		list, n, err := h.rd.SCIMResources(ctx, sq)
		if err != nil {
			return response{}, err
		}
		total += n
		offset = max(0, offset-n)
		more, err := h.docs(ctx, d, req, list)
		if err != nil {
			return response{}, err
		}
		docs = append(docs, more...)
	}
	if matched == 0 {
		return response{}, ferr
	}
	return listResponse(total, start, docs), nil
}
