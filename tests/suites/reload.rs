//! Changing `policy.yaml` without a restart: a good file takes effect within a second or so,
//! a bad one is refused and the old policy stays, and calls in flight never fail.

use std::time::{Duration, Instant};

use crate::common::backend::{Mode, TestBackend};
use crate::common::{client, TestDb, TestGateway};
use serde_json::json;

const BASE: &str = "
default_action: deny
roles:
  developer: { allowed_tools: [echo] }
  guest: { allowed_tools: [echo] }
workspaces:
  open: {}
";

fn write(path: &std::path::Path, text: &str) {
    // Write then rename, as deployment tools do; the watcher sees one complete file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn reloads(metrics: &str, result: &str) -> u64 {
    let prefix = format!("mcpgw_config_reloads_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse().unwrap()
}

#[actix_web::test]
async fn policy_changes_apply_live_bad_files_are_refused_and_no_call_fails() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).tool("other", &echo.url).start().await;
    let path = gw.settings.policy_config.clone();
    write(&path, BASE);
    let guest = gw.token("g", &["guest"]);
    let dev = gw.token("d", &["developer"]);
    // Wait for the first swap (the file just changed), then the guest may not call `other`.
    let started = Instant::now();
    while reloads(&gw.metrics().await, "applied") == 0 && started.elapsed() < Duration::from_secs(5) {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.invoke(&guest, "other", json!({})).await.0, 403);

    // Under traffic: a developer calls `echo` (allowed by every version) while the file changes.
    let traffic = async {
        let mut statuses = Vec::new();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            statuses.push(gw.invoke(&dev, "echo", json!({})).await.0);
        }
        statuses
    };
    let changes = async {
        for i in 0..4 {
            actix_web::rt::time::sleep(Duration::from_millis(600)).await;
            let extra = if i % 2 == 0 { "  guest: { allowed_tools: [echo, other] }\n" } else { "" };
            write(&path, &BASE.replace("  guest: { allowed_tools: [echo] }\n", extra));
        }
    };
    let (statuses, ()) = futures_util::future::join(traffic, changes).await;
    assert!(statuses.len() > 50 && statuses.iter().all(|s| *s == 200), "{} calls: {statuses:?}", statuses.len());

    // The last version allows the guest `other`.
    write(&path, &BASE.replace("allowed_tools: [echo] }\nworkspaces", "allowed_tools: [echo, other] }\nworkspaces"));
    let started = Instant::now();
    while gw.invoke(&guest, "other", json!({})).await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "the new policy was applied");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken file is refused; the policy in force stays.
    let applied = reloads(&gw.metrics().await, "applied");
    write(&path, "default_action: deny\nroles: { guest: { allowed_tools: [echo], colour: red } }\n");
    let started = Instant::now();
    while reloads(&gw.metrics().await, "refused") == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "the bad file was looked at");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reloads(&gw.metrics().await, "applied"), applied);
    assert_eq!(gw.invoke(&guest, "other", json!({})).await.0, 200, "the previous policy is still in force");
    gw.stop().await;
}

