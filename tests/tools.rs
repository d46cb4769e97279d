//! The bundled tool servers reached through the real gateway, as an agent would use them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{TestDb, TestGateway};
use serde_json::json;

async fn serve(server: tool_kit::ToolServer) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let server = tool_kit::server::serve(server, listener, false).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (url, handle)
}

#[actix_web::test]
async fn the_customers_calculator_example_works_through_the_gateway() {
    let db = TestDb::sqlite().await;
    let (url, calc) = serve(calculator::server()).await;
    let gw = TestGateway::builder(&db).tool("exact_compute", &url).start().await;
    let token = gw.token("agent", &["developer"]);
    let (status, body) = gw
        .invoke(
            &token,
            "exact_compute",
            json!({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "3");
    assert_eq!(body["result"]["structuredContent"]["result"]["fraction"], "3");

    let (status, body) = gw
        .invoke(&token, "exact_compute", json!({"operation": "expression", "params": {"expression": "0.1 + 0.2"}}))
        .await;
    assert_eq!((status, &body["result"]["structuredContent"]["result"]["decimal"]), (200, &json!("0.3")));
    // Bad input is the tool's own error: 200 with isError, audited as tool_error.
    let (status, body) = gw
        .invoke(
            &token,
            "exact_compute",
            json!({"operation": "arithmetic", "params": {"operator": "/", "x": 1, "y": 0}}),
        )
        .await;
    assert_eq!((status, &body["result"]["isError"]), (200, &json!(true)));
    let rows = db.wait_for_rows(3).await;
    assert_eq!(rows.iter().filter(|r| r.status == "ok").count(), 2);
    assert_eq!(rows.iter().filter(|r| r.status == "tool_error").count(), 1);
    let (_, listing) = gw.get("/mcp/tools", Some(&token)).await;
    assert_eq!(listing["tools"][0]["name"], "exact_compute");
    gw.stop().await;
    calc.stop(false).await;
}

#[actix_web::test]
async fn a_markdown_report_comes_back_as_pdf_docx_and_html_through_the_gateway() {
    use base64::Engine as _;
    let db = TestDb::sqlite().await;
    let (url, docgen_server) = serve(docgen::server(docgen::DEFAULT_MAX_CONTENT_BYTES)).await;
    let gw = TestGateway::builder(&db).tool("document_generate", &url).start().await;
    let token = gw.token("writer", &["developer"]);
    let report = include_str!("../tools/docgen/tests/fixtures/report.md");
    for (format, magic) in [("pdf", &b"%PDF-"[..]), ("docx", &b"PK"[..]), ("html", &b"<!DOCTYPE html>"[..])] {
        let (status, body) = gw.invoke(&token, "document_generate", json!({"content": report, "format": format})).await;
        assert_eq!(status, 200, "{format}: {body}");
        let resource = &body["result"]["content"][1]["resource"];
        let bytes = base64::engine::general_purpose::STANDARD.decode(resource["blob"].as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(magic), "{format}");
        let again = gw.invoke(&token, "document_generate", json!({"content": report, "format": format})).await.1;
        assert_eq!(
            again["result"]["structuredContent"]["sha256"], body["result"]["structuredContent"]["sha256"],
            "deterministic"
        );
    }
    let (status, body) = gw.invoke(&token, "document_generate", json!({"content": "", "format": "pdf"})).await;
    assert_eq!((status, &body["result"]["isError"]), (200, &json!(true)));
    gw.stop().await;
    docgen_server.stop(false).await;
}
