-- Which front door the call came through: rest, streamable_http, sse.
ALTER TABLE audit_logs ADD COLUMN transport TEXT NOT NULL DEFAULT 'rest';
