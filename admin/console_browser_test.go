package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// artifacts is where browser screenshots go: $IDSYNC_ARTIFACTS/<test> or a
// temp dir.
func artifacts(t *testing.T) string {
	dir := os.Getenv("IDSYNC_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	storagetest.SkipOrFail(t, "browser tests need chromium (apt-get install -y chromium)")
	return ""
}

// TestConsoleBrowser drives the console in headless Chromium over the
// DevTools protocol: sign in with an admin key, approve a quarantined run,
// resolve a conflict, read a person's timeline and accounts side by side,
// filter the audit log and open the comparison chart. Screenshots are
// saved as artifacts.
func TestConsoleBrowser(t *testing.T) {
	exe := chromium(t)
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			shots := artifacts(t)
			mux := http.NewServeMux()
			mux.Handle("/console/", admin.NewConsole(e.h))
			srv := httptest.NewServer(mux)
			defer srv.Close()

			// Seed: a quarantined run, an open conflict, a person two sources know.
			var run engine.JobRun
			e.call(e.admin, "POST", "/jobs/"+e.job.ID+"/run", nil, 201, &run)
			alice := e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-alice", EmailVerified: true,
				Attrs: person("alice", "alice@acme.test", "Staff Engineer"), Groups: []string{"Platform"}})
			e.apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "https://idp|alice", EmailVerified: true, Login: true,
				Attrs: person("alice", "alice@acme.test", "Engineer")})
			fay := e.apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "https://idp|fay", EmailVerified: true, Login: true,
				Attrs: person("fay", "fay@acme.test", "")})
			e.apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "https://idp|carol", EmailVerified: true, Login: true,
				Attrs: person("carol", "carol@acme.test", "Designer")})
			cf := e.apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "s-fay", Attrs: engine.Attrs{"email": "fay@acme.test", "userName": "fay.s"}})
			if run.Status != engine.RunQuarantined || cf.ConflictID == "" {
				t.Fatalf("seed: run %s, conflict %q", run.Status, cf.ConflictID)
			}

			opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.Headless,
				chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true),
				chromedp.WindowSize(1280, 1000))
			actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
			defer cancel()
			bctx, cancel := chromedp.NewContext(actx)
			defer cancel()
			// The first run starts the browser: no timeout on its context.
			if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/console/login")); err != nil {
				t.Fatalf("start chromium: %v", err)
			}
			do := func(name string, steps ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
				defer cancel()
				if err := chromedp.Do(ctx, steps...); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			text := func(sel string) string {
				t.Helper()
				ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
				defer cancel()
				s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
				if err != nil {
					t.Fatalf("text of %s: %v", sel, err)
				}
				return s
			}
			shot := func(name string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
				defer cancel()
				buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("screenshot %s: %v", name, err)
				}
				if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
			do("sign in",
				chromedp.WaitVisible(css(`#key`)),
				chromedp.SendKeys(css(`#key`), e.admin),
				chromedp.Click(css(`#signin`)),
				chromedp.WaitVisible(css(`a[href="/console/orgs/acme"]`)))
			shot("01-organizations")

			do("approve a quarantined run",
				chromedp.Click(css(`a[href="/console/orgs/acme"]`)),
				chromedp.WaitVisible(css(`#approve-`+run.ID)))
			shot("02-organization")
			do("approve", chromedp.Click(css(`#approve-`+run.ID)), chromedp.WaitVisible(css(`p.ok`)))
			if got := text(`p.ok`); !strings.Contains(got, "Run approved") {
				t.Fatalf("after approve: %q", got)
			}
			if r, _ := e.db.JobRun(bg, run.ID); r.Status != engine.RunApproved {
				t.Fatalf("run is %s after approving in the console", r.Status)
			}

			do("resolve a conflict",
				// A fresh page without the approval's notice, so that the
				// notice waited for below is the resolution's.
				chromedp.Navigate(srv.URL+"/console/orgs/acme"),
				chromedp.WaitVisible(css(`#resolve-`+cf.ConflictID)),
				chromedp.Click(css(`input[name="choice"][value="`+fay.IdentityID+`"]`)),
				chromedp.Click(css(`#resolve-`+cf.ConflictID)),
				chromedp.WaitVisible(css(`p.ok`)))
			shot("03-resolved")
			if got := text(`p.ok`); !strings.Contains(got, "Conflict resolved") || !strings.Contains(got, fay.IdentityID) {
				t.Fatalf("after resolve: %q", got)
			}
			if c, _ := e.db.Conflict(bg, cf.ConflictID); c.Status != engine.ConflictResolved || c.Resolution != fay.IdentityID {
				t.Fatalf("conflict after resolving in the console = %s %s", c.Status, c.Resolution)
			}

			do("read a person's timeline",
				chromedp.Navigate(srv.URL+"/console/people/"+alice.IdentityID),
				chromedp.WaitVisible(css(`#events`)))
			shot("04-person")
			timeline, accounts := text(`#events`), text(`#accounts`)
			for _, want := range []string{"identity.created", "account.linked", "identity.first_login"} {
				if !strings.Contains(timeline, want) {
					t.Errorf("timeline lacks %s: %s", want, timeline)
				}
			}
			if m := text(`#memberships`); !strings.Contains(m, "organization acme") {
				t.Errorf("memberships name the organization by its slug: %s", m)
			}
			if m := text(`#memberships`); !strings.Contains(m, "group Platform (from "+e.f.SCIM.Name+")") {
				t.Errorf("group edges name their source: %s", m)
			}
			for _, want := range []string{e.f.SCIM.Name, e.f.OIDC.Name, "Staff Engineer", "Engineer"} {
				if !strings.Contains(accounts, want) {
					t.Errorf("accounts side by side lack %q: %s", want, accounts)
				}
			}

			do("filter the audit log",
				chromedp.Navigate(srv.URL+"/console/audit?org=acme&action=identity.created"),
				chromedp.WaitVisible(css(`#audit`)))
			shot("05-audit")
			if audit := text(`#audit tbody`); !strings.Contains(audit, "identity.created") || strings.Contains(audit, "account.linked") {
				t.Errorf("filtered audit = %s", audit)
			}

			do("open the comparison",
				chromedp.Navigate(srv.URL+"/console/orgs/acme/compare"),
				chromedp.WaitVisible(css(`#chart`)))
			shot("06-compare")
			came := text(`#came-in`)
			ctx, cancel2 := context.WithTimeout(bctx, 20*time.Second)
			bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart rect").length`))
			cancel2()
			if err != nil || !strings.Contains(came, "Several") || !strings.Contains(came, "JIT only") || bars < 2 {
				t.Errorf("comparison: %d bars (%v), table %q", bars, err, came)
			}
			t.Logf("screenshots in %s", shots)
		})
	}
}
