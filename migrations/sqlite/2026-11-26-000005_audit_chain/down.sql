DROP INDEX audit_logs_chain;
ALTER TABLE audit_logs DROP COLUMN row_hash;
ALTER TABLE audit_logs DROP COLUMN prev_hash;
ALTER TABLE audit_logs DROP COLUMN seq;
ALTER TABLE audit_logs DROP COLUMN chain_id;
