package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/idsync/idsync/engine"
)

// AdminInvitation is a stored invitation; only the hash of its link's
// token is kept.
type AdminInvitation struct {
	ID         string    `json:"id"`
	OrgID      string    `json:"orgId"`
	Email      string    `json:"email"`
	Role       string    `json:"role"`
	TokenHash  string    `json:"-"`
	CreatedBy  string    `json:"createdBy"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	AcceptedAt time.Time `json:"acceptedAt,omitzero"`
	AcceptedBy string    `json:"acceptedBy,omitempty"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
}

type inviteRow struct {
	ID         string `db:"id"`
	OrgID      string `db:"org_id"`
	Email      string `db:"email"`
	Role       string `db:"role"`
	TokenHash  string `db:"token_hash"`
	CreatedBy  string `db:"created_by"`
	CreatedAt  ts     `db:"created_at"`
	ExpiresAt  ts     `db:"expires_at"`
	AcceptedAt ts     `db:"accepted_at"`
	AcceptedBy string `db:"accepted_by"`
	RevokedAt  ts     `db:"revoked_at"`
}

func (r inviteRow) inv() AdminInvitation {
	return AdminInvitation{ID: r.ID, OrgID: r.OrgID, Email: r.Email, Role: r.Role, TokenHash: r.TokenHash,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.T(), ExpiresAt: r.ExpiresAt.T(), AcceptedAt: r.AcceptedAt.T(),
		AcceptedBy: r.AcceptedBy, RevokedAt: r.RevokedAt.T()}
}

const inviteCols = `id, org_id, email, role, token_hash, created_by, created_at, expires_at, accepted_at, accepted_by, revoked_at`

// AdminPutInvitation stores a new invitation.
func (s *DB) AdminPutInvitation(ctx context.Context, i AdminInvitation) error {
	_, err := s.exec(ctx, "insert invitation", `INSERT INTO admin_invitations (`+inviteCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, i.ID, i.OrgID, i.Email, i.Role, i.TokenHash, i.CreatedBy,
		tsOf(i.CreatedAt), tsOf(i.ExpiresAt), tsOf(i.AcceptedAt), i.AcceptedBy, tsOf(i.RevokedAt))
	return err
}

// AdminInvitationByHash reads an invitation by its token's hash.
func (s *DB) AdminInvitationByHash(ctx context.Context, hash string) (AdminInvitation, error) {
	var r inviteRow
	err := s.get(ctx, "invitation", &r, `SELECT `+inviteCols+` FROM admin_invitations WHERE token_hash = ?`, hash)
	return r.inv(), err
}

// AdminInvitations lists an organization's invitations, newest first.
func (s *DB) AdminInvitations(ctx context.Context, orgID string) ([]AdminInvitation, error) {
	var rows []inviteRow
	if err := s.sel(ctx, "invitations", &rows, `SELECT `+inviteCols+` FROM admin_invitations WHERE org_id = ?
		ORDER BY created_at DESC, id DESC`, orgID); err != nil {
		return nil, err
	}
	out := make([]AdminInvitation, len(rows))
	for i, r := range rows {
		out[i] = r.inv()
	}
	return out, nil
}

// AdminTakeInvitation marks an invitation accepted by identityID, once: of
// two acceptances racing, one wins; a used, revoked or expired invitation
// is ErrConflict.
func (s *DB) AdminTakeInvitation(ctx context.Context, id, identityID string, now time.Time) error {
	r, err := s.exec(ctx, "accept invitation", `UPDATE admin_invitations SET accepted_at = ?, accepted_by = ?
		WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?`, tsOf(now), identityID, id, tsOf(now))
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("invitation %s is used, revoked or expired: %w", id, engine.ErrConflict)
	}
	return nil
}

// AdminUntakeInvitation undoes AdminTakeInvitation when joining failed.
func (s *DB) AdminUntakeInvitation(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "release invitation", `UPDATE admin_invitations SET accepted_at = NULL, accepted_by = '' WHERE id = ?`, id)
	return err
}

// AdminRevokeInvitation revokes an unused invitation.
func (s *DB) AdminRevokeInvitation(ctx context.Context, id string, now time.Time) error {
	r, err := s.exec(ctx, "revoke invitation", `UPDATE admin_invitations SET revoked_at = ? WHERE id = ? AND accepted_at IS NULL
		AND revoked_at IS NULL`, tsOf(now), id)
	if err != nil {
		return err
	}
	return mustAffect(r, "invitation "+id)
}

// AdminPutConsoleSession stores a console session under its cookie's hash.
func (s *DB) AdminPutConsoleSession(ctx context.Context, idHash, tokenID string, now, expires time.Time) error {
	if _, err := s.exec(ctx, "expire console sessions", `DELETE FROM admin_console_sessions WHERE expires_at <= ?`, tsOf(now)); err != nil {
		return err
	}
	_, err := s.exec(ctx, "put console session", `INSERT INTO admin_console_sessions (id_hash, token_id, created_at, expires_at)
		VALUES (?, ?, ?, ?)`, idHash, tokenID, tsOf(now), tsOf(expires))
	return err
}

// AdminConsoleSession returns the token ID of a live console session.
func (s *DB) AdminConsoleSession(ctx context.Context, idHash string, now time.Time) (string, error) {
	var tokenID string
	err := s.get(ctx, "console session", &tokenID, `SELECT token_id FROM admin_console_sessions WHERE id_hash = ? AND expires_at > ?`,
		idHash, tsOf(now))
	return tokenID, err
}

// AdminDeleteConsoleSession ends a console session.
func (s *DB) AdminDeleteConsoleSession(ctx context.Context, idHash string) error {
	_, err := s.exec(ctx, "delete console session", `DELETE FROM admin_console_sessions WHERE id_hash = ?`, idHash)
	return err
}