#[actix_web::test]
async fn tools_yaml_changes_apply_live_and_bad_files_are_refused() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let schema = r#"input_schema: {"type": "object", "properties": {"n": {"type": "integer"}}}"#;
    let gw = TestGateway::builder(&db).tool_with("echo", &echo.url, schema).start().await;
    let path = gw.settings.tools_config.clone();
    let dev = gw.token("d", &["developer"]);
    assert_eq!(gw.invoke(&dev, "echo2", json!({})).await.0, 404);
    assert_eq!(gw.invoke(&dev, "echo", json!({"n": "x"})).await.0, 400, "the schema is enforced");
    // An MCP client with an open notification stream hears of the change.
    let sid = gw.mcp_session(&dev).await;
    let mut notifications = client()
        .get(format!("{}/mcp", gw.base))
        .bearer_auth(&dev)
        .insert_header(("Mcp-Session-Id", sid))
        .insert_header(("MCP-Protocol-Version", "2025-06-18"))
        .insert_header(("Accept", "text/event-stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(notifications.status(), 200);
    let listed = |body: &serde_json::Value| -> Vec<String> {
        body["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    // Traffic on `echo` keeps flowing while a tool is added.
    let traffic = async {
        let mut statuses = Vec::new();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            statuses.push(gw.invoke(&dev, "echo", json!({})).await.0);
        }
        statuses
    };
    let change = async {
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        write(
            &path,
            &format!("tools:\n  - name: echo\n    backend_url: {0}\n  - name: echo2\n    backend_url: {0}\n", echo.url),
        );
    };
    let (statuses, ()) = futures_util::future::join(traffic, change).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let started = Instant::now();
    while gw.invoke(&dev, "echo2", json!({})).await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "the new tool was registered");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, tools) = gw.get("/mcp/tools", Some(&dev)).await;
    assert!(listed(&tools).contains(&"echo2".to_owned()), "{tools}");
    assert_eq!(
        gw.invoke(&dev, "echo", json!({"n": "x"})).await.0,
        200,
        "a schema taken out of the file is no longer enforced"
    );
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        let mut seen = String::new();
        while let Some(Ok(chunk)) = notifications.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "the reload reached the MCP client as list_changed");
    // The tools table follows the file.
    let (_, admin_tools) = gw.get("/admin/tools", Some(&gw.token("root", &["admin"]))).await;
    assert!(admin_tools.to_string().contains("echo2"), "{admin_tools}");
    // A bad file is refused and the tools in force stay.
    write(&path, "tools:\n  - name: broken\n    backend_url: not a url\n");
    let started = Instant::now();
    while reloads(&gw.metrics().await, "refused") == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "the bad file was looked at");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.invoke(&dev, "echo2", json!({})).await.0, 200);
    assert_eq!(gw.invoke(&dev, "broken", json!({})).await.0, 404);
    gw.stop().await;
}

/// Every actor's backlog (messages sent and not yet answered) returns to 0 once traffic stops:
/// allowed, denied, unknown and rate-limited calls over REST and MCP, tool listings, policy
/// explanations (before: sent without being counted — a negative backlog, hidden by a clamp
/// to 0 in the report) and policy reloads.
#[actix_web::test]
async fn every_actor_backlog_returns_to_zero_after_mixed_traffic_reloads_and_explain_calls() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .tool("other", &echo.url)
        .policy("rate_limits:\n  per_user: { requests_per_minute: 600, burst: 5 }\n")
        .start()
        .await;
    let path = gw.settings.policy_config.clone();
    let dev = gw.token("d", &["developer"]);
    let guest = gw.token("g", &["guest"]);
    let admin = gw.token("a", &["admin"]);
    for round in 0..3 {
        for _ in 0..8 {
            gw.invoke(&dev, "echo", json!({})).await;
        }
        gw.invoke(&guest, "other", json!({})).await;
        gw.invoke(&dev, "nope", json!({})).await;
        gw.get("/mcp/tools", Some(&dev)).await;
        let sid = gw.mcp_session(&dev).await;
        let listed = client()
            .post(format!("{}/mcp", gw.base))
            .bearer_auth(&dev)
            .insert_header(("Mcp-Session-Id", sid))
            .insert_header(("MCP-Protocol-Version", "2025-06-18"))
            .insert_header(("Accept", "application/json, text/event-stream"))
            .send_json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
        for tool in ["echo", "other", "missing"] {
            let explained = client()
                .post(format!("{}/admin/policy/explain", gw.base))
                .bearer_auth(&admin)
                .send_json(&json!({"subject": {"sub": "x", "roles": ["guest"]}, "tool_name": tool}))
                .await
                .unwrap();
            assert!(explained.status().is_success() || explained.status() == 404, "{}", explained.status());
        }
        write(&path, &format!("{BASE}\n# round {round}\n"));
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    }
    let ops = gw.token("ops", &["operator"]);
    let mut backlogs = Vec::new();
    for _ in 0..100 {
        let (_, health) = gw.get("/health/actors", Some(&ops)).await;
        backlogs = health["actors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["name"].as_str().unwrap().to_owned(), a["backlog"].as_i64().unwrap()))
            .collect::<Vec<_>>();
        if backlogs.iter().all(|(_, b)| *b == 0) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(backlogs.iter().all(|(_, b)| *b == 0), "{backlogs:?}");
    let (_, health) = gw.get("/health/actors", Some(&ops)).await;
    let handled = |name: &str| {
        health["actors"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()["handled"].as_u64().unwrap()
    };
    assert!(handled("registry") > 0 && handled("policy") > 0 && handled("rate_limiter") > 0, "{health}");
    gw.stop().await;
}
