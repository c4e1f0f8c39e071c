package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idsync/idsync/engine"
)

// The JIT tables (migration 0004): login sessions, pending logins and the
// SAML replay cache. Package jit declares the interface these methods meet;
// they take plain values so that storage does not import jit.

// JITPutSession stores a login session under the hash of its cookie.
func (s *DB) JITPutSession(ctx context.Context, idHash, identityID, orgID, sourceID string, created, expires time.Time) error {
	_, err := s.exec(ctx, "put session", `INSERT INTO jit_sessions
		(id_hash, identity_id, org_id, source_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		idHash, identityID, orgID, sourceID, tsOf(created), tsOf(expires))
	return err
}

// JITSession reads a live session; an expired or unknown one is ErrNotFound.
func (s *DB) JITSession(ctx context.Context, idHash string, now time.Time) (identityID, orgID, sourceID string, expires time.Time, err error) {
	var row struct {
		IdentityID string `db:"identity_id"`
		OrgID      string `db:"org_id"`
		SourceID   string `db:"source_id"`
		ExpiresAt  ts     `db:"expires_at"`
	}
	err = s.get(ctx, "session", &row, `SELECT identity_id, org_id, source_id, expires_at
		FROM jit_sessions WHERE id_hash = ? AND expires_at > ?`, idHash, tsOf(now))
	return row.IdentityID, row.OrgID, row.SourceID, row.ExpiresAt.T(), err
}

// JITDeleteSession ends a session (no error when it is already gone), and
// drops expired sessions on the way.
func (s *DB) JITDeleteSession(ctx context.Context, idHash string, now time.Time) error {
	if _, err := s.exec(ctx, "delete session", `DELETE FROM jit_sessions WHERE id_hash = ? OR expires_at <= ?`,
		idHash, tsOf(now)); err != nil {
		return err
	}
	return nil
}

// JITPutLoginState stores a pending login under the hash of its state.
func (s *DB) JITPutLoginState(ctx context.Context, idHash string, data []byte, expires, now time.Time) error {
	if _, err := s.exec(ctx, "expire login states", `DELETE FROM jit_login_states WHERE expires_at <= ?`, tsOf(now)); err != nil {
		return err
	}
	_, err := s.exec(ctx, "put login state", `INSERT INTO jit_login_states (id_hash, data, expires_at) VALUES (?, ?, ?)`,
		idHash, string(data), tsOf(expires))
	return err
}

// JITTakeLoginState reads and deletes a pending login in one step: of two
// callbacks racing with the same state, one wins and the other gets
// ErrNotFound. An expired state is ErrNotFound.
func (s *DB) JITTakeLoginState(ctx context.Context, idHash string, now time.Time) ([]byte, error) {
	var row struct {
		Data      string `db:"data"`
		ExpiresAt ts     `db:"expires_at"`
	}
	err := s.InTx(ctx, func(tx engine.Tx) error {
		c := tx.(*txConn)
		if err := c.get(ctx, "login state", &row, `SELECT data, expires_at FROM jit_login_states WHERE id_hash = ?`, idHash); err != nil {
			return err
		}
		r, err := c.exec(ctx, "take login state", `DELETE FROM jit_login_states WHERE id_hash = ?`, idHash)
		if err != nil {
			return err
		}
		return mustAffect(r, "take login state")
	})
	if err != nil {
		return nil, err
	}
	if !row.ExpiresAt.T().After(now) {
		return nil, fmt.Errorf("login state expired: %w", engine.ErrNotFound)
	}
	return []byte(row.Data), nil
}

// JITConsumeAssertion records a SAML assertion ID until expires; an ID
// already recorded (by any process on this database) is ErrExists.
func (s *DB) JITConsumeAssertion(ctx context.Context, assertionID string, expires, now time.Time) error {
	if _, err := s.exec(ctx, "expire assertion ids", `DELETE FROM jit_saml_assertions WHERE expires_at <= ?`, tsOf(now)); err != nil {
		return err
	}
	_, err := s.exec(ctx, "consume assertion id", `INSERT INTO jit_saml_assertions (assertion_id, expires_at) VALUES (?, ?)`,
		assertionID, tsOf(expires))
	if errors.Is(err, engine.ErrExists) {
		return fmt.Errorf("assertion %q was already used: %w", assertionID, engine.ErrExists)
	}
	return err
}
