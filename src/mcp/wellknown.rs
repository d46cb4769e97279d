//! RFC 9728 protected-resource metadata: tells MCP clients which authorization server issues
//! the tokens this gateway accepts. Referenced from `WWW-Authenticate` on every 401.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::state::Shared;

/// The gateway's public base URL: `PUBLIC_URL`, else the scheme and host this request reached.
/// Forwarded headers count only from `TRUSTED_PROXIES`; the scheme must be `http` or `https`
/// and the host a plain `name[:port]`, else the listener's own address is used.
pub fn base_url(req: &HttpRequest, shared: &Shared) -> String {
    if let Some(url) = &shared.settings.public_url {
        return url.clone();
    }
    let direct = || {
        let scheme = if req.app_config().secure() { "https" } else { "http" };
        let host = req.headers().get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        (scheme.to_owned(), host.to_owned())
    };
    let (scheme, host) = if crate::http::context::from_trusted_proxy(req, shared) {
        let info = req.connection_info();
        (info.scheme().to_ascii_lowercase(), info.host().to_owned())
    } else {
        direct()
    };
    let scheme = if matches!(scheme.as_str(), "http" | "https") { scheme } else { direct().0 };
    let plain = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    let host = if plain(&host) { host } else { req.app_config().local_addr().to_string() };
    format!("{scheme}://{host}")
}

/// Where the metadata lives, for `WWW-Authenticate: Bearer resource_metadata="…"`.
pub fn metadata_url(req: &HttpRequest, shared: &Shared) -> String {
    format!("{}/.well-known/oauth-protected-resource/mcp", base_url(req, shared))
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`. The `resource` is the identifier the
/// well-known URL was formed from (RFC 9728 §3.3): the gateway's origin for the root form,
/// `{origin}/mcp` for the path-suffixed one.
pub async fn metadata(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let base = base_url(&req, &shared);
    let suffix = req.path().strip_prefix("/.well-known/oauth-protected-resource").unwrap_or("");
    let mut body = json!({
        "resource": format!("{base}{suffix}"),
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-gateway",
    });
    // Every trusted provider, and the static issuer when one is configured.
    let mut servers: Vec<&str> = shared.auth.providers.iter().map(|p| p.config.issuer.as_str()).collect();
    if let Some(issuer) = shared.settings.jwt.issuer.as_deref().filter(|i| !servers.contains(i)) {
        servers.push(issuer);
    }
    if !servers.is_empty() {
        body["authorization_servers"] = json!(servers);
    }
    let mut scopes: Vec<&str> = Vec::new();
    for provider in shared.auth.providers.iter() {
        for scope in &provider.config.scopes_supported {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
    }
    if !scopes.is_empty() {
        body["scopes_supported"] = json!(scopes);
    }
    // Without PUBLIC_URL the document is built from the request's Host: no shared cache may
    // keep one Host's answer for another.
    let cache = if shared.settings.public_url.is_some() { "public, max-age=3600" } else { "no-store" };
    HttpResponse::Ok()
        .insert_header(("Cache-Control", cache))
        .insert_header(("Vary", "Host, Forwarded, X-Forwarded-Host, X-Forwarded-Proto"))
        .json(body)
}

/// Add `resource_metadata="…"` to a 401's `WWW-Authenticate` challenge (RFC 9728 §5.1).
pub fn point_to_metadata<B>(res: &mut actix_web::dev::ServiceResponse<B>) {
    let Some(shared) = res.request().app_data::<web::Data<Shared>>().cloned() else { return };
    let url = metadata_url(res.request(), &shared);
    let header = actix_web::http::header::WWW_AUTHENTICATE;
    let current = res.headers().get(&header).and_then(|v| v.to_str().ok()).unwrap_or("Bearer").to_owned();
    let value = if current.trim() == "Bearer" {
        format!("Bearer resource_metadata=\"{url}\"")
    } else {
        format!("{current}, resource_metadata=\"{url}\"")
    };
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&value) {
        res.headers_mut().insert(header, v);
    }
}
