package scim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	scimerr "github.com/elimity-com/scim/errors"
)

const (
	bulkRequestURN  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	bulkResponseURN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
)

type bulkOp struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId,omitempty"`
	Version string          `json:"version,omitempty"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type bulkResult struct {
	Method   string          `json:"method"`
	BulkID   string          `json:"bulkId,omitempty"`
	Version  string          `json:"version,omitempty"`
	Location string          `json:"location,omitempty"`
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response,omitempty"`
}

// bulk runs a BulkRequest (RFC 7644 §3.7): operations in order, each in
// its own transaction, "bulkId:x" references replaced by the id the
// operation with bulkId x created (an operation whose reference is not
// yet known runs after the others, once), stopping after failOnErrors
// errors.
func (h *Handler) bulk(ctx context.Context, d *dir, req request) (response, error) {
	var br struct {
		Schemas      []string `json:"schemas"`
		FailOnErrors int      `json:"failOnErrors"`
		Operations   []bulkOp `json:"Operations"`
	}
	if err := json.Unmarshal(req.body, &br); err != nil {
		return response{}, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "the body is not a BulkRequest")
	}
	ok := false
	for _, s := range br.Schemas {
		ok = ok || strings.EqualFold(s, bulkRequestURN)
	}
	if !ok {
		return response{}, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "schemas must hold "+bulkRequestURN)
	}
	if len(br.Operations) > d.cfg.BulkMaxOperations {
		return response{}, scimErr(http.StatusRequestEntityTooLarge, "",
			"the request holds more than "+strconv.Itoa(d.cfg.BulkMaxOperations)+" operations")
	}
	ids := map[string]string{} // bulkId → id
	var results []bulkResult
	errs := 0
	resolve := func(s string) (string, bool) {
		for {
			i := strings.Index(s, "bulkId:")
			if i < 0 {
				return s, true
			}
			j := i + len("bulkId:")
			k := j
			for k < len(s) && (s[k] == '-' || s[k] == '_' || s[k] == '.' || ('0' <= s[k] && s[k] <= '9') ||
				('a' <= s[k] && s[k] <= 'z') || ('A' <= s[k] && s[k] <= 'Z')) {
				k++
			}
			id, ok := ids[s[j:k]]
			if !ok {
				return s, false
			}
			s = s[:i] + id + s[k:]
		}
	}
	run := func(op bulkOp, last bool) (done bool) {
		res := bulkResult{Method: op.Method, BulkID: op.BulkID}
		path, ok1 := resolve(op.Path)
		data, ok2 := resolve(string(op.Data))
		var resp response
		switch {
		case !ok1 || !ok2:
			if !last {
				return false
			}
			resp = errResponse(scimErr(http.StatusConflict, "", "a bulkId this operation refers to was never created"), op.Method)
		case !strings.HasPrefix(path, "/Users") && !strings.HasPrefix(path, "/Groups"):
			resp = errResponse(scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidPath, "bulk paths start with /Users or /Groups"), op.Method)
		case strings.EqualFold(op.Method, http.MethodPost) && op.BulkID == "":
			resp = errResponse(scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "a POST needs a bulkId"), op.Method)
		default:
			method := strings.ToUpper(op.Method)
			sub := request{method: method, path: path, body: []byte(data), ifMatch: op.Version, base: req.base,
				actor: req.actor, corr: req.corr}
			if method == http.MethodGet || strings.HasSuffix(path, ".search") {
				resp = errResponse(scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "bulk takes POST, PUT, PATCH and DELETE"), op.Method)
			} else {
				resp = h.do(ctx, d, sub)
			}
		}
		res.Status = strconv.Itoa(resp.status)
		res.Location, res.Version = resp.location, resp.etag
		if resp.status >= 400 {
			res.Response = resp.body
			errs++
		} else if op.BulkID != "" && resp.location != "" {
			ids[op.BulkID] = resp.location[strings.LastIndexByte(resp.location, '/')+1:]
		}
		results = append(results, res)
		return true
	}
	var deferred []bulkOp
	for _, op := range br.Operations {
		if br.FailOnErrors > 0 && errs >= br.FailOnErrors {
			break
		}
		if !run(op, false) {
			deferred = append(deferred, op)
		}
	}
	for _, op := range deferred {
		if br.FailOnErrors > 0 && errs >= br.FailOnErrors {
			break
		}
		run(op, true)
	}
	if results == nil {
		results = []bulkResult{}
	}
	return jsonResponse(http.StatusOK, map[string]any{"schemas": []string{bulkResponseURN}, "Operations": results})
}
