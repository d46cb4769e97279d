-- Asynchronous tool calls (REST jobs and MCP tasks), shared by every replica.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,      -- UUID v7
    owner           TEXT NOT NULL,         -- JWT subject
    roles           TEXT NOT NULL,         -- JSON array, for the completion's audit row
    workspace       TEXT,
    tool_name       TEXT NOT NULL,
    arguments       TEXT,                  -- JSON; cleared once the job is terminal
    status          TEXT NOT NULL,         -- pending | running | succeeded | failed | cancelled | timed_out
    request_id      TEXT NOT NULL,
    idempotency_key TEXT,
    transport       TEXT NOT NULL,         -- rest | mcp_task
    claimed_by      TEXT,                  -- replica running it
    progress        TEXT,                  -- JSON {progress, total, message}
    result          TEXT,                  -- JSON CallToolResult
    error           TEXT,                  -- JSON {code, message}
    client_ip       TEXT,
    created_at      TIMESTAMP NOT NULL,    -- UTC
    updated_at      TIMESTAMP NOT NULL,
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP,
    heartbeat_at    TIMESTAMP,
    expires_at      TIMESTAMP              -- result removed after this
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner, idempotency_key);
CREATE INDEX jobs_pending ON jobs (status, created_at);
CREATE INDEX jobs_owner ON jobs (owner, id);
