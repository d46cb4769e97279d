//! The one error type of the HTTP layer and its one mapping to the wire.
//!
//! Every failure a client can see is a [`GatewayError`]. [`GatewayError::origin`] says whose fault
//! it is (client, backend, gateway), which picks the log level; [`GatewayError::status`] and
//! [`GatewayError::code`] give the HTTP status and the JSON-RPC error code documented in the
//! README. Bodies are JSON-RPC 2.0 error responses, including for actix's own extractor errors.
//! [`mcp`] projects the same errors onto MCP's answers (inside HTTP 200). No JSON-RPC code is
//! spelled as a number outside [`mcp_protocol::code`]; this module is the only one choosing them.

pub mod mcp;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use mcp_protocol::code;
use serde_json::{json, Value};

/// Who caused an error: decides the log level and whether the details are worth alerting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The request was wrong (bad token, denied, bad body).
    Client,
    /// The tool's backend failed or was too slow.
    Backend,
    /// The gateway itself failed.
    Internal,
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// No token, or a token that failed verification.
    #[error("{reason}")]
    Unauthenticated {
        /// Safe to show: which check failed.
        reason: String,
        /// Whether a token was sent (adds `error="invalid_token"` to `WWW-Authenticate`).
        token_sent: bool,
    },
    /// The caller is authenticated but not allowed.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// The caller's token lacks scopes the tool requires (the client may ask its provider
    /// for them: `WWW-Authenticate` names them).
    #[error("insufficient scope: the token must grant {}", .0.join(" "))]
    InsufficientScope(Vec<String>),
    /// No such tool, or the tool is inactive.
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    /// The request body exceeds `MAX_PAYLOAD_BYTES`.
    #[error("payload too large: the limit is {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body is not valid JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// The body is JSON but not a valid request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The backend rejected the tool arguments (JSON-RPC -32602 from the backend).
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The backend did not answer within the tool's timeout.
    #[error("backend timed out after {0} s")]
    BackendTimeout(u64),
    /// The backend could not be reached, or answered with an error status.
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
    /// The backend answered something that is not a valid MCP reply.
    #[error("bad backend reply: {0}")]
    BackendBadReply(String),
    /// A rate limit refused the call.
    #[error("rate limit exceeded ({limit}); retry in {} s", retry_after.as_secs_f64().ceil())]
    RateLimited {
        /// Which configured limit fired (`per_user`, `role:viewer`, `per_tool`, `per_user_tool`).
        limit: String,
        /// When a retry can pass.
        retry_after: std::time::Duration,
        /// The limit's quota (for `RateLimit-Policy`).
        quota: gateway_actors::Quota,
    },
    /// The tool is at its concurrency limit (or its circuit is open).
    #[error("tool busy: {0}")]
    Busy(String),
    /// The request body arrived too slowly.
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    /// No such route.
    #[error("not found: {0}")]
    NotFound(String),
    /// A dependency (database, actor) is not ready.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The caller cancelled the call (or left) before it finished; recorded so the audit
    /// trail shows calls that reached a backend but never answered.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A bug or an unexpected failure inside the gateway.
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// Whose fault the error is.
    pub fn origin(&self) -> Origin {
        match self {
            Self::BackendTimeout(_) | Self::BackendUnavailable(_) | Self::BackendBadReply(_) | Self::Busy(_) => {
                Origin::Backend
            }
            Self::Internal(_) | Self::Unavailable(_) => Origin::Internal,
            _ => Origin::Client,
        }
    }

    /// The JSON-RPC error code (see the README's error table).
    pub fn code(&self) -> i32 {
        match self {
            Self::Unauthenticated { .. } => code::UNAUTHENTICATED,
            Self::UnknownTool(_) => code::UNKNOWN_TOOL,
            Self::Forbidden(_) | Self::InsufficientScope(_) => code::FORBIDDEN,
            Self::BackendTimeout(_) => code::BACKEND_TIMEOUT,
            Self::BackendUnavailable(_) | Self::BackendBadReply(_) => code::BACKEND_UNAVAILABLE,
            Self::PayloadTooLarge { .. } => code::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => code::RATE_LIMITED,
            Self::Busy(_) => code::BUSY,
            Self::RequestTimeout(_) => code::INVALID_REQUEST,
            Self::Parse(_) => code::PARSE_ERROR,
            Self::InvalidRequest(_) => code::INVALID_REQUEST,
            Self::InvalidArguments(_) => code::INVALID_PARAMS,
            Self::NotFound(_) => code::METHOD_NOT_FOUND,
            Self::Cancelled(_) => code::REQUEST_CANCELLED,
            Self::Unavailable(_) | Self::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::UnknownTool(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Parse(_) | Self::InvalidRequest(_) | Self::InvalidArguments(_) => StatusCode::BAD_REQUEST,
            Self::BackendTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::BackendUnavailable(_) | Self::BackendBadReply(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // nginx's "client closed request": nobody reads it, the audit row keeps it.
            Self::Cancelled(_) => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        }
    }

    /// A short, stable name of the error kind, used in audit rows and `error.data.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Forbidden(_) => "denied",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::UnknownTool(_) => "unknown_tool",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy(_) => "busy",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Parse(_) => "parse_error",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidArguments(_) => "invalid_arguments",
            Self::BackendTimeout(_) => "backend_timeout",
            Self::BackendUnavailable(_) => "backend_unavailable",
            Self::BackendBadReply(_) => "backend_bad_reply",
            Self::NotFound(_) => "not_found",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Cancelled(_) => "cancelled",
        }
    }

    /// The `error.data` object: the kind, plus the retry delay of a rate limit.
    pub fn data(&self) -> Value {
        match self {
            Self::RateLimited { limit, retry_after, .. } => json!({
                "kind": self.kind(), "limit": limit, "retry_after_ms": retry_after.as_millis() as u64
            }),
            _ => json!({ "kind": self.kind() }),
        }
    }

    /// `WWW-Authenticate` for a token lacking scopes (RFC 6750 §3.1, as MCP's step-up
    /// authorization reads it); the middleware adds `resource_metadata`.
    pub fn scope_challenge(&self) -> Option<String> {
        let Self::InsufficientScope(scopes) = self else { return None };
        // Scope tokens are printable ASCII without '"' or '\\' (RFC 6749 §3.3).
        let safe =
            |s: &String| s.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\')).collect::<String>();
        let scopes: Vec<String> = scopes.iter().map(safe).filter(|s| !s.is_empty()).collect();
        Some(format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", error_description=\"the token must grant these scopes\"",
            scopes.join(" ")
        ))
    }

    /// The JSON-RPC error object: code, message and `data` (the kind, a retry delay).
    pub fn to_rpc(&self) -> mcp_protocol::RpcError {
        mcp_protocol::RpcError { code: self.code(), message: self.to_string(), data: Some(self.data()) }
    }

    /// The JSON-RPC 2.0 error body answering the request with `id`.
    pub fn body(&self, id: Value) -> Value {
        mcp_protocol::response(id, Err(self.to_rpc()))
    }

    /// The full HTTP response answering the request with `id`; logs by origin.
    pub fn to_response(&self, id: Value) -> HttpResponse {
        match self.origin() {
            Origin::Client => tracing::debug!(kind = self.kind(), error = %self, "request refused"),
            Origin::Backend => tracing::warn!(kind = self.kind(), error = %self, "backend failure"),
            Origin::Internal => {
                tracing::error!(kind = self.kind(), error = %self, "internal failure")
            }
        }
        let mut response = HttpResponse::build(self.status());
        if let Self::Unauthenticated { reason, token_sent } = self {
            let challenge = if *token_sent {
                format!("Bearer error=\"invalid_token\", error_description=\"{}\"", reason.replace('"', "'"))
            } else {
                "Bearer".to_owned()
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Some(challenge) = self.scope_challenge() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Self::RateLimited { limit, retry_after, quota } = self {
            // IETF draft-ietf-httpapi-ratelimit-headers: the policy that fired and its state.
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
            response.insert_header((
                "RateLimit-Policy",
                format!("\"{limit}\";q={};w=60;burst={}", quota.requests_per_minute, quota.burst),
            ));
            response.insert_header(("RateLimit", format!("\"{limit}\";r=0;t={secs}")));
        }
        response.json(self.body(id))
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response(Value::Null)
    }
}

/// An error and its causes on one line, each cause once: typed errors keep their cause as the
/// `source()` and often say it in their own message too, so a cause already said is skipped.
pub fn explain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
    }
    text
}

