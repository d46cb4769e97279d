-- Where each chain resumes after retention removed its oldest rows, so what remains verifies.
CREATE TABLE audit_checkpoints (
    chain_id   TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    row_hash   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- Arguments the policy chose to record (after masking), as JSON.
ALTER TABLE audit_logs ADD COLUMN arguments_logged TEXT;
