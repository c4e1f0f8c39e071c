package jit_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
)

// testIdP is crewjam/saml's samlidp on loopback, with real keys.
type testIdP struct {
	t    testing.TB
	srv  *httptest.Server
	idp  *samlidp.Server
	cert *x509.Certificate
}

func selfSigned(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key := rsaKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// newTestIdP starts an IdP; clock, when set, is its time.
var idpLog io.Writer = io.Discard

func newTestIdP(t testing.TB, clock *dsig.Clock) *testIdP {
	t.Helper()
	key, cert := selfSigned(t, "test-idp")
	srv := httptest.NewUnstartedServer(nil)
	u, _ := url.Parse("http://" + srv.Listener.Addr().String())
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Signer: key, Certificate: cert,
		Store: &samlidp.MemoryStore{}, Logger: log.New(idpLog, "idp ", 0), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	ip := &testIdP{t: t, srv: srv, idp: idp, cert: cert}
	ip.put("/users/alice", map[string]any{"password": "wonderland", "email": "alice@acme.test",
		"given_name": "Alice", "surname": "Liddell", "common_name": "Alice Liddell", "groups": []string{"eng", "staff"}})
	return ip
}

func (ip *testIdP) put(path string, v any) {
	ip.t.Helper()
	var body []byte
	if b, ok := v.([]byte); ok {
		body = b
	} else {
		body, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest(http.MethodPut, ip.srv.URL+path, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ip.t.Fatal(err)
	}
	out := readAll(ip.t, resp)
	if resp.StatusCode >= 300 {
		ip.t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, out)
	}
}

// register fetches idsync's SP metadata of a connection over HTTP and
// registers it at the IdP; edit may change it first.
func (ip *testIdP) register(e *env, name, conn string, edit func(string) string) string {
	ip.t.Helper()
	resp, err := e.browser().Get(e.srv.URL + "/login/acme/" + conn + "/metadata")
	if err != nil {
		ip.t.Fatal(err)
	}
	md := readAll(ip.t, resp)
	if resp.StatusCode != http.StatusOK {
		ip.t.Fatalf("SP metadata: %d %s", resp.StatusCode, md)
	}
	if edit != nil {
		md = edit(md)
	}
	ip.put("/services/"+name, []byte(md))
	return md
}

func (ip *testIdP) metadata() string {
	ip.t.Helper()
	resp, err := http.Get(ip.srv.URL + "/metadata")
	if err != nil {
		ip.t.Fatal(err)
	}
	return readAll(ip.t, resp)
}

var (
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	formInput  = regexp.MustCompile(`<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"`)
)

// htmlForm reads the first form of a page, as a browser would submit it.
func htmlForm(t testing.TB, page string) (string, url.Values) {
	t.Helper()
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page: %.400s", page)
	}
	vals := url.Values{}
	for _, in := range formInput.FindAllStringSubmatch(page, -1) {
		vals.Set(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), vals
}

// samlToIdP starts an SP-initiated login at idsync, signs in at the IdP's
// form and returns the IdP's auto-posting response form (not yet posted).
func samlToIdP(t testing.TB, e *env, b *http.Client, conn string) (string, url.Values) {
	t.Helper()
	resp := e.login(b, "acme", conn)
	page := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IdP login page: %d at %s: %.300s\n%s", resp.StatusCode, resp.Request.URL, page, e.log.String())
	}
	action, vals := htmlForm(t, page)
	vals.Set("user", "alice")
	vals.Set("password", "wonderland")
	resp, err := b.PostForm(action, vals)
	if err != nil {
		t.Fatal(err)
	}
	page = readAll(t, resp)
	action, vals = htmlForm(t, page)
	if vals.Get("SAMLResponse") == "" {
		t.Fatalf("IdP answered without a SAMLResponse: %.400s", page)
	}
	return action, vals
}

