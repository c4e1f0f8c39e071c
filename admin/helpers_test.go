package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

// quarRunner quarantines its odd runs (1st, 3rd, …) and lets the even
// ones (the approved reruns) succeed.
type quarRunner struct{ n int }

func (q *quarRunner) run(ctx context.Context, rc *engine.RunContext) (engine.Counts, *engine.Plan, error) {
	q.n++
	if q.n%2 == 1 {
		return engine.Counts{Seen: 10}, &engine.Plan{Events: map[string]int{engine.PlannedDeprovisions: 5}},
			fmt.Errorf("5 of 10 would go: %w", engine.ErrQuarantined)
	}
	return engine.Counts{Seen: 10, Unchanged: 10}, nil, nil
}

// env is a running API on a real loopback listener with a seeded graph:
// the fixture's organization "acme" (SCIM, LDAP, OIDC sources) and a second
// organization "globex", and keys of each kind.
type env struct {
	t      *testing.T
	f      *storagetest.Fixture
	db     *storage.DB
	srv    *httptest.Server
	h      *admin.Handler
	worker *admin.Worker
	other  engine.Organization
	// admin: deployment-wide, admin scope; read: deployment-wide, read;
	// scoped: acme only, admin scope; otherKey: globex only.
	admin, read, scoped, otherKey string
	job                           engine.Job
	mail                          *captureMailer
	console                       *httptest.Server
}

// captureMailer keeps the mails it is asked to send.
type captureMailer struct {
	mu    sync.Mutex
	mails []string
}

func (m *captureMailer) Send(ctx context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, "To: "+to+"\nSubject: "+subject+"\n\n"+body)
	return nil
}

func newEnv(t *testing.T, db *storage.DB) *env {
	t.Helper()
	f := storagetest.NewFixture(t, db)
	e := &env{t: t, f: f, db: db}
	by := engine.Admin{Actor: "test"}
	var err error
	if e.other, err = f.Engine.CreateOrganization(bg, by, engine.Organization{Slug: "globex", Name: "Globex"}); err != nil {
		t.Fatal(err)
	}
	key := func(org, scope string) string {
		_, s, err := f.Engine.CreateToken(bg, by, engine.Token{Kind: engine.TokenAdmin, OrgID: org, Name: "k", Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.admin, e.read, e.scoped, e.otherKey = key("", "admin"), key("", "read"), key(f.Org.ID, "admin"), key(e.other.ID, "admin")
	sched := engine.NewScheduler(f.Engine, engine.SchedulerOptions{Owner: "test", Tick: time.Hour})
	q := &quarRunner{}
	sched.Register(engine.JobFull, engine.KindLDAP, q.run)
	if e.job, err = f.Engine.CreateJob(bg, by, engine.Job{OrgID: f.Org.ID, SourceID: f.LDAP.ID, Name: "ldap-full",
		Kind: engine.JobFull, Schedule: "0 3 * * *", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if e.worker, err = admin.NewWorker(f.Engine, admin.WorkerOptions{BaseBackoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond, PauseAfter: 1000}); err != nil {
		t.Fatal(err)
	}
	e.mail = &captureMailer{}
	inv := &admin.Invitations{E: f.Engine, Store: db, Mailer: e.mail, BaseURL: "http://idsync.test"}
	if e.h, err = admin.New(f.Engine, admin.Options{Scheduler: sched, Invitations: inv}); err != nil {
		t.Fatal(err)
	}
	if allRoutes == nil {
		allRoutes = e.h.Routes()
	}
	e.srv = httptest.NewServer(covered(e.h))
	t.Cleanup(e.srv.Close)
	e.console = httptest.NewServer(admin.NewConsole(e.h))
	t.Cleanup(e.console.Close)
	return e
}

// do calls the API and returns the status and body.
func (e *env) do(key, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+admin.Prefix+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// call is do that wants a status and decodes the body into out.
func (e *env) call(key, method, path string, body any, want int, out any) {
	e.t.Helper()
	code, b := e.do(key, method, path, body)
	if code != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// wantErr checks the one error shape and its code.
func (e *env) wantErr(key, method, path string, body any, status int, code string) {
	e.t.Helper()
	got, b := e.do(key, method, path, body)
	var eb admin.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || got != status || eb.Error.Code != code || eb.Error.Message == "" {
		e.t.Fatalf("%s %s = %d %s, want %d with code %s", method, path, got, b, status, code)
	}
}

func (e *env) apply(obs engine.Observation) engine.Result {
	e.t.Helper()
	r, err := e.f.Engine.Apply(bg, obs)
	if err != nil && !errors.Is(err, engine.ErrConflict) {
		e.t.Fatalf("apply %s: %v", obs.Key, err)
	}
	return r
}

func person(user, email, title string) engine.Attrs {
	return engine.Attrs{reconcile.AttrUserName: user, reconcile.AttrEmail: email, reconcile.AttrTitle: title,
		reconcile.AttrGivenName: user}
}

var adminBy = engine.Admin{Actor: "test"}

func tokenAdmin() engine.Token {
	return engine.Token{Kind: engine.TokenAdmin, Name: "bench", Scope: "admin"}
}

// serve runs one console request in process.
func serve(h http.Handler, method, path, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: admin.ConsoleCookie, Value: cookie})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// signIn posts the console's sign-in form and returns the session cookie.
func signIn(tb testing.TB, h http.Handler, key string) string {
	tb.Helper()
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader("key="+key))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == admin.ConsoleCookie {
			return c.Value
		}
	}
	tb.Fatalf("sign-in = %d, no session cookie", rec.Code)
	return ""
}

// allRoutes is the route table, as the first env saw it.
var allRoutes []admin.Route

// hit records which route patterns the tests reached with a 2xx answer.
var hit sync.Map

func covered(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &codeWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if r.Pattern != "" && rec.code < 300 {
			hit.Store(r.Pattern, true)
		}
	})
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.ResponseWriter.Write(b)
}

// TestMain fails a full run of the package's tests when an endpoint was
// never called successfully: every endpoint has an API test.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if f := flag.Lookup("test.run"); code == 0 && f != nil && f.Value.String() == "" && !testing.Short() {
		var missing []string
		for _, rt := range allRoutes {
			if _, ok := hit.Load(rt.Method + " " + admin.Prefix + rt.Path); !ok {
				missing = append(missing, rt.Method+" "+rt.Path)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test called these endpoints successfully:\n  %s\n", strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}