/// Longest unverified name (a tool or method the caller sent) an error message repeats.
const ECHO_MAX_CHARS: usize = 64;

/// Every URL in `text` without what may be a credential: user info (`user:pass@`), query and
/// fragment (`?api_key=…`). For errors and reports that name a configured URL (an identity
/// provider's key set, a backend): operators read them, secrets must not be there.
pub fn without_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters just before `://`.
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(at, |(i, _)| i);
        out.push_str(&rest[..scheme_start]);
        let url_start = scheme_start;
        let body_start = at + 3;
        let end = rest[body_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | ','))
            .map_or(rest.len(), |i| body_start + i);
        let url = &rest[url_start..end];
        let cut = url.find(['?', '#']).map_or(url, |i| &url[..i]);
        let scheme_len = body_start - url_start;
        let (head, tail) = cut.split_at(scheme_len);
        let host_end = tail.find('/').unwrap_or(tail.len());
        let authority = &tail[..host_end];
        let authority = authority.rfind('@').map_or(authority, |i| &authority[i + 1..]);
        out.push_str(head);
        out.push_str(authority);
        out.push_str(&tail[host_end..]);
        if cut.len() < url.len() {
            out.push_str("?…");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A name the caller sent, as an error message may repeat it: unchanged when it is short and
/// printable; otherwise escaped (control and invisible formatting characters such as a
/// right-to-left override become `\u{…}`) and cut to its first 64 characters with its size,
/// so an error never carries a caller's megabyte or text that reorders what a console shows.
pub fn echo(name: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
    };
    let long = name.chars().nth(ECHO_MAX_CHARS).is_some();
    if !long && !name.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(name);
    }
    let head: String = name.chars().take(ECHO_MAX_CHARS).collect();
    let mut out: String =
        head.chars().map(|c| if hidden(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect();
    if long {
        out.push_str(&format!("…[{} bytes]", name.len()));
    }
    std::borrow::Cow::Owned(out)
}

/// Route actix's extractor errors (bad JSON, bad query string) through the same mapping.
pub fn json_error(err: actix_web::error::JsonPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    match err {
        actix_web::error::JsonPayloadError::Overflow { limit }
        | actix_web::error::JsonPayloadError::OverflowKnownLength { limit, .. } => {
            GatewayError::PayloadTooLarge { limit }.into()
        }
        other => GatewayError::Parse(other.to_string()).into(),
    }
}

/// Query-string errors as 400 JSON-RPC errors.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    GatewayError::InvalidRequest(err.to_string()).into()
}

