-- Calls that wait for a person (policy `tools.<name>.approval`). One row per held call, its id
-- the held job's; any replica decides, the job store runs the call once approved.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,      -- the held job's id
    tool_name       TEXT NOT NULL,
    requester       TEXT NOT NULL,         -- JWT subject of the caller
    requester_roles TEXT NOT NULL,         -- JSON array
    workspace       TEXT,
    approver_role   TEXT NOT NULL,         -- the role that decides (never the requester)
    arguments       TEXT NOT NULL,         -- JSON, as approvers see them (masked unless `arguments: full`)
    reasons         TEXT NOT NULL,         -- JSON array: the rule, and the argument rules that fired
    request_id      TEXT NOT NULL,         -- the call's request id: its audit rows share it
    status          TEXT NOT NULL,         -- pending | approved | denied | expired | withdrawn
    decided_by      TEXT,
    reason          TEXT,                  -- the approver's reason (required)
    created_at      TIMESTAMP NOT NULL,    -- UTC
    expires_at      TIMESTAMP NOT NULL,    -- denied when still pending then
    decided_at      TIMESTAMP
);
CREATE INDEX approvals_pending ON approvals (status, expires_at);
CREATE INDEX approvals_created ON approvals (created_at);
