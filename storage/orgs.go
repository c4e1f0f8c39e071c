package storage

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/idsync/idsync/engine"
)

type orgRow struct {
	ID          string `db:"id"`
	Slug        string `db:"slug"`
	Name        string `db:"name"`
	Roles       string `db:"roles"`
	DefaultRole string `db:"default_role"`
	Settings    string `db:"settings"`
	CreatedAt   ts     `db:"created_at"`
	UpdatedAt   ts     `db:"updated_at"`
}

func (r orgRow) org() engine.Organization {
	o := engine.Organization{ID: r.ID, Slug: r.Slug, Name: r.Name, DefaultRole: r.DefaultRole,
		CreatedAt: r.CreatedAt.T(), UpdatedAt: r.UpdatedAt.T()}
	fromJSON(r.Roles, &o.Roles)
	fromJSON(r.Settings, &o.Settings)
	return o
}

const orgCols = `id, slug, name, roles, default_role, settings, created_at, updated_at`

func (c conn) Organization(ctx context.Context, id string) (engine.Organization, error) {
	var r orgRow
	err := c.get(ctx, "organization "+id, &r, `SELECT `+orgCols+` FROM organizations WHERE id = ?`, id)
	return r.org(), err
}

func (c conn) OrganizationBySlug(ctx context.Context, slug string) (engine.Organization, error) {
	var r orgRow
	err := c.get(ctx, "organization "+slug, &r, `SELECT `+orgCols+` FROM organizations WHERE slug = ?`, slug)
	return r.org(), err
}

func (c conn) Organizations(ctx context.Context) ([]engine.Organization, error) {
	var rows []orgRow
	if err := c.sel(ctx, "organizations", &rows, `SELECT `+orgCols+` FROM organizations ORDER BY slug`); err != nil {
		return nil, err
	}
	out := make([]engine.Organization, len(rows))
	for i, r := range rows {
		out[i] = r.org()
	}
	return out, nil
}

func (c txConn) CreateOrganization(ctx context.Context, o engine.Organization) error {
	_, err := c.exec(ctx, "create organization "+o.Slug, `INSERT INTO organizations (`+orgCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.Slug, o.Name, jsonOf(nonNil(o.Roles)), o.DefaultRole, jsonOf(o.Settings), tsOf(o.CreatedAt), tsOf(o.UpdatedAt))
	return err
}

func (c txConn) UpdateOrganization(ctx context.Context, o engine.Organization) error {
	r, err := c.exec(ctx, "update organization "+o.Slug, `UPDATE organizations SET slug = ?, name = ?, roles = ?, default_role = ?, settings = ?, updated_at = ? WHERE id = ?`,
		o.Slug, o.Name, jsonOf(nonNil(o.Roles)), o.DefaultRole, jsonOf(o.Settings), tsOf(o.UpdatedAt), o.ID)
	if err != nil {
		return err
	}
	return mustAffect(r, "update organization "+o.ID)
}

type domainRow struct {
	OrgID     string `db:"org_id"`
	Domain    string `db:"domain"`
	Verified  bool   `db:"verified"`
	CreatedAt ts     `db:"created_at"`
}

func (r domainRow) domain() engine.Domain {
	return engine.Domain{OrgID: r.OrgID, Domain: r.Domain, Verified: r.Verified, CreatedAt: r.CreatedAt.T()}
}

