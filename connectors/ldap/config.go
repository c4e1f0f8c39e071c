// Package ldap pulls people and their groups from an LDAP directory
// (OpenLDAP, Active Directory, 389 DS and others) into the engine: a full
// sync streams every user, page by page with the Simple Paged Results
// control, into Engine.ApplySnapshot (mark and sweep); an incremental sync
// reads only entries changed since the job's watermark. It owns the LDAP
// protocol, its config (Config) and the profiles' defaults. It must not
// write to the database itself, decide lifecycle (the engine does), follow
// referrals, log or store the bind password, or hold the directory's users
// in memory (only the groups and their member lists, when groups are
// synced).
package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
)

// Profiles.
const (
	ProfileOpenLDAP = "openldap"
	ProfileAD       = "ad"
	ProfileGeneric  = "generic"
)

// Config is the config of an LDAP source (Source.Config, JSON). A YAML
// example:
//
//	url: ldaps://dc1.corp.example:636   # or ldap://host:389 with startTLS: true
//	startTLS: false
//	caFile: /etc/idsync/corp-ca.pem     # extra CA to trust (PEM)
//	serverName: dc1.corp.example        # TLS name, when it differs from the URL host
//	bindDN: CN=idsync,OU=Service,DC=corp,DC=example
//	passwordEnv: IDSYNC_LDAP_PASSWORD   # or passwordFile: /run/secrets/ldap
//	timeout: 30s                        # dial and each request
//	profile: ad                         # openldap, ad or generic
//	baseDN: OU=People,DC=corp,DC=example
//	scope: sub                          # sub, one or base
//	userFilter: (&(objectClass=user)(objectCategory=person))
//	groupBaseDN: OU=Groups,DC=corp,DC=example
//	groupFilter: (objectClass=group)
//	groups: true                        # sync group memberships
//	memberOf: true                      # read memberOf on users too
//	nestedGroups: true                  # flatten nested groups
//	attributes: {userName: sAMAccountName, email: mail, department: department}
//	pageSize: 500
//	clockSkew: 5m                       # bound on the directory's clock drift
//
// Everything but url and baseDN has a default from the profile.
type Config struct {
	URL                string            `json:"url"`
	StartTLS           bool              `json:"startTLS,omitempty"`
	CAFile             string            `json:"caFile,omitempty"`
	ServerName         string            `json:"serverName,omitempty"`
	InsecureSkipVerify bool              `json:"insecureSkipVerify,omitempty"`
	BindDN             string            `json:"bindDN,omitempty"`
	PasswordEnv        string            `json:"passwordEnv,omitempty"`
	PasswordFile       string            `json:"passwordFile,omitempty"`
	Timeout            engine.Duration   `json:"timeout,omitempty"`
	Profile            string            `json:"profile,omitempty"`
	BaseDN             string            `json:"baseDN"`
	Scope              string            `json:"scope,omitempty"`
	UserFilter         string            `json:"userFilter,omitempty"`
	GroupBaseDN        string            `json:"groupBaseDN,omitempty"`
	GroupFilter        string            `json:"groupFilter,omitempty"`
	Groups             *bool             `json:"groups,omitempty"`
	MemberOf           *bool             `json:"memberOf,omitempty"`
	NestedGroups       bool              `json:"nestedGroups,omitempty"`
	GroupNameAttr      string            `json:"groupNameAttr,omitempty"`
	KeyAttr            string            `json:"keyAttr,omitempty"`
	ChangeAttr         string            `json:"changeAttr,omitempty"`
	DisabledAttr       string            `json:"disabledAttr,omitempty"`
	DisabledValue      string            `json:"disabledValue,omitempty"`
	Attributes         map[string]string `json:"attributes,omitempty"`
	PageSize           int               `json:"pageSize,omitempty"`
	// ClockSkew bounds the difference between the directory's clock and
	// ours (default 5m); see the watermark rules in Sync.
	ClockSkew engine.Duration `json:"clockSkew,omitempty"`
}

// profile defaults.
type profile struct {
	key, change, userFilter, groupFilter string
	memberOf                             bool
	disabledAttr                         string
	attrs                                map[string]string
}

var profiles = map[string]profile{
	ProfileOpenLDAP: {key: "entryUUID", change: "modifyTimestamp",
		userFilter:   "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
		groupFilter:  "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
		disabledAttr: "pwdAccountLockedTime",
		attrs: map[string]string{"userName": "uid", "email": "mail", "givenName": "givenName", "familyName": "sn",
			"displayName": "cn", "title": "title", "department": "departmentNumber", "employeeNumber": "employeeNumber",
			"phoneNumber": "telephoneNumber"}},
	ProfileAD: {key: "objectGUID", change: "uSNChanged", memberOf: true,
		userFilter:   "(&(objectClass=user)(objectCategory=person))",
		groupFilter:  "(objectClass=group)",
		disabledAttr: "userAccountControl",
		attrs: map[string]string{"userName": "sAMAccountName", "email": "mail", "givenName": "givenName", "familyName": "sn",
			"displayName": "displayName", "title": "title", "department": "department", "employeeNumber": "employeeID",
			"phoneNumber": "telephoneNumber"}},
	ProfileGeneric: {key: "entryUUID", change: "modifyTimestamp",
		userFilter:  "(objectClass=person)",
		groupFilter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
		attrs:       map[string]string{"userName": "uid", "email": "mail", "givenName": "givenName", "familyName": "sn", "displayName": "cn"}},
}

