//! The calculator as an MCP server over real HTTP (the shared tool-server kit).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::{json, Value};

async fn start() -> (String, actix_web::dev::ServerHandle) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tool_kit::server::serve(calculator::server(), listener, false).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (base, handle)
}

async fn post(base: &str, body: &str) -> (u16, Value) {
    let mut resp = awc::Client::default()
        .post(format!("{base}/mcp"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_body(body.to_owned())
        .await
        .unwrap();
    let bytes = resp.body().await.unwrap();
    (resp.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn speaks_mcp_and_answers_the_customers_example() {
    let (base, handle) = start().await;
    let (status, init) = post(&base, r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).await;
    assert_eq!((status, init["result"]["protocolVersion"].as_str()), (200, Some("2025-06-18")));
    assert_eq!(post(&base, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await.0, 202);
    assert_eq!(post(&base, r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#).await.1["result"], json!({}));
    let (_, list) = post(&base, r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#).await;
    let tool = &list["result"]["tools"][0];
    assert_eq!(tool["name"], "exact_compute");
    assert!(tool["inputSchema"]["properties"]["operation"].is_object() && tool["outputSchema"].is_object());
    let (_, call) = post(&base, r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"exact_compute","arguments":{"operation":"arithmetic","params":{"operator":"+","x":1,"y":2}}}}"#).await;
    assert_eq!(call["id"], "c");
    assert_eq!(call["result"]["content"][0]["text"], "3");
    assert_eq!(call["result"]["structuredContent"]["result"]["fraction"], "3");
    assert_eq!(call["result"]["isError"], false);
    let mut health = awc::Client::default().get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    handle.stop(false).await;
}

#[actix_web::test]
async fn protocol_errors_use_standard_codes_and_input_errors_are_tool_errors() {
    let (base, handle) = start().await;
    let cases = [
        ("{", 400, -32700),
        ("[]", 400, -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#, 400, -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#, 200, -32601),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#, 200, -32602),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exact_compute","arguments":[1]}}"#,
            200,
            -32602,
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = post(&base, body).await;
        assert_eq!((s, v["error"]["code"].as_i64()), (status, Some(code)), "{body}");
    }
    for arguments in [
        json!({"operation": "arithmetic", "params": {"operator": "/", "x": 1, "y": 0}}),
        json!({"operation": "arithmetic", "params": {"operator": "^", "x": 2, "y": 10_000_000}}),
        json!({"operation": "expression", "params": {"expression": "(".repeat(500)}}),
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "+", "left": {"value": 1, "unit": "m"}, "right": {"value": 1, "unit": "s"}}}),
        json!({"operation": "teleport"}),
        json!({"operation": "arithmetic", "params": {"operator": "+", "x": "1.2.3", "y": 1}}),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "exact_compute", "arguments": arguments}});
        let (s, v) = post(&base, &body.to_string()).await;
        assert_eq!(s, 200);
        assert_eq!(v["result"]["isError"], true, "{arguments}: {v}");
        assert!(!v["result"]["content"][0]["text"].as_str().unwrap().is_empty());
    }
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(2 << 20));
    assert_eq!(post(&base, &big).await.0, 413);
    handle.stop(false).await;
}

#[test]
fn operations_cover_units_statistics_and_precision() {
    let call = |args: Value| calculator::call("exact_compute", args).unwrap()["structuredContent"].clone();
    let r = call(
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "/", "left": {"value": 100, "unit": "km"}, "right": {"value": 2, "unit": "h"}, "result_unit": "m/s"}}),
    );
    assert_eq!((r["result"]["fraction"].as_str(), r["dimension"].as_str()), (Some("125/9"), Some("speed")));
    let r = call(
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "*", "left": {"value": 3, "unit": "m"}, "right": {"value": "0.5", "unit": "m"}}}),
    );
    assert_eq!(
        (r["result"]["decimal"].as_str(), r["unit"].as_str(), r["dimension"].as_str()),
        (Some("1.5"), Some("m*m"), Some("area"))
    );
    let r = call(
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "+", "left": {"value": 1, "unit": "km"}, "right": {"value": 500, "unit": "m"}}}),
    );
    assert_eq!((r["result"]["decimal"].as_str(), r["unit"].as_str()), (Some("1.5"), Some("km")));
    let r = call(json!({"operation": "expression", "params": {"expression": "sqrt(2)", "precision": 50}}));
    assert_eq!(r["result"]["decimal"], "1.4142135623730950488016887242096980785696718753769");
    assert!(r["result"]["fraction"].is_null());
    let r = call(json!({"operation": "arithmetic", "params": {"operator": "pow", "operands": [2, 200]}}));
    assert_eq!(r["result"]["fraction"], "1606938044258990275541962092341162602522202993782792835301376");
    // A power tower groups from the right, like `2^3^2` in an expression: 512, not 64.
    let r = call(json!({"operation": "arithmetic", "params": {"operator": "pow", "operands": [2, 3, 2]}}));
    assert_eq!(r["result"]["fraction"], "512");
    let r = call(json!({"operation": "expression", "params": {"expression": "2^3^2"}}));
    assert_eq!(r["result"]["fraction"], "512");
    let r = call(
        json!({"operation": "arithmetic", "params": {"operator": "mod", "x": "123456789012345678901234567890", "y": 97}}),
    );
    assert_eq!(r["result"]["fraction"], (123456789012345678901234567890u128 % 97).to_string());
    let r = call(json!({"operation": "statistics", "params": {"function": "median", "values": [4, 1, 3, 2]}}));
    assert_eq!(r["result"]["fraction"], "5/2");
    let r = call(json!({"operation": "arithmetic", "params": {"operator": "/", "x": 1, "y": 3, "precision": 5}}));
    assert_eq!(
        (r["result"]["decimal"].as_str(), r["result"]["decimal_is_exact"].as_bool()),
        (Some("0.33333"), Some(false))
    );
    assert!(calculator::call(
        "exact_compute",
        json!({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2, "precision": 0}})
    )
    .is_err());
    assert!(calculator::call(
        "exact_compute",
        json!({"operation": "arithmetic", "params": {"operator": "+", "operands": vec![1; 10_001]}})
    )
    .is_err());
}

