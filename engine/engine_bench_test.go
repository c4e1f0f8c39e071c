package engine_test

import (
	"context"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// Benchmarks run on both backends (PostgreSQL when IDSYNC_TEST_POSTGRES_DSN
// is set). Figures and the commands behind them are in README.md.

func benchBackends(b *testing.B, fn func(b *testing.B, db *storage.DB)) {
	for _, be := range storagetest.Backends() {
		b.Run("database="+be.Name, func(b *testing.B) {
			if be.Name == "postgres" && os.Getenv(storagetest.PostgresEnv) == "" {
				b.Skip("set " + storagetest.PostgresEnv + " to benchmark PostgreSQL")
			}
			fn(b, be.Open(b))
		})
	}
}

func twelveAttrs(i int) engine.Attrs {
	s := strconv.Itoa(i)
	return engine.Attrs{
		"userName": "user" + s + "@bench.test", "email": "user" + s + "@bench.test", "externalId": "ext-" + s,
		"employeeNumber": "E" + s, "givenName": "Given" + s, "familyName": "Family" + s, "displayName": "User " + s,
		"title": "Engineer", "department": "R&D", "manager": "boss@bench.test", "phoneNumber": "+33 1 23 45 67 89", "locale": "fr-FR",
	}
}

func benchFixture(b *testing.B, db *storage.DB) (*engine.Engine, engine.Source) {
	ctx := context.Background()
	e := engine.New(db, engine.Options{})
	org, err := e.CreateOrganization(ctx, engine.Admin{}, engine.Organization{Slug: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	src, err := e.CreateSource(ctx, engine.Admin{}, engine.Source{OrgID: org.ID, Kind: engine.KindSCIM, Name: "scim"}, true)
	if err != nil {
		b.Fatal(err)
	}
	return e, src
}

// BenchmarkApplyUnchanged is the returning-login path: an observation equal
// to the last one applied. One goroutine.
func BenchmarkApplyUnchanged(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		e, src := benchFixture(b, db)
		ctx := context.Background()
		obs := engine.Observation{SourceID: src.ID, Key: "k1", Attrs: twelveAttrs(1), Groups: []string{"eng", "all"}}
		if _, err := e.Apply(ctx, obs); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := e.Apply(ctx, obs)
			if err != nil || r.Outcome != engine.OutcomeUnchanged {
				b.Fatalf("apply: %v %v", r.Outcome, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	})
}

// BenchmarkApplyNewIdentity creates one identity per observation: 12
// attributes, 2 groups, its audit events, one transaction each.
func BenchmarkApplyNewIdentity(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		e, src := benchFixture(b, db)
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			obs := engine.Observation{SourceID: src.ID, Key: "k" + strconv.Itoa(i), Attrs: twelveAttrs(i), Groups: []string{"eng", "all"}}
			r, err := e.Apply(ctx, obs)
			if err != nil || r.Outcome != engine.OutcomeCreated {
				b.Fatalf("apply: %v %v", r.Outcome, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	})
}

func snapshotOf(n int) iter.Seq2[engine.Observation, error] {
	return func(yield func(engine.Observation, error) bool) {
		for i := 0; i < n; i++ {
			if !yield(engine.Observation{Key: "k" + strconv.Itoa(i), Attrs: twelveAttrs(i), Groups: []string{"eng", "all"}}, nil) {
				return
			}
		}
	}
}

// heapPeak samples the live heap while fn runs.
func heapPeak(fn func()) uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	return peak.Load()
}

// BenchmarkSnapshot applies a snapshot of IDSYNC_BENCH_SNAPSHOT (default
// 100,000) new identities, then the identical snapshot again, reporting
// both durations and the peak live heap. Run with -benchtime=1x.
func BenchmarkSnapshot(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("IDSYNC_BENCH_SNAPSHOT")); err == nil && v > 0 {
		n = v
	}
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if i > 0 {
				db = storagetest.SQLite(b)
			}
			e, src := benchFixture(b, db)
			ctx := context.Background()
			b.StartTimer()
			var first, second time.Duration
			var p1, p2 engine.Plan
			peak := heapPeak(func() {
				t0 := time.Now()
				var err error
				if p1, err = e.ApplySnapshot(ctx, src.ID, snapshotOf(n), engine.SnapshotOptions{}); err != nil {
					b.Fatal(err)
				}
				first = time.Since(t0)
				seq, _, _ := db.AuditHead(ctx)
				t1 := time.Now()
				if p2, err = e.ApplySnapshot(ctx, src.ID, snapshotOf(n), engine.SnapshotOptions{}); err != nil {
					b.Fatal(err)
				}
				second = time.Since(t1)
				if seq2, _, _ := db.AuditHead(ctx); seq2 != seq {
					b.Fatalf("identical snapshot wrote %d audit events", seq2-seq)
				}
			})
			if p1.Counts.Created != n || p2.Counts.Unchanged != n {
				b.Fatalf("counts: first %+v second %+v", p1.Counts, p2.Counts)
			}
			b.ReportMetric(first.Seconds(), "first-s")
			b.ReportMetric(second.Seconds(), "second-s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		}
	})
}

// BenchmarkAuditVerify verifies a log of IDSYNC_BENCH_AUDIT (default
// 1,000,000) events. Run with -benchtime=1x.
func BenchmarkAuditVerify(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("IDSYNC_BENCH_AUDIT")); err == nil && v > 0 {
		n = v
	}
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		ctx := context.Background()
		const batch = 10000
		at := time.Now().UTC()
		for done := 0; done < n; done += batch {
			evs := make([]engine.AuditEvent, 0, batch)
			for i := done; i < done+batch && i < n; i++ {
				evs = append(evs, engine.AuditEvent{ID: fmt.Sprintf("ev-%d", i), At: at, OrgID: "org", Channel: "scim",
					SourceID: "src", Actor: "bench", Action: "identity.updated", SubjectType: "identity", SubjectID: "id",
					IdentityID: "id", Changes: []byte(`{"changes":[{"field":"department","before":"A","after":"B"}]}`)})
			}
			if err := db.InTx(ctx, func(tx engine.Tx) error { return tx.AppendAudit(ctx, evs) }); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := engine.VerifyAudit(ctx, db)
			if err != nil || !r.OK || r.Events != int64(n) {
				b.Fatalf("verify: %+v %v", r, err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/verify")
	})
}

// BenchmarkApplyNewIdentityConcurrent is BenchmarkApplyNewIdentity from 16
// goroutines (as 16 SCIM clients or logins at once).
func BenchmarkApplyNewIdentityConcurrent(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *storage.DB) {
		e, src := benchFixture(b, db)
		ctx := context.Background()
		var n atomic.Int64
		b.SetParallelism(8) // × GOMAXPROCS (2 here) = 16 goroutines
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				obs := engine.Observation{SourceID: src.ID, Key: "k" + strconv.Itoa(i), Attrs: twelveAttrs(i), Groups: []string{"eng", "all"}}
				r, err := e.Apply(ctx, obs)
				if err != nil || r.Outcome != engine.OutcomeCreated {
					b.Errorf("apply: %v %v", r.Outcome, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	})
}
