-- The console's usual audit search (a user's calls of one tool over a time range, newest
-- first) reads this index alone, whatever the table's size.
CREATE INDEX audit_logs_user_tool ON audit_logs (user_id, tool_name, id);
