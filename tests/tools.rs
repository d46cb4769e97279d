//! The bundled tool servers reached through the real gateway, as an agent would use them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{TestDb, TestGateway};
use serde_json::json;

async fn calculator() -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let server = tool_kit::server::serve(calculator::server(), listener, false).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (url, handle)
}

#[actix_web::test]
async fn the_customers_calculator_example_works_through_the_gateway() {
    let db = TestDb::sqlite().await;
    let (url, calc) = calculator().await;
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
