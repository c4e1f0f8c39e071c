package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

//go:embed web/*.html
var webFS embed.FS

var pages = template.Must(template.ParseFS(webFS, "web/*.html"))

// ConsolePrefix is where the console is mounted.
const ConsolePrefix = "/console"

// ConsoleCookie holds a console session (only its hash is stored).
const ConsoleCookie = "idsync_console"

// jitSessionCookie is the jit package's session cookie (jit.SessionCookie);
// accepting an invitation reads the signed-in person from it.
const jitSessionCookie = "idsync_session"

// Console is the server-rendered web console (html/template, no
// JavaScript): sign-in with an admin key, organizations, people, sources,
// jobs and runs, quarantined runs, conflicts, the audit log and the
// comparison. It acts with the signed-in key's scope and organization,
// through the same checks as the API.
type Console struct {
	h   *Handler
	mux *http.ServeMux
	ttl time.Duration

	// reports caches comparison reports for ReportTTL (key: organization
	// and window): the report reads every person and lifecycle event, too
	// much for every page view of a large organization.
	mu         sync.Mutex
	reports    map[string]cachedReport
	refreshing map[string]bool
}

func (c *Console) keep(key string, rep Compare) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reports == nil || len(c.reports) > 100 {
		c.reports = map[string]cachedReport{}
	}
	c.reports[key] = cachedReport{at: time.Now(), rep: rep}
}

// ReportTTL is how long the console shows a comparison report without
// recomputing it; an older one is shown while a fresh one is computed in
// the background.
const ReportTTL = time.Minute

type cachedReport struct {
	at  time.Time
	rep Compare
}

// NewConsole returns the console over an API handler.
func NewConsole(h *Handler) *Console {
	c := &Console{h: h, mux: http.NewServeMux(), ttl: 12 * time.Hour}
	p := ConsolePrefix
	c.mux.HandleFunc("GET "+p+"/login", c.loginPage)
	c.mux.HandleFunc("POST "+p+"/login", c.login)
	c.mux.HandleFunc("GET "+p+"/sso", c.sso)
	c.mux.HandleFunc("GET "+p+"/invite", c.invitePage)
	c.mux.HandleFunc("POST "+p+"/invite", c.acceptInvite)
	c.mux.HandleFunc("POST "+p+"/logout", c.auth(c.logout))
	c.mux.HandleFunc("GET "+p+"/{$}", c.auth(c.orgs))
	c.mux.HandleFunc("GET "+p+"/orgs/{org}", c.auth(c.org))
	c.mux.HandleFunc("GET "+p+"/orgs/{org}/compare", c.auth(c.compare))
	c.mux.HandleFunc("GET "+p+"/people/{id}", c.auth(c.person))
	c.mux.HandleFunc("GET "+p+"/audit", c.auth(c.audit))
	c.mux.HandleFunc("POST "+p+"/runs/{id}/{decision}", c.auth(c.decideRun))
	c.mux.HandleFunc("POST "+p+"/conflicts/{id}/resolve", c.auth(c.resolve))
	return c
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

type page struct {
	Title  string
	Signed bool
	CSRF   string
	Flash  string
	Error  string
	Data   any
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		c.h.log.Error("console: render", "page", name, "error", err.Error())
	}
}

type session struct {
	tok  engine.Token
	csrf string
}

func csrfOf(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("idsync console csrf"))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

