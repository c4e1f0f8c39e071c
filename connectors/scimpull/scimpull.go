// Package scimpull pulls users and groups from another SCIM 2.0 service
// provider (paged GET /Users and /Groups with a bearer token) into the
// engine, as a snapshot (full: users the provider no longer returns are
// removed from the source) or as upserts (incremental: users whose
// meta.lastModified is at or after the job's watermark). It owns the SCIM
// client side and its config; it must not write to the database itself,
// log or store the token, or hold the provider's users in memory (only
// group names and member ids, when groups are pulled).
package scimpull

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
)

// Config is the config of a SCIM pull source (Source.Config, JSON). A YAML
// example:
//
//	baseURL: https://scim.example.com/scim/v2
//	tokenEnv: IDSYNC_SCIM_PULL_TOKEN   # bearer token, from the environment
//	pageSize: 200
//	timeout: 30s
//	groups: true                       # pull /Groups for memberships
//	caFile: /etc/idsync/ca.pem         # extra CA to trust
type Config struct {
	BaseURL  string          `json:"baseURL"`
	TokenEnv string          `json:"tokenEnv"`
	PageSize int             `json:"pageSize,omitempty"`
	Timeout  engine.Duration `json:"timeout,omitempty"`
	Groups   *bool           `json:"groups,omitempty"`
	CAFile   string          `json:"caFile,omitempty"`
}

// ParseConfig reads, defaults and validates a config, reporting every
// problem at once.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if len(raw) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("scim-pull config: %v: %w", err, engine.ErrInvalid)
		}
	}
	if c.PageSize == 0 {
		c.PageSize = 200
	}
	if c.Timeout == 0 {
		c.Timeout = engine.Duration(30 * time.Second)
	}
	if c.Groups == nil {
		t := true
		c.Groups = &t
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	var probs []string
	if u, err := url.Parse(c.BaseURL); c.BaseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		probs = append(probs, fmt.Sprintf("baseURL %q is not an http(s) URL", c.BaseURL))
	}
	if c.TokenEnv == "" {
		probs = append(probs, "tokenEnv is required (the token is never in the config)")
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		probs = append(probs, fmt.Sprintf("pageSize %d is not between 1 and 10000", c.PageSize))
	}
	if len(probs) > 0 {
		return c, fmt.Errorf("scim-pull config: %s: %w", strings.Join(probs, "; "), engine.ErrInvalid)
	}
	return c, nil
}

// Client reads one SCIM service provider.
type Client struct {
	cfg   Config
	token string
	http  *http.Client
}

// NewClient checks the token is set and builds the HTTP client.
func NewClient(cfg Config) (*Client, error) {
	tok, ok := os.LookupEnv(cfg.TokenEnv)
	if !ok || tok == "" {
		return nil, fmt.Errorf("scim-pull: the token variable %s is not set: %w", cfg.TokenEnv, engine.ErrInvalid)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("scim-pull: caFile: %v: %w", err, engine.ErrInvalid)
		}
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{cfg: cfg, token: tok, http: &http.Client{Transport: tr, Timeout: time.Duration(cfg.Timeout)}}, nil
}

type listResponse struct {
	TotalResults int               `json:"totalResults"`
	StartIndex   int               `json:"startIndex"`
	ItemsPerPage int               `json:"itemsPerPage"`
	Resources    []json.RawMessage `json:"Resources"`
}

// pages GETs a resource type page by page (startIndex/count) and yields
// each page's resources.
func (c *Client) pages(ctx context.Context, resource, filter string) iter.Seq2[[]json.RawMessage, error] {
	return func(yield func([]json.RawMessage, error) bool) {
		start := 1
		for guard := 0; guard < 1_000_000; guard++ {
			q := url.Values{"startIndex": {strconv.Itoa(start)}, "count": {strconv.Itoa(c.cfg.PageSize)}}
			if filter != "" {
				q.Set("filter", filter)
			}
			var page listResponse
			if err := c.get(ctx, c.cfg.BaseURL+"/"+resource+"?"+q.Encode(), &page); err != nil {
				yield(nil, err)
				return
			}
			if !yield(page.Resources, nil) {
				return
			}
			start += len(page.Resources)
			if len(page.Resources) == 0 || start > page.TotalResults {
				return
			}
		}
	}
}

func (c *Client) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/scim+json, application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("scim-pull: GET %s: %v: %w", redact(u), err, engine.ErrUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("scim-pull: GET %s: %s: %s: %w", redact(u), resp.Status, strings.TrimSpace(string(b)), engine.ErrUnavailable)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("scim-pull: GET %s: bad JSON: %v: %w", redact(u), err, engine.ErrUnavailable)
	}
	return nil
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.User, p.RawQuery = nil, ""
		return p.String()
	}
	return "?"
}

// Groups reads every group: user id → sorted group names.
func (c *Client) Groups(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	for page, err := range c.pages(ctx, "Groups", "") {
		if err != nil {
			return nil, err
		}
		for _, raw := range page {
			var g struct {
				DisplayName string `json:"displayName"`
				Members     []struct {
					Value string `json:"value"`
					Type  string `json:"type"`
				} `json:"members"`
			}
			if err := json.Unmarshal(raw, &g); err != nil || g.DisplayName == "" {
				continue
			}
			for _, m := range g.Members {
				if m.Type == "" || strings.EqualFold(m.Type, "User") {
					out[m.Value] = append(out[m.Value], g.DisplayName)
				}
			}
		}
	}
	for k, v := range out {
		slices.Sort(v)
		out[k] = slices.Compact(v)
	}
	return out, nil
}

