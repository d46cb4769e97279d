-- Rows the database refused even after they were made storable, set aside one by one (the
-- batch is split to find them) so they never hold back the rows behind them. The row itself is
-- kept whole as base64 of its JSON (always storable), with its place in its chain: `audit
-- verify` walks through it as if it were in `audit_logs`, checking its hash.
CREATE TABLE audit_set_aside (
    id          TEXT PRIMARY KEY,
    chain_id    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    row_hash    TEXT NOT NULL,
    row_b64     TEXT NOT NULL,
    error       TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX audit_set_aside_chain ON audit_set_aside (chain_id, seq);