func (c *Console) session(r *http.Request) (session, error) {
	ck, err := r.Cookie(ConsoleCookie)
	if err != nil {
		return session{}, errUnauthorized
	}
	id, err := c.h.st.AdminConsoleSession(r.Context(), engine.HashSecret(ck.Value), time.Now())
	if err != nil {
		return session{}, errUnauthorized
	}
	if rest, ok := strings.CutPrefix(id, ssoPrefix); ok {
		identityID, orgID, _ := strings.Cut(rest, "|")
		tok, err := c.ssoToken(r.Context(), identityID, orgID)
		if err != nil {
			return session{}, errUnauthorized
		}
		return session{tok: tok, csrf: csrfOf(ck.Value)}, nil
	}
	toks, err := c.h.st.Tokens(r.Context(), engine.TokenAdmin, "")
	if err != nil {
		return session{}, err
	}
	for _, t := range toks {
		if t.ID == id && t.RevokedAt.IsZero() {
			return session{tok: t, csrf: csrfOf(ck.Value)}, nil
		}
	}
	return session{}, errUnauthorized
}

type consoleFn func(w http.ResponseWriter, r *http.Request, s session) error

func (c *Console) auth(fn consoleFn) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil {
			http.Redirect(w, r, ConsolePrefix+"/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) {
				c.fail(w, s, fmt.Errorf("the form is stale; reload the page: %w", engine.ErrForbidden))
				return
			}
			if s.tok.Scope != "admin" {
				c.fail(w, s, fmt.Errorf("key %s is read-only: %w", s.tok.Prefix, engine.ErrForbidden))
				return
			}
		}
		if err := fn(w, r, s); err != nil {
			c.fail(w, s, err)
		}
	}
}

