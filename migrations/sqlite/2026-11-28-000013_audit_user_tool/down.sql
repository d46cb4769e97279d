DROP INDEX audit_logs_user_tool;
