-- MCP sessions shared by replicas when no Redis is configured (with REDIS_URL they live in
-- Redis). `key` is the SHA-256 of the session id, never the id.
CREATE TABLE mcp_sessions (
    key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    version TEXT NOT NULL,
    transport TEXT NOT NULL,
    holder TEXT NOT NULL DEFAULT '',
    client TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX mcp_sessions_user ON mcp_sessions (user_id, expires_at);
CREATE INDEX mcp_sessions_expires ON mcp_sessions (expires_at);

-- Messages between replicas too large (or not text) for a NOTIFY payload: the notification
-- names the row; rows are removed after a minute.
CREATE TABLE mcp_bus_messages (
    id BIGSERIAL PRIMARY KEY,
    payload BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX mcp_bus_messages_created ON mcp_bus_messages (created_at);
