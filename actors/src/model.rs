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
    /// OAuth scopes the caller's token must grant, all of them (else 403 `insufficient_scope`,
    /// so an MCP client can ask its provider for them: step-up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
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
    /// Whether MCP clients may (or must) run this tool as a task (`execution.taskSupport`).
    #[serde(default)]
    pub task_support: TaskSupport,
    /// Set on a tool discovered at an upstream server (`servers:` in `tools.yaml`), never read
    /// from a `tools:` entry: which server, and the tool's own name there.
    #[serde(skip)]
    pub upstream: Option<Upstream>,
}

/// Where a discovered tool comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The server's name in `tools.yaml`.
    pub server: String,
    /// The tool's name at the server (the published name carries the namespace).
    pub name: String,
}

impl Tool {
    /// The name the backend knows this tool by: its own for a discovered tool, else the
    /// published name.
    pub fn backend_name(&self) -> &str {
        self.upstream.as_ref().map_or(&self.name, |u| u.name.as_str())
    }
}

/// MCP 2025-11-25 `execution.taskSupport` of a tool: long tools can insist on running as a
/// task, quick or side-effect-heavy ones can refuse it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    /// Plain calls only: `params.task` is refused.
    Forbidden,
    /// Either way (the default).
    #[default]
    Optional,
    /// Only as a task: a plain `tools/call` is refused.
    Required,
}

impl TaskSupport {
    /// The spelling in `tools/list`'s `execution.taskSupport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

fn default_risk() -> String {
    "low".to_owned()
}

fn default_true() -> bool {
    true
}

/// The kind of every row written before kinds existed, and of every tool call.
pub const TOOL_CALL_KIND: &str = "tools/call";

fn default_kind() -> String {
    TOOL_CALL_KIND.to_owned()
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
    /// The OAuth scopes the token grants (`scope`, or a provider's `scp`): tools that name
    /// `required_scopes` need them all.
    pub scopes: Vec<String>,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The scopes of `required` this caller's token does not grant.
    pub fn missing_scopes<'a>(&self, required: &'a [String]) -> Vec<&'a str> {
        required.iter().filter(|s| !self.scopes.contains(s)).map(String::as_str).collect()
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
    /// What was asked: `tools/call` (every tool call, REST and jobs too), or an upstream
    /// server's `prompts/get`, `resources/read` or `completion/complete`.
    #[serde(default = "default_kind")]
    pub kind: String,
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
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        // Streamed straight into the hasher: the same bytes as serialising a JSON array of the
        // fields, without building one (this runs once per row, ~50,000 times a second).
        let _ = serde_json::to_writer(HashWriter(&mut hasher), &Canonical(self));
        hex::encode(hasher.finalize())
    }
}

/// `io::Write` into a SHA-256 state.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The canonical encoding of a row for its hash: a JSON array of every field but the chain
/// links, times as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (`kind` last, when not `tools/call`).
struct Canonical<'a>(&'a AuditRecord);

/// `created_at` as the hash encodes it, formatted by hand on the common path (years 0–9999).
fn hash_time(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        nanos / 1000
    )
}

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let r = self.0;
        // `kind` is encoded only when it is not a tool call: rows stored before kinds existed
        // (all tool calls) keep the hash they were written with.
        let tool_call = r.kind == TOOL_CALL_KIND;
        let mut seq = serializer.serialize_seq(Some(if tool_call { 19 } else { 20 }))?;
        seq.serialize_element(&r.id)?;
        seq.serialize_element(&hash_time(&r.created_at))?;
        seq.serialize_element(&r.request_id)?;
        seq.serialize_element(&r.user_id)?;
        seq.serialize_element(&r.roles)?;
        seq.serialize_element(&r.workspace)?;
        seq.serialize_element(&r.tool_name)?;
        seq.serialize_element(&r.decision)?;
        seq.serialize_element(&r.status)?;
        seq.serialize_element(&r.http_status)?;
        seq.serialize_element(&r.error_code)?;
        seq.serialize_element(&r.duration_ms)?;
        seq.serialize_element(&r.client_ip)?;
        seq.serialize_element(&r.arguments_sha256)?;
        seq.serialize_element(&r.error_message)?;
        seq.serialize_element(&r.arguments_logged)?;
        seq.serialize_element(&r.transport)?;
        seq.serialize_element(&r.chain_id)?;
        seq.serialize_element(&r.seq)?;
        if !tool_call {
            seq.serialize_element(&r.kind)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding the chain was defined with (and rows already stored were hashed with).
    fn reference_hash(r: &AuditRecord) -> String {
        let canonical = serde_json::json!([
            r.id,
            r.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            r.request_id,
            r.user_id,
            r.roles,
            r.workspace,
            r.tool_name,
            r.decision,
            r.status,
            r.http_status,
            r.error_code,
            r.duration_ms,
            r.client_ip,
            r.arguments_sha256,
            r.error_message,
            r.arguments_logged,
            r.transport,
            r.chain_id,
            r.seq,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(r.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }

    fn record(micros: i64, duration_ms: f64) -> AuditRecord {
        AuditRecord {
            id: "0190-id".into(),
            created_at: DateTime::from_timestamp_micros(micros).unwrap_or_default(),
            request_id: "req \"quoted\" \u{1F600}".into(),
            user_id: Some("ünïcode\nuser".into()),
            roles: vec!["developer".into(), "a\\b".into()],
            workspace: None,
            tool_name: Some("exact_compute".into()),
            decision: "allowed".into(),
            status: "ok".into(),
            http_status: 200,
            error_code: Some(-32004),
            duration_ms,
            client_ip: None,
            arguments_sha256: Some("ab".repeat(32)),
            error_message: Some("\u{0001} control".into()),
            arguments_logged: Some(r#"{"k":"v"}"#.into()),
            transport: "rest".into(),
            kind: TOOL_CALL_KIND.into(),
            chain_id: "chain".into(),
            seq: i64::MAX,
            prev_hash: "0".repeat(64),
            row_hash: String::new(),
        }
    }

    #[test]
    fn a_rows_kind_is_covered_by_its_hash_and_tool_calls_hash_as_before() {
        let mut r = record(1_795_683_093_123_456, 1.5);
        let before = r.compute_hash();
        assert_eq!(before, reference_hash(&r));
        r.kind = "resources/read".into();
        assert_ne!(r.compute_hash(), before, "another kind, another hash");
    }

    #[test]
    fn streamed_hash_equals_the_defining_encoding() {
        for micros in [0, 1, 999_999, 1_795_683_093_123_456, 253_402_300_799_999_999] {
            for duration in [0.0, 0.42, 1e-7, 123_456.789, f64::NAN, f64::INFINITY] {
                let r = record(micros, duration);
                assert_eq!(r.compute_hash(), reference_hash(&r), "micros {micros}, duration {duration}");
            }
        }
    }
}