type user struct {
	ID         string `json:"id"`
	ExternalID string `json:"externalId"`
	UserName   string `json:"userName"`
	Name       struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	DisplayName string `json:"displayName"`
	Title       string `json:"title"`
	Locale      string `json:"locale"`
	Active      *bool  `json:"active"`
	Emails      []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	PhoneNumbers []struct {
		Value string `json:"value"`
	} `json:"phoneNumbers"`
	Meta struct {
		LastModified string `json:"lastModified"`
	} `json:"meta"`
	Enterprise struct {
		EmployeeNumber string `json:"employeeNumber"`
		Department     string `json:"department"`
		Manager        struct {
			Value string `json:"value"`
		} `json:"manager"`
	} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

// Users streams the provider's users as observations, a page at a time;
// since (a meta.lastModified) narrows it to users changed since. mark
// receives the highest meta.lastModified seen.
func (c *Client) Users(ctx context.Context, groups map[string][]string, since string, mark *string) iter.Seq2[engine.Observation, error] {
	filter := ""
	if since != "" {
		filter = fmt.Sprintf("meta.lastModified ge %q", since)
	}
	return func(yield func(engine.Observation, error) bool) {
		for page, err := range c.pages(ctx, "Users", filter) {
			if err != nil {
				yield(engine.Observation{}, err)
				return
			}
			for _, raw := range page {
				obs, lm, err := observation(raw, groups)
				if err != nil {
					obs = engine.Observation{Key: ""} // counted as invalid
				}
				if mark != nil && laterTime(lm, *mark) {
					*mark = lm
				}
				if !yield(obs, nil) {
					return
				}
			}
		}
	}
}

func laterTime(a, b string) bool {
	ta, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		return false
	}
	tb, err := time.Parse(time.RFC3339Nano, b)
	return err != nil || ta.After(tb)
}

func observation(raw json.RawMessage, groups map[string][]string) (engine.Observation, string, error) {
	var u user
	if err := json.Unmarshal(raw, &u); err != nil {
		return engine.Observation{}, "", err
	}
	a := engine.Attrs{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			a[k] = v
		}
	}
	set("userName", u.UserName)
	set("externalId", u.ExternalID)
	set("givenName", u.Name.GivenName)
	set("familyName", u.Name.FamilyName)
	set("displayName", u.DisplayName)
	set("title", u.Title)
	set("locale", u.Locale)
	for _, e := range u.Emails {
		if e.Primary || a["email"] == "" {
			set("email", e.Value)
		}
	}
	if len(u.PhoneNumbers) > 0 {
		set("phoneNumber", u.PhoneNumbers[0].Value)
	}
	set("employeeNumber", u.Enterprise.EmployeeNumber)
	set("department", u.Enterprise.Department)
	set("manager", u.Enterprise.Manager.Value)
	obs := engine.Observation{Key: u.ID, Attrs: a, Inactive: u.Active != nil && !*u.Active}
	if groups != nil {
		obs.Groups = groups[u.ID]
		if obs.Groups == nil {
			obs.Groups = []string{}
		}
	}
	// Raw: the resource without secrets or the change stamp.
	var doc map[string]any
	if json.Unmarshal(raw, &doc) == nil {
		delete(doc, "password")
		delete(doc, "meta")
		delete(doc, "groups")
		obs.Raw, _ = json.Marshal(doc)
	}
	return obs, u.Meta.LastModified, nil
}

// Sync pulls once: full (a snapshot) or incremental from since.
func Sync(ctx context.Context, e *engine.Engine, src engine.Source, full bool, since string, opts engine.SnapshotOptions) (engine.Plan, string, error) {
	cfg, err := ParseConfig(src.Config)
	if err != nil {
		return engine.Plan{}, "", fmt.Errorf("source %s: %w", src.Name, err)
	}
	c, err := NewClient(cfg)
	if err != nil {
		return engine.Plan{}, "", fmt.Errorf("source %s: %w", src.Name, err)
	}
	var groups map[string][]string
	if *cfg.Groups {
		if groups, err = c.Groups(ctx); err != nil {
			return engine.Plan{}, "", fmt.Errorf("source %s: %w", src.Name, err)
		}
	}
	if full {
		since = ""
	} else {
		opts.Upsert = true
	}
	mark := since
	plan, err := e.ApplySnapshot(ctx, src.ID, c.Users(ctx, groups, since, &mark), opts)
	return plan, mark, err
}

// Runner returns the scheduler runner of full or incremental SCIM pull
// jobs; the watermark is stored only after a run succeeded.
func Runner(full bool) engine.Runner {
	return func(ctx context.Context, rc *engine.RunContext) (engine.Counts, *engine.Plan, error) {
		src, err := rc.Engine.Store().Source(ctx, rc.Job.SourceID)
		if err != nil {
			return engine.Counts{}, nil, err
		}
		plan, mark, err := Sync(ctx, rc.Engine, src, full, rc.Job.Watermark, engine.SnapshotOptions{DryRun: rc.DryRun,
			Threshold: rc.Job.Threshold, Progress: rc.Progress})
		if err == nil && !rc.DryRun && mark != "" && mark != rc.Job.Watermark {
			if werr := rc.SetWatermark(mark); werr != nil {
				return plan.Counts, &plan, werr
			}
		}
		return plan.Counts, &plan, err
	}
}