// ParseConfig reads a source's config, fills the profile's defaults and
// validates it.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if len(raw) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("ldap config: %v: %w", err, engine.ErrInvalid)
		}
	}
	c.defaults()
	return c, c.Validate()
}

func (c *Config) defaults() {
	if c.Profile == "" {
		c.Profile = ProfileOpenLDAP
	}
	p, ok := profiles[c.Profile]
	if !ok {
		return // Validate reports it
	}
	if c.Scope == "" {
		c.Scope = "sub"
	}
	if c.Timeout == 0 {
		c.Timeout = engine.Duration(30 * time.Second)
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = engine.Duration(5 * time.Minute)
	}
	if c.UserFilter == "" {
		c.UserFilter = p.userFilter
	}
	if c.GroupFilter == "" {
		c.GroupFilter = p.groupFilter
	}
	if c.GroupBaseDN == "" {
		c.GroupBaseDN = c.BaseDN
	}
	if c.Groups == nil {
		t := true
		c.Groups = &t
	}
	if c.MemberOf == nil {
		m := p.memberOf
		c.MemberOf = &m
	}
	if c.GroupNameAttr == "" {
		c.GroupNameAttr = "cn"
	}
	if c.KeyAttr == "" {
		c.KeyAttr = p.key
	}
	if c.ChangeAttr == "" {
		c.ChangeAttr = p.change
	}
	if c.DisabledAttr == "" {
		c.DisabledAttr = p.disabledAttr
	}
	attrs := map[string]string{}
	for k, v := range p.attrs {
		attrs[k] = v
	}
	for k, v := range c.Attributes {
		if v == "" {
			delete(attrs, k) // "title: ''" unmaps a default
		} else {
			attrs[k] = v
		}
	}
	c.Attributes = attrs
}

// Validate reports every problem at once, wrapping engine.ErrInvalid.
func (c Config) Validate() error {
	var probs []string
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		probs = append(probs, "url is required")
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		probs = append(probs, fmt.Sprintf("url %q is not ldap://host[:port] or ldaps://host[:port]", c.URL))
	case u.Scheme == "ldaps" && c.StartTLS:
		probs = append(probs, "startTLS is for ldap:// URLs; ldaps:// is TLS already")
	}
	if _, ok := profiles[c.Profile]; !ok {
		probs = append(probs, fmt.Sprintf("profile %q is not openldap, ad or generic", c.Profile))
	}
	if strings.TrimSpace(c.BaseDN) == "" {
		probs = append(probs, "baseDN is required")
	}
	switch c.Scope {
	case "sub", "one", "base", "":
	default:
		probs = append(probs, fmt.Sprintf("scope %q is not sub, one or base", c.Scope))
	}
	if c.PasswordEnv != "" && c.PasswordFile != "" {
		probs = append(probs, "give passwordEnv or passwordFile, not both")
	}
	if c.BindDN != "" && c.PasswordEnv == "" && c.PasswordFile == "" {
		probs = append(probs, "bindDN needs passwordEnv or passwordFile (the password is never in the config)")
	}
	if c.PageSize < 0 || c.PageSize > 100000 {
		probs = append(probs, fmt.Sprintf("pageSize %d is not between 1 and 100000", c.PageSize))
	}
	if c.Timeout < 0 {
		probs = append(probs, "timeout is negative")
	}
	for _, f := range []struct{ name, v string }{{"userFilter", c.UserFilter}, {"groupFilter", c.GroupFilter}} {
		if f.v != "" && (!strings.HasPrefix(f.v, "(") || !strings.HasSuffix(f.v, ")") || strings.Count(f.v, "(") != strings.Count(f.v, ")")) {
			probs = append(probs, fmt.Sprintf("%s %q is not a parenthesized LDAP filter", f.name, f.v))
		}
	}
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsAny(c.Attributes[k], " ()=*") {
			probs = append(probs, fmt.Sprintf("attributes.%s: %q is not an attribute name", k, c.Attributes[k]))
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			probs = append(probs, fmt.Sprintf("caFile: %v", err))
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("ldap config: %s: %w", strings.Join(probs, "; "), engine.ErrInvalid)
	}
	return nil
}

// password reads the bind password from the environment or a file.
func (c Config) password() (string, error) {
	switch {
	case c.PasswordEnv != "":
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("ldap: the bind password variable %s is not set: %w", c.PasswordEnv, engine.ErrInvalid)
		}
		return v, nil
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("ldap: bind password file: %v: %w", err, engine.ErrInvalid)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	u, _ := url.Parse(c.URL)
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: caFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: caFile %s holds no PEM certificate: %w", c.CAFile, engine.ErrInvalid)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
