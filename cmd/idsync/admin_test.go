package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestAdminCLI: compare, events and webhook commands work against a real
// database, with --output json for scripts.
func TestAdminCLI(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			db := b.DSN(t)
			mustRun := cliFor(t, db)
			mustRun("org", "create", "acme")
			mustRun("person", "create", "acme", "--attr", "userName=ada", "--attr", "email=ada@acme.com")
			var c admin.Compare
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "compare", "acme")), &c); err != nil {
				t.Fatal(err)
			}
			if c.People != 1 || c.CameIn[admin.CameAPIOnly] != 1 {
				t.Fatalf("compare = %+v", c)
			}
			if out := mustRun("compare", "acme", "--since", "720h"); !strings.Contains(out, "came in: api_only") {
				t.Fatalf("compare text = %s", out)
			}
			var page admin.EventPage
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "events", "--org", "acme", "--action", "identity.*")), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != 1 || page.Events[0].Action != "identity.created" {
				t.Fatalf("events = %+v", page.Events)
			}
			var nw admin.NewWebhook
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "webhook", "create", "acme", "https://hooks.example/x")), &nw); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(nw.Secret, "whsec_") || nw.Status != admin.WebhookActive {
				t.Fatalf("webhook create = %+v", nw)
			}
			mustRun("webhook", "pause", nw.ID)
			var hs []admin.Webhook
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "webhook", "list", "acme")), &hs); err != nil {
				t.Fatal(err)
			}
			if len(hs) != 1 || hs[0].Status != admin.WebhookPaused || strings.Contains(mustRun("-o", "json", "webhook", "list", "acme"), nw.Secret) {
				t.Fatalf("webhook list = %+v (must not show the secret)", hs)
			}
			mustRun("webhook", "resume", nw.ID)
			mustRun("webhook", "deliveries", nw.ID)
			mustRun("webhook", "delete", nw.ID)

			var ni admin.NewInvitation
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "invite", "create", "acme", "bo@acme.com", "--role", "admin")), &ni); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(ni.Link, "/console/invite?token=idsi_") || ni.Role != "admin" {
				t.Fatalf("invite create = %+v", ni)
			}
			if out := mustRun("-o", "json", "invite", "list", "acme"); !strings.Contains(out, ni.ID) || strings.Contains(out, "idsi_") {
				t.Fatalf("invite list = %s (must list it without its token)", out)
			}
			mustRun("invite", "revoke", "acme", ni.ID)
			if out := mustRun("invite", "list", "acme"); !strings.Contains(out, "revoked") {
				t.Fatalf("invite list after revoke = %s", out)
			}
		})
	}
}

// TestServeMountsAdminAPI: serve's handler serves the admin API under
// /api/v1/ and its OpenAPI document, while /api/v1/jit/ stays the JIT
// package's.
func TestServeMountsAdminAPI(t *testing.T) {
	sdb := storagetest.SQLite(t)
	e := engine.New(sdb, engine.Options{})
	_, key, err := e.CreateToken(context.Background(), engine.Admin{}, engine.Token{Kind: engine.TokenAdmin, Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(sdb, e, newMetrics(), serverDeps{}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, path, key string
		status          int
		contains        string
	}{
		{"openapi", "/api/v1/openapi.json", "", 200, `"openapi": "3.0.3"`},
		{"orgs with a key", "/api/v1/orgs", key, 200, `"items"`},
		{"orgs without a key", "/api/v1/orgs", "", 401, `"unauthorized"`},
		{"console sign-in page", "/console/login", "", 200, `Admin API key`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := get(c.path, c.key)
			if code != c.status || !strings.Contains(body, c.contains) {
				t.Fatalf("GET %s = %d %s", c.path, code, body)
			}
		})
	}
	t.Run("jit keeps its prefix", func(t *testing.T) {
		_, body := get("/api/v1/jit/provision", key)
		if strings.Contains(body, `"no endpoint`) {
			t.Fatalf("/api/v1/jit/ reached the admin API: %s", body)
		}
	})
	var _ *storage.DB = sdb
}
