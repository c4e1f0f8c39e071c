package jit_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// Benchmarks of idsync's share of a login: everything after the IdP's
// answer is verified (Provisioner.Provision: mapping, policies, one engine
// observation). Run with
//
//	go test ./jit -run '^$' -bench . -benchtime 2000x
//
// p50/p99 are per-login latencies in microseconds.

func benchBackends(b *testing.B, fn func(b *testing.B, db *storage.DB)) {
	for _, be := range storagetest.Backends() {
		b.Run("database="+be.Name, func(b *testing.B) { fn(b, be.Open(b)) })
	}
}

func percentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds())/1e3, "p99-µs")
}

func benchConnection(b *testing.B, db *storage.DB) (*engine.Engine, jit.Connection) {
	e := engine.New(db, engine.Options{})
	by := engine.Admin{Actor: "bench"}
	org, err := e.CreateOrganization(bg, by, engine.Organization{Slug: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	cfg := jit.Config{OIDC: &jit.OIDCConfig{Issuer: "https://idp.acme.test", ClientID: "c"},
		Mapping: jit.Mapping{GroupMode: jit.GroupsSync, PassthroughGroups: true,
			Attributes: map[string]string{"email": "email", "givenName": "given_name", "familyName": "family_name",
				"displayName": "name", "department": "department", "title": "title"}}}
	raw, _ := json.Marshal(cfg)
	src, err := e.CreateSource(bg, by, engine.Source{OrgID: org.ID, Kind: engine.KindOIDC, Name: "okta", Config: raw}, true)
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := jit.ParseConfig(src.Kind, src.Config)
	if err != nil {
		b.Fatal(err)
	}
	return e, jit.Connection{Source: src, Org: org, Config: parsed}
}

func benchLogin(i int) jit.Login {
	return jit.Login{Key: fmt.Sprintf("https://idp.acme.test|u-%d", i), EmailVerified: true, Claims: jit.Claims{
		"email": {fmt.Sprintf("user%d@acme.test", i)}, "given_name": {"Given"}, "family_name": {fmt.Sprintf("Family%d", i)},
		"name": {"Given Family"}, "department": {"Research"}, "title": {"Engineer"},
		"groups": {"eng", "staff", "all"}}}
}

// BenchmarkLoginReturning: a returning person with unchanged claims.
func BenchmarkLoginReturning(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		e, c := benchConnection(b, db)
		p := &jit.Provisioner{Engine: e}
		const people = 200
		for i := range people {
			if _, err := p.Provision(bg, c, benchLogin(i)); err != nil {
				b.Fatal(err)
			}
		}
		ds := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			r, err := p.Provision(bg, c, benchLogin(i%people))
			ds = append(ds, time.Since(t0))
			if err != nil || r.Outcome != engine.OutcomeUnchanged {
				b.Fatalf("%v %s", err, r.Outcome)
			}
		}
		b.StopTimer()
		percentiles(b, ds)
	})
}

// BenchmarkLoginFirst: a first login: create, org membership, 3 groups,
// audit.
func BenchmarkLoginFirst(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		e, c := benchConnection(b, db)
		p := &jit.Provisioner{Engine: e}
		ds := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			r, err := p.Provision(bg, c, benchLogin(i))
			ds = append(ds, time.Since(t0))
			if err != nil || r.Outcome != engine.OutcomeCreated {
				b.Fatalf("%v %s", err, r.Outcome)
			}
		}
		b.StopTimer()
		percentiles(b, ds)
	})
}

// BenchmarkOIDCLoginFull: whole browser logins (idsync → provider
// authorize → callback → token → verify → provision → session) against the
// in-test provider, by 1 and 8 concurrent browsers, returning people.
// Reports logins/s and idsync's share (provision + session) per login.
func BenchmarkOIDCLoginFull(b *testing.B) {
	for _, browsers := range []int{1, 8} {
		b.Run(fmt.Sprintf("browsers=%d", browsers), func(b *testing.B) {
			db := storagetest.SQLite(b)
			f := storagetest.NewFixture(b, db)
			var mu sync.Mutex
			var share []time.Duration
			h, err := jit.New(f.Engine, jit.Options{ObserveLogin: func(_ engine.SourceKind, d time.Duration) {
				mu.Lock()
				share = append(share, d)
				mu.Unlock()
			}})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			op := newMiniOP(b)
			e := &env{t: b, f: f, h: h, srv: srv, log: &syncBuffer{}}
			e.connection(engine.KindOIDC, "okta", op.config("JIT_BENCH_SECRET"), false)
			client := func() *http.Client {
				jar, _ := cookiejar.New(nil)
				c := *srv.Client()
				c.Jar = jar
				c.Transport = srv.Client().Transport
				return &c
			}
			login := func(c *http.Client) {
				resp, err := c.Get(srv.URL + "/login/acme/okta")
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("login: %d", resp.StatusCode)
				}
			}
			login(client()) // first login creates; the rest are returning
			mu.Lock()
			share = share[:0]
			mu.Unlock()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := b.N / browsers
			if per == 0 {
				per = 1
			}
			for range browsers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := client()
					for range per {
						login(c)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(per*browsers)/el.Seconds(), "logins/s")
			mu.Lock()
			percentiles(b, share)
			mu.Unlock()
		})
	}
}
