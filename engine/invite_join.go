package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

// GrantedViaInvitation is the OrgMembership.GrantedVia of people who joined
// by accepting an invitation.
const GrantedViaInvitation = "invitation"

// JoinByInvitation makes identityID a member of orgID with role, granted
// via an invitation (package admin keeps the invitations and calls this
// once one is accepted), audited as org.joined with via "invitation". A
// person already a member keeps their membership; the role is added if
// missing (org.roles_changed).
func (e *Engine) JoinByInvitation(ctx context.Context, by Admin, orgID, identityID, role, invitationID string) (OrgMembership, error) {
	var out OrgMembership
	err := e.inTx(ctx, func(tx Tx) error {
		org, err := tx.Organization(ctx, orgID)
		if err != nil {
			return err
		}
		if role == "" {
			role = org.DefaultRole
		}
		if !slices.Contains(org.Roles, role) {
			return fmt.Errorf("role %q is not one of %v: %w", role, org.Roles, ErrInvalid)
		}
		ident, err := tx.Identity(ctx, identityID)
		if err != nil {
			return err
		}
		if ident.State == reconcile.StateDeprovisioned || ident.Suspended {
			return fmt.Errorf("identity %s is %s: %w", identityID, ident.State, ErrForbidden)
		}
		now := e.now()
		ch := e.newChange(now, orgID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		m, ok, err := tx.OrgMembership(ctx, orgID, identityID)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			m = OrgMembership{OrgID: orgID, IdentityID: identityID, Roles: []string{role}, GrantedVia: GrantedViaInvitation, CreatedAt: now}
			if err := tx.UpsertOrgMembership(ctx, m); err != nil {
				return err
			}
			ch.add("org.joined", "organization", orgID, identityID, map[string]any{"roles": m.Roles, "via": GrantedViaInvitation,
				"invitation": invitationID})
		case !slices.Contains(m.Roles, role):
			before := strings.Join(m.Roles, ",")
			m.Roles = append(slices.Clone(m.Roles), role)
			slices.Sort(m.Roles)
			if err := tx.UpsertOrgMembership(ctx, m); err != nil {
				return err
			}
			ch.add("org.roles_changed", "organization", orgID, identityID, map[string]any{"invitation": invitationID,
				"changes": []map[string]string{{"field": "roles", "before": before, "after": strings.Join(m.Roles, ",")}}})
		}
		out = m
		return ch.flush(ctx, tx, false)
	})
	return out, err
}

// AuditInvitation records an invitation's lifecycle (invitation.created,
// invitation.revoked) in the audit log. Details must never hold the
// invitation's secret.
func (e *Engine) AuditInvitation(ctx context.Context, by Admin, orgID, action, invitationID string, details map[string]any) error {
	if !strings.HasPrefix(action, "invitation.") {
		return fmt.Errorf("action %q is not an invitation action: %w", action, ErrInvalid)
	}
	return e.inTx(ctx, func(tx Tx) error {
		ch := e.newChange(e.now(), orgID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		ch.add(action, "invitation", invitationID, "", details)
		return ch.flush(ctx, tx, false)
	})
}
