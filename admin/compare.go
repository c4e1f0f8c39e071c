package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// How a person came in, by the kinds of their accounts' sources.
const (
	CameJITOnly    = "jit_only"
	CameSCIMOnly   = "scim_only"
	CameLDAPOnly   = "ldap_only"
	CamePullOnly   = "pull_only"
	CameAPIOnly    = "api_only"
	CameInvitation = "invitation"
	CameSeveral    = "several"
	CameNone       = "no_accounts"
)

// MaxListed bounds each list of the report; counts are always complete.
const MaxListed = 200

// Compare is the JIT vs directory report of one organization and window.
type Compare struct {
	OrgID string    `json:"orgId"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// People counts everyone in the organization created in the window.
	People int `json:"people"`
	// CameIn counts people by how they came in (see Came*).
	CameIn map[string]int `json:"cameIn"`
	// CameInPeople lists, per way in, up to MaxListed of those people.
	CameInPeople map[string][]string `json:"cameInPeople"`
	// NeverSignedIn are directory people without a first login.
	NeverSignedIn      []string `json:"neverSignedIn"`
	NeverSignedInCount int      `json:"neverSignedInCount"`
	// JITUnknown are people only login sources know.
	JITUnknown      []string `json:"jitUnknown"`
	JITUnknownCount int      `json:"jitUnknownCount"`
	Drift           []Drift  `json:"drift"`
	DriftCount      int      `json:"driftCount"`
	// Deprovisioning: from a directory deactivating or removing a
	// person's account to the person being deprovisioned.
	Deprovisioning Durations `json:"deprovisioning"`
	// NotDeprovisioned are people a directory said were gone who are not
	// deprovisioned (another source keeps them, or the rules do).
	NotDeprovisioned []string `json:"notDeprovisioned"`
	// LoginsAfterGone are logins let in after a directory said gone.
	LoginsAfterGone []LateLogin `json:"loginsAfterGone"`
	// TimeToAccess: directory creation to first login.
	TimeToAccess Durations `json:"timeToAccess"`
	TookMS       float64   `json:"tookMs"`
}

// Drift is one attribute a JIT assertion and a directory disagree on.
type Drift struct {
	IdentityID      string `json:"identityId"`
	Attribute       string `json:"attribute"`
	JITSource       string `json:"jitSource"`
	JITValue        string `json:"jitValue"`
	DirectorySource string `json:"directorySource"`
	DirectoryValue  string `json:"directoryValue"`
	// Winner is the source whose value the golden record holds, per its
	// provenance; Why says by which rule.
	Winner string `json:"winner"`
	Why    string `json:"why"`
}

// LateLogin is a login after a directory said the person was gone.
type LateLogin struct {
	IdentityID string    `json:"identityId"`
	GoneAt     time.Time `json:"goneAt"`
	LoginAt    time.Time `json:"loginAt"`
	Evidence   string    `json:"evidence"`
}

// Durations summarizes a set of durations, in seconds.
type Durations struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Seconds"`
	P95   float64 `json:"p95Seconds"`
	Max   float64 `json:"maxSeconds"`
	// Samples are the measured durations, sorted (not serialized).
	Samples []float64 `json:"-"`
}

