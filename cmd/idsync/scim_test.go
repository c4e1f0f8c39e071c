package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestSCIMTokens: `idsync scim token create|list|revoke` issue tokens that
// the /scim/v2/ mount of `idsync serve` accepts until they are revoked.
func TestSCIMTokens(t *testing.T) {
	db := storagetest.SQLiteDSN(t)
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(t, db, args...)
		if err != nil {
			t.Fatalf("idsync %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mustRun("org", "create", "acme", "--name", "Acme")
	mustRun("source", "create", "acme", "entra", "--kind", "scim", "--priority", "10")
	var created struct {
		Token  engine.Token `json:"token"`
		Secret string       `json:"secret"`
	}
	if err := json.Unmarshal([]byte(mustRun("-o", "json", "scim", "token", "create", "acme/entra", "--name", "entra-prod")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Secret == "" || created.Token.Kind != engine.TokenSCIM {
		t.Fatalf("created %+v", created)
	}
	if out := mustRun("scim", "token", "list", "acme/entra"); !strings.Contains(out, "entra-prod") || strings.Contains(out, created.Secret) {
		t.Fatalf("list: %s", out)
	}

	sdb, err := storage.Open(context.Background(), db, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	srv := httptest.NewServer(newServer(sdb, engine.New(sdb, engine.Options{}), newMetrics(), serverDeps{}, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	get := func() int {
		req, _ := http.NewRequest("GET", srv.URL+"/scim/v2/Users", nil)
		req.Header.Set("Authorization", "Bearer "+created.Secret)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("GET /scim/v2/Users: %d", code)
	}
	mustRun("scim", "token", "revoke", created.Token.ID)
	if code := get(); code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", code)
	}
}
