package jit

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

// Group sync modes.
const (
	// GroupsNone ignores the IdP's groups.
	GroupsNone = "none"
	// GroupsAssign grants the mapped groups at the first login only.
	GroupsAssign = "assign"
	// GroupsAppend grants the mapped groups at every login, revoking none.
	GroupsAppend = "append"
	// GroupsSync grants and revokes: the connection's membership edges
	// become exactly the mapped groups. The engine keeps one edge per
	// source, so a group granted by SCIM, LDAP or an admin is never revoked.
	GroupsSync = "sync"
)

// Link policies.
const (
	// LinkVerifiedEmail links a first login to an existing person under the
	// organization's match rules; an email only links when verified.
	LinkVerifiedEmail = "verified-email"
	// LinkNone refuses a first login that would link to an existing person.
	LinkNone = "none"
)

// Attribute update policies.
const (
	UpdateAlways   = "always"
	UpdateOnCreate = "create"
)

// Config is a connection's configuration, stored as the Config of an engine
// source of kind saml, oidc or email-domain. Secrets are named by the
// environment variable that holds them, never stored.
//
//	# kind oidc (an email-domain connection has the same oidc block: the
//	# provider people sign in with, e.g. Google)
//	oidc:
//	  issuer: https://login.example.com
//	  clientID: idsync
//	  clientSecretEnv: IDSYNC_ACME_OIDC_SECRET
//	  scopes: [openid, email, profile, groups]
//	  userinfo: false
//	  algorithms: [RS256]
//	# kind saml
//	saml:
//	  idpMetadataURL: https://idp.example.com/metadata   # or idpMetadataXML
//	  allowIDPInitiated: false
//	  signRequests: false
//	  spKeyEnv: IDSYNC_SAML_KEY        # PEM key and certificate, needed
//	  spCertEnv: IDSYNC_SAML_CERT      # to sign requests
//	  nameIDFormat: persistent         # persistent, email, transient; default unspecified
//	  keyAttribute: employeeID         # required for transient NameIDs
//	clockSkew: 60s
//	returnURLs: [https://app.example.com/, https://app.example.com/welcome/*]
//	mapping:
//	  attributes: {email: email, givenName: given_name, department: "dept|department"}
//	  groupsClaim: groups
//	  groupMode: sync                  # none, assign, append, sync
//	  groups:  [{from: eng, to: Engineering}]
//	  passthroughGroups: false         # unmapped IdP groups become groups
//	  roles:   [{from: admins, to: admin}]
//	policy:
//	  createOnFirstLogin: true
//	  link: verified-email             # or none
//	  updateAttributes: always         # or create
//	  trustEmails: false               # the IdP's emails count as verified
type Config struct {
	OIDC       *OIDCConfig     `json:"oidc,omitempty"`
	SAML       *SAMLConfig     `json:"saml,omitempty"`
	ClockSkew  engine.Duration `json:"clockSkew,omitempty"`
	ReturnURLs []string        `json:"returnURLs,omitempty"`
	Mapping    Mapping         `json:"mapping"`
	Policy     Policy          `json:"policy"`
}

// OIDCConfig is an OpenID provider.
type OIDCConfig struct {
	Issuer          string   `json:"issuer"`
	ClientID        string   `json:"clientID"`
	ClientSecretEnv string   `json:"clientSecretEnv,omitempty"`
	Scopes          []string `json:"scopes,omitempty"`
	Userinfo        bool     `json:"userinfo,omitempty"`
	Algorithms      []string `json:"algorithms,omitempty"`
}

// SAMLConfig is a SAML identity provider.
type SAMLConfig struct {
	IDPMetadataURL    string `json:"idpMetadataURL,omitempty"`
	IDPMetadataXML    string `json:"idpMetadataXML,omitempty"`
	AllowIDPInitiated bool   `json:"allowIDPInitiated,omitempty"`
	SignRequests      bool   `json:"signRequests,omitempty"`
	SPKeyEnv          string `json:"spKeyEnv,omitempty"`
	SPCertEnv         string `json:"spCertEnv,omitempty"`
	NameIDFormat      string `json:"nameIDFormat,omitempty"`
	KeyAttribute      string `json:"keyAttribute,omitempty"`
}

