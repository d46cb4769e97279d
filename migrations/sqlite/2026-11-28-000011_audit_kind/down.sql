ALTER TABLE audit_logs DROP COLUMN kind;
