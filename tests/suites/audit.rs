//! The audit trail as a security team reads it: one row per attempt, in SQLite and in
//! PostgreSQL, nothing lost on a graceful shutdown, and queryable by admins.

use std::time::Duration;

use crate::common::backend::{Mode, TestBackend};
use crate::common::{sql, DbKind, TestDb, TestGateway};
use mcp_gateway::db::Db;
use serde_json::json;

async fn one_row_per_attempt(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let echo = TestBackend::start(Mode::Echo).await;
    let slow = TestBackend::start(Mode::Slow(Duration::from_secs(3))).await;
    let garbage = TestBackend::start(Mode::Garbage).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .tool("garbage", &garbage.url)
        .tool("admin_only", &echo.url)
        .tool_with("slow", &slow.url, "timeout_seconds: 1")
        .tool("down", "http://127.0.0.1:9/mcp")
        .start()
        .await;
    let dev = gw.token_in("dana", &["developer"], "open");
    let args = json!({"b": 2, "a": [1, "x"]});
    assert_eq!(gw.invoke(&dev, "echo", args.clone()).await.0, 200);
    assert_eq!(gw.invoke(&gw.token("gus", &["guest"]), "admin_only", json!({})).await.0, 403);
    assert_eq!(gw.invoke(&dev, "missing", json!({})).await.0, 404);
    assert_eq!(gw.post_invoke(None, b"{}".to_vec()).await.0, 401);
    assert_eq!(gw.invoke(&dev, "slow", json!({})).await.0, 504);
    assert_eq!(gw.invoke(&dev, "down", json!({})).await.0, 502);
    let big = format!(r#"{{"tool_name":"echo","arguments":{{"blob":"{}"}}}}"#, "x".repeat(2 << 20));
    assert_eq!(gw.post_invoke(Some(&dev), big.into_bytes()).await.0, 413);
    // A workspace that denies the tool, a backend answering garbage, an expired token, a forged one.
    assert_eq!(gw.invoke(&gw.token_in("lou", &["developer"], "locked"), "echo", json!({})).await.0, 403);
    assert_eq!(gw.invoke(&dev, "garbage", json!({})).await.0, 502);
    let mut expired = crate::common::claims("old", &["developer"], None);
    expired.exp = jsonwebtoken::get_current_timestamp() - 3600;
    assert_eq!(gw.invoke(&crate::common::sign(&expired, crate::common::SECRET), "echo", json!({})).await.0, 401);
    let forged =
        crate::common::sign(&crate::common::claims("eve", &["admin"], None), "a-secret-that-is-not-the-gateways-own!!");
    assert_eq!(gw.invoke(&forged, "echo", json!({})).await.0, 401);

    let rows = db.wait_for_rows(11).await;
    assert_eq!(rows.len(), 11, "exactly one row per attempt");
    let mut seen: Vec<(String, String, i32)> =
        rows.iter().map(|r| (r.decision.clone(), r.status.clone(), r.http_status)).collect();
    seen.sort();
    let mut expected: Vec<(String, String, i32)> = [
        ("allowed", "ok", 200),
        ("denied", "denied", 403),
        ("unknown_tool", "unknown_tool", 404),
        ("unauthenticated", "unauthenticated", 401),
        ("allowed", "backend_timeout", 504),
        ("allowed", "backend_unavailable", 502),
        ("rejected", "payload_too_large", 413),
        ("denied", "denied", 403),
        ("allowed", "backend_bad_reply", 502),
        ("unauthenticated", "unauthenticated", 401),
        ("unauthenticated", "unauthenticated", 401),
    ]
    .iter()
    .map(|(d, s, h)| (d.to_string(), s.to_string(), *h))
    .collect();
    expected.sort();
    assert_eq!(seen, expected);

    let ok = rows.iter().find(|r| r.status == "ok").unwrap();
    assert_eq!(ok.user_id.as_deref(), Some("dana"));
    assert_eq!(ok.roles, r#"["developer"]"#);
    assert_eq!(ok.workspace.as_deref(), Some("open"));
    assert_eq!(ok.tool_name.as_deref(), Some("echo"));
    assert_eq!(ok.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ok.arguments_sha256.as_deref(), Some(mcp_gateway::pipeline::digest(&args).as_str()));
    assert!(ok.duration_ms > 0.0 && ok.error_code.is_none());
    let timeout = rows.iter().find(|r| r.status == "backend_timeout").unwrap();
    assert_eq!(timeout.error_code, Some(-32003));
    assert!(rows.iter().all(|r| r.error_message.as_deref().is_none_or(|m| !m.contains("Bearer"))));
    let locked = rows.iter().find(|r| r.workspace.as_deref() == Some("locked")).unwrap();
    assert_eq!((locked.decision.as_str(), locked.error_code), ("denied", Some(-32002)), "workspace deny is audited");
    gw.stop().await;
    db.drop_db().await;
}

crate::common::on_both_databases!(one_audit_row_per_attempt => one_row_per_attempt);

async fn shutdown_flushes(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let echo = TestBackend::start(Mode::Echo).await;
    // Neither the size nor the time trigger can fire: only the shutdown flush writes.
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .var("AUDIT_FLUSH_INTERVAL_MS", "3600000")
        .var("AUDIT_BATCH_SIZE", "100000")
        .start()
        .await;
    let token = gw.token("a", &["developer"]);
    let calls = (0..300).map(|i| {
        let (gw, token) = (&gw, &token);
        async move { gw.invoke(token, "echo", json!({ "i": i })).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200));
    assert!(db.audit_rows().await.is_empty(), "nothing was flushed before shutdown");
    gw.stop().await;
    assert_eq!(db.audit_rows().await.len(), 300);
    db.drop_db().await;
}

crate::common::on_both_databases!(rows_written_before_a_graceful_shutdown_are_all_stored => shutdown_flushes);

/// Batch writes run side by side (`AUDIT_WRITES`) and commit in any order: under concurrent
/// calls with tiny batches (so many writes overlap), every answered call has its row and the
/// chain still verifies (seq without gaps, each hash linked), on both databases.
async fn concurrent_writes(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .var("AUDIT_BATCH_SIZE", "3")
        .var("AUDIT_WRITES", "4")
        .start()
        .await;
    let token = gw.token("a", &["developer"]);
    let calls = (0..400).map(|i| {
        let (gw, token) = (&gw, &token);
        async move { gw.invoke(token, "echo", json!({ "i": i })).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200));
    gw.stop().await;
    let rows = db.audit_rows().await;
    assert_eq!(rows.len(), 400);
    let pool = mcp_gateway::db::Db::connect(&db.url, 1).unwrap();
    let found = mcp_gateway::db::audit::verify(&pool, &Default::default()).await.unwrap();
    assert_eq!((found.rows, found.problems), (400, vec![]));
    db.drop_db().await;
}

crate::common::on_both_databases!(concurrent_batch_writes_store_every_row_and_verify => concurrent_writes);

async fn admin_queries(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    for user in ["u1", "u2", "u1", "u1"] {
        gw.invoke(&gw.token(user, &["developer"]), "echo", json!({})).await;
    }
    gw.invoke(&gw.token("u2", &["developer"]), "nope", json!({})).await;
    db.wait_for_rows(5).await;
    let admin = gw.token("root", &["admin"]);
    let (status, page) = gw.get("/admin/audit-logs?user=u1&limit=2", Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = gw.get(&format!("/admin/audit-logs?user=u1&limit=2&cursor={cursor}"), Some(&admin)).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let first_ids: Vec<&str> = page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(first_ids[0] > first_ids[1], "newest first");
    // A caller without the role is refused, and the refusal is a row of its own.
    assert_eq!(gw.get("/admin/audit-logs", Some(&gw.token("u1", &["developer"]))).await.0, 403);
    let (_, denied) = gw.get("/admin/audit-logs?decision=unknown_tool&tool=nope", Some(&admin)).await;
    assert_eq!(denied["items"].as_array().unwrap().len(), 1);
    let (_, future) = gw.get("/admin/audit-logs?since=2100-01-01T00:00:00Z", Some(&admin)).await;
    assert!(future["items"].as_array().unwrap().is_empty());
    // Each read of the trail is itself audited, with its outcome, and answered only once its row
    // is durable: the 4 reads so far (this one's row follows its answer); and u1's refusal.
    let (_, past) = gw.get("/admin/audit-logs?until=2100-01-01T00:00:00Z&limit=1000", Some(&admin)).await;
    assert_eq!(past["items"].as_array().unwrap().len(), 5 + 4 + 1);
    let reads = past["items"].as_array().unwrap().iter().filter(|r| r["transport"] == "admin").count();
    assert_eq!(reads, 4 + 1);
    assert_eq!(gw.get("/admin/audit-logs?since=yesterday", Some(&admin)).await.0, 400);
    assert_eq!(gw.get("/admin/audit-logs?colour=red", Some(&admin)).await.0, 400);
    // A security team's `auditor` reads the trail but calls no tool.
    let auditor = gw.token("sec", &["auditor"]);
    let (status, all) = gw.get("/admin/audit-logs?limit=1000", Some(&auditor)).await;
    // + 7 reads by root (the two refused, for `since` and `colour`, too: they were asked, and
    // their rows say 400) + u1's refusal (this read's own row follows its answer).
    assert_eq!((status, all["items"].as_array().unwrap().len()), (200, 5 + 8));
    // The role filter ignores case, on both databases.
    let (_, admins) = gw.get("/admin/audit-logs?role=ADMIN&limit=1000", Some(&auditor)).await;
    assert_eq!(admins["items"].as_array().unwrap().len(), 7, "root's reads");
    assert_eq!(gw.invoke(&auditor, "echo", json!({})).await.0, 403);
    gw.stop().await;
    db.drop_db().await;
}

crate::common::on_both_databases!(admins_page_through_filtered_audit_rows => admin_queries);

async fn tools_sync(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let url = "http://127.0.0.1:9/mcp";
    let gw = TestGateway::builder(&db).tool("a", url).tool("b", url).start().await;
    gw.stop().await;
    let gw = TestGateway::builder(&db).tool_with("a", url, "description: changed").tool("c", url).start().await;
    gw.stop().await;
    let flags = mcp_gateway::db::tools::active_flags(&Db::connect(&db.url, 1).unwrap()).await.unwrap();
    assert_eq!(flags.get("a"), Some(&true));
    assert_eq!(flags.get("b"), Some(&false), "tools missing from the file are kept, inactive");
    assert_eq!(flags.get("c"), Some(&true));
    // A changed definition is updated in place; what left the file is deactivated.
    let changed: gateway_actors::Tool =
        serde_json::from_value(json!({"name": "a", "backend_url": url, "description": "changed again"})).unwrap();
    let conn = Db::connect(&db.url, 1).unwrap();
    let report = mcp_gateway::db::tools::sync(&conn, &[changed]).await.unwrap();
    assert_eq!((report.inserted, report.updated, report.deactivated), (0, 1, 1), "a updated, c deactivated");
    let report = mcp_gateway::db::tools::sync(&conn, &[]).await.unwrap();
    assert_eq!(report.deactivated, 1);
    db.drop_db().await;
}

crate::common::on_both_databases!(tools_yaml_is_synced_into_the_tools_table => tools_sync);

fn verify_cli(db: &TestDb) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET_KEY", crate::common::SECRET)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn tamper_evidence(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("t", &["developer"]);
    for i in 0..6 {
        gw.invoke(&token, "echo", json!({ "i": i })).await;
    }
    gw.stop().await;
    let rows = db.audit_rows().await;
    assert_eq!(rows.len(), 6);
    let (ok, report) = verify_cli(&db);
    assert!(ok, "{report}");
    assert!(report.contains("6 rows in 1 chains"), "{report}");
    let mut by_seq = rows.clone();
    by_seq.sort_by_key(|r| r.seq);
    sql(&db.url, &format!("UPDATE audit_logs SET user_id = 'someone-else' WHERE id = '{}'", by_seq[2].id)).await;
    let (ok, report) = verify_cli(&db);
    assert!(
        !ok && report.contains(&format!("row {} (chain", by_seq[2].id)) && report.contains("content altered"),
        "{report}"
    );
    sql(&db.url, &format!("UPDATE audit_logs SET user_id = 't' WHERE id = '{}'", by_seq[2].id)).await;
    assert!(verify_cli(&db).0, "restored");
    sql(&db.url, &format!("DELETE FROM audit_logs WHERE id = '{}'", by_seq[3].id)).await;
    let (ok, report) = verify_cli(&db);
    assert!(!ok && report.contains("missing before seq 5"), "{report}");
    // A forged row: a copy of a real one under a new id, in its chain or in none.
    let cols = "created_at, request_id, user_id, roles, workspace, tool_name, decision, status, http_status, \
                error_code, duration_ms, client_ip, arguments_sha256, error_message, transport, prev_hash, row_hash";
    let copy = |id: &str, chain: &str| {
        format!(
            "INSERT INTO audit_logs (id, chain_id, seq, {cols}) SELECT '{id}', {chain}, seq, {cols} \
             FROM audit_logs WHERE id = '{}'",
            by_seq[4].id
        )
    };
    sql(&db.url, &copy("forged-in-chain", "chain_id")).await;
    let (ok, report) = verify_cli(&db);
    assert!(!ok && report.contains("repeats a sequence number (inserted)"), "{report}");
    sql(&db.url, "DELETE FROM audit_logs WHERE id = 'forged-in-chain'").await;
    sql(&db.url, &copy("forged-unchained", "''")).await;
    let (ok, report) = verify_cli(&db);
    assert!(!ok && report.contains("1 row(s) belong to no chain"), "{report}");
    // Deleting the newest row leaves no gap inside the chain: its recorded head finds it.
    sql(&db.url, &format!("DELETE FROM audit_logs WHERE id = '{}'", by_seq[5].id)).await;
    let (ok, report) = verify_cli(&db);
    assert!(!ok && report.contains("newest 1 row(s), up to seq 6, are missing (deleted)"), "{report}");
    db.drop_db().await;
}

crate::common::on_both_databases!(an_edited_or_deleted_audit_row_is_found_by_verify => tamper_evidence);

/// Calls `echo` about every 2 ms for `how_long`; the request ids of the answered calls.
async fn steady_load(gw: &TestGateway, token: &str, how_long: std::time::Duration) -> Vec<String> {
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(2));
    let mut answered = Vec::new();
    while started.elapsed() < how_long {
        tick.tick().await;
        let resp = crate::common::client()
            .post(format!("{}/mcp/invoke", gw.base))
            .bearer_auth(token)
            .send_json(&json!({"tool_name": "echo", "arguments": {"n": answered.len()}}))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "calls keep working during the outage");
        answered.push(resp.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned());
    }
    answered
}

/// The outage lasts `AUDIT_OUTAGE_SECONDS` (default 60).
#[actix_web::test]
async fn a_database_outage_under_load_spools_rows_and_replays_them_exactly_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let outage = std::time::Duration::from_secs(
        std::env::var("AUDIT_OUTAGE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60),
    );
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .var("AUDIT_FLUSH_INTERVAL_MS", "50")
        .policy("rate_limits: {}\n")
        .start()
        .await;
    let token = gw.token("o", &["developer"]);
    let mut answered = steady_load(&gw, &token, std::time::Duration::from_secs(1)).await;
    let before = answered.len();
    assert_eq!(db.wait_for_rows(before).await.len(), before);
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    // The outage: no new connections, existing ones killed.
    sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    sql(&admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    answered.extend(steady_load(&gw, &token, outage).await);
    let during = answered.len() - before;
    let mut spooled = 0;
    for _ in 0..100 {
        let (_, health) = gw.get("/health/actors", Some(&gw.token("ops", &["operator"]))).await;
        spooled = health["audit_spooled"].as_u64().unwrap_or(0);
        if spooled as usize == during {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(spooled as usize, during, "the outage's rows are in the spool");
    eprintln!("outage of {outage:?}: {during} calls answered, {spooled} rows spooled");
    sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let restored = std::time::Instant::now();
    let mut rows = db.audit_rows().await;
    while rows.len() < answered.len() && restored.elapsed() < std::time::Duration::from_secs(30) {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        rows = db.audit_rows().await;
    }
    eprintln!("all {} rows stored {:?} after the database came back", rows.len(), restored.elapsed());
    actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
    let rows = db.audit_rows().await;
    let stored: std::collections::HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let lost = answered.iter().filter(|id| !stored.contains(id.as_str())).count();
    assert_eq!((lost, rows.len() - stored.len()), (0, 0), "0 lost, 0 duplicated");
    assert_eq!(rows.len(), answered.len());
    gw.stop().await;
    let (ok, report) = verify_cli(&db);
    assert!(ok, "the replayed rows keep their chain: {report}");
    db.drop_db().await;
}

async fn exports(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    for i in 0..1205 {
        let roles: &[&str] = if i % 5 == 0 { &["admin"] } else { &["developer"] };
        gw.invoke(&gw.token(&format!("u{}", i % 3), roles), "echo", json!({ "i": i })).await;
    }
    db.wait_for_rows(1205).await;
    let admin = gw.token("root", &["admin"]);
    let fetch = |query: &str| {
        let (base, admin, query) = (gw.base.clone(), admin.clone(), query.to_owned());
        async move {
            let mut resp = crate::common::client()
                .get(format!("{base}/admin/audit-logs?{query}"))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap();
            String::from_utf8(resp.body().limit(64 << 20).await.unwrap().to_vec()).unwrap()
        }
    };
    // An export is audited before it runs, so it holds its own row.
    let csv = fetch("format=csv").await;
    assert_eq!(csv.lines().count(), 1207, "header + every row, across pages, + the export's own");
    assert!(csv.starts_with("id,created_at,request_id"));
    let jsonl = fetch("format=jsonl&role=admin").await;
    assert_eq!(jsonl.lines().count(), 241 + 2, "the admin's two exports are rows of an admin too");
    assert!(jsonl.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["roles"] == "[\"admin\"]"));
    let one: serde_json::Value = serde_json::from_str(jsonl.lines().nth(2).unwrap()).unwrap();
    let by_request = fetch(&format!("request_id={}", one["request_id"].as_str().unwrap())).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&by_request).unwrap()["items"].as_array().unwrap().len(), 1);
    gw.stop().await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("JWT_SECRET_KEY", crate::common::SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // The export is itself audited (a `cli` row, before the rows are read): header + 1205 + the
    // three HTTP reads above + its own.
    let exported = cli(&["audit", "export", "--format", "csv"]);
    assert_eq!(exported.lines().count(), 1210);
    assert!(
        exported.lines().any(|l| l.contains(",cli/audit-export csv,") && l.contains(",cli,")),
        "the export's own row"
    );
    assert_eq!(cli(&["audit", "query", "--user", "u1", "--limit", "7"]).lines().count(), 7);
    assert_eq!(cli(&["audit", "export", "--role", "admin"]).lines().count(), 241 + 3); // + the JSON query by request id
    db.drop_db().await;
}

crate::common::on_both_databases!(exports_stream_every_row_as_csv_or_jsonl_and_the_cli_agrees => exports);

async fn kept_arguments_are_masked(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else {
        return;
    };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .tool("quiet", &echo.url)
        .policy("tools:\n  echo: { audit_arguments: ['*'] }\n  quiet: {}\n")
        .start()
        .await;
    let dev = gw.token_in("dana", &["developer"], "open");
    let jwt = gw.token("someone", &["guest"]);
    let args = json!({
        "query": "select 1",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer abc", "x-trace": "t1"},
        "forwarded": jwt,
        "key": "ghp_0123456789abcdefghijklmnop"
    });
    assert_eq!(gw.invoke(&dev, "echo", args.clone()).await.0, 200);
    assert_eq!(gw.invoke(&dev, "quiet", args.clone()).await.0, 200);
    let rows = db.wait_for_rows(2).await;
    let echo_row = rows.iter().find(|r| r.tool_name.as_deref() == Some("echo")).unwrap();
    let kept: serde_json::Value = serde_json::from_str(echo_row.arguments_logged.as_deref().unwrap()).unwrap();
    assert_eq!(
        kept,
        json!({
            "query": "select 1",
            "password": "[REDACTED]",
            "headers": {"Authorization": "[REDACTED]", "x-trace": "t1"},
            "forwarded": "[REDACTED]",
            "key": "[REDACTED]"
        })
    );
    let quiet = rows.iter().find(|r| r.tool_name.as_deref() == Some("quiet")).unwrap();
    assert_eq!(quiet.arguments_logged, None, "a tool without audit_arguments keeps only the digest");
    // Neither the caller's token, nor any secret argument, is anywhere in the table.
    let dump = format!("{rows:?}");
    for secret in [dev.as_str(), jwt.as_str(), "hunter2", "Bearer abc", "ghp_0123456789"] {
        assert!(!dump.contains(secret), "{secret} leaked into the audit table");
    }
    gw.stop().await;
    // The chain still verifies with the kept arguments hashed in.
    let (ok, report) = verify_cli(&db);
    assert!(ok, "{report}");
    db.drop_db().await;
}

crate::common::on_both_databases!(kept_arguments_are_masked_and_tokens_never_stored => kept_arguments_are_masked);

async fn retention(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("t", &["developer"]);
    for i in 0..6 {
        gw.invoke(&token, "echo", json!({ "i": i })).await;
    }
    gw.stop().await;
    assert_eq!(db.audit_rows().await.len(), 6);
    // The three oldest rows of the chain are from another era.
    sql(&db.url, "UPDATE audit_logs SET created_at = '2000-01-01 00:00:00' WHERE seq <= 3").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .args(["audit", "prune", "--older-than-days", "30"])
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET_KEY", crate::common::SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.starts_with("3 audit rows"), "{stdout}");
    let mut left: Vec<i64> = db.audit_rows().await.iter().map(|r| r.seq).collect();
    left.sort_unstable();
    assert_eq!(left, [4, 5, 6]);
    // What remains verifies from the checkpoint, and tampering with it is still found.
    let (ok, report) = verify_cli(&db);
    assert!(ok && report.contains("3 rows in 1 chains"), "{report}");
    sql(&db.url, "DELETE FROM audit_logs WHERE seq = 4").await;
    let (ok, report) = verify_cli(&db);
    assert!(!ok && report.contains("missing before seq 5"), "{report}");
    db.drop_db().await;
}

crate::common::on_both_databases!(retention_deletes_old_rows_and_the_rest_still_verifies => retention);

/// `AUDIT_RETENTION_DAYS`: the gateway prunes at start-up and then hourly, by itself.
#[actix_web::test]
async fn the_gateway_applies_audit_retention_days_by_itself() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("t", &["developer"]);
    for i in 0..4 {
        gw.invoke(&token, "echo", json!({ "i": i })).await;
    }
    gw.stop().await;
    sql(&db.url, "UPDATE audit_logs SET created_at = '2000-01-01 00:00:00' WHERE seq <= 2").await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).var("AUDIT_RETENTION_DAYS", "30").start().await;
    let started = std::time::Instant::now();
    while db.audit_rows().await.len() != 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "retention ran at start-up");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    gw.stop().await;
    let (ok, report) = verify_cli(&db);
    assert!(ok, "what remains verifies: {report}");
}