func summarize(s []float64) Durations {
	d := Durations{Count: len(s), Samples: s}
	if len(s) == 0 {
		return d
	}
	sort.Float64s(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	d.P50, d.P95, d.Max = at(0.5), at(0.95), s[len(s)-1]
	return d
}

func channelOfKind(k string) string {
	switch engine.SourceKind(k) {
	case engine.KindSAML, engine.KindOIDC, engine.KindEmailDomain:
		return "jit"
	case engine.KindSCIM:
		return "scim"
	case engine.KindLDAP:
		return "ldap"
	case engine.KindSCIMPull, engine.KindFile:
		return "pull"
	}
	return "api"
}

func isDirectory(ch string) bool { return ch == "scim" || ch == "ldap" || ch == "pull" }

type personFacts struct {
	storage.AdminIdentityFacts
	accounts []storage.AdminAccountFacts
}

// BuildCompare computes the report from two streaming reads (identities,
// accounts) and one scan of the organization's audit events in the window.
func BuildCompare(ctx context.Context, st Store, orgID string, since, until time.Time) (Compare, error) {
	start := time.Now()
	c := Compare{OrgID: orgID, Since: since, Until: until, CameIn: map[string]int{}, CameInPeople: map[string][]string{}, NeverSignedIn: []string{},
		JITUnknown: []string{}, Drift: []Drift{}, NotDeprovisioned: []string{}, LoginsAfterGone: []LateLogin{}}
	// The lifecycle events are read on another connection while the
	// people and accounts are: the two scans take turns on no lock.
	type evResult struct {
		evs []storage.AdminLifecycleEvent
		err error
	}
	evc := make(chan evResult, 1)
	go func() {
		var r evResult
		r.err = st.AdminCompareEvents(ctx, orgID, since, until, func(le storage.AdminLifecycleEvent) error {
			r.evs = append(r.evs, le)
			return nil
		})
		evc <- r
	}()
	people := map[string]*personFacts{}
	inWindow := func(us int64) bool {
		t := time.UnixMicro(us)
		return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
	}
	err := st.AdminCompareFacts(ctx, orgID, func(f storage.AdminIdentityFacts) error {
		people[f.ID] = &personFacts{AdminIdentityFacts: f}
		return nil
	}, func(a storage.AdminAccountFacts) error {
		if p := people[a.IdentityID]; p != nil {
			p.accounts = append(p.accounts, a)
		}
		return nil
	})
	evr := <-evc
	if err != nil {
		return c, err
	}
	if evr.err != nil {
		return c, evr.err
	}
	ids := make([]string, 0, len(people))
	for id := range people {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var access []float64
	for _, id := range ids {
		p := people[id]
		if !inWindow(p.CreatedAt) {
			continue
		}
		c.People++
		chans := map[string]bool{}
		var firstKind string
		var firstSeen int64
		for _, a := range p.accounts {
			chans[channelOfKind(a.SourceKind)] = true
			if firstKind == "" || a.FirstSeen < firstSeen {
				firstKind, firstSeen = a.SourceKind, a.FirstSeen
			}
		}
		dir := chans["scim"] || chans["ldap"] || chans["pull"]
		var came string
		switch {
		case p.GrantedVia == engine.GrantedViaInvitation && !dir:
			came = CameInvitation
		case len(chans) == 0:
			came = CameNone
		case len(chans) > 1:
			came = CameSeveral
		case chans["jit"]:
			came = CameJITOnly
		case chans["scim"]:
			came = CameSCIMOnly
		case chans["ldap"]:
			came = CameLDAPOnly
		case chans["pull"]:
			came = CamePullOnly
		default:
			came = CameAPIOnly
		}
		c.CameIn[came]++
		if len(c.CameInPeople[came]) < MaxListed {
			c.CameInPeople[came] = append(c.CameInPeople[came], id)
		}
		if dir && p.FirstLoginAt == 0 {
			c.NeverSignedInCount++
			if len(c.NeverSignedIn) < MaxListed {
				c.NeverSignedIn = append(c.NeverSignedIn, id)
			}
		}
		if chans["jit"] && !dir {
			c.JITUnknownCount++
			if len(c.JITUnknown) < MaxListed {
				c.JITUnknown = append(c.JITUnknown, id)
			}
		}
		if isDirectory(channelOfKind(firstKind)) && p.FirstLoginAt != 0 {
			access = append(access, time.Duration((p.FirstLoginAt-p.CreatedAt)*1000).Seconds())
		}
		if chans["jit"] && dir {
			c.drift(p)
		}
	}
	c.TimeToAccess = summarize(access)
	c.lifecycle(evr.evs, people)
	c.TookMS = float64(time.Since(start).Microseconds()) / 1000
	return c, nil
}

// drift compares each JIT account's attributes with each directory
// account's and says which won, per the golden record's provenance.
func (c *Compare) drift(p *personFacts) {
	prov := storage.DecodeProvenance(p.Provenance)
	for _, j := range p.accounts {
		if channelOfKind(j.SourceKind) != "jit" {
			continue
		}
		var ja map[string]string
		_ = json.Unmarshal([]byte(j.Attrs), &ja)
		for _, d := range p.accounts {
			if !isDirectory(channelOfKind(d.SourceKind)) {
				continue
			}
			var da map[string]string
			_ = json.Unmarshal([]byte(d.Attrs), &da)
			attrs := make([]string, 0, len(ja))
			for k := range ja {
				attrs = append(attrs, k)
			}
			slices.Sort(attrs)
			for _, k := range attrs {
				jv, dv := ja[k], da[k]
				if jv == "" || dv == "" || jv == dv {
					continue
				}
				c.DriftCount++
				if len(c.Drift) >= MaxListed {
					continue
				}
				dr := Drift{IdentityID: p.ID, Attribute: k, JITSource: j.SourceName, JITValue: jv,
					DirectorySource: d.SourceName, DirectoryValue: dv}
				win := prov[k].SourceID
				switch win {
				case d.SourceID:
					dr.Winner = d.SourceName
					dr.Why = whyWon(d, j)
				case j.SourceID:
					dr.Winner = j.SourceName
					dr.Why = whyWon(j, d)
				default:
					dr.Winner, dr.Why = "other", "a third source's value is in the golden record"
				}
				c.Drift = append(c.Drift, dr)
			}
		}
	}
}

func whyWon(w, l storage.AdminAccountFacts) string {
	switch {
	case w.Priority < l.Priority:
		return "priority: " + w.SourceName + " (" + itoa(w.Priority) + ") ranks before " + l.SourceName + " (" + itoa(l.Priority) + ")"
	case w.Priority == l.Priority:
		return "equal priority: the more recent change won"
	}
	return "ownership or organization priority override: " + w.SourceName + " owns the attribute"
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// lifecycle scans the audit events of the window once: directory
// deactivations, deprovisions and logins after.
func (c *Compare) lifecycle(evs []storage.AdminLifecycleEvent, people map[string]*personFacts) {
	gone := map[string]time.Time{} // identity → first directory "gone" not yet followed by a deprovision
	late := map[string]bool{}      // identity already reported as let in late
	var lags []float64
	deprovisioned := map[string]bool{}
	for _, le := range evs {
		at := time.UnixMicro(le.At).UTC()
		switch {
		case (le.Action == "account.deactivated" || le.Action == "account.removed") && isDirectory(le.Channel):
			if _, ok := gone[le.IdentityID]; !ok {
				gone[le.IdentityID] = at
			}
		case le.Action == "identity.deprovisioned":
			if g, ok := gone[le.IdentityID]; ok && !deprovisioned[le.IdentityID] {
				lags = append(lags, at.Sub(g).Seconds())
				deprovisioned[le.IdentityID] = true
			}
		case le.Action == "identity.reactivated" || le.Action == "account.activated" && isDirectory(le.Channel):
			delete(gone, le.IdentityID)
			delete(deprovisioned, le.IdentityID)
		case le.Channel == engine.ChannelJIT:
			if g, ok := gone[le.IdentityID]; ok && !late[le.IdentityID] && at.After(g) {
				late[le.IdentityID] = true
				c.addLate(LateLogin{IdentityID: le.IdentityID, GoneAt: g, LoginAt: at, Evidence: le.Action})
			}
		}
	}
	ids := make([]string, 0, len(gone))
	for id := range gone {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		at := gone[id]
		if !deprovisioned[id] && len(c.NotDeprovisioned) < MaxListed {
			c.NotDeprovisioned = append(c.NotDeprovisioned, id)
		}
		// A returning login changes no account, so it leaves no audit
		// event: the identity's last login says it.
		if p := people[id]; p != nil && !late[id] && p.LastLoginAt > at.UnixMicro() {
			late[id] = true
			c.addLate(LateLogin{IdentityID: id, GoneAt: at, LoginAt: time.UnixMicro(p.LastLoginAt).UTC(), Evidence: "lastLoginAt"})
		}
	}
	c.Deprovisioning = summarize(lags)
}

func (c *Compare) addLate(l LateLogin) {
	if len(c.LoginsAfterGone) < MaxListed {
		c.LoginsAfterGone = append(c.LoginsAfterGone, l)
	}
}

func (h *Handler) compare(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
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
	rep, err := BuildCompare(r.Context(), h.st, o.ID, since, until)
	if err != nil {
		return err
	}
	return ok(w, rep)
}
