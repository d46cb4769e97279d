//! Values carried by messages between the HTTP layer and the actors.
//!
//! They are plain data: cheap to clone behind an `Arc`, serialisable for the API and for logs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A tool as registered in `tools.yaml`: where its MCP backend lives and who may call it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Unique name agents use in `tools/call` and `/mcp/invoke`.
    pub name: String,
    /// Human-readable description shown in tool listings.
    #[serde(default)]
    pub description: String,
    /// URL of the backend's MCP Streamable HTTP endpoint (for example `http://127.0.0.1:8091/mcp`).
    pub backend_url: String,
    /// Risk tier of the tool (`low`, `medium`, `high`, `critical`); policy may cap it per role.
    #[serde(default = "default_risk")]
    pub risk_level: String,
    /// A caller needs at least one of these roles (empty: no extra requirement).
    #[serde(default)]
    pub required_roles: Vec<String>,
    /// Inactive tools stay in the database for history but answer 404.
    #[serde(default = "default_true")]
    pub is_active: bool,
    /// Per-tool backend timeout; falls back to the gateway-wide `BACKEND_TIMEOUT_SECONDS`.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// JSON Schema of the tool's arguments, published in listings.
    #[serde(default)]
    pub input_schema: Option<serde_json::Value>,
    /// Most calls in flight to this tool at once, across workers (unlimited when absent).
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// How long an excess call waits for a slot before a 503 (0: refused at once).
    #[serde(default)]
    pub queue_timeout_ms: u64,
    /// Safe to run twice: a job interrupted by a gateway restart is re-queued (else failed).
    #[serde(default)]
    pub idempotent: bool,
    /// Longest a job (asynchronous call) of this tool may run (default one hour).
    #[serde(default)]
    pub job_timeout_seconds: Option<u64>,
}

fn default_risk() -> String {
    "low".to_owned()
}

fn default_true() -> bool {
    true
}

/// The authenticated caller, taken from the verified JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The token's `sub` claim.
    pub user_id: String,
    /// The token's `roles` claim.
    pub roles: Vec<String>,
    /// The token's optional `workspace` claim.
    pub workspace: Option<String>,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// One row of the audit log: one invocation attempt, whatever its outcome.
///
/// Never carries raw arguments or tokens, only a digest of the arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Row id (UUID v7, so ids sort by time).
    pub id: String,
    /// When the attempt finished (UTC).
    pub created_at: DateTime<Utc>,
    /// The request id returned to the client in `X-Request-ID`.
    pub request_id: String,
    /// The caller's `sub`, when the token was valid.
    pub user_id: Option<String>,
    /// The caller's roles (empty when unauthenticated).
    pub roles: Vec<String>,
    /// The caller's workspace claim.
    pub workspace: Option<String>,
    /// The tool asked for, when the body named one.
    pub tool_name: Option<String>,
    /// The access decision: `allowed`, `denied`, `unknown_tool`, `unauthenticated`, `rejected`.
    pub decision: String,
    /// The outcome: `ok`, `tool_error`, or the error kind (`backend_timeout`, ...).
    pub status: String,
    /// HTTP status the client received.
    pub http_status: i32,
    /// JSON-RPC error code the client received, if any.
    pub error_code: Option<i32>,
    /// Wall time spent on the attempt, in milliseconds.
    pub duration_ms: f64,
    /// The peer address of the client.
    pub client_ip: Option<String>,
    /// SHA-256 (hex) of the canonical JSON of the arguments.
    pub arguments_sha256: Option<String>,
    /// Short error description; never contains arguments or tokens.
    pub error_message: Option<String>,
    /// Arguments the policy chose to record (`audit_arguments`), secrets masked, as JSON.
    #[serde(default)]
    pub arguments_logged: Option<String>,
    /// The front door: `rest` (`/mcp/invoke`), `streamable_http` (`/mcp`) or `sse` (`/sse`).
    pub transport: String,
    /// The hash chain this row belongs to (one per audit writer run); set by the writer.
    #[serde(default)]
    pub chain_id: String,
    /// Position in the chain, from 1; set by the writer.
    #[serde(default)]
    pub seq: i64,
    /// The previous row's hash (empty for the first); set by the writer.
    #[serde(default)]
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this row's canonical encoding; set by the writer.
    #[serde(default)]
    pub row_hash: String,
}

impl AuditRecord {
    /// The hash a row must carry: SHA-256 of the previous hash and a canonical encoding of
    /// every field (times at microsecond precision, as both databases store them).
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.id,
            self.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            self.request_id,
            self.user_id,
            self.roles,
            self.workspace,
            self.tool_name,
            self.decision,
            self.status,
            self.http_status,
            self.error_code,
            self.duration_ms,
            self.client_ip,
            self.arguments_sha256,
            self.error_message,
            self.arguments_logged,
            self.transport,
            self.chain_id,
            self.seq,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}
