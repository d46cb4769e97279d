//! Sessions with backends: what each backend said at `initialize` (its session id and revision),
//! kept per backend URL and shared by every worker's client; and the handshake that opens one.

use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use serde_json::Value;

use super::{McpClient, PostError, PROTOCOL_VERSION};
use crate::error::GatewayError;

/// Revisions the gateway accepts if a backend answers with another one.
const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// What a backend told us at `initialize` (kept per backend URL).
#[derive(Debug, Clone)]
pub struct Session {
    pub(super) id: Option<String>,
    pub(super) protocol_version: String,
}

/// Sessions by backend URL, shared by every worker's client.
pub type SessionTable = Arc<DashMap<String, Arc<Session>>>;

/// Create an empty session table.
pub fn session_table() -> SessionTable {
    Arc::new(DashMap::new())
}

impl McpClient {
    pub(super) async fn initialize(&self, url: &str, deadline: Instant) -> Result<Arc<Session>, PostError> {
        let blank = Session { id: None, protocol_version: PROTOCOL_VERSION.to_owned() };
        let params = super::hello();
        let (result, session_id) = match self.post(url, &blank, "initialize", Some(&params), deadline, None).await {
            Ok(v) => v,
            Err(PostError::SessionExpired) => {
                return Err(GatewayError::BackendBadReply("404 on initialize".into()).into())
            }
            // The tool call itself has not been sent: a refused handshake is safe to retry.
            Err(PostError::Overloaded(e)) => return Err(PostError::Retryable(e)),
            Err(e) => return Err(e),
        };
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PROTOCOL_VERSION);
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(GatewayError::BackendBadReply(format!("unsupported protocol version {version:?}")).into());
        }
        let session = Arc::new(Session { id: session_id, protocol_version: version.to_owned() });
        match self.post(url, &session, "notifications/initialized", None, deadline, None).await {
            Ok(_) => {}
            Err(PostError::SessionExpired) => {
                return Err(GatewayError::BackendBadReply("404 on initialized".into()).into())
            }
            Err(e) => return Err(e),
        }
        self.sessions.insert(url.to_owned(), session.clone());
        Ok(session)
    }
}
