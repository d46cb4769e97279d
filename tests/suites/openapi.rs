//! The API document and its docs page, as a user opens them: every documented operation is a
//! real route, the error table is the one the gateway answers with, and Swagger UI renders the
//! document in a headless browser with no network beyond the gateway.

use crate::common::{TestDb, TestGateway};
use serde_json::Value;

#[actix_web::test]
async fn every_documented_operation_is_served_and_errors_match_the_wire() {
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db).start().await;
    let (status, doc) = gw.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    let client = crate::common::client();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            // Required query parameters, so the request reaches authentication.
            let query = if path == "/messages" { "?session_id=x" } else { "" };
            let url = format!("{}{}{query}", gw.base, path.replace("{id}", "no-such-job"));
            let method = awc::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut resp = client.request(method.clone(), &url).send().await.unwrap();
            let body = resp.body().limit(1 << 20).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("no route for"), "{method} {path} is documented but not routed");
            let protected = op.get("security").is_some();
            assert_eq!(resp.status() == 401, protected, "{method} {path}: 401 iff the document says it needs a token");
        }
    }
    // The error table is generated from the error mapping itself.
    let description = doc["info"]["description"].as_str().unwrap();
    for row in [
        "| 401 | -32000 | `unauthenticated` |",
        "| 429 | -32006 | `rate_limited` |",
        "| 504 | -32003 | `backend_timeout` |",
    ] {
        assert!(description.contains(row), "{row} in {description}");
    }
    assert_eq!(
        doc["paths"]["/mcp/invoke"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/InvokeRequest"
    );
    let (status, _) = gw.get("/docs/nothing.js", None).await;
    assert_eq!(status, 404);
    gw.stop().await;
}

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium (apt) for the /docs test");
        eprintln!("no chromium: skipping the headless /docs test");
    }
    found
}

#[actix_web::test]
async fn swagger_ui_renders_the_document_offline_in_a_headless_browser() {
    let Some(browser) = chromium() else { return };
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db).start().await;
    let url = format!("{}/docs", gw.base);
    let profile = tempfile::tempdir().unwrap();
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    // The browser runs on a blocking thread so this test's runtime keeps serving the gateway.
    let dom: Value = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom"])
            // Every host but the gateway's is unresolvable: the page renders from what it serves.
            .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
            .arg(&profile_arg)
            .arg(&url)
            .output()
            .unwrap();
        Value::String(String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await
    .unwrap();
    let dom = dom.as_str().unwrap();
    for path in ["/mcp/invoke", "/mcp/jobs/{id}", "/admin/audit-logs", "/metrics"] {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "Swagger UI shows {path}: {}",
            &dom[..dom.len().min(2000)]
        );
    }
    assert!(!dom.contains("validator.swagger.io"), "no online validator badge");
    gw.stop().await;
}