func (c *Console) fail(w http.ResponseWriter, s session, err error) {
	status, code := codeOf(err)
	msg := err.Error()
	if code == CodeInternal {
		c.h.log.Error("console", "error", msg)
		msg = "internal error"
	}
	c.render(w, status, "orgs", page{Title: "Error", Signed: true, CSRF: s.csrf, Error: msg})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", page{Title: "Sign in"})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	tok, err := c.h.e.Authenticate(r.Context(), r.PostFormValue("key"))
	if err != nil || tok.Kind != engine.TokenAdmin {
		c.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "That key is unknown, revoked or not an admin key."})
		return
	}
	c.startSession(w, r, tok.ID, ConsolePrefix+"/")
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request, tokenID, to string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	if err := c.h.st.AdminPutConsoleSession(r.Context(), engine.HashSecret(id), tokenID, now, now.Add(c.ttl)); err != nil {
		c.render(w, http.StatusServiceUnavailable, "login", page{Title: "Sign in", Error: "Cannot start a session now."})
		return
	}
	// SameSite Lax, not Strict: the SSO sign-in arrives by a redirect from
	// the identity provider; forms still carry a CSRF token.
	http.SetCookie(w, &http.Cookie{Name: ConsoleCookie, Value: id, Path: ConsolePrefix + "/", MaxAge: int(c.ttl.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// ssoPrefix marks console sessions opened through an organization's SSO
// connection rather than with a key: "sso|identity|organization".
const ssoPrefix = "sso|"

// SSORole is the organization role that may use the console through SSO.
const SSORole = "admin"

// ssoToken is the key-equivalent of a person signed in through SSO: admin
// scope on their organization, while they are active and hold its admin
// role (checked on every request).
func (c *Console) ssoToken(ctx context.Context, identityID, orgID string) (engine.Token, error) {
	m, ok, err := c.h.st.OrgMembership(ctx, orgID, identityID)
	if err != nil || !ok || !slices.Contains(m.Roles, SSORole) {
		return engine.Token{}, errUnauthorized
	}
	ident, err := c.h.st.Identity(ctx, identityID)
	if err != nil || ident.State != reconcile.StateActive {
		return engine.Token{}, errUnauthorized
	}
	return engine.Token{ID: ssoPrefix + identityID + "|" + orgID, Kind: engine.TokenAdmin, OrgID: orgID, Scope: "admin",
		Name: "sso", Prefix: "sso:" + identityID}, nil
}

// sso signs in to the console through the organization's SSO: the jit
// package's session says who the person is; they need the organization's
// admin role. Without a session it offers the organization's sign-in
// connections (their returnURLs must allow /console/*).
func (c *Console) sso(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	o, err := c.h.orgRef(ctx, engine.Token{}, r.URL.Query().Get("org"))
	if err != nil {
		c.render(w, http.StatusNotFound, "login", page{Title: "Sign in", Error: "No such organization."})
		return
	}
	identityID := c.signedIn(r)
	if identityID == "" {
		v := inviteView{OrgName: o.Name, Logins: c.loginLinks(ctx, o, ConsolePrefix+"/sso?org="+url.QueryEscape(o.Slug))}
		c.render(w, http.StatusOK, "sso", page{Title: "Sign in", Data: v})
		return
	}
	tok, err := c.ssoToken(ctx, identityID, o.ID)
	if err != nil {
		c.render(w, http.StatusForbidden, "login", page{Title: "Sign in",
			Error: "You are signed in, but you do not hold the " + SSORole + " role of " + o.Name + "."})
		return
	}
	c.startSession(w, r, tok.ID, ConsolePrefix+"/orgs/"+o.Slug)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s session) error {
	if ck, err := r.Cookie(ConsoleCookie); err == nil {
		_ = c.h.st.AdminDeleteConsoleSession(r.Context(), engine.HashSecret(ck.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: ConsoleCookie, Value: "", Path: ConsolePrefix + "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, ConsolePrefix+"/login", http.StatusSeeOther)
	return nil
}

func (c *Console) orgs(w http.ResponseWriter, r *http.Request, s session) error {
	orgs, err := c.h.st.Organizations(r.Context())
	if err != nil {
		return err
	}
	orgs = slices.DeleteFunc(orgs, func(o engine.Organization) bool { return s.tok.OrgID != "" && o.ID != s.tok.OrgID })
	c.render(w, http.StatusOK, "orgs", page{Title: "Organizations", Signed: true, CSRF: s.csrf, Flash: r.URL.Query().Get("done"), Data: orgs})
	return nil
}

type quarantined struct {
	Job string
	Run engine.JobRun
}

type jobRuns struct {
	Job  engine.Job
	Runs []engine.JobRun
}

type orgView struct {
	Org         engine.Organization
	Sources     []engine.Source
	Jobs        []jobRuns
	Quarantined []quarantined
	Conflicts   []engine.Conflict
	People      []engine.Identity
	MorePeople  string
}

func (c *Console) org(w http.ResponseWriter, r *http.Request, s session) error {
	ctx := r.Context()
	o, err := c.h.orgRef(ctx, s.tok, r.PathValue("org"))
	if err != nil {
		return err
	}
	v := orgView{Org: o}
	if v.Sources, err = c.h.st.Sources(ctx, o.ID); err != nil {
		return err
	}
	jobs, err := c.h.st.Jobs(ctx, o.ID)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		runs, err := c.h.st.JobRuns(ctx, j.ID, 5)
		if err != nil {
			return err
		}
		v.Jobs = append(v.Jobs, jobRuns{Job: j, Runs: runs})
		for _, run := range runs {
			if run.Status == engine.RunQuarantined {
				v.Quarantined = append(v.Quarantined, quarantined{Job: j.Name, Run: run})
			}
		}
	}
	if v.Conflicts, err = c.h.st.Conflicts(ctx, o.ID, engine.ConflictOpen); err != nil {
		return err
	}
	const per = 100
	if v.People, err = c.h.st.Identities(ctx, engine.IdentityFilter{OrgID: o.ID, AfterID: r.URL.Query().Get("after"), Limit: per}); err != nil {
		return err
	}
	if len(v.People) == per {
		v.MorePeople = v.People[per-1].ID
	}
	c.render(w, http.StatusOK, "org", page{Title: o.Name, Signed: true, CSRF: s.csrf, Flash: r.URL.Query().Get("done"), Data: v})
	return nil
}

type cell struct {
	Value string
	Won   bool
}

type attrRow struct {
	Attr, Golden, From string
	Values             []cell
}

type personView struct {
	View     IdentityView
	Rows     []attrRow
	Orgs     []orgRow
	Groups   []groupRow
	Timeline []engine.AuditEvent
}

// groupRow is one group edge, with the name of the source asserting it.
type groupRow struct{ Group, Source string }

// orgRow is one organization a person belongs to, by name.
type orgRow struct {
	Slug, Via string
	Roles     []string
}

func (c *Console) person(w http.ResponseWriter, r *http.Request, s session) error {
	ctx := r.Context()
	v, err := c.h.IdentityDetail(ctx, s.tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	pv := personView{View: v}
	names := map[string]bool{}
	for k := range v.Identity.Attrs {
		names[k] = true
	}
	for _, a := range v.Accounts {
		for k := range a.Attrs {
			names[k] = true
		}
	}
	srcName := map[string]string{}
	for _, a := range v.Accounts {
		srcName[a.SourceID] = a.SourceName
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range names {
			if !yield(k) {
				return
			}
		}
	}) {
		prov := v.Identity.Provenance[k]
		row := attrRow{Attr: k, Golden: v.Identity.Attrs[k], From: srcName[prov.SourceID]}
		for _, a := range v.Accounts {
			row.Values = append(row.Values, cell{Value: a.Attrs[k], Won: prov.AccountID == a.ID && a.Attrs[k] != ""})
		}
		pv.Rows = append(pv.Rows, row)
	}
	for _, m := range v.Memberships {
		name, ok := srcName[m.SourceID]
		if !ok { // a source that holds no account of the person (an admin grant)
			name = m.SourceID
			if src, err := c.h.st.Source(ctx, m.SourceID); err == nil {
				name = src.Name
			}
			srcName[m.SourceID] = name
		}
		pv.Groups = append(pv.Groups, groupRow{Group: m.GroupName, Source: name})
	}
	for _, m := range v.Organizations {
		slug := m.OrgID
		if o, err := c.h.st.Organization(ctx, m.OrgID); err == nil {
			slug = o.Slug
		}
		pv.Orgs = append(pv.Orgs, orgRow{Slug: slug, Via: m.GrantedVia, Roles: m.Roles})
	}
	err = c.h.st.StreamAudit(ctx, engine.AuditFilter{IdentityID: v.Identity.ID, OrgID: s.tok.OrgID, Limit: 1000}, func(ev engine.AuditEvent) error {
		pv.Timeline = append(pv.Timeline, ev)
		return nil
	})
	if err != nil {
		return err
	}
	title := v.Identity.Attrs[reconcile.AttrUserName]
	c.render(w, http.StatusOK, "person", page{Title: title, Signed: true, CSRF: s.csrf, Data: pv})
	return nil
}

type auditView struct {
	Q        map[string]string
	Channels []string
	Events   []engine.AuditEvent
	Next     string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s session) error {
	f, err := c.h.scopedAudit(r, s.tok)
	if err != nil {
		return err
	}
	f.Limit = 100
	v := auditView{Q: map[string]string{}, Channels: []string{engine.ChannelJIT, engine.ChannelSCIM, engine.ChannelLDAP,
		engine.ChannelPull, engine.ChannelAdmin, engine.ChannelSystem}}
	for _, k := range []string{"org", "identity", "action", "channel", "source", "since", "until"} {
		v.Q[k] = r.URL.Query().Get(k)
	}
	err = c.h.st.StreamAudit(r.Context(), f, func(ev engine.AuditEvent) error {
		v.Events = append(v.Events, ev)
		return nil
	})
	if err != nil {
		return err
	}
	if len(v.Events) == f.Limit {
		q := r.URL.Query()
		q.Set("after", strconv.FormatInt(v.Events[len(v.Events)-1].Seq, 10))
		v.Next = ConsolePrefix + "/audit?" + q.Encode()
	}
	c.render(w, http.StatusOK, "audit", page{Title: "Audit log", Signed: true, CSRF: s.csrf, Data: v})
	return nil
}

type bar struct {
	Label     string
	N, Y, W   int
	TX        int
	ChartSize int
}

type compareView struct {
	Org          engine.Organization
	C            Compare
	Bars         []bar
	ChartHeight  int
	Since, Until string
}

func (c *Console) compare(w http.ResponseWriter, r *http.Request, s session) error {
	o, err := c.h.orgRef(r.Context(), s.tok, r.PathValue("org"))
	if err != nil {
		return err
	}
	since, err := timeParam(r, "since")
	if err != nil {
		return err
	}
	until, err := timeParam(r, "until")
	if err != nil {
		return err
	}
	key := o.ID + "|" + r.URL.Query().Get("since") + "|" + r.URL.Query().Get("until")
	c.mu.Lock()
	cached, hit := c.reports[key]
	c.mu.Unlock()
	rep := cached.rep
	switch {
	case !hit || r.URL.Query().Get("refresh") != "":
		if rep, err = BuildCompare(r.Context(), c.h.st, o.ID, since, until); err != nil {
			return err
		}
		c.keep(key, rep)
	case time.Since(cached.at) > ReportTTL:
		// Stale: show it and recompute in the background, once.
		c.mu.Lock()
		if !c.refreshing[key] {
			if c.refreshing == nil {
				c.refreshing = map[string]bool{}
			}
			c.refreshing[key] = true
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if fresh, err := BuildCompare(ctx, c.h.st, o.ID, since, until); err == nil {
					c.keep(key, fresh)
				}
				c.mu.Lock()
				delete(c.refreshing, key)
				c.mu.Unlock()
			}()
		}
		c.mu.Unlock()
	}
	v := compareView{Org: o, C: rep, Since: r.URL.Query().Get("since"), Until: r.URL.Query().Get("until")}
	maxN := 1
	for _, n := range rep.CameIn {
		maxN = max(maxN, n)
	}
	labels := map[string]string{CameJITOnly: "JIT only", CameSCIMOnly: "SCIM only", CameLDAPOnly: "LDAP only",
		CamePullOnly: "Directory pull only", CameInvitation: "Invitation", CameAPIOnly: "API only", CameSeveral: "Several", CameNone: "No accounts"}
	for _, k := range []string{CameJITOnly, CameSCIMOnly, CameLDAPOnly, CamePullOnly, CameInvitation, CameAPIOnly, CameSeveral, CameNone} {
		n := rep.CameIn[k]
		if n == 0 {
			continue
		}
		wd := n * 400 / maxN
		v.Bars = append(v.Bars, bar{Label: labels[k], N: n, Y: len(v.Bars) * 24, W: wd, TX: 166 + wd})
	}
	v.ChartHeight = max(24, len(v.Bars)*24)
	c.render(w, http.StatusOK, "compare", page{Title: "Comparison", Signed: true, CSRF: s.csrf, Data: v})
	return nil
}

func back(r *http.Request) string {
	b := r.PostFormValue("back")
	if u, err := url.Parse(b); err != nil || u.Host != "" || u.Scheme != "" || len(b) < len(ConsolePrefix) || b[:len(ConsolePrefix)] != ConsolePrefix {
		return ConsolePrefix + "/"
	}
	return b
}

func (c *Console) decideRun(w http.ResponseWriter, r *http.Request, s session) error {
	ctx := r.Context()
	run, err := c.h.run(ctx, s.tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	sched, err := c.h.sched()
	if err != nil {
		return err
	}
	by := engine.Admin{Actor: "console:" + s.tok.Prefix}
	var msg string
	switch r.PathValue("decision") {
	case "approve":
		next, err := sched.ApproveRun(ctx, by, run.ID)
		if next.ID == "" && err != nil {
			return err
		}
		msg = fmt.Sprintf("Run approved; the rerun %s %s.", next.ID, next.Status)
	case "reject":
		if _, err := sched.RejectRun(ctx, by, run.ID); err != nil {
			return err
		}
		msg = "Run rejected; nothing it held back was applied."
	default:
		return fmt.Errorf("decision %q is not approve or reject: %w", r.PathValue("decision"), engine.ErrNotFound)
	}
	http.Redirect(w, r, back(r)+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}

func (c *Console) resolve(w http.ResponseWriter, r *http.Request, s session) error {
	ctx := r.Context()
	cf, err := c.h.conflict(ctx, s.tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	choice := r.PostFormValue("choice")
	if choice == "" {
		return fmt.Errorf("choose a candidate or a new person: %w", engine.ErrInvalid)
	}
	res, err := c.h.e.ResolveConflict(ctx, engine.Admin{Actor: "console:" + s.tok.Prefix}, cf.ID, choice)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Conflict resolved: the account is on person %s.", res.IdentityID)
	http.Redirect(w, r, back(r)+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}

// --- invitations

type loginLink struct{ Name, URL string }

type inviteView struct {
	Inv        any
	OrgName    string
	Token      string
	IdentityID string
	Logins     []loginLink
}

// signedIn returns the identity of the browser's JIT session, if any.
func (c *Console) signedIn(r *http.Request) string {
	ck, err := r.Cookie(jitSessionCookie)
	if err != nil {
		return ""
	}
	id, _, _, _, err := c.h.st.JITSession(r.Context(), engine.HashSecret(ck.Value), time.Now())
	if err != nil {
		return ""
	}
	return id
}

func (c *Console) invitePage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	iv := c.h.invitations()
	inv, err := iv.Lookup(r.Context(), token)
	if err != nil {
		status, _ := codeOf(err)
		c.render(w, status, "invite", page{Title: "Invitation", Error: err.Error(), Data: inviteView{}})
		return
	}
	v := inviteView{Inv: inv, Token: token, IdentityID: c.signedIn(r)}
	if o, err := c.h.st.Organization(r.Context(), inv.OrgID); err == nil {
		v.OrgName = o.Name
		if v.IdentityID == "" {
			v.Logins = c.loginLinks(r.Context(), o, ConsolePrefix+"/invite?token="+url.QueryEscape(token))
		}
	}
	c.render(w, http.StatusOK, "invite", page{Title: "Invitation", Data: v})
}

// loginLinks lists the organization's sign-in connections (the jit
// package's /login/{org}/{connection}).
func (c *Console) loginLinks(ctx context.Context, o engine.Organization, returnTo string) []loginLink {
	srcs, err := c.h.st.Sources(ctx, o.ID)
	if err != nil {
		return nil
	}
	var out []loginLink
	for _, s := range srcs {
		if s.Kind.Channel() == engine.ChannelJIT && s.Enabled {
			out = append(out, loginLink{Name: s.Name, URL: "/login/" + o.Slug + "/" + s.Name + "?return_to=" + url.QueryEscape(returnTo)})
		}
	}
	return out
}

func (c *Console) acceptInvite(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	id := c.signedIn(r)
	if id == "" {
		c.render(w, http.StatusUnauthorized, "invite", page{Title: "Invitation", Error: "Sign in first, then accept the invitation.", Data: inviteView{}})
		return
	}
	m, err := c.h.invitations().Accept(r.Context(), token, id)
	if err != nil {
		status, _ := codeOf(err)
		if errors.Is(err, engine.ErrNotFound) {
			status = http.StatusNotFound
		}
		c.render(w, status, "invite", page{Title: "Invitation", Error: err.Error(), Data: inviteView{}})
		return
	}
	c.render(w, http.StatusOK, "invite", page{Title: "Invitation", Flash: fmt.Sprintf("You joined the organization as %v.", m.Roles), Data: inviteView{}})
}