// idpInitiated asks the IdP for an unsolicited response through a shortcut
// to the service entityID; the browser must hold an IdP session.
func idpInitiated(t testing.TB, ip *testIdP, b *http.Client, shortcut, entityID string) (string, url.Values) {
	t.Helper()
	ip.put("/shortcuts/"+shortcut, map[string]any{"name": shortcut, "service_provider": entityID})
	resp, err := b.Get(ip.srv.URL + "/login/" + shortcut)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	if strings.Contains(page, `name="password"`) {
		action, vals := htmlForm(t, page)
		vals.Set("user", "alice")
		vals.Set("password", "wonderland")
		if resp, err = b.PostForm(action, vals); err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp, err = b.Get(ip.srv.URL + "/login/" + shortcut); err != nil {
			t.Fatal(err)
		}
		page = readAll(t, resp)
	}
	action, vals := htmlForm(t, page)
	if vals.Get("SAMLResponse") == "" {
		t.Fatalf("IdP answered without a SAMLResponse: %d %.400s", resp.StatusCode, page)
	}
	return action, vals
}

func post(t testing.TB, b *http.Client, action string, vals url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := b.PostForm(action, vals)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

// samlSetup starts an IdP and a SAML connection "saml" registered with it.
func samlSetup(t *testing.T, e *env, clock *dsig.Clock, mutate func(*jit.Config)) (*testIdP, engine.Source) {
	t.Helper()
	ip := newTestIdP(t, clock)
	cfg := jit.Config{SAML: &jit.SAMLConfig{IDPMetadataURL: ip.srv.URL + "/metadata", NameIDFormat: "email"},
		ReturnURLs: []string{"/session"}}
	if mutate != nil {
		mutate(&cfg)
	}
	src := e.connection(engine.KindSAML, "saml", cfg, true)
	ip.register(e, "idsync", "saml", nil)
	return ip, src
}

func spEntityID(e *env, conn string) string { return e.srv.URL + "/login/acme/" + conn + "/metadata" }

// TestSAMLLoginEndToEnd: SP-initiated login through samlidp's redirect,
// login form and POST binding: creates with groups, sets the session;
// a second login writes nothing.
func TestSAMLLoginEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, src := samlSetup(t, e, nil, func(c *jit.Config) {
			c.Mapping.GroupMode = jit.GroupsSync
			c.Mapping.Groups = []jit.Rule{{From: "eng", To: "Engineering"}}
		})
		b := e.browser()
		action, vals := samlToIdP(t, e, b, "saml")
		resp, body := post(t, b, action, vals)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/session" {
			t.Fatalf("ACS ended at %s with %d: %.400s\n%s", resp.Request.URL, resp.StatusCode, body, e.log.String())
		}
		code, v := e.sessionOf(b)
		if code != http.StatusOK || v.Identity.Attrs["email"] != "alice@acme.test" || v.Identity.Attrs["familyName"] != "Liddell" ||
			len(v.Organizations) != 1 || strings.Join(v.Organizations[0].Groups, ",") != "Engineering" {
			t.Fatalf("session %d %+v", code, v)
		}
		if a := e.f.Account(src.ID, "alice@acme.test"); a.IdentityID != v.Identity.ID {
			t.Errorf("account keyed by NameID not linked to the session's identity")
		}
		seq := e.f.AuditSeq()
		b2 := e.browser()
		action, vals = samlToIdP(t, e, b2, "saml")
		if resp, _ := post(t, b2, action, vals); resp.StatusCode != http.StatusOK {
			t.Fatalf("second login: %d", resp.StatusCode)
		}
		if got := e.f.AuditSeq(); got != seq {
			t.Errorf("second login wrote %d audit events", got-seq)
		}
		e.noSecrets(vals.Get("SAMLResponse"))
	})
}

// TestSAMLTransientNameIDUsesKeyAttribute: with a transient NameID the key
// is the attribute the admin named, stable across logins.
func TestSAMLTransientNameIDUsesKeyAttribute(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, src := samlSetup(t, e, nil, func(c *jit.Config) {
			c.SAML.NameIDFormat = "transient"
			c.SAML.KeyAttribute = "uid"
		})
		for i := range 2 {
			b := e.browser()
			action, vals := samlToIdP(t, e, b, "saml")
			if resp, body := post(t, b, action, vals); resp.StatusCode != http.StatusOK {
				t.Fatalf("login %d: %d %s", i, resp.StatusCode, body)
			}
		}
		if n := e.f.Count("accounts", "source_id = ?", src.ID); n != 1 {
			t.Errorf("%d accounts, want 1 keyed by uid", n)
		}
		e.f.Account(src.ID, "alice")
	})
}

