-- Tools registered from tools.yaml; rows missing from the file are kept, marked inactive.
CREATE TABLE tools (
    name            TEXT PRIMARY KEY,
    description     TEXT NOT NULL,
    backend_url     TEXT NOT NULL,
    risk_level      TEXT NOT NULL,
    required_roles  TEXT NOT NULL,          -- JSON array
    is_active       BOOLEAN NOT NULL,
    timeout_seconds BIGINT,
    input_schema    TEXT,                   -- JSON
    created_at      TIMESTAMP NOT NULL,     -- UTC
    updated_at      TIMESTAMP NOT NULL      -- UTC
);

-- One row per tool invocation attempt, whatever its outcome.
CREATE TABLE audit_logs (
    id               TEXT PRIMARY KEY,      -- UUID v7: sorts by time
    created_at       TIMESTAMP NOT NULL,    -- UTC
    request_id       TEXT NOT NULL,
    user_id          TEXT,
    roles            TEXT NOT NULL,         -- JSON array
    workspace        TEXT,
    tool_name        TEXT,
    decision         TEXT NOT NULL,
    status           TEXT NOT NULL,
    http_status      INTEGER NOT NULL,
    error_code       INTEGER,
    duration_ms      DOUBLE PRECISION NOT NULL,
    client_ip        TEXT,
    arguments_sha256 TEXT,
    error_message    TEXT
);
CREATE INDEX audit_logs_created_at ON audit_logs (created_at);
CREATE INDEX audit_logs_user_id ON audit_logs (user_id, id);
CREATE INDEX audit_logs_tool_name ON audit_logs (tool_name, id);
CREATE INDEX audit_logs_request_id ON audit_logs (request_id);
