package ldap

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/idsync/idsync/engine"
)

// Client reads one directory.
type Client struct {
	cfg  Config
	conn *goldap.Conn
}

// Connect dials, starts TLS if asked and binds. A failure wraps
// engine.ErrUnavailable (directory unreachable or refused the bind); the
// error never holds the password.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	timeout := time.Duration(cfg.Timeout)
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: timeout}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		dialer.Deadline = d
	}
	conn, err := goldap.DialURL(cfg.URL, goldap.DialWithDialer(dialer), goldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, fmt.Errorf("ldap: connect to %s: %v: %w", redactURL(cfg.URL), err, engine.ErrUnavailable)
	}
	conn.SetTimeout(timeout)
	c := &Client{cfg: cfg, conn: conn}
	if cfg.StartTLS {
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ldap: StartTLS with %s: %v: %w", redactURL(cfg.URL), err, engine.ErrUnavailable)
		}
	}
	if cfg.BindDN != "" {
		pw, err := cfg.password()
		if err != nil {
			conn.Close()
			return nil, err
		}
		if err := conn.Bind(cfg.BindDN, pw); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ldap: bind as %s: %s: %w", cfg.BindDN, ldapErrText(err), engine.ErrUnavailable)
		}
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "?"
	}
	u.User = nil
	return u.String()
}

// ldapErrText is the result code and diagnostic of an LDAP error (never
// the request, which for a bind holds the password).
func ldapErrText(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) {
		return fmt.Sprintf("%s (%d)", goldap.LDAPResultCodeMap[le.ResultCode], le.ResultCode)
	}
	return err.Error()
}

func (c *Client) scope() int {
	switch c.cfg.Scope {
	case "one":
		return goldap.ScopeSingleLevel
	case "base":
		return goldap.ScopeBaseObject
	}
	return goldap.ScopeWholeSubtree
}

// changeFilter narrows the user filter to entries changed since the
// watermark: after a USN mark; from a time mark inclusive (time stamps
// have a second's resolution, so the boundary's entries are read again
// and change nothing).
func (c *Client) changeFilter(watermark string) string {
	if watermark == "" {
		return c.cfg.UserFilter
	}
	if n, err := strconv.ParseInt(watermark, 10, 64); err == nil {
		// A USN counts every change up: what is at the mark was read.
		return fmt.Sprintf("(&%s(%s>=%d))", c.cfg.UserFilter, c.cfg.ChangeAttr, n+1)
	}
	return fmt.Sprintf("(&%s(%s>=%s))", c.cfg.UserFilter, c.cfg.ChangeAttr, goldap.EscapeFilter(watermark))
}

// settleMark turns the highest change time read by a sync that started
// at started into the next watermark. Time stamps have a second's
// resolution, so an entry changed later in the mark's own second could
// still come: the mark stays inclusive — unless the mark is more than
// ClockSkew before the sync started, when every entry of that second was
// already written and read, and the mark moves one second on. (USN marks
// are exclusive already.)
func (c *Client) settleMark(m string, started time.Time) string {
	t, err := time.Parse("20060102150405Z0700", m)
	if err != nil {
		return m
	}
	if t.Add(time.Duration(c.cfg.ClockSkew)).Before(started) {
		return t.Add(time.Second).UTC().Format("20060102150405Z")
	}
	return m
}

// laterMark reports whether change value a is after b.
func (c *Client) laterMark(a, b string) bool {
	if b == "" {
		return a != ""
	}
	na, ea := strconv.ParseInt(a, 10, 64)
	nb, eb := strconv.ParseInt(b, 10, 64)
	if ea == nil && eb == nil {
		return na > nb
	}
	return a > b // generalized time: same format sorts as text
}