// TestSAMLIdPInitiatedAllowed: an unsolicited response is accepted when
// the connection allows IdP-initiated login.
func TestSAMLIdPInitiatedAllowed(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, _ := samlSetup(t, e, nil, func(c *jit.Config) { c.SAML.AllowIDPInitiated = true })
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "app", spEntityID(e, "saml"))
		resp, body := post(t, b, action, vals)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/session" {
			t.Fatalf("IdP-initiated login: %d %s\n%s", resp.StatusCode, body, e.log.String())
		}
	})
}

// samlRefused posts a response and expects a refusal for reason why, no
// session and no JIT account.
func samlRefused(t *testing.T, e *env, src engine.Source, b *http.Client, action string, vals url.Values, why string) {
	t.Helper()
	resp, body := post(t, b, action, vals)
	if resp.StatusCode < 400 {
		t.Fatalf("response accepted: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if !strings.Contains(body, "could not be verified") {
		t.Errorf("error page: %s", body)
	}
	if testing.Verbose() {
		t.Log(e.log.String())
	}
	if !strings.Contains(e.log.String(), why) {
		t.Errorf("refused, but not because of %q: %s", why, e.log.String())
	}
	if c, _ := e.sessionOf(b); c != http.StatusUnauthorized {
		t.Errorf("a session exists after a refused response")
	}
	if n := e.f.Count("accounts", "source_id = ?", src.ID); n != 0 {
		t.Errorf("a refused response created %d accounts", n)
	}
	e.noSecrets(vals.Get("SAMLResponse"))
}

// editResponse decodes a SAMLResponse, lets fn change the XML, re-encodes.
func editResponse(t testing.TB, vals url.Values, fn func(doc *etree.Document)) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(vals.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	fn(doc)
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	vals.Set("SAMLResponse", base64.StdEncoding.EncodeToString(out))
}

func TestSAMLRejectsUnsignedResponse(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, src := samlSetup(t, e, nil, nil)
		b := e.browser()
		action, vals := samlToIdP(t, e, b, "saml")
		editResponse(t, vals, func(doc *etree.Document) {
			for _, sig := range doc.FindElements("//Signature") {
				sig.Parent().RemoveChild(sig)
			}
		})
		samlRefused(t, e, src, b, action, vals, "signature")
	})
}

// A signed assertion whose content was changed after signing.
func TestSAMLRejectsTamperedAssertion(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, src := samlSetup(t, e, nil, nil)
		b := e.browser()
		action, vals := samlToIdP(t, e, b, "saml")
		editResponse(t, vals, func(doc *etree.Document) {
			for _, n := range doc.FindElements("//NameID") {
				n.SetText("mallory@acme.test")
			}
		})
		samlRefused(t, e, src, b, action, vals, "")
		if n := e.f.Count("accounts", "source_key = 'mallory@acme.test'"); n != 0 {
			t.Error("the tampered NameID got an account")
		}
	})
}

// A response signed by a key the connection's IdP metadata does not hold.
func TestSAMLRejectsWrongSigningKey(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip := newTestIdP(t, nil)
		other := newTestIdP(t, nil)
		md := strings.ReplaceAll(ip.metadata(), base64.StdEncoding.EncodeToString(ip.cert.Raw),
			base64.StdEncoding.EncodeToString(other.cert.Raw))
		src := e.connection(engine.KindSAML, "saml", jit.Config{SAML: &jit.SAMLConfig{IDPMetadataXML: md, NameIDFormat: "email"}}, true)
		ip.register(e, "idsync", "saml", nil)
		b := e.browser()
		action, vals := samlToIdP(t, e, b, "saml")
		samlRefused(t, e, src, b, action, vals, "")
	})
}

