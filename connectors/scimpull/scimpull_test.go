package scimpull_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/connectors/scimpull"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

const (
	tokenEnv = "IDSYNC_TEST_SCIM_PULL_TOKEN"
	token    = "scim-test-token-123"
)

// provider is a minimal SCIM service provider: paged /Users and /Groups,
// a bearer token, and meta.lastModified ge filters.
type provider struct {
	mu       sync.Mutex
	users    []map[string]any
	groups   []map[string]any
	fail     bool
	requests int
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, `{"status":"401"}`, http.StatusUnauthorized)
		return
	}
	if p.fail && strings.HasSuffix(r.URL.Path, "/Users") && r.URL.Query().Get("startIndex") != "1" {
		http.Error(w, `{"status":"500"}`, http.StatusInternalServerError)
		return
	}
	var all []map[string]any
	switch {
	case strings.HasSuffix(r.URL.Path, "/Users"):
		all = p.users
	case strings.HasSuffix(r.URL.Path, "/Groups"):
		all = p.groups
	default:
		http.NotFound(w, r)
		return
	}
	if f := r.URL.Query().Get("filter"); f != "" {
		since := strings.Trim(strings.TrimPrefix(f, "meta.lastModified ge "), `"`)
		var keep []map[string]any
		for _, u := range all {
			if u["meta"].(map[string]any)["lastModified"].(string) >= since {
				keep = append(keep, u)
			}
		}
		all = keep
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
	count, _ := strconv.Atoi(r.URL.Query().Get("count"))
	start = max(start, 1)
	end := min(start-1+count, len(all))
	page := []map[string]any{}
	if start-1 < len(all) {
		page = all[start-1 : end]
	}
	w.Header().Set("Content-Type", "application/scim+json")
	json.NewEncoder(w).Encode(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": len(all), "startIndex": start, "itemsPerPage": len(page), "Resources": page})
}

func user(i int, modified string) map[string]any {
	return map[string]any{"id": fmt.Sprintf("id-%03d", i), "userName": fmt.Sprintf("u%03d@acme.test", i),
		"name": map[string]any{"givenName": "U", "familyName": fmt.Sprintf("N%03d", i)}, "active": true,
		"emails":   []any{map[string]any{"value": fmt.Sprintf("u%03d@acme.test", i), "primary": true}},
		"password": "never-stored", "meta": map[string]any{"lastModified": modified},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "R&D"}}
}

// TestSCIMPull: a paged full pull over real HTTP brings users and groups;
// an incremental pull reads only what changed since the watermark; a
// provider failing mid-way, a wrong token and an empty answer remove
// no one; a deleted user is removed by the next full pull.
func TestSCIMPull(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			t.Setenv(tokenEnv, token)
			f := storagetest.NewFixture(t, b.Open(t))
			p := &provider{}
			t0 := "2026-01-01T00:00:00Z"
			for i := range 45 {
				p.users = append(p.users, user(i, t0))
			}
			p.groups = []map[string]any{{"id": "g1", "displayName": "eng",
				"members": []any{map[string]any{"value": "id-000"}, map[string]any{"value": "id-001", "type": "User"}}}}
			srv := httptest.NewServer(p)
			defer srv.Close()
			cfg, _ := json.Marshal(map[string]any{"baseURL": srv.URL + "/scim/v2", "tokenEnv": tokenEnv, "pageSize": 10})
			src, err := f.Engine.CreateSource(bg, engine.Admin{Actor: "test"}, engine.Source{OrgID: f.Org.ID,
				Kind: engine.KindSCIMPull, Name: "upstream", Priority: 50, Config: cfg}, true)
			if err != nil {
				t.Fatal(err)
			}
			live := func() int {
				n, err := f.DB.CountAccounts(bg, src.ID, true)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			plan, mark, err := scimpull.Sync(bg, f.Engine, src, true, "", engine.SnapshotOptions{})
			if err != nil || plan.Counts.Created != 45 || mark != t0 || p.requests != 5+1 {
				t.Fatalf("full pull: %v %+v mark %q, %d requests (want 5 user pages + 1 group page)", err, plan.Counts, mark, p.requests)
			}
			a := f.Account(src.ID, "id-000")
			if a.Attrs["department"] != "R&D" || a.Attrs["email"] != "u000@acme.test" || strings.Contains(string(a.Raw), "never-stored") {
				t.Fatalf("account: %v raw %s", a.Attrs, a.Raw)
			}
			if g := f.GroupsOf(a.IdentityID); !slices.Equal(g, []string{"eng"}) {
				t.Fatalf("groups %v", g)
			}

			t1 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
			p.users[3]["title"] = "Boss"
			p.users[3]["meta"] = map[string]any{"lastModified": t1}
			plan, mark, err = scimpull.Sync(bg, f.Engine, src, false, mark, engine.SnapshotOptions{})
			if err != nil || plan.Counts.Seen != 45 || plan.Counts.Updated != 1 || mark != t1 { // inclusive: t0's users again
				t.Fatalf("incremental: %v %+v %q", err, plan.Counts, mark)
			}
			plan, mark, _ = scimpull.Sync(bg, f.Engine, src, false, mark, engine.SnapshotOptions{})
			if plan.Counts.Seen != 1 || plan.Counts.Unchanged != 1 {
				t.Fatalf("incremental from %s: %+v, want only the one changed user, unchanged", mark, plan.Counts)
			}

			p.users = p.users[:44]
			p.fail = true
			if _, _, err := scimpull.Sync(bg, f.Engine, src, true, "", engine.SnapshotOptions{}); !errors.Is(err, engine.ErrUnavailable) || live() != 45 {
				t.Fatalf("failing provider: %v, live %d", err, live())
			}
			p.fail = false
			t.Setenv(tokenEnv, "wrong")
			if _, _, err := scimpull.Sync(bg, f.Engine, src, true, "", engine.SnapshotOptions{}); !errors.Is(err, engine.ErrUnavailable) ||
				strings.Contains(err.Error(), "wrong") || live() != 45 {
				t.Fatalf("wrong token: %v, live %d", err, live())
			}
			t.Setenv(tokenEnv, token)
			saved := p.users
			p.users = nil
			if _, _, err := scimpull.Sync(bg, f.Engine, src, true, "", engine.SnapshotOptions{}); !errors.Is(err, engine.ErrQuarantined) || live() != 45 {
				t.Fatalf("empty answer: %v, live %d", err, live())
			}
			p.users = saved
			if plan, _, err := scimpull.Sync(bg, f.Engine, src, true, "", engine.SnapshotOptions{}); err != nil || plan.Counts.Removed != 1 || live() != 44 {
				t.Fatalf("full pull after a delete: %v %+v", err, plan.Counts)
			}
		})
	}
}
