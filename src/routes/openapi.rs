//! `/openapi.json`, built from the same route table that mounts the routes
//! ([`super::ENDPOINTS`]) and from the one error mapping ([`GatewayError`]), and `/docs`: Swagger
//! UI served from files compiled into the binary (vendored in `src/routes/docs/`), so the page
//! works with no network at build or run time.

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::ENDPOINTS;
use crate::error::GatewayError;

/// One of each error the gateway answers with, for the document's error table.
fn every_error() -> Vec<GatewayError> {
    vec![
        GatewayError::Parse(String::new()),
        GatewayError::InvalidRequest(String::new()),
        GatewayError::InvalidArguments(String::new()),
        GatewayError::Unauthenticated { reason: String::new(), token_sent: true },
        GatewayError::Forbidden(String::new()),
        GatewayError::UnknownTool(String::new()),
        GatewayError::NotFound(String::new()),
        GatewayError::RequestTimeout(String::new()),
        GatewayError::PayloadTooLarge { limit: 0 },
        GatewayError::RateLimited {
            limit: String::new(),
            retry_after: std::time::Duration::ZERO,
            quota: gateway_actors::Quota { requests_per_minute: 1, burst: 1 },
        },
        GatewayError::Internal(String::new()),
        GatewayError::BackendUnavailable(String::new()),
        GatewayError::BackendBadReply(String::new()),
        GatewayError::Busy(String::new()),
        GatewayError::Unavailable(String::new()),
        GatewayError::BackendTimeout(0),
    ]
}

fn schemas() -> Value {
    json!({
        "InvokeRequest": {
            "type": "object", "required": ["tool_name"],
            "properties": {
                "tool_name": {"type": "string", "examples": ["exact_compute"]},
                "arguments": {"type": "object", "examples": [{"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}}]},
                "request_id": {"type": "string", "description": "echoed as X-Request-ID; one is generated if absent"}
            }
        },
        "DecisionRequest": {
            "type": "object", "required": ["reason"],
            "properties": {"reason": {"type": "string", "description": "why (required, at most 1000 characters)"}}
        },
        "ApproveRequest": {
            "type": "object", "required": ["digest"],
            "properties": {"digest": {"type": "string", "description": "the observed digest the admin reviewed"}}
        },
        "ExplainRequest": {
            "type": "object", "required": ["subject", "tool_name"],
            "properties": {
                "subject": {"type": "object", "properties": {
                    "sub": {"type": "string"}, "roles": {"type": "array", "items": {"type": "string"}}, "workspace": {"type": "string"}}},
                "tool_name": {"type": "string"},
                "arguments": {"type": "object"}
            }
        },
        "JsonRpcRequest": {
            "type": "object", "required": ["jsonrpc", "method"],
            "properties": {
                "jsonrpc": {"const": "2.0"}, "id": {"type": ["string", "integer"]},
                "method": {"type": "string", "examples": ["initialize", "tools/list", "tools/call"]}, "params": {"type": "object"}
            }
        },
        "Error": {
            "type": "object", "description": "A JSON-RPC 2.0 error response; `error.data.kind` names the error.",
            "properties": {
                "jsonrpc": {"const": "2.0"}, "id": {},
                "error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "integer"}, "message": {"type": "string"},
                    "data": {"type": "object", "properties": {"kind": {"type": "string"}}}}}
            }
        }
    })
}

/// The OpenAPI 3.1 document of every documented route.
pub fn build() -> Value {
    let errors = every_error();
    let mut table = String::from("| HTTP | JSON-RPC code | kind |\n|---|---|---|\n");
    for e in &errors {
        table.push_str(&format!("| {} | {} | `{}` |\n", e.status().as_u16(), e.code(), e.kind()));
    }
    let mut error_responses = Map::new();
    for e in &errors {
        let status = e.status().as_u16().to_string();
        let entry = error_responses.entry(status).or_insert_with(|| {
            json!({"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
        });
        let text = entry["description"].as_str().unwrap_or("").to_owned();
        let kind = format!("`{}` ({})", e.kind(), e.code());
        entry["description"] = Value::String(if text.is_empty() { kind } else { format!("{text}, {kind}") });
    }
    let mut paths = Map::new();
    for e in ENDPOINTS.iter().filter(|e| e.documented) {
        let parameters: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut parameters = parameters;
        if e.path == "/messages" {
            parameters
                .push(json!({"name": "session_id", "in": "query", "required": true, "schema": {"type": "string"},
                "description": "from the `endpoint` event of GET /sse"}));
        }
        let mut responses = Map::new();
        responses.insert(e.ok.0.to_string(), json!({"description": e.ok.1}));
        for (status, response) in &error_responses {
            responses.entry(status.clone()).or_insert_with(|| response.clone());
        }
        let mut operation = json!({
            "summary": e.summary,
            "description": format!("Access: {}.", e.access),
            "operationId": format!("{}{}", e.method, e.path.replace(['/', '.', '-', '{', '}'], "_")),
            "responses": responses,
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if e.access != "public" {
            operation["security"] = json!([{"bearer": []}]);
        }
        if let Some(schema) = e.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let item = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        item[e.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mcp-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("A secure gateway for the Model Context Protocol. Every error is a JSON-RPC 2.0 error object:\n\n{table}"),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas(),
        },
        "paths": paths,
    })
}

/// `GET /openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(build())
}

/// `GET /docs`: the Swagger UI page.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("docs/index.html"))
}

/// `GET /docs/{asset}`: the page's script and style, from the binary.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, GatewayError> {
    let (body, kind): (&'static [u8], &str) = match name.as_str() {
        "swagger-ui-bundle.js" => (include_bytes!("docs/swagger-ui-bundle.js"), "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (include_bytes!("docs/swagger-ui.css"), "text/css; charset=utf-8"),
        "init.js" => (include_bytes!("docs/init.js"), "text/javascript; charset=utf-8"),
        other => return Err(GatewayError::NotFound(format!("no docs asset {other:?}"))),
    };
    Ok(HttpResponse::Ok().content_type(kind).insert_header(("Cache-Control", "public, max-age=86400")).body(body))
}
