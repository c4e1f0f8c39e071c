-- Audit export filters by action and channel; tokens remember their last use;
-- the snapshot sweep reads a source's live accounts by key.
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_channel ON audit_events (channel, seq);
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
CREATE INDEX accounts_source_live ON accounts (source_id, removed, source_key);
