//! The console (`/console`): one page and its script and style, served from the binary (no CDN,
//! works offline), under a strict Content-Security-Policy — scripts and styles only from this
//! origin, no inline script or style, no framing, no form posting elsewhere. The page signs in
//! with the gateway's own tokens (kept in `sessionStorage`, sent as a bearer header, never a
//! cookie) and reads the `/admin` endpoints, which check roles and audit as they always do.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::GatewayError;
use crate::state::Shared;

/// The origin (`scheme://host[:port]`) of a URL, for the CSP's `connect-src`.
fn origin_of(url: &str) -> Option<&str> {
    let rest = url.find("://")? + 3;
    let end = url[rest..].find('/').map_or(url.len(), |i| rest + i);
    Some(&url[..end])
}

/// The policy of every console response. `connect-src` adds the identity providers' origins
/// (the sign-in reads their discovery document and exchanges the code at their token endpoint).
fn policy(shared: &Shared) -> String {
    let mut connect = vec!["'self'".to_owned()];
    if shared.settings.console_client_id.is_some() {
        for p in shared.auth.providers.iter() {
            if let Some(o) = origin_of(&p.config.issuer) {
                // An issuer is a configured https (or loopback http) URL: no spaces or quotes.
                if o.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b'\'' && b != b',') {
                    connect.push(o.to_owned());
                }
            }
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {}; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

fn respond(shared: &Shared, kind: &str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header(("Content-Security-Policy", policy(shared)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        // The page is small and changes with the binary: always revalidated.
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

/// `GET /console`: the page (every view is drawn by its script).
pub async fn page(shared: web::Data<Shared>) -> HttpResponse {
    respond(&shared, "text/html; charset=utf-8", include_bytes!("console/index.html"))
}

/// `GET /console/{asset}`: the script, the style, and `config.json` (how to sign in).
pub async fn asset(name: web::Path<String>, shared: web::Data<Shared>) -> Result<HttpResponse, GatewayError> {
    let (body, kind): (&'static [u8], &str) = match name.as_str() {
        "console.js" => (include_bytes!("console/console.js"), "text/javascript; charset=utf-8"),
        "console.css" => (include_bytes!("console/console.css"), "text/css; charset=utf-8"),
        "config.json" => return Ok(config(&shared)),
        other => return Err(GatewayError::NotFound(format!("no console asset {other:?}"))),
    };
    Ok(respond(&shared, kind, body))
}

/// How the console signs in: the provider's code flow when `CONSOLE_CLIENT_ID` is set and a
/// provider is configured, else a pasted token.
fn config(shared: &Shared) -> HttpResponse {
    let oidc = match (&shared.settings.console_client_id, shared.auth.providers.iter().next()) {
        (Some(client_id), Some(provider)) => json!({
            "issuer": provider.config.issuer,
            "client_id": client_id,
            "scopes": shared.settings.console_scopes,
        }),
        _ => serde_json::Value::Null,
    };
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .json(json!({ "oidc": oidc }))
}
