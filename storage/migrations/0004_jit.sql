-- JIT login state shared by every idsync process on this database:
-- browser sessions (only a hash of the cookie is stored), pending logins
-- (OIDC state, nonce and PKCE verifier; SAML request IDs), and the SAML
-- assertion-ID replay cache.
CREATE TABLE jit_sessions (
    id_hash     TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
) /*sqlite:WITHOUT ROWID*/;
CREATE INDEX jit_sessions_identity ON jit_sessions (identity_id);
CREATE INDEX jit_sessions_expires ON jit_sessions (expires_at);

CREATE TABLE jit_login_states (
    id_hash    TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
) /*sqlite:WITHOUT ROWID*/;
CREATE INDEX jit_login_states_expires ON jit_login_states (expires_at);

CREATE TABLE jit_saml_assertions (
    assertion_id TEXT PRIMARY KEY,
    expires_at   BIGINT NOT NULL
) /*sqlite:WITHOUT ROWID*/;
CREATE INDEX jit_saml_assertions_expires ON jit_saml_assertions (expires_at);
