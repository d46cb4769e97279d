DROP TABLE audit_logs;
DROP TABLE tools;