func (c *Client) userAttrs() []string {
	set := map[string]bool{c.cfg.KeyAttr: true, c.cfg.ChangeAttr: true, "uid": true}
	if c.cfg.DisabledAttr != "" {
		set[c.cfg.DisabledAttr] = true
	}
	if *c.cfg.MemberOf {
		set["memberOf"] = true
	}
	for _, a := range c.cfg.Attributes {
		set[a] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Users streams the directory's users as observations, page by page; only
// one page of entries is held at a time. With a watermark, only entries
// changed since. mark receives the highest change value seen (the next
// watermark; store it only once everything it covers has committed).
func (c *Client) Users(ctx context.Context, groups *GroupIndex, watermark string, mark *string) iter.Seq2[engine.Observation, error] {
	return func(yield func(engine.Observation, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pages := prefetch(ctx, c.pages(ctx, c.cfg.BaseDN, c.scope(), c.changeFilter(watermark), c.userAttrs()))
		for entries, err := range pages {
			if err != nil {
				yield(engine.Observation{}, err)
				return
			}
			for _, e := range entries {
				if v := e.GetAttributeValue(c.cfg.ChangeAttr); mark != nil && c.laterMark(v, *mark) {
					*mark = v
				}
				if !yield(c.observation(e, groups), nil) {
					return
				}
			}
		}
	}
}

// observation maps one user entry.
func (c *Client) observation(e *goldap.Entry, groups *GroupIndex) engine.Observation {
	obs := engine.Observation{Key: c.key(e), Attrs: engine.Attrs{}}
	for canon, attr := range c.cfg.Attributes {
		if v := e.GetEqualFoldAttributeValue(attr); v != "" {
			obs.Attrs[canon] = strings.TrimSpace(v)
		}
	}
	obs.Inactive = c.disabled(e)
	if *c.cfg.Groups {
		obs.Groups = []string{}
		if groups != nil {
			var memberOf []string
			if *c.cfg.MemberOf {
				memberOf = e.GetEqualFoldAttributeValues("memberOf")
			}
			obs.Groups = groups.For(e.DN, e.GetEqualFoldAttributeValue("uid"), memberOf)
		}
	}
	raw := map[string]any{"dn": e.DN}
	for _, a := range e.Attributes {
		name := strings.ToLower(a.Name)
		if strings.Contains(name, "password") || strings.Contains(name, "pwd") && name != strings.ToLower(c.cfg.DisabledAttr) ||
			strings.EqualFold(a.Name, c.cfg.ChangeAttr) || strings.EqualFold(a.Name, c.cfg.KeyAttr) {
			continue // no secrets; no values that change on every write
		}
		if strings.EqualFold(a.Name, "memberOf") {
			continue // in Groups
		}
		if len(a.Values) == 1 {
			raw[a.Name] = a.Values[0]
		} else {
			raw[a.Name] = a.Values
		}
	}
	obs.Raw, _ = json.Marshal(raw)
	if len(obs.Raw) > 200<<10 {
		obs.Raw = nil
	}
	return obs
}

// key is the entry's immutable key: objectGUID as a GUID string (AD byte
// order), other binary keys as hex, text keys as they are.
func (c *Client) key(e *goldap.Entry) string {
	if strings.EqualFold(c.cfg.KeyAttr, "objectGUID") {
		b := e.GetEqualFoldRawAttributeValue(c.cfg.KeyAttr)
		if len(b) == 16 {
			return FormatGUID(b)
		}
		if len(b) > 0 {
			return hex.EncodeToString(b)
		}
		return ""
	}
	return e.GetEqualFoldAttributeValue(c.cfg.KeyAttr)
}

// FormatGUID formats an AD objectGUID (16 bytes, first three fields
// little-endian) as the usual 8-4-4-4-12 string.
func FormatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// disabled reads the profile's disabled marker: the AD userAccountControl
// ACCOUNTDISABLE bit (0x2), or any value (or DisabledValue) of the
// configured attribute.
func (c *Client) disabled(e *goldap.Entry) bool {
	if c.cfg.DisabledAttr == "" {
		return false
	}
	v := e.GetEqualFoldAttributeValue(c.cfg.DisabledAttr)
	if v == "" {
		return false
	}
	if strings.EqualFold(c.cfg.DisabledAttr, "userAccountControl") {
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && n&0x2 != 0
	}
	if c.cfg.DisabledValue != "" {
		return strings.EqualFold(v, c.cfg.DisabledValue)
	}
	return true
}