#[actix_web::test]
async fn a_full_audit_queue_makes_calls_wait_for_their_own_row() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        // The batch timer never fires and no batch fills: only a bounded queue writes.
        .var("AUDIT_FLUSH_INTERVAL_MS", "3600000")
        .var("AUDIT_BATCH_SIZE", "100000")
        .var("AUDIT_QUEUE_MAX", "0")
        .start()
        .await;
    let token = gw.token("q", &["developer"]);
    for i in 0..5 {
        assert_eq!(gw.invoke(&token, "echo", json!({ "i": i })).await.0, 200);
        assert_eq!(db.audit_rows().await.len(), i + 1, "the row is stored before the answer");
    }
    gw.stop().await;
}

/// Rows `seq` from..to of chain `chain`, linked and hashed as the writer makes them.
fn chain_rows(chain: &str, from: i64, to: i64, prev: &str) -> Vec<gateway_actors::AuditRecord> {
    let mut prev = prev.to_owned();
    (from..=to)
        .map(|seq| {
            let mut row = crate::common::audit_row(seq as usize, &|k| format!("{chain}-{k}"));
            row.chain_id = chain.to_owned();
            row.seq = seq;
            row.prev_hash = prev.clone();
            row.row_hash = row.compute_hash();
            prev = row.row_hash.clone();
            row
        })
        .collect()
}

