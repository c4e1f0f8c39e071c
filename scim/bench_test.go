package scim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim"
	"github.com/idsync/idsync/storage/storagetest"
)

// Benchmarks run over real HTTP on loopback against SQLite:
//
//	go test ./scim/ -run '^$' -bench . -benchtime 5s

// seedUsers inserts n user resources of the directory straight into
// scim_resources (the queries under test read only that table).
func seedUsers(b *testing.B, e *env, n int) []string {
	b.Helper()
	tx, err := e.f.DB.SQL().Beginx()
	if err != nil {
		b.Fatal(err)
	}
	st, err := tx.Preparex(tx.Rebind(`INSERT INTO scim_resources (source_id, type, id, external_id, user_name_norm, display_name_norm, doc, version, created, modified)
		VALUES (?, 'User', ?, ?, ?, ?, ?, 1, ?, ?)`))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	now := time.Now().UnixMicro()
	for i := range n {
		id := engine.NewID()
		ids[i] = id
		un := fmt.Sprintf("user%06d@acme.test", i)
		doc := js(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": un,
			"externalId": fmt.Sprintf("ext-%d", i), "active": true, "displayName": fmt.Sprintf("User %d", i),
			"name":   map[string]any{"givenName": "User", "familyName": fmt.Sprint(i)},
			"emails": []any{map[string]any{"value": un, "type": "work", "primary": true}}})
		if _, err := st.Exec(e.f.SCIM.ID, id, fmt.Sprintf("ext-%d", i), un, strings.ToLower(fmt.Sprintf("User %d", i)), doc, now, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return ids
}

func client(e *env) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
}

func send(c *http.Client, e *env, method, path, body string) (int, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+scim.Prefix+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// BenchmarkCreateUser: POST /Users (engine observation, audit) from 16
// concurrent clients.
func BenchmarkCreateUser(b *testing.B) {
	e := newEnv(b, storagetest.SQLite(b))
	c := client(e)
	var n atomic.Int64
	b.SetParallelism(max(1, 16/max(1, runtimeProcs())))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			code, err := send(c, e, "POST", "/Users", userBody(fmt.Sprintf("bench%d@acme.test", i), "name", map[string]any{"givenName": "B", "familyName": fmt.Sprint(i)}))
			if err != nil || code != 201 {
				b.Errorf("POST: %d %v", code, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}

// BenchmarkFilterUserName: GET /Users?filter=userName eq "x" with 100,000
// users stored, 16 concurrent clients.
func BenchmarkFilterUserName(b *testing.B) {
	e := newEnv(b, storagetest.SQLite(b))
	seedUsers(b, e, 100_000)
	c := client(e)
	var n atomic.Int64
	b.SetParallelism(max(1, 16/max(1, runtimeProcs())))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) % 100_000
			f := url.QueryEscape(fmt.Sprintf(`userName eq "USER%06d@acme.test"`, i))
			code, err := send(c, e, "GET", "/Users?filter="+f, "")
			if err != nil || code != 200 {
				b.Errorf("GET: %d %v", code, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkPatchAddMember: PATCH add one member to a group of 50,000
// members; reports the p99 latency of the add.
func BenchmarkPatchAddMember(b *testing.B) {
	e := newEnv(b, storagetest.SQLite(b))
	ids := seedUsers(b, e, 50_000)
	gid := e.must(201, "POST", "/Groups", `{"displayName":"Big"}`)["id"].(string)
	if _, err := e.f.DB.SQL().Exec(`INSERT INTO scim_members (source_id, group_id, member_id, display)
		SELECT source_id, ?, id, '' FROM scim_resources WHERE source_id = ? AND type = 'User'`, gid, e.f.SCIM.ID); err != nil {
		b.Fatal(err)
	}
	_ = ids
	pool := make([]string, 200)
	for i := range pool {
		pool[i] = e.must(201, "POST", "/Users", userBody(fmt.Sprintf("new%d@acme.test", i)))["id"].(string)
	}
	c := client(e)
	op := func(kind, id string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"` + kind + `","path":"members","value":[{"value":"` + id + `"}]}]}`
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := pool[i%len(pool)]
		t0 := time.Now()
		code, err := send(c, e, "PATCH", "/Groups/"+gid+"?excludedAttributes=members", op("add", id))
		lat = append(lat, time.Since(t0))
		if err != nil || code != 200 {
			b.Fatalf("PATCH: %d %v", code, err)
		}
		b.StopTimer()
		if code, err := send(c, e, "PATCH", "/Groups/"+gid+"?excludedAttributes=members", op("remove", id)); err != nil || code != 200 {
			b.Fatalf("PATCH remove: %d %v", code, err)
		}
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkOktaImport: a full import of 100,000 users in count=100 pages,
// as Okta runs it; one op is the whole import.
func BenchmarkOktaImport(b *testing.B) {
	e := newEnv(b, storagetest.SQLite(b))
	seedUsers(b, e, 100_000)
	c := client(e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for start := 1; start <= 100_000; start += 100 {
			code, err := send(c, e, "GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), "")
			if err != nil || code != 200 {
				b.Fatalf("GET page %d: %d %v", start, code, err)
			}
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/import")
}
