-- The newest stored row of each hash chain, written in the same statement/transaction as the
-- rows: `audit verify` compares each chain's end with it, so deleting a chain's newest rows is
-- found too.
CREATE TABLE audit_chain_heads (
    chain_id   TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    row_hash   TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
