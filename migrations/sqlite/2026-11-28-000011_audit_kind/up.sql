-- What each row records: tools/call (every tool call, and every row before kinds existed),
-- or an upstream server's prompts/get, resources/read or completion/complete.
ALTER TABLE audit_logs ADD COLUMN kind TEXT NOT NULL DEFAULT 'tools/call';
