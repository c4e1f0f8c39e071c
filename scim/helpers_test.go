package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

// env is a real idsync SCIM endpoint on loopback over a real database.
type env struct {
	t     testing.TB
	f     *storagetest.Fixture
	srv   *httptest.Server
	token string // of f.SCIM
}

func newEnv(t testing.TB, db *storage.DB) *env {
	t.Helper()
	f := storagetest.NewFixture(t, db)
	h, err := scim.New(f.Engine, scim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(scim.Prefix+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, f: f, srv: srv}
	e.token = e.newToken(f.SCIM.ID, "admin")
	return e
}

func (e *env) newToken(sourceID, scope string) string {
	e.t.Helper()
	_, secret, err := e.f.Engine.CreateToken(bg, engine.Admin{Actor: "test"}, engine.Token{Kind: engine.TokenSCIM, SourceID: sourceID, Name: "t", Scope: scope})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// call sends a request with the directory's token.
func (e *env) call(method, path, body string, hdr ...string) (int, []byte, http.Header) {
	e.t.Helper()
	return e.callAs(e.token, method, path, body, hdr...)
}

func (e *env) callAs(token, method, path, body string, hdr ...string) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+scim.Prefix+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// must sends a request and fails unless the status is want; it returns the
// decoded body.
func (e *env) must(want int, method, path, body string, hdr ...string) map[string]any {
	e.t.Helper()
	code, b, _ := e.call(method, path, body, hdr...)
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %s", method, path, b)
		}
	}
	return m
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func userBody(userName string, more ...any) string {
	m := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName,
		"emails": []any{map[string]any{"value": userName, "type": "work", "primary": true}}, "active": true}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i].(string)] = more[i+1]
	}
	return js(m)
}

func forEachBackend(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return m
}

// with returns the env reporting to t (fuzz targets must not use the F).
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// count counts rows of a table, reporting to t.
func (e *env) count(t testing.TB, table string) int {
	var n int
	if err := e.f.DB.SQL().Get(&n, "SELECT COUNT(*) FROM "+table); err != nil {
		t.Fatal(err)
	}
	return n
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
