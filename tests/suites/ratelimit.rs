//! Traffic control as clients and operators meet it: 429s that name the limit, limits shared
//! by two real gateway processes through Redis, and the configured behaviour when Redis dies.

use std::time::Duration;

use crate::common::backend::{Mode, TestBackend};
use crate::common::replicas::{Redis, Replica};
use crate::common::{client, TestDb, TestGateway, SECRET};
use serde_json::{json, Value};

const LIMITS: &str = "
rate_limits:
  per_user: {requests_per_minute: 6, burst: 3}
  roles: {admin: {requests_per_minute: 6000, burst: 1000}}
  per_tool: {scarce: {requests_per_minute: 6, burst: 2}}
  per_user_tool: {requests_per_minute: 6000, burst: 1000}
";

#[actix_web::test]
async fn the_fourth_call_gets_a_429_naming_the_limit_and_costs_the_backend_nothing() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).policy(LIMITS).start().await;
    let token = gw.token("rita", &["developer"]);
    for _ in 0..3 {
        assert_eq!(gw.invoke(&token, "echo", json!({})).await.0, 200);
    }
    let body = json!({"tool_name": "echo", "arguments": {}}).to_string().into_bytes();
    let (status, headers, json) = gw.post_invoke(Some(&token), body).await;
    assert_eq!(status, 429, "{json}");
    assert_eq!(json["error"]["code"], -32006);
    assert_eq!(json["error"]["data"]["limit"], "per_user");
    assert!(json["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 9_000);
    assert_eq!(headers.get("retry-after").unwrap(), "10");
    assert!(headers.get("ratelimit-policy").unwrap().to_str().unwrap().starts_with("\"per_user\";q=6;w=60"));
    assert!(headers.get("ratelimit").unwrap().to_str().unwrap().contains("r=0"));
    assert_eq!(backend.count("tools/call"), 3, "rejections never reach the backend");
    // A role's quota replaces per_user.
    let admin = gw.token("root", &["admin"]);
    for _ in 0..10 {
        assert_eq!(gw.invoke(&admin, "echo", json!({})).await.0, 200);
    }
    let rows = db.wait_for_rows(14).await;
    let metrics = gw.metrics().await;
    assert!(metrics.contains("mcpgw_rate_limit_rejections_total{limit=\"per_user\"} 1"), "{metrics}");
    assert!(
        metrics.contains("mcpgw_tool_calls_total{tool=\"echo\",decision=\"allowed\",status=\"ok\"} 13"),
        "{metrics}"
    );
    let limited: Vec<_> = rows.iter().filter(|r| r.decision == "rate_limited").collect();
    assert_eq!(limited.len(), 1);
    assert_eq!((limited[0].http_status, limited[0].status.as_str()), (429, "rate_limited"));
    gw.stop().await;
}

#[actix_web::test]
async fn a_tools_shared_quota_binds_everyone_but_not_other_tools() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw =
        TestGateway::builder(&db).tool("scarce", &backend.url).tool("echo", &backend.url).policy(LIMITS).start().await;
    let (a, b) = (gw.token("a", &["admin"]), gw.token("b", &["admin"]));
    assert_eq!(gw.invoke(&a, "scarce", json!({})).await.0, 200);
    assert_eq!(gw.invoke(&b, "scarce", json!({})).await.0, 200);
    let (status, json) = gw.invoke(&a, "scarce", json!({})).await;
    assert_eq!((status, json["error"]["data"]["limit"].as_str()), (429, Some("per_tool")));
    assert_eq!(gw.invoke(&a, "echo", json!({})).await.0, 200, "another tool is not blocked");
    // Over MCP the same refusal is a JSON-RPC error.
    let sid = gw.mcp_session(&b).await;
    let call: Value = client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&b)
        .insert_header(("Mcp-Session-Id", sid))
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "scarce", "arguments": {}}}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(call["error"]["code"], -32006, "{call}");
    assert_eq!(call["error"]["data"]["limit"], "per_tool", "the limit that fired, as on REST: {call}");
    assert!(call["error"]["data"]["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{call}");
    gw.stop().await;
}

async fn replica(db: &TestDb, redis: &str, dir: &std::path::Path, name: &str, backend: &str) -> (Replica, String) {
    std::fs::write(dir.join("tools.yaml"), format!("tools:\n  - name: echo\n    backend_url: {backend}\n")).unwrap();
    std::fs::write(dir.join("policy.yaml"), "default_action: deny\nroles: {developer: {allowed_tools: ['*']}}\nrate_limits:\n  per_user: {requests_per_minute: 6, burst: 50}\n").unwrap();
    let replica =
        crate::common::replicas::replica(db, Some(redis), dir, name, &[("RATE_LIMIT_FAILURE_MODE", "open")]).await;
    let base = replica.base.clone();
    (replica, base)
}

