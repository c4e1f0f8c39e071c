package jit

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/idsync/idsync/engine"
)

var nameIDFormats = map[string]saml.NameIDFormat{
	"":            saml.UnspecifiedNameIDFormat,
	"persistent":  saml.PersistentNameIDFormat,
	"email":       saml.EmailAddressNameIDFormat,
	"unspecified": saml.UnspecifiedNameIDFormat,
	"transient":   saml.TransientNameIDFormat,
}

// samlCache keeps each connection's IdP metadata (fetched or parsed) for
// metadataTTL.
type samlCache struct {
	mu sync.Mutex
	m  map[string]cachedMetadata
}

type cachedMetadata struct {
	ed  *saml.EntityDescriptor
	src string
	at  time.Time
}

const metadataTTL = time.Hour

func newSAMLCache() *samlCache { return &samlCache{m: map[string]cachedMetadata{}} }

func (h *Handler) idpMetadata(ctx context.Context, c Connection) (*saml.EntityDescriptor, error) {
	s := c.Config.SAML
	src := s.IDPMetadataURL + "\x00" + s.IDPMetadataXML
	h.saml.mu.Lock()
	cm, ok := h.saml.m[c.Source.ID]
	h.saml.mu.Unlock()
	if ok && cm.src == src && time.Since(cm.at) < metadataTTL {
		return cm.ed, nil
	}
	var ed *saml.EntityDescriptor
	var err error
	if s.IDPMetadataXML != "" {
		ed, err = samlsp.ParseMetadata([]byte(s.IDPMetadataXML))
	} else {
		u, _ := url.Parse(s.IDPMetadataURL)
		ed, err = samlsp.FetchMetadata(ctx, h.opts.HTTPClient, *u)
	}
	if err != nil {
		return nil, fmt.Errorf("saml: IdP metadata of %s: %v: %w", c.Source.Name, err, engine.ErrUnavailable)
	}
	h.saml.mu.Lock()
	h.saml.m[c.Source.ID] = cachedMetadata{ed: ed, src: src, at: time.Now()}
	h.saml.mu.Unlock()
	return ed, nil
}

// replayCache records accepted assertion IDs in the database, so a
// response accepted by one idsync process is refused by every other.
type replayCache struct {
	ctx context.Context
	st  loginStore
	now time.Time
}

func (rc replayCache) Consume(id string, expiresAt time.Time) error {
	err := rc.st.JITConsumeAssertion(rc.ctx, id, expiresAt, rc.now)
	if errors.Is(err, engine.ErrExists) {
		return saml.ErrAssertionReplayed
	}
	return err
}

// serviceProvider builds the connection's SP for one request: metadata is
// cached, the clock is the request's.
func (h *Handler) serviceProvider(ctx context.Context, r *http.Request, c Connection) (*saml.ServiceProvider, error) {
	ed, err := h.idpMetadata(ctx, c)
	if err != nil {
		return nil, err
	}
	s := c.Config.SAML
	base := h.base(r) + h.connectionPath(c)
	meta, _ := url.Parse(base + "/metadata")
	acs, _ := url.Parse(base + "/acs")
	sp := &saml.ServiceProvider{EntityID: meta.String(), MetadataURL: *meta, AcsURL: *acs, IDPMetadata: ed,
		AllowIDPInitiated: s.AllowIDPInitiated, AuthnNameIDFormat: nameIDFormats[s.NameIDFormat],
		HTTPClient: h.opts.HTTPClient, Clock: dsig.NewFakeClockAt(h.now()),
		ReplayCache: replayCache{ctx: ctx, st: h.store, now: h.now()}, RejectUnknownConditions: true}
	if s.SPKeyEnv != "" && s.SPCertEnv != "" {
		pair, err := tls.X509KeyPair([]byte(secret(s.SPCertEnv)), []byte(secret(s.SPKeyEnv)))
		if err != nil {
			return nil, fmt.Errorf("saml: SP key pair from %s/%s: %v: %w", s.SPCertEnv, s.SPKeyEnv, err, engine.ErrInvalid)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("saml: SP certificate: %v: %w", err, engine.ErrInvalid)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("saml: SP key cannot sign: %w", engine.ErrInvalid)
		}
		sp.Key, sp.Certificate = signer, cert
		if !s.SignRequests {
			sp.SignatureMethod = "" // keys for metadata and decryption only
		} else {
			sp.SignatureMethod = dsig.RSASHA256SignatureMethod
		}
	}
	return sp, nil
}

// samlStart sends the browser to the IdP with an AuthnRequest (redirect
// binding) and remembers its ID for InResponseTo.
func (h *Handler) samlStart(w http.ResponseWriter, r *http.Request, c Connection, returnTo string) error {
	sp, err := h.serviceProvider(r.Context(), r, c)
	if err != nil {
		return err
	}
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding),
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return fmt.Errorf("saml: authentication request: %v: %w", err, engine.ErrUnavailable)
	}
	relay := randomToken()
	u, err := req.Redirect(relay, sp)
	if err != nil {
		return fmt.Errorf("saml: authentication request: %v: %w", err, engine.ErrUnavailable)
	}
	if err := h.savePending(r.Context(), relay, pending{SourceID: c.Source.ID, ReturnTo: returnTo, RequestID: req.ID}); err != nil {
		return err
	}
	// The ACS is a cross-site POST: only a SameSite=None cookie comes back.
	h.setStateCookie(w, r, c, relay, http.SameSiteNoneMode)
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}