/// Writes of one chain overlap (`AUDIT_WRITES`) only if each inserts its rows before it queues
/// for the chain's head row: the head's row lock is held until commit, and a write that took
/// it first held every later write back, rows and all (on a 16-core machine the audit trail
/// stopped at ~20,000 rows/s whatever `AUDIT_WRITES` said). While an uncommitted write holds
/// the head, a second write's rows must already be in the table — a probe inserting one of
/// their ids waits for it — and once the holder lets go it commits, with the chain verifying.
#[actix_web::test]
async fn a_write_inserts_its_rows_while_another_write_of_its_chain_holds_the_head() {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let Some(db) = TestDb::of(DbKind::Postgres).await else {
        return;
    };
    mcp_gateway::db::migrate(&db.url).await.unwrap();
    let pool = Db::connect(&db.url, 4).unwrap();
    let evidence = std::sync::Arc::new(mcp_gateway::db::audit::Evidence::new(None));
    let first = chain_rows("c", 1, 50, "");
    let second = chain_rows("c", 51, 100, &first[49].row_hash);
    mcp_gateway::db::audit::insert_batch(&pool, &first[..1], &evidence).await.unwrap();
    // An earlier write of the chain, not yet committed: it holds the head.
    let mut holder = diesel_async::AsyncPgConnection::establish(&db.url).await.unwrap();
    holder.batch_execute("BEGIN; UPDATE audit_chain_heads SET seq = 50 WHERE chain_id = 'c'").await.unwrap();
    let write = {
        let (pool, evidence, rows) = (pool.clone(), evidence.clone(), second.clone());
        actix_web::rt::spawn(async move { mcp_gateway::db::audit::insert_batch(&pool, &rows, &evidence).await })
    };
    // Wait until the second write is queued on a lock.
    let mut probe = diesel_async::AsyncPgConnection::establish(&db.url).await.unwrap();
    let waiting = || {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '%audit_chain_heads%'",
        )
    };
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut queued = false;
    for _ in 0..100 {
        let c: Vec<Count> = diesel_async::RunQueryDsl::load(waiting(), &mut probe).await.unwrap();
        if c[0].n > 0 {
            queued = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(queued, "the second write never queued behind the held head");
    let taken = format!(
        "SET lock_timeout = '300ms'; INSERT INTO audit_logs (id, created_at, request_id, roles, decision, status, \
         http_status, duration_ms) VALUES ('{}', now(), 'probe', '', 'allowed', 'ok', 200, 0)",
        second[0].id
    );
    let probed = probe.batch_execute(&taken).await;
    assert!(
        probed.as_ref().is_err_and(|e| e.to_string().contains("lock timeout")),
        "the queued write had not inserted its rows yet: {probed:?}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    write.await.unwrap().unwrap();
    mcp_gateway::db::audit::insert_batch(&pool, &first[1..], &evidence).await.unwrap();
    assert_eq!(db.audit_rows().await.len(), 100);
    let found = mcp_gateway::db::audit::verify(&pool, &Default::default()).await.unwrap();
    assert_eq!((found.rows, found.problems), (100, vec![]));
    db.drop_db().await;
}
