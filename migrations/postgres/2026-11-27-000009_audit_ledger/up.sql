-- Tamper evidence that holds against deletion: an append-only ledger, itself a hash chain, in
-- which every audit chain is registered before its first row is stored and every retention
-- checkpoint is recorded. Deleting a whole chain (rows and head) leaves its ledger entry behind;
-- deleting the entry breaks the ledger's own links; a checkpoint the ledger does not record is
-- ignored by `audit verify`. With AUDIT_HMAC_KEY set, ledger entries, chain heads,
-- checkpoints and set-aside rows carry an HMAC-SHA256 under a key the database never holds.
CREATE TABLE audit_ledger (
    ordinal     BIGINT PRIMARY KEY,     -- 1, 2, 3, … without gaps
    kind        TEXT NOT NULL,          -- chain | checkpoint
    chain_id    TEXT NOT NULL,
    seq         BIGINT NOT NULL,        -- checkpoint: the last removed row's seq; chain: 0
    row_hash    TEXT NOT NULL,          -- checkpoint: that row's hash; chain: ''
    prev_link   TEXT NOT NULL,          -- the previous entry's link ('' for the first)
    link        TEXT NOT NULL,          -- SHA-256 over prev_link and this entry's fields
    mac         TEXT,                   -- HMAC-SHA256 of link under AUDIT_HMAC_KEY, if set
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX audit_ledger_chain ON audit_ledger (chain_id, kind);
ALTER TABLE audit_chain_heads ADD COLUMN mac TEXT;
ALTER TABLE audit_checkpoints ADD COLUMN mac TEXT;
ALTER TABLE audit_set_aside ADD COLUMN mac TEXT;
