//! An audit row as stored, and its conversions to and from the record the writer batches.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use gateway_actors::AuditRecord;
use serde::Serialize;

use crate::db::schema::audit_logs;

/// An audit row as stored.
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_logs, treat_none_as_default_value = false)]
pub struct AuditRow {
    /// Row id (UUID v7).
    pub id: String,
    /// When the attempt finished (UTC).
    pub created_at: NaiveDateTime,
    /// Request id returned to the client.
    pub request_id: String,
    /// Caller's `sub`.
    pub user_id: Option<String>,
    /// Caller's roles as a JSON array.
    pub roles: String,
    /// Caller's workspace.
    pub workspace: Option<String>,
    /// Tool asked for.
    pub tool_name: Option<String>,
    /// Access decision.
    pub decision: String,
    /// Outcome.
    pub status: String,
    /// HTTP status returned.
    pub http_status: i32,
    /// JSON-RPC error code returned.
    pub error_code: Option<i32>,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Client address.
    pub client_ip: Option<String>,
    /// SHA-256 of the arguments.
    pub arguments_sha256: Option<String>,
    /// Short error text.
    pub error_message: Option<String>,
    /// The front door the call came through.
    pub transport: String,
    /// Hash chain of the row.
    pub chain_id: String,
    /// Position in the chain.
    pub seq: i64,
    /// Previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub row_hash: String,
    /// Arguments the policy chose to record (masked), as JSON.
    pub arguments_logged: Option<String>,
    /// `tools/call`, `prompts/get`, `resources/read` or `completion/complete`.
    pub kind: String,
}

impl From<&AuditRow> for AuditRecord {
    fn from(r: &AuditRow) -> Self {
        Self {
            id: r.id.clone(),
            created_at: r.created_at.and_utc(),
            request_id: r.request_id.clone(),
            user_id: r.user_id.clone(),
            roles: serde_json::from_str(&r.roles).unwrap_or_default(),
            workspace: r.workspace.clone(),
            tool_name: r.tool_name.clone(),
            decision: r.decision.clone(),
            status: r.status.clone(),
            http_status: r.http_status,
            error_code: r.error_code,
            duration_ms: r.duration_ms,
            client_ip: r.client_ip.clone(),
            arguments_sha256: r.arguments_sha256.clone(),
            error_message: r.error_message.clone(),
            arguments_logged: r.arguments_logged.clone(),
            transport: r.transport.clone(),
            kind: r.kind.clone(),
            chain_id: r.chain_id.clone(),
            seq: r.seq,
            prev_hash: r.prev_hash.clone(),
            row_hash: r.row_hash.clone(),
        }
    }
}

impl From<&AuditRecord> for AuditRow {
    fn from(r: &AuditRecord) -> Self {
        Self {
            id: r.id.clone(),
            created_at: r.created_at.naive_utc(),
            request_id: r.request_id.clone(),
            user_id: r.user_id.clone(),
            roles: roles_json(&r.roles),
            workspace: r.workspace.clone(),
            tool_name: r.tool_name.clone(),
            decision: r.decision.clone(),
            status: r.status.clone(),
            http_status: r.http_status,
            error_code: r.error_code,
            duration_ms: r.duration_ms,
            client_ip: r.client_ip.clone(),
            arguments_sha256: r.arguments_sha256.clone(),
            error_message: r.error_message.clone(),
            arguments_logged: r.arguments_logged.clone(),
            transport: r.transport.clone(),
            kind: r.kind.clone(),
            chain_id: r.chain_id.clone(),
            seq: r.seq,
            prev_hash: r.prev_hash.clone(),
            row_hash: r.row_hash.clone(),
        }
    }
}

/// A row's roles as the `roles` column stores them: a JSON array.
pub fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".into())
}