// samlACS verifies a Response (signature, audience, recipient, validity,
// InResponseTo, replay) and provisions. A response without a pending
// request is IdP-initiated and accepted only when the connection allows it.
func (h *Handler) samlACS(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := h.connection(ctx, r.PathValue("org"), r.PathValue("conn"))
	if err != nil {
		h.fail(w, r, "", err)
		return
	}
	if c.Config.SAML == nil {
		h.fail(w, r, c.Source.Name, fmt.Errorf("not a SAML connection: %w", engine.ErrNotFound))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, c.Source.Name, fmt.Errorf("form: %v: %w", err, errProtocol))
		return
	}
	var ids []string
	returnTo := ""
	if relay := r.PostForm.Get("RelayState"); relay != "" && stateMatchesCookie(r, relay) {
		h.clearStateCookie(w, r, c, relay)
		pend, err := h.takePending(ctx, relay)
		if err != nil || pend.SourceID != c.Source.ID {
			h.fail(w, r, c.Source.Name, fmt.Errorf("unknown, used or expired RelayState: %w", errProtocol))
			return
		}
		ids, returnTo = []string{pend.RequestID}, pend.ReturnTo
	} else if !c.Config.SAML.AllowIDPInitiated {
		h.fail(w, r, c.Source.Name, fmt.Errorf("unsolicited response and IdP-initiated login is off: %w", errProtocol))
		return
	}
	if returnTo == "" {
		if returnTo, err = returnURL(c, ""); err != nil {
			h.fail(w, r, c.Source.Name, err)
			return
		}
	}
	sp, err := h.serviceProvider(ctx, r, c)
	if err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(r.PostForm.Get("SAMLResponse"))
	if err != nil || len(raw) == 0 {
		h.fail(w, r, c.Source.Name, fmt.Errorf("SAMLResponse is missing or not base64: %w", errProtocol))
		return
	}
	a, err := sp.ParseXMLResponse(raw, ids, sp.AcsURL)
	if err != nil {
		h.fail(w, r, c.Source.Name, fmt.Errorf("saml response: %s: %w", samlReason(err), errProtocol))
		return
	}
	if err := h.checkValidity(a, c); err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	in, err := samlLogin(a, c)
	if err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	h.finish(w, r, c, in, returnTo)
}

// samlReason is why crewjam refused a response, without the response.
func samlReason(err error) string {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr.Error()
	}
	return err.Error()
}

// checkValidity holds the assertion to the connection's clock skew, which
// is tighter than the library's default.
func (h *Handler) checkValidity(a *saml.Assertion, c Connection) error {
	now, skew := h.now(), time.Duration(c.Config.ClockSkew)
	if cd := a.Conditions; cd != nil {
		if !cd.NotBefore.IsZero() && now.Add(skew).Before(cd.NotBefore) {
			return fmt.Errorf("assertion not yet valid (NotBefore %s): %w", cd.NotBefore.Format(time.RFC3339), errProtocol)
		}
		if !cd.NotOnOrAfter.IsZero() && !now.Add(-skew).Before(cd.NotOnOrAfter) {
			return fmt.Errorf("assertion expired (NotOnOrAfter %s): %w", cd.NotOnOrAfter.Format(time.RFC3339), errProtocol)
		}
	}
	if a.IssueInstant.After(now.Add(skew)) {
		return fmt.Errorf("assertion issued in the future: %w", errProtocol)
	}
	return nil
}

// samlLogin turns a verified assertion into a Login keyed by the NameID,
// or by the named attribute for transient NameIDs.
func samlLogin(a *saml.Assertion, c Connection) (Login, error) {
	in := Login{Claims: Claims{}}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				if v.Nil {
					continue
				}
				in.Claims[at.Name] = append(in.Claims[at.Name], v.Value)
				if at.FriendlyName != "" && at.FriendlyName != at.Name {
					in.Claims[at.FriendlyName] = append(in.Claims[at.FriendlyName], v.Value)
				}
			}
		}
	}
	var nameID, format string
	if a.Subject != nil && a.Subject.NameID != nil {
		nameID, format = a.Subject.NameID.Value, a.Subject.NameID.Format
	}
	if k := c.Config.SAML.KeyAttribute; k != "" {
		in.Key = in.Claims.First(k)
		if in.Key == "" {
			return in, refuse(engine.ErrForbidden, "the identity provider did not send the attribute %s this connection identifies people by", k)
		}
		return in, nil
	}
	if format == string(saml.TransientNameIDFormat) {
		return in, refuse(engine.ErrForbidden, "the identity provider sent a transient NameID and this connection names no stable attribute to identify people by")
	}
	if nameID == "" {
		return in, refuse(engine.ErrForbidden, "the identity provider sent no NameID")
	}
	in.Key = nameID
	return in, nil
}

func (h *Handler) samlMetadata(w http.ResponseWriter, r *http.Request) {
	c, err := h.connection(r.Context(), r.PathValue("org"), r.PathValue("conn"))
	if err == nil && c.Config.SAML == nil {
		err = fmt.Errorf("not a SAML connection: %w", engine.ErrNotFound)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	sp, err := h.serviceProvider(r.Context(), r, c)
	if err != nil {
		writeError(w, err)
		return
	}
	b, err := xml.MarshalIndent(sp.Metadata(), "", "  ")
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(b)
}