#[cfg(test)]
mod url_tests {
    use super::without_credentials;

    #[test]
    fn urls_lose_user_info_query_and_fragment() {
        let text = "http://idpuser:idppass-secret@127.0.0.1:18411/certs?api_key=sk-1: Failed to connect (see https://a.example/x#frag)";
        let clean = without_credentials(text);
        assert_eq!(clean, "http://127.0.0.1:18411/certs?… Failed to connect (see https://a.example/x?…)");
        assert_eq!(without_credentials("no url here"), "no url here");
        assert_eq!(without_credentials("redis://:pw@h:6379/0 down"), "redis://h:6379/0 down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_documented_status_and_code() {
        let cases = [
            (GatewayError::Unauthenticated { reason: "x".into(), token_sent: false }, 401, -32000),
            (GatewayError::Forbidden("x".into()), 403, -32002),
            (GatewayError::UnknownTool("x".into()), 404, -32001),
            (GatewayError::PayloadTooLarge { limit: 1 }, 413, -32005),
            (GatewayError::BackendTimeout(1), 504, -32003),
            (GatewayError::BackendUnavailable("x".into()), 502, -32004),
            (GatewayError::BackendBadReply("x".into()), 502, -32004),
            (GatewayError::Parse("x".into()), 400, -32700),
            (GatewayError::Cancelled("x".into()), 499, -32800),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status().as_u16(), err.code()), (status, code), "{err}");
        }
    }

    #[test]
    fn invalid_token_challenge_names_the_error() {
        let resp =
            GatewayError::Unauthenticated { reason: "expired".into(), token_sent: true }.to_response(Value::Null);
        let challenge = resp.headers().get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""));
    }
}
