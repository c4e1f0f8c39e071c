package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// receiver is a real HTTP endpoint that fails its first failFirst requests
// (or always, when failFirst < 0) and records what it accepted after
// checking the signature.
type receiver struct {
	mu        sync.Mutex
	secret    string
	failFirst int
	calls     int
	badSig    int
	got       []admin.Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	if err := admin.Verify(rc.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		rc.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if rc.failFirst < 0 || rc.calls <= rc.failFirst {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var ev admin.Event
	_ = json.Unmarshal(body, &ev)
	rc.got = append(rc.got, ev)
}

// TestWebhookDelivery: signatures verify; a receiver that fails then
// recovers gets every event of its organization once, in order (so in
// order per person); failures are logged and retried; manual redelivery
// sends a logged event again; an endpoint that keeps failing is paused.
func TestWebhookDelivery(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			rc := &receiver{failFirst: 3}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			var nw admin.NewWebhook
			e.call(e.admin, "POST", "/orgs/acme/webhooks", map[string]any{"url": srv.URL + "/hook"}, 201, &nw)
			rc.mu.Lock()
			rc.secret = nw.Secret
			rc.mu.Unlock()
			start := nw.Cursor
			// People join, change and leave; another organization's events
			// must not be delivered here.
			for i, u := range []string{"ann", "ben", "cat"} {
				e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-" + u, Attrs: person(u, u+"@acme.test", "t0")})
				e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-" + u, Attrs: person(u, u+"@acme.test", "t1")})
				if i == 1 {
					e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-" + u, Attrs: person(u, u+"@acme.test", "t1"), Inactive: true})
				}
			}
			gsrc, _ := e.f.Engine.CreateSource(bg, engine.Admin{}, engine.Source{OrgID: e.other.ID, Kind: engine.KindSCIM, Name: "g"}, true)
			e.apply(engine.Observation{SourceID: gsrc.ID, Key: "g-1", Attrs: person("zed", "zed@globex.test", "x")})

			var want []int64
			for _, ev := range e.f.Events(start) {
				if ev.OrgID == e.f.Org.ID {
					want = append(want, ev.Seq)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if err := e.worker.Pass(bg); err != nil {
					t.Fatal(err)
				}
				rc.mu.Lock()
				n := len(rc.got)
				rc.mu.Unlock()
				if n >= len(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			rc.mu.Lock()
			got := rc.got
			bad := rc.badSig
			rc.mu.Unlock()
			if bad != 0 {
				t.Fatalf("%d deliveries failed signature verification", bad)
			}
			if len(got) != len(want) {
				t.Fatalf("received %d events, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Seq != want[i] {
					t.Fatalf("event %d: seq %d, want %d (every event once, in order)", i, got[i].Seq, want[i])
				}
			}
			var deliveries admin.List[admin.Delivery]
			e.call(e.admin, "GET", "/webhooks/"+nw.ID+"/deliveries?limit=1000", nil, 200, &deliveries)
			failed, okd := 0, 0
			for _, d := range deliveries.Items {
				switch d.Status {
				case admin.DeliveryFailed:
					failed++
					if d.HTTPStatus != 503 {
						t.Errorf("failed delivery logged with HTTP %d", d.HTTPStatus)
					}
				case admin.DeliveryOK:
					okd++
				}
			}
			if failed != 3 || okd != len(want) {
				t.Fatalf("delivery log: %d failed, %d delivered; want 3 and %d", failed, okd, len(want))
			}
			var whs admin.List[admin.Webhook]
			e.call(e.admin, "GET", "/orgs/acme/webhooks", nil, 200, &whs)
			if len(whs.Items) != 1 || whs.Items[0].ID != nw.ID {
				t.Fatalf("webhooks = %+v", whs.Items)
			}
			var wh admin.Webhook
			e.call(e.admin, "GET", "/webhooks/"+nw.ID, nil, 200, &wh)
			if wh.Cursor != want[len(want)-1] || wh.Failures != 0 || wh.Status != admin.WebhookActive {
				t.Fatalf("webhook after catching up = %+v", wh)
			}

			t.Run("redelivery by hand", func(t *testing.T) {
				var d admin.Delivery
				e.call(e.admin, "POST", "/deliveries/"+deliveries.Items[0].ID+"/redeliver", nil, 201, &d)
				rc.mu.Lock()
				last := rc.got[len(rc.got)-1]
				rc.mu.Unlock()
				if d.Status != admin.DeliveryOK || last.Seq != deliveries.Items[0].EventSeq {
					t.Fatalf("redelivery = %+v, receiver last got %d", d, last.Seq)
				}
			})

			t.Run("an endpoint that keeps failing is paused", func(t *testing.T) {
				down := &receiver{failFirst: -1}
				dsrv := httptest.NewServer(down)
				defer dsrv.Close()
				w, err := admin.NewWorker(e.f.Engine, admin.WorkerOptions{BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, PauseAfter: 3})
				if err != nil {
					t.Fatal(err)
				}
				var dw admin.NewWebhook
				e.call(e.admin, "POST", "/orgs/acme/webhooks", map[string]any{"url": dsrv.URL, "fromStart": true}, 201, &dw)
				down.mu.Lock()
				down.secret = dw.Secret
				down.mu.Unlock()
				// Only the new webhook: pause the first.
				e.call(e.admin, "PATCH", "/webhooks/"+nw.ID, map[string]any{"status": "paused"}, 200, nil)
				for range 20 {
					_ = w.Pass(bg)
					time.Sleep(3 * time.Millisecond)
				}
				var got admin.Webhook
				e.call(e.admin, "GET", "/webhooks/"+dw.ID, nil, 200, &got)
				down.mu.Lock()
				calls := down.calls
				down.mu.Unlock()
				if got.Status != admin.WebhookPaused || calls != 3 || got.Cursor != 0 {
					t.Fatalf("failing webhook = %+v after %d calls; want paused after 3", got, calls)
				}
				e.call(e.admin, "PATCH", "/webhooks/"+dw.ID, map[string]any{"status": "active"}, 200, &got)
				if got.Status != admin.WebhookActive || got.Failures != 0 {
					t.Fatalf("resumed = %+v", got)
				}
				e.call(e.admin, "DELETE", "/webhooks/"+dw.ID, nil, 204, nil)
				e.wantErr(e.admin, "GET", "/webhooks/"+dw.ID, nil, 404, admin.CodeNotFound)
			})
		})
	}
}

// TestSignature: a tampered body, a wrong secret or an old timestamp fail.
func TestSignature(t *testing.T) {
	body := []byte(`{"seq":1}`)
	now := time.Now()
	h := http.Header{}
	h.Set(admin.HeaderTimestamp, itoa(now.Unix()))
	h.Set(admin.HeaderSignature, admin.Sign("s3cret", now.Unix(), body))
	cases := []struct {
		name   string
		secret string
		body   string
		at     time.Time
		ok     bool
	}{
		{"valid", "s3cret", `{"seq":1}`, now, true},
		{"tampered body", "s3cret", `{"seq":2}`, now, false},
		{"wrong secret", "other", `{"seq":1}`, now, false},
		{"replayed late", "s3cret", `{"seq":1}`, now.Add(time.Hour), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := admin.Verify(c.secret, h, []byte(c.body), c.at, 5*time.Minute)
			if (err == nil) != c.ok {
				t.Fatalf("Verify = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestWebhookTwoWorkers: two idsync processes' workers delivering at once
// send each event once (a webhook is claimed for a pass).
func TestWebhookTwoWorkers(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			rc := &receiver{}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			for i := range 30 {
				u := fmt.Sprintf("u%02d", i)
				e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-" + u, Attrs: person(u, u+"@acme.test", "t")})
			}
			var nw admin.NewWebhook
			e.call(e.admin, "POST", "/orgs/acme/webhooks", map[string]any{"url": srv.URL, "fromStart": true}, 201, &nw)
			rc.mu.Lock()
			rc.secret = nw.Secret
			rc.mu.Unlock()
			var want int
			for _, ev := range e.f.Events(0) {
				if ev.OrgID == e.f.Org.ID {
					want++
				}
			}
			var wg sync.WaitGroup
			for range 2 {
				w, err := admin.NewWorker(e.f.Engine, admin.WorkerOptions{})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					for range 20 {
						_ = w.Pass(bg)
					}
				})
			}
			wg.Wait()
			rc.mu.Lock()
			defer rc.mu.Unlock()
			seen := map[int64]bool{}
			for _, ev := range rc.got {
				if seen[ev.Seq] {
					t.Fatalf("event %d delivered twice", ev.Seq)
				}
				seen[ev.Seq] = true
			}
			if len(seen) != want {
				t.Fatalf("delivered %d events, want %d", len(seen), want)
			}
		})
	}
}