fn outcome(arguments: &str) -> Result<Value, String> {
    calculator::call("exact_compute", serde_json::from_str(arguments).unwrap()).map_err(|e| e.to_string())
}

#[test]
fn json_numbers_a_float_cannot_hold_are_refused_and_strings_are_exact() {
    // serde_json reads this literal as the float 1.2345678901234568e29.
    let err = outcome(
        r#"{"operation": "arithmetic", "params": {"operator": "+", "x": 123456789012345678901234567890, "y": 0}}"#,
    )
    .unwrap_err();
    assert!(err.contains("cannot be represented exactly as a JSON number") && err.contains("as strings"), "{err}");
    let r = outcome(
        r#"{"operation": "arithmetic", "params": {"operator": "+", "x": "123456789012345678901234567890", "y": 0}}"#,
    )
    .unwrap();
    assert_eq!(r["structuredContent"]["result"]["fraction"], "123456789012345678901234567890");
    for refused in ["1e20", "0.1234567890123456", "-18446744073709551616", "9007199254740993.0"] {
        let args = format!(r#"{{"operation": "statistics", "params": {{"function": "sum", "values": [{refused}]}}}}"#);
        assert!(outcome(&args).is_err(), "{refused}");
    }
    // Integers within 64 bits are exact in JSON; short decimals are taken as written.
    for (accepted, fraction) in
        [("18446744073709551615", "18446744073709551615"), ("0.1", "1/10"), ("1.5e-7", "3/20000000")]
    {
        let args = format!(r#"{{"operation": "statistics", "params": {{"function": "sum", "values": [{accepted}]}}}}"#);
        assert_eq!(outcome(&args).unwrap()["structuredContent"]["result"]["fraction"], fraction, "{accepted}");
    }
    let schema = calculator::schema::input().to_string();
    assert!(schema.contains("more than 15 significant digits"));
}

#[test]
fn affine_temperatures_are_not_added_or_subtracted() {
    let err = calculator::call(
        "exact_compute",
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "+", "left": {"value": 20, "unit": "°C"}, "right": {"value": 5, "unit": "K"}}}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("convert affine temperatures (°C, °F) to K before adding or subtracting"), "{err}");
    // Before: 30 °C − 10 °C was refused. It is a temperature difference: 20 K (= 20 Δ°C), as pint
    // answers; 86 °F − 50 °F is the same 20 K; and a difference is never put on an offset scale.
    for (left, right) in [((30, "°C"), (10, "°C")), ((86, "°F"), (50, "°F"))] {
        let r = calculator::call(
            "exact_compute",
            json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "-",
                "left": {"value": left.0, "unit": left.1}, "right": {"value": right.0, "unit": right.1}}}),
        )
        .unwrap();
        assert_eq!(r["structuredContent"]["result"]["fraction"], "20", "{r}");
        assert_eq!(r["structuredContent"]["unit"], "K", "{r}");
    }
    let err = calculator::call(
        "exact_compute",
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "-", "left": {"value": 30, "unit": "°C"}, "right": {"value": 10, "unit": "°C"}, "result_unit": "°F"}}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("temperature difference"), "{err}");
    let r = calculator::call(
        "exact_compute",
        json!({"operation": "unit", "params": {"action": "arithmetic", "operator": "+", "left": {"value": "293.15", "unit": "K"}, "right": {"value": 5, "unit": "K"}, "result_unit": "°C"}}),
    )
    .unwrap();
    assert_eq!(r["structuredContent"]["result"]["fraction"], "25");
}

#[test]
fn many_operands_finish_quickly_or_are_refused_before_computing() {
    let started = std::time::Instant::now();
    let harmonic: Vec<String> = (1..=10_000).map(|k| format!("1/{k}")).collect();
    let err = calculator::call(
        "exact_compute",
        json!({"operation": "arithmetic", "params": {"operator": "+", "operands": harmonic}}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("distinct denominators"), "{err}");
    let harmonic: Vec<String> = (1..=100_000).map(|k| format!("1/{k}")).collect();
    let err = calculator::call(
        "exact_compute",
        json!({"operation": "statistics", "params": {"function": "mean", "values": harmonic}}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("distinct denominators") && err.contains("size limit"), "{err}");
    // 10,000 factors of 7/3 (a 44,000-bit result) took minutes with whole-value gcds;
    // (7/3)^10000 = 5.8594E+3679 (Python, decimal at precision 5).
    let r = calculator::call(
        "exact_compute",
        json!({"operation": "arithmetic", "params": {"operator": "*", "operands": vec!["7/3"; 10_000], "precision": 5}}),
    )
    .unwrap();
    assert_eq!(r["structuredContent"]["result"]["decimal"], "5.8594e+3679");
    let r = calculator::call(
        "exact_compute",
        json!({"operation": "arithmetic", "params": {"operator": "-", "operands": ["1", "1/3", "1/6", "0.5"]}}),
    )
    .unwrap();
    assert_eq!(r["structuredContent"]["result"]["fraction"], "0");
    // Sanity bound only (debug build, shared machine).
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}
