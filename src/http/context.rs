//! Per-request facts shared by the handlers: request id, client address, the authenticated
//! caller, and the fields of the request's log line.

use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use gateway_actors::Caller;

use crate::error::GatewayError;
use crate::state::Shared;
use crate::telemetry::{LogFields, RequestId};

/// Where a request came from, for its audit row.
pub fn origin(req: &HttpRequest) -> crate::pipeline::Origin {
    crate::pipeline::Origin { client_ip: client_ip(req), request_id: request_id(req) }
}

/// The request's id (set by the logging middleware): what the client is told in `X-Request-Id`.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default()
}

/// Replace the request's id (a body `request_id` when no header was sent).
pub fn set_request_id(req: &HttpRequest, id: String) {
    req.extensions_mut().insert(RequestId(id));
}

/// Whether the request's peer is one of `TRUSTED_PROXIES` (its forwarded headers count).
pub fn from_trusted_proxy(req: &HttpRequest, shared: &Shared) -> bool {
    req.peer_addr().is_some_and(|peer| shared.settings.trusted_proxies.contains(&peer.ip()))
}

/// The client's IP address: the peer's, or — behind a trusted proxy — the one it forwarded
/// (when it is an IP address at all).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr().map(|a| a.ip());
    let trusted = req.app_data::<web::Data<Shared>>().is_some_and(|shared| from_trusted_proxy(req, shared));
    if trusted {
        let info = req.connection_info();
        let forwarded = info.realip_remote_addr().and_then(|a| {
            a.parse::<std::net::IpAddr>().ok().or_else(|| a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        });
        if let Some(ip) = forwarded {
            return Some(ip.to_string());
        }
    }
    peer.map(|ip| ip.to_string())
}

/// Record the user and tool for the request's log line.
pub fn note(req: &HttpRequest, user_id: Option<&str>, tool: Option<&str>) {
    let mut ext = req.extensions_mut();
    let mut fields = ext.get::<LogFields>().cloned().unwrap_or_default();
    if let Some(u) = user_id {
        fields.user_id = Some(u.to_owned());
    }
    if let Some(t) = tool {
        fields.tool = Some(t.to_owned());
    }
    ext.insert(fields);
}

/// Verify the bearer token of `req` with the app's authenticator.
pub async fn authenticate(req: &HttpRequest) -> Result<Caller, GatewayError> {
    let shared = req
        .app_data::<web::Data<Shared>>()
        .ok_or_else(|| GatewayError::Internal("application state missing".into()))?;
    let caller = shared.auth.authenticate(req).await?;
    note(req, Some(&caller.user_id), None);
    Ok(caller)
}

/// Extractor: the authenticated caller, or a 401 through the one error mapping.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = GatewayError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, GatewayError>>;

    /// A refusal leaves its audit row here (the handler never runs): every attempt, on every
    /// endpoint, is in the trail.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match authenticate(&req).await {
                Ok(caller) => Ok(Authenticated(caller)),
                Err(e) => {
                    audit_refusal(&req, None, &e);
                    Err(e)
                }
            }
        })
    }
}

/// The transport an HTTP endpoint's rows name: `rest` under `/mcp`, else `admin`.
fn transport_of(req: &HttpRequest) -> &'static str {
    if req.path().starts_with("/mcp") {
        "rest"
    } else {
        "admin"
    }
}

/// Audit a request refused before its handler acted (authentication, role).
fn audit_refusal(req: &HttpRequest, caller: Option<&Caller>, error: &GatewayError) {
    let Some(shared) = req.app_data::<web::Data<Shared>>() else { return };
    let mut attempt = crate::pipeline::Attempt::new(transport_of(req));
    attempt.caller = caller.map(|c| std::sync::Arc::new(c.clone()));
    attempt.refused(shared, origin(req), error, error.status().as_u16());
}

/// Audit an administrator's action over HTTP (reading or exporting the audit trail, asking the
/// policy): the trail shows who looked at it. One row, `transport` `admin`, the action as the
/// tool name, stored before the action runs (an export holds its own row); when it cannot be
/// stored the action is refused.
pub async fn audit_admin(
    shared: &Shared,
    req: &HttpRequest,
    caller: &Caller,
    action: &str,
) -> Result<(), GatewayError> {
    audit_admin_outcome(shared, req, caller, action, Ok(())).await
}

/// [`audit_admin`] for an action that changes something (approving a pin, cancelling a job):
/// written after the action with its outcome, so the trail shows whether it was done.
pub async fn audit_admin_outcome(
    shared: &Shared,
    req: &HttpRequest,
    caller: &Caller,
    action: &str,
    outcome: Result<(), &GatewayError>,
) -> Result<(), GatewayError> {
    let mut attempt = crate::pipeline::Attempt::new("admin");
    attempt.caller = Some(std::sync::Arc::new(caller.clone()));
    attempt.tool_name = Some(action.to_owned());
    attempt.allowed = true;
    let ok = serde_json::Value::Null;
    let (result, status) = match outcome {
        Ok(()) => (Ok(&ok), 200),
        Err(e) => (Err(e), e.status().as_u16()),
    };
    attempt.finish_durable(shared, origin(req), result, status).await
}

/// Refuse callers without one of `roles` (the refusal is audited).
pub fn require_role(req: &HttpRequest, caller: &Caller, roles: &[&str]) -> Result<(), GatewayError> {
    if roles.iter().any(|r| caller.has_role(r)) {
        Ok(())
    } else {
        let error = GatewayError::Forbidden(format!("requires one of the roles {roles:?}"));
        audit_refusal(req, Some(caller), &error);
        Err(error)
    }
}

/// Largest body an administrative endpoint reads (an explanation, a decision, an approval).
pub const ADMIN_BODY_MAX: usize = 64 * 1024;

/// Read an administrative request's body inside its handler (bounded by [`ADMIN_BODY_MAX`],
/// declared or streamed), so a refused body is the handler's error and leaves its audit row.
pub async fn admin_body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, GatewayError> {
    super::invoke::read_body(req, payload, ADMIN_BODY_MAX).await.map(web::BytesMut::freeze)
}
