ALTER TABLE audit_set_aside DROP COLUMN mac;
ALTER TABLE audit_checkpoints DROP COLUMN mac;
ALTER TABLE audit_chain_heads DROP COLUMN mac;
DROP TABLE audit_ledger;