func (c conn) Domains(ctx context.Context, orgID string) ([]engine.Domain, error) {
	var rows []domainRow
	if err := c.sel(ctx, "domains", &rows, `SELECT org_id, domain, verified, created_at FROM org_domains WHERE org_id = ? ORDER BY domain`, orgID); err != nil {
		return nil, err
	}
	out := make([]engine.Domain, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

func (c conn) DomainOwner(ctx context.Context, domain string) (engine.Domain, error) {
	var r domainRow
	err := c.get(ctx, "verified domain "+domain, &r, `SELECT org_id, domain, verified, created_at FROM org_domains WHERE domain = ? AND verified = ?`,
		strings.ToLower(domain), true)
	return r.domain(), err
}

func (c txConn) AddDomain(ctx context.Context, d engine.Domain) error {
	_, err := c.exec(ctx, "add domain "+d.Domain, `INSERT INTO org_domains (org_id, domain, verified, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (org_id, domain) DO UPDATE SET verified = excluded.verified`,
		d.OrgID, strings.ToLower(d.Domain), d.Verified, tsOf(d.CreatedAt))
	return err
}

func (c txConn) RemoveDomain(ctx context.Context, orgID, domain string) error {
	r, err := c.exec(ctx, "remove domain "+domain, `DELETE FROM org_domains WHERE org_id = ? AND domain = ?`, orgID, strings.ToLower(domain))
	if err != nil {
		return err
	}
	return mustAffect(r, "remove domain "+domain)
}

type sourceRow struct {
	ID            string `db:"id"`
	OrgID         string `db:"org_id"`
	Kind          string `db:"kind"`
	Name          string `db:"name"`
	Priority      int    `db:"priority"`
	Owns          string `db:"owns"`
	Authoritative bool   `db:"authoritative"`
	TrustEmails   bool   `db:"trust_emails"`
	Config        string `db:"config"`
	Enabled       bool   `db:"enabled"`
	CreatedAt     ts     `db:"created_at"`
	UpdatedAt     ts     `db:"updated_at"`
}

func (r sourceRow) source() engine.Source {
	s := engine.Source{ID: r.ID, OrgID: r.OrgID, Kind: engine.SourceKind(r.Kind), Name: r.Name, Priority: r.Priority,
		Authoritative: r.Authoritative, TrustEmails: r.TrustEmails, Enabled: r.Enabled,
		CreatedAt: r.CreatedAt.T(), UpdatedAt: r.UpdatedAt.T()}
	fromJSON(r.Owns, &s.Owns)
	if r.Config != "" && r.Config != "{}" {
		s.Config = json.RawMessage(r.Config)
	}
	return s
}

const sourceCols = `id, org_id, kind, name, priority, owns, authoritative, trust_emails, config, enabled, created_at, updated_at`

func (c conn) Source(ctx context.Context, id string) (engine.Source, error) {
	var r sourceRow
	err := c.get(ctx, "source "+id, &r, `SELECT `+sourceCols+` FROM sources WHERE id = ?`, id)
	return r.source(), err
}

func (c conn) SourceByName(ctx context.Context, orgID, name string) (engine.Source, error) {
	var r sourceRow
	err := c.get(ctx, "source "+name, &r, `SELECT `+sourceCols+` FROM sources WHERE org_id = ? AND name = ?`, orgID, name)
	return r.source(), err
}

func (c conn) Sources(ctx context.Context, orgID string) ([]engine.Source, error) {
	var rows []sourceRow
	if err := c.sel(ctx, "sources", &rows, `SELECT `+sourceCols+` FROM sources WHERE org_id = ? ORDER BY priority, name`, orgID); err != nil {
		return nil, err
	}
	out := make([]engine.Source, len(rows))
	for i, r := range rows {
		out[i] = r.source()
	}
	return out, nil
}

func configText(b json.RawMessage) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

func (c txConn) CreateSource(ctx context.Context, s engine.Source) error {
	_, err := c.exec(ctx, "create source "+s.Name, `INSERT INTO sources (`+sourceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.OrgID, string(s.Kind), s.Name, s.Priority, jsonOf(nonNil(s.Owns)), s.Authoritative, s.TrustEmails,
		configText(s.Config), s.Enabled, tsOf(s.CreatedAt), tsOf(s.UpdatedAt))
	return err
}

func (c txConn) UpdateSource(ctx context.Context, s engine.Source) error {
	r, err := c.exec(ctx, "update source "+s.Name, `UPDATE sources SET name = ?, priority = ?, owns = ?, authoritative = ?, trust_emails = ?, config = ?, enabled = ?, updated_at = ? WHERE id = ?`,
		s.Name, s.Priority, jsonOf(nonNil(s.Owns)), s.Authoritative, s.TrustEmails, configText(s.Config), s.Enabled, tsOf(s.UpdatedAt), s.ID)
	if err != nil {
		return err
	}
	return mustAffect(r, "update source "+s.ID)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