// Rule maps one IdP group or claim value to an organization group or role.
type Rule struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Mapping says which claims fill which identity attributes, and how IdP
// groups become groups and roles.
type Mapping struct {
	// Attributes maps an identity attribute (reconcile.Attr*) to the claim
	// or SAML attribute holding it; "a|b" tries a, then b. Empty: the
	// defaults of the connection kind.
	Attributes        map[string]string `json:"attributes,omitempty"`
	GroupsClaim       string            `json:"groupsClaim,omitempty"`
	GroupMode         string            `json:"groupMode,omitempty"`
	Groups            []Rule            `json:"groups,omitempty"`
	PassthroughGroups bool              `json:"passthroughGroups,omitempty"`
	Roles             []Rule            `json:"roles,omitempty"`
}

// Policy are the login policies.
type Policy struct {
	// CreateOnFirstLogin (default true) creates a person nobody matches.
	CreateOnFirstLogin *bool  `json:"createOnFirstLogin,omitempty"`
	Link               string `json:"link,omitempty"`
	UpdateAttributes   string `json:"updateAttributes,omitempty"`
	TrustEmails        bool   `json:"trustEmails,omitempty"`
}

// Create reports whether a first login may create a person.
func (p Policy) Create() bool { return p.CreateOnFirstLogin == nil || *p.CreateOnFirstLogin }

var defaultOIDCAttrs = map[string]string{
	reconcile.AttrEmail: "email", reconcile.AttrGivenName: "given_name", reconcile.AttrFamilyName: "family_name",
	reconcile.AttrDisplayName: "name", reconcile.AttrUserName: "preferred_username", reconcile.AttrLocale: "locale",
}

var defaultSAMLAttrs = map[string]string{
	reconcile.AttrEmail:       "email|mail|urn:oid:0.9.2342.19200300.100.1.3",
	reconcile.AttrGivenName:   "givenName|urn:oid:2.5.4.42",
	reconcile.AttrFamilyName:  "surname|sn|urn:oid:2.5.4.4",
	reconcile.AttrDisplayName: "displayName|cn|urn:oid:2.16.840.1.113730.3.1.241",
	reconcile.AttrUserName:    "uid|eduPersonPrincipalName",
}

// ParseConfig reads a source's config and validates it for its kind.
func ParseConfig(kind engine.SourceKind, raw json.RawMessage) (Config, error) {
	var c Config
	if len(raw) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("connection config: %v: %w", err, engine.ErrInvalid)
		}
	}
	c.setDefaults(kind)
	return c, c.Validate(kind)
}

func (c *Config) setDefaults(kind engine.SourceKind) {
	if c.Mapping.GroupMode == "" {
		c.Mapping.GroupMode = GroupsNone
	}
	if c.Policy.Link == "" {
		c.Policy.Link = LinkVerifiedEmail
	}
	if c.Policy.UpdateAttributes == "" {
		c.Policy.UpdateAttributes = UpdateAlways
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = engine.Duration(time.Minute)
	}
	defs := defaultOIDCAttrs
	if kind == engine.KindSAML {
		defs = defaultSAMLAttrs
	}
	if len(c.Mapping.Attributes) == 0 {
		c.Mapping.Attributes = defs
	}
	if c.Mapping.GroupsClaim == "" {
		c.Mapping.GroupsClaim = "groups"
		if kind == engine.KindSAML {
			c.Mapping.GroupsClaim = "groups|memberOf|eduPersonAffiliation|http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
		}
	}
	if c.OIDC != nil {
		if len(c.OIDC.Scopes) == 0 {
			c.OIDC.Scopes = []string{"openid", "email", "profile"}
		}
		if len(c.OIDC.Algorithms) == 0 {
			c.OIDC.Algorithms = []string{"RS256"}
		}
	}
}

var okAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// Validate reports every problem at once, wrapping engine.ErrInvalid.
func (c Config) Validate(kind engine.SourceKind) error {
	var probs []string
	bad := func(cond bool, msg string, args ...any) {
		if cond {
			probs = append(probs, fmt.Sprintf(msg, args...))
		}
	}
	switch kind {
	case engine.KindOIDC, engine.KindEmailDomain:
		bad(c.OIDC == nil, "%s connection needs an oidc block", kind)
		bad(c.SAML != nil, "%s connection must not have a saml block", kind)
	case engine.KindSAML:
		bad(c.SAML == nil, "saml connection needs a saml block")
		bad(c.OIDC != nil, "saml connection must not have an oidc block")
	default:
		probs = append(probs, fmt.Sprintf("kind %q is not saml, oidc or email-domain", kind))
	}
	if o := c.OIDC; o != nil {
		u, err := url.Parse(o.Issuer)
		bad(err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "", "oidc.issuer %q is not an http(s) URL", o.Issuer)
		bad(o.ClientID == "", "oidc.clientID is required")
		bad(o.ClientSecretEnv != "" && !envName(o.ClientSecretEnv), "oidc.clientSecretEnv %q is not an environment variable name", o.ClientSecretEnv)
		bad(!slices.Contains(o.Scopes, "openid"), "oidc.scopes must include openid")
		for _, a := range o.Algorithms {
			bad(!slices.Contains(okAlgs, a), "oidc.algorithms: %q is not an asymmetric JWS algorithm (none and HMAC are refused)", a)
		}
	}
	if s := c.SAML; s != nil {
		bad((s.IDPMetadataURL == "") == (s.IDPMetadataXML == ""), "saml: exactly one of idpMetadataURL and idpMetadataXML is required")
		if s.IDPMetadataURL != "" {
			u, err := url.Parse(s.IDPMetadataURL)
			bad(err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "", "saml.idpMetadataURL %q is not an http(s) URL", s.IDPMetadataURL)
		}
		bad(s.SignRequests && (s.SPKeyEnv == "" || s.SPCertEnv == ""), "saml.signRequests needs spKeyEnv and spCertEnv")
		bad(s.SPKeyEnv != "" && !envName(s.SPKeyEnv), "saml.spKeyEnv %q is not an environment variable name", s.SPKeyEnv)
		bad(s.SPCertEnv != "" && !envName(s.SPCertEnv), "saml.spCertEnv %q is not an environment variable name", s.SPCertEnv)
		_, okFmt := nameIDFormats[s.NameIDFormat]
		bad(!okFmt, "saml.nameIDFormat %q is not persistent, email, unspecified or transient", s.NameIDFormat)
		bad(s.NameIDFormat == "transient" && s.KeyAttribute == "", "saml.nameIDFormat transient needs keyAttribute: a transient NameID changes every login")
	}
	bad(c.ClockSkew < 0 || time.Duration(c.ClockSkew) > 10*time.Minute, "clockSkew %s is not between 0 and 10m", time.Duration(c.ClockSkew))
	for _, r := range c.ReturnURLs {
		u, err := url.Parse(strings.TrimSuffix(r, "*"))
		bad(err != nil || !(u.IsAbs() && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" || strings.HasPrefix(r, "/") && !strings.HasPrefix(r, "//")),
			"returnURLs: %q is neither an absolute http(s) URL nor a local path", r)
	}
	switch c.Mapping.GroupMode {
	case GroupsNone, GroupsAssign, GroupsAppend, GroupsSync:
	default:
		probs = append(probs, fmt.Sprintf("mapping.groupMode %q is not none, assign, append or sync", c.Mapping.GroupMode))
	}
	for attr, claim := range c.Mapping.Attributes {
		bad(!slices.Contains(engine.MatchableAttrs(), attr) && !knownAttr(attr), "mapping.attributes: %q is not an identity attribute", attr)
		bad(strings.TrimSpace(claim) == "", "mapping.attributes.%s names no claim", attr)
	}
	for i, r := range append(slices.Clone(c.Mapping.Groups), c.Mapping.Roles...) {
		bad(r.From == "" || r.To == "", "mapping rule %d needs from and to", i+1)
	}
	switch c.Policy.Link {
	case LinkVerifiedEmail, LinkNone:
	default:
		probs = append(probs, fmt.Sprintf("policy.link %q is not verified-email or none", c.Policy.Link))
	}
	switch c.Policy.UpdateAttributes {
	case UpdateAlways, UpdateOnCreate:
	default:
		probs = append(probs, fmt.Sprintf("policy.updateAttributes %q is not always or create", c.Policy.UpdateAttributes))
	}
	if len(probs) > 0 {
		return fmt.Errorf("connection config: %s: %w", strings.Join(probs, "; "), engine.ErrInvalid)
	}
	return nil
}

var knownAttrs = []string{reconcile.AttrEmail, reconcile.AttrUserName, reconcile.AttrGivenName, reconcile.AttrFamilyName,
	reconcile.AttrDisplayName, reconcile.AttrTitle, reconcile.AttrDepartment, reconcile.AttrEmployeeNumber,
	reconcile.AttrExternalID, reconcile.AttrManager, reconcile.AttrPhone, reconcile.AttrLocale}

func knownAttr(a string) bool { return slices.Contains(knownAttrs, a) }

func envName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// secret reads a secret from the environment variable name.
func secret(name string) string {
	if name == "" {
		return ""
	}
	return os.Getenv(name)
}