async fn call(base: &str, token: &str) -> u16 {
    client()
        .post(format!("{base}/mcp/invoke"))
        .bearer_auth(token)
        .send_json(&json!({"tool_name": "echo", "arguments": {}}))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn two_replicas_share_one_limit_through_redis_and_fail_open_without_it() {
    let Some(mut redis) = Redis::start() else { return };
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let backend = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let (_a, base_a) = replica(&db, &redis.url, dir.path(), "a", &backend.url).await;
    let (_b, base_b) = replica(&db, &redis.url, dir.path(), "b", &backend.url).await;
    let token = crate::common::sign(
        &crate::common::claims(&format!("shared-{}", uuid::Uuid::new_v4().simple()), &["developer"], None),
        SECRET,
    );
    let mut allowed = 0;
    for i in 0..200 {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        match call(base, &token).await {
            200 => allowed += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // Burst 50, refill one per 10 s: both replicas together allow 50 (51 if the run spans a refill).
    assert!((50..=51).contains(&allowed), "allowed {allowed}");
    // Redis gone, fail-open: calls pass.
    redis.stop();
    let statuses: Vec<u16> = futures_util::future::join_all((0..10).map(|i| {
        let (base, token) = (if i % 2 == 0 { base_a.clone() } else { base_b.clone() }, token.clone());
        async move { call(&base, &token).await }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "fail-open: {statuses:?}");
    // Fail-open is never silent: each replica counts the store errors it let through.
    let ops = crate::common::sign(&crate::common::claims("ops", &["operator"], None), SECRET);
    for base in [&base_a, &base_b] {
        let text =
            client().get(format!("{base}/metrics")).bearer_auth(&ops).send().await.unwrap().body().await.unwrap();
        let text = String::from_utf8_lossy(&text);
        let errors: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("mcpgw_rate_limit_store_errors_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        assert!(errors >= 1.0, "{base}: {text}");
    }
    db.drop_db().await;
}

#[actix_web::test]
async fn without_redis_a_fail_closed_gateway_refuses_and_reports_it() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let dead = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("redis://127.0.0.1:{port}")
    };
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .policy(LIMITS)
        .var("REDIS_URL", &dead)
        .var("RATE_LIMIT_FAILURE_MODE", "closed")
        .start()
        .await;
    let token = gw.token("c", &["developer"]);
    let (status, json) = gw.invoke(&token, "echo", json!({})).await;
    assert_eq!((status, json["error"]["code"].as_i64()), (503, Some(-32603)), "{json}");
    assert_eq!(backend.count("tools/call"), 0);
    let (_, actors) = gw.get("/health/actors", Some(&gw.token("ops", &["operator"]))).await;
    let limiter = actors["actors"].as_array().unwrap().iter().find(|a| a["name"] == "rate_limiter").unwrap().clone();
    assert!(limiter["last_error"].as_str().unwrap().contains("rate-limit store"), "{limiter}");
    gw.stop().await;
}

/// The Redis script under concurrency: 64 tasks × 10 tries on one key pass exactly the burst
/// (a limit of 1 per minute refills nothing during the test), the first refusal says when to
/// retry, and a second key is untouched.
#[actix_web::test]
async fn redis_limits_hold_exactly_under_64_concurrent_callers() {
    use gateway_actors::{Limit, Quota, RateStore, Verdict};
    let Some(redis) = Redis::start() else { return };
    let store = std::sync::Arc::new(mcp_gateway::ratelimit::RedisStore::new(&redis.url).unwrap());
    let key = format!("hot:{}", uuid::Uuid::new_v4().simple());
    let limit = Limit { key: key.clone(), quota: Quota { requests_per_minute: 1, burst: 37 }, name: "per_user".into() };
    let tasks = (0..64).map(|_| {
        let (store, limit) = (store.clone(), limit.clone());
        async move {
            let mut passed = 0;
            for _ in 0..10 {
                if matches!(store.check(vec![limit.clone()]).await.unwrap(), Verdict::Allowed { .. }) {
                    passed += 1;
                }
            }
            passed
        }
    });
    let passed: usize = futures_util::future::join_all(tasks).await.into_iter().sum();
    assert_eq!(passed, 37, "exactly the burst passes");
    let Verdict::Limited { retry_after, .. } = store.check(vec![limit]).await.unwrap() else { panic!("refused") };
    assert!(retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60), "{retry_after:?}");
    let other =
        Limit { key: format!("{key}-other"), quota: Quota { requests_per_minute: 1, burst: 1 }, name: "x".into() };
    assert!(matches!(store.check(vec![other]).await.unwrap(), Verdict::Allowed { .. }));
}
