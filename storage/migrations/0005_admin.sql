-- Admin API: per-organization webhooks, their delivery log, invitations and
-- console sessions.

CREATE TABLE admin_webhooks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    actions         TEXT NOT NULL DEFAULT '[]',
    cursor_seq      BIGINT NOT NULL,
    status          TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX admin_webhooks_org ON admin_webhooks (org_id);
CREATE TABLE admin_deliveries (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL REFERENCES admin_webhooks (id) ON DELETE CASCADE,
    event_seq   BIGINT NOT NULL,
    attempt     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    at          BIGINT NOT NULL,
    duration_us BIGINT NOT NULL
);
CREATE INDEX admin_deliveries_webhook ON admin_deliveries (webhook_id, at);
CREATE TABLE admin_invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT NOT NULL DEFAULT '',
    revoked_at  BIGINT
);
CREATE INDEX admin_invitations_org ON admin_invitations (org_id, created_at);
CREATE TABLE admin_console_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
