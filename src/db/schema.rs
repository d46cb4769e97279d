//! Table definitions shared by PostgreSQL and SQLite (portable column types only).
#![allow(missing_docs)] // diesel::table! generates the column types.

diesel::table! {
    /// Tools registered from `tools.yaml`.
    tools (name) {
        name -> Text,
        description -> Text,
        backend_url -> Text,
        risk_level -> Text,
        required_roles -> Text,
        is_active -> Bool,
        timeout_seconds -> Nullable<BigInt>,
        input_schema -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        pinned_digest -> Nullable<Text>,
        observed_digest -> Nullable<Text>,
        pinned_definition -> Nullable<Text>,
        observed_definition -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per tool invocation attempt.
    audit_logs (id) {
        id -> Text,
        created_at -> Timestamp,
        request_id -> Text,
        user_id -> Nullable<Text>,
        roles -> Text,
        workspace -> Nullable<Text>,
        tool_name -> Nullable<Text>,
        decision -> Text,
        status -> Text,
        http_status -> Integer,
        error_code -> Nullable<Integer>,
        duration_ms -> Double,
        client_ip -> Nullable<Text>,
        arguments_sha256 -> Nullable<Text>,
        error_message -> Nullable<Text>,
        transport -> Text,
        chain_id -> Text,
        seq -> BigInt,
        prev_hash -> Text,
        row_hash -> Text,
        arguments_logged -> Nullable<Text>,
        kind -> Text,
    }
}

diesel::table! {
    /// The newest stored row of each chain.
    audit_chain_heads (chain_id) {
        chain_id -> Text,
        seq -> BigInt,
        row_hash -> Text,
        updated_at -> Timestamp,
        mac -> Nullable<Text>,
    }
}

diesel::table! {
    /// Every chain's registration and every retention checkpoint, linked in one hash chain.
    audit_ledger (ordinal) {
        ordinal -> BigInt,
        kind -> Text,
        chain_id -> Text,
        seq -> BigInt,
        row_hash -> Text,
        prev_link -> Text,
        link -> Text,
        mac -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Where a chain resumes after retention.
    audit_checkpoints (chain_id) {
        chain_id -> Text,
        seq -> BigInt,
        row_hash -> Text,
        created_at -> Timestamp,
        mac -> Nullable<Text>,
    }
}

diesel::table! {
    /// Asynchronous tool calls.
    jobs (id) {
        id -> Text,
        owner -> Text,
        roles -> Text,
        workspace -> Nullable<Text>,
        tool_name -> Text,
        arguments -> Nullable<Text>,
        status -> Text,
        request_id -> Text,
        idempotency_key -> Nullable<Text>,
        transport -> Text,
        claimed_by -> Nullable<Text>,
        progress -> Nullable<Text>,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        heartbeat_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Audit rows the database refused, kept whole (base64 JSON) with their chain position.
    audit_set_aside (id) {
        id -> Text,
        chain_id -> Text,
        seq -> BigInt,
        row_hash -> Text,
        row_b64 -> Text,
        error -> Text,
        created_at -> Timestamp,
        mac -> Nullable<Text>,
    }
}

diesel::table! {
    /// Calls waiting for (or decided by) a person.
    approvals (id) {
        id -> Text,
        tool_name -> Text,
        requester -> Text,
        requester_roles -> Text,
        workspace -> Nullable<Text>,
        approver_role -> Text,
        arguments -> Text,
        reasons -> Text,
        request_id -> Text,
        status -> Text,
        decided_by -> Nullable<Text>,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}
