-- Tamper evidence: rows form hash chains (one per writer run), in sequence.
ALTER TABLE audit_logs ADD COLUMN chain_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_logs ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_logs ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_logs ADD COLUMN row_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_logs_chain ON audit_logs (chain_id, seq);
