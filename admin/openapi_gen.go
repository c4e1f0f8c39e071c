package admin

import (
	"encoding/json"
	"regexp"
	"strings"
)

var paramRe = regexp.MustCompile(`\{([a-z]+)\}`)

// GenerateOpenAPI writes the OpenAPI 3 document of routes; admin/openapi.json
// is its output (go test ./admin -run TestOpenAPI -update rewrites it).
func GenerateOpenAPI(routes []Route) []byte {
	paths := map[string]map[string]any{}
	errResp := map[string]any{"description": "error", "content": map[string]any{"application/json": map[string]any{
		"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	for _, rt := range routes {
		p := Prefix + rt.Path
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		var params []any
		for _, m := range paramRe.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"schema": map[string]any{"type": "string"}})
		}
		okCode := "200"
		switch {
		case rt.Method == "DELETE":
			okCode = "204"
		case rt.Method == "POST" && strings.Contains(rt.Summary, "Create"):
			okCode = "201"
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": strings.ToLower(rt.Method) + strings.NewReplacer("/", "_", "{", "", "}", "").Replace(rt.Path),
			"responses": map[string]any{okCode: map[string]any{"description": "success",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}},
				"400": errResp, "401": errResp, "403": errResp, "404": errResp, "409": errResp},
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.Method == "POST" || rt.Method == "PATCH" {
			op["requestBody"] = map[string]any{"required": false, "content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		paths[p][strings.ToLower(rt.Method)] = op
	}
	paths[Prefix+"/openapi.json"] = map[string]any{"get": map[string]any{"summary": "This document", "security": []any{},
		"operationId": "get_openapi", "responses": map[string]any{"200": map[string]any{"description": "OpenAPI 3 document"}}}}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "idsync admin API", "version": "1",
			"description": "Admin REST API of idsync. Every call needs an admin API key (Authorization: Bearer idsk_…); " +
				"read-scoped keys may only GET; organization-scoped keys see their organization only. " +
				"Errors: {\"error\":{\"code\":…,\"message\":…}} with code one of not_found, exists, conflict, invalid, " +
				"forbidden, unauthorized, unavailable, quarantined, busy, internal."},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas": map[string]any{"Error": map[string]any{"type": "object", "required": []any{"error"},
				"properties": map[string]any{"error": map[string]any{"type": "object", "required": []any{"code", "message"},
					"properties": map[string]any{
						"code": map[string]any{"type": "string", "enum": []any{CodeNotFound, CodeExists, CodeConflict,
							CodeInvalid, CodeForbidden, CodeUnauthorized, CodeUnavailable, CodeQuarantined, CodeBusy, CodeInternal}},
						"message": map[string]any{"type": "string"}}}}}},
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}
