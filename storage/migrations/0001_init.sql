-- idsync graph, first version. Runs unchanged on SQLite and PostgreSQL.
-- Times are Unix microseconds (UTC) in BIGINT columns; JSON is kept as TEXT
-- exactly as written (so what a source sent reads back byte for byte).
-- "/*sqlite:X*/" is X on SQLite only and "/*pg:X*/" X on PostgreSQL only.
-- Tables of small rows keyed by text are WITHOUT ROWID on SQLite (one b-tree
-- instead of table + key index); tables of large rows keep the rowid.

CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    roles        TEXT NOT NULL DEFAULT '[]',
    default_role TEXT NOT NULL DEFAULT '',
    settings     TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
) /*sqlite:WITHOUT ROWID*/;

CREATE TABLE org_domains (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain     TEXT NOT NULL,
    verified   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, domain)
) /*sqlite:WITHOUT ROWID*/;
-- A verified domain belongs to one organization only.
CREATE UNIQUE INDEX org_domains_verified ON org_domains (domain) WHERE verified;

CREATE TABLE sources (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 100,
    owns          TEXT NOT NULL DEFAULT '[]',
    authoritative BOOLEAN NOT NULL,
    trust_emails  BOOLEAN NOT NULL DEFAULT FALSE,
    config        TEXT NOT NULL DEFAULT '{}',
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (org_id, name)
) /*sqlite:WITHOUT ROWID*/;

CREATE TABLE identities (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    state                TEXT NOT NULL,
    suspended            BOOLEAN NOT NULL DEFAULT FALSE,
    suspend_reason       TEXT NOT NULL DEFAULT '',
    attrs                TEXT NOT NULL DEFAULT '{}',
    provenance           TEXT NOT NULL DEFAULT '{}',
    -- lower-cased copies of the matching attributes
    email_norm           TEXT,
    user_name_norm       TEXT,
    external_id_norm     TEXT,
    employee_number_norm TEXT,
    version              BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    first_login_at       BIGINT,
    last_login_at        BIGINT
);
CREATE INDEX identities_email ON identities (email_norm);
CREATE INDEX identities_user_name ON identities (user_name_norm);
CREATE INDEX identities_external_id ON identities (external_id_norm);
CREATE INDEX identities_employee_number ON identities (employee_number_norm);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    source_id      TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL,
    identity_id    TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    source_key     TEXT NOT NULL,
    attrs          TEXT NOT NULL DEFAULT '{}',
    raw            TEXT,
    groups         TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    hash           TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    removed        BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    changed_at     BIGINT NOT NULL,
    UNIQUE (source_id, source_key)
);
CREATE INDEX accounts_identity ON accounts (identity_id);

CREATE TABLE org_groups (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    name_norm  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name_norm)
) /*sqlite:WITHOUT ROWID*/;

-- One row per source that asserts an edge: a source revokes only its own.
CREATE TABLE group_memberships (
    group_id    TEXT NOT NULL REFERENCES org_groups (id) ON DELETE CASCADE,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (group_id, identity_id, source_id)
) /*sqlite:WITHOUT ROWID*/;
CREATE INDEX group_memberships_identity ON group_memberships (identity_id);

CREATE TABLE org_memberships (
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    roles       TEXT NOT NULL DEFAULT '[]',
    granted_via TEXT NOT NULL,
    source_id   TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, identity_id)
) /*sqlite:WITHOUT ROWID*/;
CREATE INDEX org_memberships_identity ON org_memberships (identity_id);

CREATE TABLE conflicts (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL,
    source_key  TEXT NOT NULL,
    rule        TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    candidates  TEXT NOT NULL DEFAULT '[]',
    observation TEXT NOT NULL,
    status      TEXT NOT NULL,
    resolution  TEXT NOT NULL DEFAULT '',
    resolved_by TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE UNIQUE INDEX conflicts_open ON conflicts (source_id, source_key) WHERE status = 'open';
CREATE INDEX conflicts_org ON conflicts (org_id, status);

CREATE TABLE audit_events (
    seq            /*sqlite:INTEGER*//*pg:BIGINT*/ PRIMARY KEY, -- the rowid on SQLite
    id             TEXT NOT NULL,
    at             BIGINT NOT NULL,
    org_id         TEXT NOT NULL DEFAULT '',
    channel        TEXT NOT NULL,
    source_id      TEXT NOT NULL DEFAULT '',
    actor          TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    subject_type   TEXT NOT NULL DEFAULT '',
    subject_id     TEXT NOT NULL DEFAULT '',
    identity_id    TEXT NOT NULL DEFAULT '',
    changes        TEXT,
    correlation_id TEXT NOT NULL DEFAULT '',
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_id, seq);
CREATE INDEX audit_events_identity ON audit_events (identity_id, seq);

-- The chain's head: appenders lock this row, so events chain in one order
-- even with several idsync processes on one database.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    schedule    TEXT NOT NULL DEFAULT '',
    time_zone   TEXT NOT NULL DEFAULT '',
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    threshold   DOUBLE PRECISION NOT NULL DEFAULT 0,
    config      TEXT NOT NULL DEFAULT '{}',
    watermark   TEXT NOT NULL DEFAULT '',
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_run_at BIGINT,
    next_run_at BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
) /*sqlite:WITHOUT ROWID*/;

CREATE TABLE job_runs (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    dry_run     BOOLEAN NOT NULL DEFAULT FALSE,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    counts      TEXT NOT NULL DEFAULT '{}',
    error       TEXT NOT NULL DEFAULT '',
    plan        TEXT
);
CREATE INDEX job_runs_job ON job_runs (job_id, started_at);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    org_id     TEXT NOT NULL DEFAULT '',
    source_id  TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
) /*sqlite:WITHOUT ROWID*/;