// XML signature wrapping: a forged assertion is placed first while the
// genuinely signed one is kept further down the document.
func TestSAMLRejectsSignatureWrapping(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, src := samlSetup(t, e, nil, nil)
		b := e.browser()
		action, vals := samlToIdP(t, e, b, "saml")
		editResponse(t, vals, func(doc *etree.Document) {
			resp := doc.Root()
			signed := resp.FindElement("./Assertion")
			forged := signed.Copy()
			forged.CreateAttr("ID", "_forged")
			for _, s := range forged.FindElements("./Signature") {
				forged.RemoveChild(s)
			}
			for _, n := range forged.FindElements("//NameID") {
				n.SetText("mallory@acme.test")
			}
			// The forged assertion takes the signed one's place; the signed
			// one hides in an Extensions element.
			idx := signed.Index()
			resp.RemoveChild(signed)
			resp.InsertChildAt(idx, forged)
			ext := resp.CreateElement("samlp:Extensions")
			ext.AddChild(signed)
		})
		samlRefused(t, e, src, b, action, vals, "")
		if n := e.f.Count("accounts", "source_key = 'mallory@acme.test'"); n != 0 {
			t.Error("the wrapped assertion's NameID got an account")
		}
	})
}

// A response for another service provider (audience) posted to idsync.
func TestSAMLRejectsWrongAudience(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, src := samlSetup(t, e, nil, func(c *jit.Config) { c.SAML.AllowIDPInitiated = true })
		// Another SP whose ACS is idsync's: its responses carry its audience.
		ip.register(e, "other", "saml", func(md string) string {
			return strings.ReplaceAll(md, `entityID="`+spEntityID(e, "saml")+`"`, `entityID="https://other-sp.test/metadata"`)
		})
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "other", "https://other-sp.test/metadata")
		samlRefused(t, e, src, b, action, vals, "udience")
	})
}

// A response whose Destination and Recipient are not idsync's ACS: the
// IdP has the SP's ACS on file with another URL.
func TestSAMLRejectsWrongRecipient(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip := newTestIdP(t, nil)
		src := e.connection(engine.KindSAML, "saml", jit.Config{SAML: &jit.SAMLConfig{IDPMetadataURL: ip.srv.URL + "/metadata",
			NameIDFormat: "email", AllowIDPInitiated: true}}, true)
		acs := e.srv.URL + "/login/acme/saml/acs"
		ip.register(e, "idsync", "saml", func(md string) string {
			return strings.ReplaceAll(md, `Location="`+acs+`"`, `Location="`+acs+`?elsewhere=1"`)
		})
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "app", spEntityID(e, "saml"))
		samlRefused(t, e, src, b, action, vals, "elsewhere")
	})
}

// An assertion that expired before it reached idsync (idsync's clock is an
// hour ahead when the response arrives). IdP-initiated, so that no pending
// login expires first.
func TestSAMLRejectsExpiredAssertion(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, src := samlSetup(t, e, nil, func(c *jit.Config) { c.SAML.AllowIDPInitiated = true })
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "app", spEntityID(e, "saml"))
		e.clock.Set(time.Hour)
		samlRefused(t, e, src, b, action, vals, "expired at")
		if strings.Contains(e.log.String(), "RelayState") {
			t.Error("refused for its RelayState, not its validity")
		}
	})
}

// An assertion from the future (idsync's clock is an hour behind).
func TestSAMLRejectsNotYetValidAssertion(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, src := samlSetup(t, e, nil, func(c *jit.Config) { c.SAML.AllowIDPInitiated = true })
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "app", spEntityID(e, "saml"))
		e.clock.Set(-time.Hour)
		samlRefused(t, e, src, b, action, vals, "in the future")
	})
}

// The connection's clock skew is enforced: an IdP clock two minutes ahead
// of idsync's passes with a 3m skew and fails with a 30s one (the library
// alone would accept up to 3 minutes).
func TestSAMLClockSkewIsConfigurable(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration
		ok   bool
	}{{"skew=3m", 3 * time.Minute, true}, {"skew=30s", 30 * time.Second, false}} {
		t.Run("case="+tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, db *storage.DB) {
				e := newEnv(t, db)
				_, src := samlSetup(t, e, nil, func(c *jit.Config) { c.ClockSkew = engine.Duration(tc.skew) })
				b := e.browser()
				action, vals := samlToIdP(t, e, b, "saml")
				e.clock.Set(-2 * time.Minute)
				if !tc.ok {
					samlRefused(t, e, src, b, action, vals, "not yet valid")
					return
				}
				if resp, body := post(t, b, action, vals); resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s %s", resp.StatusCode, body, e.log.String())
				}
			})
		})
	}
}

