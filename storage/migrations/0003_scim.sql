-- SCIM 2.0 service provider (package scim): each directory's resources
-- exactly as the directory wrote them (doc, without id, meta and password),
-- and group members one row each so that adding or removing one member of a
-- large group touches one row.

CREATE TABLE scim_resources (
    source_id         TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    type              TEXT NOT NULL,            -- User, Group
    id                TEXT NOT NULL,
    external_id       TEXT,                     -- caseExact (RFC 7643 §3.1)
    user_name_norm    TEXT,                     -- lower-cased userName (users)
    display_name_norm TEXT,                     -- lower-cased displayName
    doc               TEXT NOT NULL,
    version           BIGINT NOT NULL,
    created           BIGINT NOT NULL,
    modified          BIGINT NOT NULL,
    PRIMARY KEY (source_id, type, id)
) /*sqlite:WITHOUT ROWID*/;
CREATE UNIQUE INDEX scim_resources_user_name ON scim_resources (source_id, type, user_name_norm);
CREATE UNIQUE INDEX scim_resources_group_name ON scim_resources (source_id, display_name_norm) WHERE type = 'Group';
CREATE INDEX scim_resources_external_id ON scim_resources (source_id, type, external_id);
CREATE INDEX scim_resources_display_name ON scim_resources (source_id, type, display_name_norm);

CREATE TABLE scim_members (
    source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL,
    member_id TEXT NOT NULL,
    display   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (source_id, group_id, member_id)
) /*sqlite:WITHOUT ROWID*/;
CREATE INDEX scim_members_member ON scim_members (source_id, member_id);
