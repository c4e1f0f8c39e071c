package admin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// Mailer sends one plain-text mail.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// SMTPConfig configures invitation mail. Secrets are never in the file:
// PasswordEnv names the variable holding the SMTP password.
//
//	smtp:
//	  addr: smtp.example.com:587   # empty: development mode
//	  from: idsync <noreply@example.com>
//	  username: idsync
//	  passwordEnv: IDSYNC_SMTP_PASSWORD
//
// In development mode (no addr) mails are written to the log, body
// included, so that the invitation link reaches the developer: never use
// it in production, where links are bearer secrets.
type SMTPConfig struct {
	Addr        string `json:"addr"`
	From        string `json:"from"`
	Username    string `json:"username"`
	PasswordEnv string `json:"passwordEnv"`
}

// SMTPConfigFromEnv reads IDSYNC_SMTP_ADDR, _FROM, _USERNAME and the
// password variable IDSYNC_SMTP_PASSWORD.
func SMTPConfigFromEnv() SMTPConfig {
	return SMTPConfig{Addr: os.Getenv("IDSYNC_SMTP_ADDR"), From: os.Getenv("IDSYNC_SMTP_FROM"),
		Username: os.Getenv("IDSYNC_SMTP_USERNAME"), PasswordEnv: "IDSYNC_SMTP_PASSWORD"}
}