// A response posted a second time is refused by the replay cache in the
// database (IdP-initiated, so only the cache can catch it).
func TestSAMLRejectsReplayedAssertion(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, src := samlSetup(t, e, nil, func(c *jit.Config) { c.SAML.AllowIDPInitiated = true })
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "app", spEntityID(e, "saml"))
		if resp, _ := post(t, b, action, vals); resp.StatusCode != http.StatusOK {
			t.Fatalf("first post: %d", resp.StatusCode)
		}
		// An attacker's browser replays the captured response.
		attacker := e.browser()
		resp, body := post(t, attacker, action, vals)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.log.String(), "already been used") {
			t.Fatalf("replay: %d %s\n%s", resp.StatusCode, body, e.log.String())
		}
		if c, _ := e.sessionOf(attacker); c != http.StatusUnauthorized {
			t.Error("the replay got a session")
		}
		_ = src
	})
}

// An unsolicited response is refused when IdP-initiated login is off.
func TestSAMLRejectsUnsolicitedWhenIdPInitiatedOff(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, src := samlSetup(t, e, nil, nil)
		b := e.browser()
		action, vals := idpInitiated(t, ip, b, "app", spEntityID(e, "saml"))
		samlRefused(t, e, src, b, action, vals, "unsolicited")
	})
}

// A response to one AuthnRequest posted for another pending login of the
// same browser: InResponseTo does not match.
func TestSAMLRejectsMismatchedInResponseTo(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		_, src := samlSetup(t, e, nil, nil)
		b := e.browser()
		action, first := samlToIdP(t, e, b, "saml")
		// The browser starts a second login: a new request ID and RelayState.
		resp := e.login(b, "acme", "saml")
		page := readAll(t, resp)
		_, second := htmlForm(t, page)
		first.Set("RelayState", second.Get("RelayState"))
		samlRefused(t, e, src, b, action, first, "InResponseTo")
	})
}

// TestSAMLMetadata: the SP metadata names the entity ID and ACS.
func TestSAMLMetadata(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		ip, _ := samlSetup(t, e, nil, nil)
		md := ip.register(e, "again", "saml", nil)
		for _, want := range []string{`entityID="` + spEntityID(e, "saml") + `"`, `Location="` + e.srv.URL + `/login/acme/saml/acs"`} {
			if !strings.Contains(md, want) {
				t.Errorf("metadata lacks %s:\n%s", want, md)
			}
		}
	})
}

// TestSAMLSignedAuthnRequests: with signRequests the SP signs its
// AuthnRequests with the key named by environment variables, publishes the
// certificate in its metadata, and the login still completes.
func TestSAMLSignedAuthnRequests(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		key, cert := selfSigned(t, "idsync-sp")
		kb, _ := x509.MarshalPKCS8PrivateKey(key)
		t.Setenv("JIT_SP_KEY", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
		t.Setenv("JIT_SP_CERT", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
		e := newEnv(t, db)
		ip, _ := samlSetup(t, e, nil, func(c *jit.Config) {
			c.SAML.SignRequests, c.SAML.SPKeyEnv, c.SAML.SPCertEnv = true, "JIT_SP_KEY", "JIT_SP_CERT"
		})
		b := e.browser()
		// Sign in at the IdP first: its login form would re-post the
		// request without the redirect binding's signature, which this IdP
		// (rightly) refuses for an SP whose metadata says it signs.
		if resp, body := post(t, b, ip.srv.URL+"/login", url.Values{"user": {"alice"}, "password": {"wonderland"}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("IdP login: %d %s", resp.StatusCode, body)
		}
		signed := false
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/sso" {
				signed = req.URL.Query().Get("Signature") != "" && req.URL.Query().Get("SigAlg") != ""
			}
			return nil
		}
		resp := e.login(b, "acme", "saml")
		action, vals := htmlForm(t, readAll(t, resp))
		if !signed {
			t.Error("the AuthnRequest redirect is not signed")
		}
		if resp, body := post(t, b, action, vals); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		md := e.browser()
		resp, err := md.Get(e.srv.URL + "/login/acme/saml/metadata")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(readAll(t, resp), base64.StdEncoding.EncodeToString(cert.Raw)) {
			t.Error("SP metadata does not publish the signing certificate")
		}
		e.noSecrets(string(kb))
	})
}
