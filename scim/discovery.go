package scim

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/idsync/idsync/scim/filter"
)

// Discovery endpoints (RFC 7644 §4): they advertise what this package
// implements, no more.

func (h *Handler) serviceProviderConfig(d *dir, req request) (response, error) {
	doc := map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/idsync/idsync/tree/main/scim",
		"patch":            map[string]any{"supported": true},
		"bulk": map[string]any{"supported": true, "maxOperations": d.cfg.BulkMaxOperations,
			"maxPayloadSize": d.cfg.BulkMaxPayloadBytes},
		"filter":         map[string]any{"supported": true, "maxResults": d.cfg.MaxResults},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": true},
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "A bearer token of this SCIM directory (idsync scim token create).", "primary": true}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": req.base + "/ServiceProviderConfig"},
	}
	return jsonResponse(http.StatusOK, doc)
}

func schemaDoc(base string, s filter.Schema) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  s.Attrs,
		"meta":        map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + s.ID},
	}
}

func (h *Handler) schemas(req request, rest []string) (response, error) {
	all := []filter.Schema{filter.User.Core, filter.User.Extensions[0], filter.Group.Core}
	if len(rest) == 1 {
		for _, s := range all {
			if strings.EqualFold(s.ID, rest[0]) {
				return jsonResponse(http.StatusOK, schemaDoc(req.base, s))
			}
		}
		return response{}, scimErr(http.StatusNotFound, "", "no schema "+rest[0])
	}
	var docs [][]byte
	for _, s := range all {
		b, _ := json.Marshal(schemaDoc(req.base, s))
		docs = append(docs, b)
	}
	return listResponse(len(docs), 1, docs), nil
}

func resourceTypeDoc(base string, r filter.Resource) map[string]any {
	ext := []any{}
	for _, e := range r.Extensions {
		ext = append(ext, map[string]any{"schema": e.ID, "required": false})
	}
	return map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":               r.Name,
		"name":             r.Name,
		"endpoint":         r.Endpoint,
		"description":      r.Core.Description,
		"schema":           r.Core.ID,
		"schemaExtensions": ext,
		"meta":             map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/" + r.Name},
	}
}

func (h *Handler) resourceTypes(req request, rest []string) (response, error) {
	all := []filter.Resource{filter.User, filter.Group}
	if len(rest) == 1 {
		for _, r := range all {
			if strings.EqualFold(r.Name, rest[0]) {
				return jsonResponse(http.StatusOK, resourceTypeDoc(req.base, r))
			}
		}
		return response{}, scimErr(http.StatusNotFound, "", "no resource type "+rest[0])
	}
	var docs [][]byte
	for _, r := range all {
		b, _ := json.Marshal(resourceTypeDoc(req.base, r))
		docs = append(docs, b)
	}
	return listResponse(len(docs), 1, docs), nil
}

func jsonResponse(status int, v any) (response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return response{}, err
	}
	return response{status: status, body: b}, nil
}