// Validate reports every problem at once.
func (c SMTPConfig) Validate() error {
	var probs []string
	if c.Addr != "" {
		if !strings.Contains(c.Addr, ":") {
			probs = append(probs, fmt.Sprintf("smtp.addr %q needs a port (host:587)", c.Addr))
		}
		if _, err := mail.ParseAddress(c.From); err != nil {
			probs = append(probs, fmt.Sprintf("smtp.from %q is not a mail address", c.From))
		}
		if c.Username != "" && c.PasswordEnv == "" {
			probs = append(probs, "smtp.passwordEnv must name the variable holding the password")
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("smtp: %s: %w", strings.Join(probs, "; "), engine.ErrInvalid)
	}
	return nil
}

// NewMailer returns an SMTP mailer, or the development log mailer when no
// address is configured.
func NewMailer(c SMTPConfig, log *slog.Logger) (Mailer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Addr == "" {
		return LogMailer{Log: log}, nil
	}
	return smtpMailer{c: c}, nil
}

// LogMailer is development mode: it writes each mail, body included, to
// the log.
type LogMailer struct{ Log *slog.Logger }

// Send logs the mail.
func (m LogMailer) Send(ctx context.Context, to, subject, body string) error {
	if m.Log != nil {
		m.Log.Warn("mail (development mode: not sent, logged)", "to", to, "subject", subject, "body", body)
	}
	return nil
}

type smtpMailer struct{ c SMTPConfig }

func (m smtpMailer) Send(ctx context.Context, to, subject, body string) error {
	host, _, _ := strings.Cut(m.c.Addr, ":")
	var auth smtp.Auth
	if m.c.Username != "" {
		auth = smtp.PlainAuth("", m.c.Username, os.Getenv(m.c.PasswordEnv), host)
	}
	from, err := mail.ParseAddress(m.c.From)
	if err != nil {
		return fmt.Errorf("smtp from: %w", engine.ErrInvalid)
	}
	msg := "From: " + m.c.From + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n")
	if err := smtp.SendMail(m.c.Addr, auth, from.Address, []string{to}, []byte(msg)); err != nil {
		return fmt.Errorf("send invitation mail: %v: %w", err, engine.ErrUnavailable)
	}
	return nil
}

// InviteStore is what invitations need of the store.
type InviteStore interface {
	AdminPutInvitation(ctx context.Context, i storage.AdminInvitation) error
	AdminInvitationByHash(ctx context.Context, hash string) (storage.AdminInvitation, error)
	AdminInvitations(ctx context.Context, orgID string) ([]storage.AdminInvitation, error)
	AdminTakeInvitation(ctx context.Context, id, identityID string, now time.Time) error
	AdminUntakeInvitation(ctx context.Context, id string) error
	AdminRevokeInvitation(ctx context.Context, id string, now time.Time) error
}

// Invitations invites people by email to an organization with a role. The
// link carries a single-use random token; only its hash is stored; it
// expires after TTL. Accepting it after a login joins the organization
// through the engine (JoinByInvitation, audited org.joined via invitation).
type Invitations struct {
	E       *engine.Engine
	Store   InviteStore
	Mailer  Mailer
	BaseURL string        // e.g. https://idsync.example.com
	TTL     time.Duration // default 7 days
	Now     func() time.Time
}

func (iv *Invitations) now() time.Time {
	if iv.Now != nil {
		return iv.Now().UTC()
	}
	return time.Now().UTC()
}

// AcceptPath is where invitation links point (served by the console).
const AcceptPath = "/console/invite"

// Invite creates an invitation, mails its link and returns both (the link
// once: it is a bearer secret).
func (iv *Invitations) Invite(ctx context.Context, by engine.Admin, orgID, email, role string) (storage.AdminInvitation, string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" {
		return storage.AdminInvitation{}, "", fmt.Errorf("email %q is not a mail address: %w", email, engine.ErrInvalid)
	}
	org, err := iv.E.Store().Organization(ctx, orgID)
	if err != nil {
		return storage.AdminInvitation{}, "", err
	}
	if role == "" {
		role = org.DefaultRole
	}
	if !containsStr(org.Roles, role) {
		return storage.AdminInvitation{}, "", fmt.Errorf("role %q is not one of %v: %w", role, org.Roles, engine.ErrInvalid)
	}
	ttl := iv.TTL
	if ttl == 0 {
		ttl = 7 * 24 * time.Hour
	}
	secret, hash := engine.NewSecret("idsi")
	now := iv.now()
	inv := storage.AdminInvitation{ID: uuid.Must(uuid.NewV7()).String(), OrgID: orgID, Email: strings.ToLower(addr.Address),
		Role: role, TokenHash: hash, CreatedBy: by.Actor, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := iv.Store.AdminPutInvitation(ctx, inv); err != nil {
		return inv, "", err
	}
	if err := iv.E.AuditInvitation(ctx, by, orgID, "invitation.created", inv.ID, map[string]any{"email": inv.Email,
		"role": role, "expiresAt": inv.ExpiresAt}); err != nil {
		return inv, "", err
	}
	link := strings.TrimRight(iv.BaseURL, "/") + AcceptPath + "?token=" + url.QueryEscape(secret)
	body := fmt.Sprintf("You are invited to join %s as %s.\n\nAccept (after signing in) before %s:\n%s\n\nThe link works once.\n",
		org.Name, role, inv.ExpiresAt.Format(time.RFC1123), link)
	if iv.Mailer != nil {
		if err := iv.Mailer.Send(ctx, inv.Email, "Invitation to "+org.Name, body); err != nil {
			return inv, link, err
		}
	}
	return inv, link, nil
}

// Lookup returns the live invitation a token belongs to.
func (iv *Invitations) Lookup(ctx context.Context, token string) (storage.AdminInvitation, error) {
	inv, err := iv.Store.AdminInvitationByHash(ctx, engine.HashSecret(token))
	if err != nil {
		return inv, fmt.Errorf("invitation: %w", engine.ErrNotFound)
	}
	switch now := iv.now(); {
	case !inv.AcceptedAt.IsZero():
		return inv, fmt.Errorf("this invitation was already used: %w", engine.ErrConflict)
	case !inv.RevokedAt.IsZero():
		return inv, fmt.Errorf("this invitation was revoked: %w", engine.ErrConflict)
	case !now.Before(inv.ExpiresAt):
		return inv, fmt.Errorf("this invitation expired: %w", engine.ErrConflict)
	}
	return inv, nil
}

// Accept uses an invitation for the signed-in identityID: once, before it
// expires.
func (iv *Invitations) Accept(ctx context.Context, token, identityID string) (engine.OrgMembership, error) {
	inv, err := iv.Lookup(ctx, token)
	if err != nil {
		return engine.OrgMembership{}, err
	}
	if err := iv.Store.AdminTakeInvitation(ctx, inv.ID, identityID, iv.now()); err != nil {
		return engine.OrgMembership{}, err
	}
	m, err := iv.E.JoinByInvitation(ctx, engine.Admin{Actor: "identity:" + identityID}, inv.OrgID, identityID, inv.Role, inv.ID)
	if err != nil {
		_ = iv.Store.AdminUntakeInvitation(context.WithoutCancel(ctx), inv.ID)
		return m, err
	}
	return m, nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// --- API handlers

func (h *Handler) invitations() *Invitations {
	if h.opts.Invitations != nil {
		return h.opts.Invitations
	}
	return &Invitations{E: h.e, Store: h.st, Mailer: LogMailer{Log: h.log}}
}

// NewInvitation is a created invitation with its link, shown once.
type NewInvitation struct {
	storage.AdminInvitation
	Link string `json:"link"`
}

func (h *Handler) createInvitation(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	inv, link, err := h.invitations().Invite(r.Context(), by(r, tok), o.ID, in.Email, in.Role)
	if err != nil {
		return err
	}
	return created(w, NewInvitation{AdminInvitation: inv, Link: link})
}

func (h *Handler) listInvitations(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	is, err := h.st.AdminInvitations(r.Context(), o.ID)
	if err != nil {
		return err
	}
	return ok(w, list(is))
}

func (h *Handler) revokeInvitation(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	is, err := h.st.AdminInvitations(r.Context(), o.ID)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	found := false
	for _, i := range is {
		found = found || i.ID == id
	}
	if !found {
		return fmt.Errorf("invitation %s: %w", id, engine.ErrNotFound)
	}
	if err := h.st.AdminRevokeInvitation(r.Context(), id, time.Now().UTC()); err != nil {
		return err
	}
	if err := h.e.AuditInvitation(r.Context(), by(r, tok), o.ID, "invitation.revoked", id, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
