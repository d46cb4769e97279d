ALTER TABLE audit_logs DROP COLUMN arguments_logged;
DROP TABLE audit_checkpoints;
