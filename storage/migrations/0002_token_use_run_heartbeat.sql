-- Tokens remember their last use; job runs keep a heartbeat so a run whose
-- process died can be told from one still going.
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE job_runs ADD COLUMN heartbeat_at BIGINT;
