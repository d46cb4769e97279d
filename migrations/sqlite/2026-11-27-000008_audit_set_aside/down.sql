DROP TABLE audit_set_aside;
