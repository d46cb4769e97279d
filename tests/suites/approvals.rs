//! Calls held for a person's approval (policy `tools.<name>.approval`): REST answers 202 and a
//! job, an approver (never the requester) approves or denies with a reason, nobody deciding in
//! time denies, an MCP client (the official Python SDK) waits with progress, decisions reach
//! the call across replicas and restarts, the queue is closed to everyone without the approver
//! role, and the trail tells the whole story under the call's request id.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::backend::{Mode, TestBackend};
use crate::common::{client, DbKind, TestDb, TestGateway};

/// `transfer` waits for a treasurer above 1,000 (or without an amount); the approver sees the
/// arguments in full.
const APPROVAL: &str = "
tools:
  transfer:
    approval:
      approver_role: treasurer
      timeout_seconds: TIMEOUT
      arguments: full
      unless_arguments:
        amount: { max: 1000, required: true }
";

fn policy(timeout: u64) -> String {
    APPROVAL.replace("TIMEOUT", &timeout.to_string())
}

async fn start(db: &TestDb, backend: &TestBackend, timeout: u64) -> TestGateway {
    TestGateway::builder(db).tool("transfer", &backend.url).policy(&policy(timeout)).start().await
}

async fn post(gw: &TestGateway, path: &str, token: &str, body: Value) -> (u16, Value) {
    let mut resp = client().post(format!("{}{path}", gw.base)).bearer_auth(token).send_json(&body).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn invoke(gw: &TestGateway, token: &str, amount: Value) -> (u16, Value) {
    post(
        gw,
        "/mcp/invoke",
        token,
        json!({ "tool_name": "transfer", "arguments": { "amount": amount, "to": "acct-9" } }),
    )
    .await
}

async fn job_until(gw: &TestGateway, token: &str, id: &str, done: impl Fn(&str) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (_, job) = gw.get(&format!("/mcp/jobs/{id}"), Some(token)).await;
        if job["status"].as_str().is_some_and(&done) {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "job {id} stayed {job}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn approvals_and_denials_through_rest(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let bob = gw.token("bob", &["treasurer"]);

    // Within the rule: no approval, answered at once.
    let (status, body) = invoke(&gw, &alice, json!(50)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(backend.with("tools/call").len(), 1);

    // Above it: 202 and a held job; the backend is not called.
    let (status, held) = invoke(&gw, &alice, json!(5000)).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["status"], "awaiting_approval", "{held}");
    assert_eq!(held["approval"]["approver_role"], "treasurer");
    assert!(held["approval"]["reasons"].to_string().contains("amount: max"), "{held}");
    let id = held["id"].as_str().unwrap().to_owned();
    // A number written as a string, or no amount at all, is held too.
    assert_eq!(invoke(&gw, &alice, json!("1000.5")).await.0, 202);
    let (status, _) =
        post(&gw, "/mcp/invoke", &alice, json!({ "tool_name": "transfer", "arguments": { "to": "x" } })).await;
    assert_eq!(status, 202, "a missing amount is held");
    assert_eq!(backend.with("tools/call").len(), 1, "nothing held reached the backend");

    // The approver sees the request with its arguments and the rule that fired.
    let (status, queue) = gw.get("/admin/approvals", Some(&bob)).await;
    assert_eq!(status, 200, "{queue}");
    let request = queue["approvals"].as_array().unwrap().iter().find(|a| a["id"] == id.as_str()).unwrap().clone();
    assert_eq!(request["arguments"], json!({ "amount": 5000, "to": "acct-9" }));
    assert_eq!(request["requester"], "alice");

    // Four eyes: the requester cannot decide, even holding the approver role.
    let alice_treasurer = gw.token("alice", &["developer", "treasurer"]);
    let (status, body) =
        post(&gw, &format!("/admin/approvals/{id}/approve"), &alice_treasurer, json!({ "reason": "mine" })).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("four eyes"), "{body}");
    // A reason is required.
    assert_eq!(post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "  " })).await.0, 400);
    assert_eq!(post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({})).await.0, 400);

    // Approved: it runs (once) and succeeds.
    let (status, decided) =
        post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "invoice 42" })).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "bob");
    let job = job_until(&gw, &alice, &id, |s| s == "succeeded").await;
    assert!(job["result"].to_string().contains("acct-9"), "{job}");
    assert_eq!(backend.with("tools/call").len(), 2);
    // Decided once: a second decision is refused.
    let (status, body) = post(&gw, &format!("/admin/approvals/{id}/deny"), &bob, json!({ "reason": "late" })).await;
    assert_eq!(status, 400, "{body}");

    // Denied: it ends denied with who and why; the backend never hears of it.
    let (_, held) = invoke(&gw, &alice, json!(9000)).await;
    let denied_id = held["id"].as_str().unwrap().to_owned();
    let (status, _) =
        post(&gw, &format!("/admin/approvals/{denied_id}/deny"), &bob, json!({ "reason": "<b>not this month</b>" }))
            .await;
    assert_eq!(status, 200);
    let job = job_until(&gw, &alice, &denied_id, |s| s == "denied").await;
    assert!(
        job["error"]["message"].as_str().unwrap().contains("approval denied by bob: <b>not this month</b>"),
        "{job}"
    );
    assert_eq!(backend.with("tools/call").len(), 2);

    // The caller cancelling a held call withdraws its request.
    let (_, held) = invoke(&gw, &alice, json!(7000)).await;
    let withdrawn = held["id"].as_str().unwrap().to_owned();
    let mut resp =
        client().delete(format!("{}/mcp/jobs/{withdrawn}", gw.base)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.body().await);
    let (_, request) = gw.get(&format!("/admin/approvals/{withdrawn}"), Some(&bob)).await;
    assert_eq!(request["status"], "withdrawn", "{request}");

    // The trail: request, decision and the call's own row share the call's request id.
    let approved_request_id = decided["request_id"].as_str().unwrap().to_owned();
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    let story: Vec<_> = rows.iter().filter(|r| r.request_id == approved_request_id).collect();
    let statuses: Vec<(&str, Option<&str>, &str)> =
        story.iter().map(|r| (r.status.as_str(), r.user_id.as_deref(), r.tool_name.as_deref().unwrap_or(""))).collect();
    assert!(statuses.contains(&("awaiting_approval", Some("alice"), "transfer")), "{statuses:?}");
    assert!(statuses.contains(&("ok", Some("bob"), "approval/approved transfer")), "{statuses:?}");
    assert!(statuses.contains(&("ok", Some("alice"), "transfer")), "{statuses:?}");
    assert_eq!(story.len(), 3, "{statuses:?}");
    let decision = story.iter().find(|r| r.user_id.as_deref() == Some("bob")).unwrap();
    assert!(decision.arguments_logged.as_deref().unwrap_or("").contains("invoice 42"), "{decision:?}");
    let denial = rows.iter().find(|r| r.status == "denied" && r.user_id.as_deref() == Some("alice")).unwrap();
    assert!(denial.error_message.as_deref().unwrap_or("").contains("not this month"), "{denial:?}");
    // Covered by the hash chain.
    let found = mcp_gateway::db::audit::verify(&mcp_gateway::db::Db::connect(&db.url, 1).unwrap(), &Default::default())
        .await
        .unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    backend.stop().await;
    db.drop_db().await;
}

crate::common::on_both_databases!(approvals_and_denials_through_rest => approvals_and_denials_through_rest);

/// Nobody decides in time: the call is denied, and a decision after that is refused.
#[actix_web::test]
async fn a_request_nobody_decides_is_denied_when_it_times_out() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("transfer", &backend.url).policy(&policy(1)).start().await;
    let alice = gw.token("alice", &["developer"]);
    let (status, held) = invoke(&gw, &alice, json!(5000)).await;
    assert_eq!(status, 202);
    let id = held["id"].as_str().unwrap().to_owned();
    let job = job_until(&gw, &alice, &id, |s| s == "denied").await;
    assert!(job["error"]["message"].as_str().unwrap().contains("timed out"), "{job}");
    let bob = gw.token("bob", &["treasurer"]);
    let (status, body) = post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "late" })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    assert!(backend.with("tools/call").is_empty());
    gw.stop().await;
}

/// Without the approver role no approval endpoint answers (and each refusal is audited); an
/// approver of another role sees nothing of this one's queue.
#[actix_web::test]
async fn the_queue_is_closed_to_everyone_without_the_approver_role() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let (_, held) = invoke(&gw, &alice, json!(5000)).await;
    let id = held["id"].as_str().unwrap().to_owned();
    for who in [&["admin"][..], &["operator"], &["auditor"], &["developer"], &["guest"]] {
        let token = gw.token("mallory", who);
        assert_eq!(gw.get("/admin/approvals", Some(&token)).await.0, 403, "{who:?} listed");
        assert_eq!(gw.get(&format!("/admin/approvals/{id}"), Some(&token)).await.0, 403, "{who:?} read");
        for verb in ["approve", "deny"] {
            let (status, _) =
                post(&gw, &format!("/admin/approvals/{id}/{verb}"), &token, json!({ "reason": "x" })).await;
            assert_eq!(status, 403, "{who:?} {verb}");
        }
    }
    assert_eq!(gw.get("/admin/approvals", None).await.0, 401);
    let (_, job) = gw.get(&format!("/mcp/jobs/{id}"), Some(&alice)).await;
    assert_eq!(job["status"], "awaiting_approval", "{job}");
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    let refused = rows.iter().filter(|r| r.user_id.as_deref() == Some("mallory") && r.http_status == 403).count();
    assert_eq!(refused, 20, "every refusal is audited");
    backend.stop().await;
}

fn python_waits(url: String, token: String, amount: u64) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let out = std::process::Command::new("timeout")
            .arg("120")
            .arg(crate::common::replicas::python())
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/approval_client.py"))
            .args([url, token, "transfer".into(), json!({ "amount": amount, "to": "acct-1" }).to_string()])
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

async fn pending_for(gw: &TestGateway, token: &str, amount: u64) -> String {
    let started = Instant::now();
    loop {
        let (_, queue) = gw.get("/admin/approvals", Some(token)).await;
        if let Some(a) =
            queue["approvals"].as_array().and_then(|a| a.iter().find(|a| a["arguments"]["amount"] == amount))
        {
            return a["id"].as_str().unwrap().to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no request for {amount}: {queue}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finished(run: std::thread::JoinHandle<String>) -> String {
    while !run.is_finished() {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    run.join().unwrap()
}

/// An MCP client (the official Python SDK) waits on its `tools/call` while the call is held,
/// hearing "awaiting approval by treasurer" as progress; two replicas share the database: the
/// call waits on one, the decision is made on the other. Approved, it gets the tool's answer;
/// denied, a tool error naming who and why.
#[actix_web::test]
async fn an_mcp_client_waits_while_a_person_decides_on_another_replica() {
    if !crate::common::replicas::python_has_mcp() {
        return;
    }
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let backend = TestBackend::start(Mode::Echo).await;
    let waiting = start(&db, &backend, 600).await;
    let deciding = start(&db, &backend, 600).await;
    let alice = waiting.token("alice", &["developer"]);
    let bob = deciding.token("bob", &["treasurer"]);

    let run = python_waits(format!("{}/mcp", waiting.base), alice.clone(), 4000);
    let id = pending_for(&deciding, &bob, 4000).await;
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = post(&deciding, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "ok" })).await;
    assert_eq!(status, 200);
    let out = finished(run).await;
    assert!(out.contains("PROGRESS awaiting approval by treasurer"), "{out}");
    let result = out.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("{out}"));
    let result: Value = serde_json::from_str(result).unwrap();
    assert_eq!(result["is_error"], false, "{out}");
    assert!(result["text"].as_str().unwrap().contains("acct-1"), "{out}");

    let run = python_waits(format!("{}/mcp", waiting.base), alice.clone(), 6000);
    let id = pending_for(&deciding, &bob, 6000).await;
    let (status, _) =
        post(&deciding, &format!("/admin/approvals/{id}/deny"), &bob, json!({ "reason": "over budget" })).await;
    assert_eq!(status, 200);
    let out = finished(run).await;
    let result: Value = serde_json::from_str(out.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap()).unwrap();
    assert_eq!(result["is_error"], true, "{out}");
    assert!(result["text"].as_str().unwrap().contains("approval denied by bob: over budget"), "{out}");
    assert_eq!(backend.with("tools/call").len(), 1, "only the approved call reached the backend");
    waiting.stop().await;
    deciding.stop().await;
    backend.stop().await;
    db.drop_db().await;
}

/// A gateway restarted while a call waits loses nothing: the request is still there, and once
/// approved the call runs on the new process.
#[actix_web::test]
async fn a_restart_while_pending_loses_nothing() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let (_, held) = invoke(&gw, &alice, json!(5000)).await;
    let id = held["id"].as_str().unwrap().to_owned();
    gw.stop().await;
    let gw = start(&db, &backend, 600).await;
    let bob = gw.token("bob", &["treasurer"]);
    let (status, _) =
        post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "after restart" })).await;
    assert_eq!(status, 200);
    job_until(&gw, &alice, &id, |s| s == "succeeded").await;
    assert_eq!(backend.with("tools/call").len(), 1);
    gw.stop().await;
    backend.stop().await;
}

/// 10,000 pending requests do not slow ordinary calls: the median of 200 calls before and
/// after (printed), and the approver's queue still answers.
#[actix_web::test]
async fn ten_thousand_pending_requests_do_not_slow_ordinary_calls() {
    let Some(db) = TestDb::postgres().await else { return };
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 3600).await;
    let alice = gw.token("alice", &["developer"]);
    async fn median(gw: &TestGateway, token: &str) -> Duration {
        let mut took = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            assert_eq!(invoke(gw, token, json!(10)).await.0, 200);
            took.push(t.elapsed());
        }
        took.sort();
        took[100]
    }
    let before = median(&gw, &alice).await;
    crate::common::sql(
        &db.url,
        "INSERT INTO jobs (id, owner, roles, workspace, tool_name, arguments, status, request_id, idempotency_key, \
         transport, claimed_by, progress, result, error, client_ip, created_at, updated_at, started_at, finished_at, \
         heartbeat_at, expires_at) SELECT 'flood-' || i, 'user' || (i % 100), '[\"developer\"]', NULL, 'transfer', \
         '{\"amount\": 5000}', 'awaiting_approval', 'req-' || i, NULL, 'rest', NULL, NULL, NULL, NULL, NULL, now(), \
         now(), NULL, NULL, NULL, NULL FROM generate_series(1, 10000) AS i",
    )
    .await;
    crate::common::sql(
        &db.url,
        "INSERT INTO approvals (id, tool_name, requester, requester_roles, workspace, approver_role, arguments, reasons, \
         request_id, status, decided_by, reason, created_at, expires_at, decided_at) SELECT 'flood-' || i, 'transfer', \
         'user' || (i % 100), '[\"developer\"]', NULL, 'treasurer', '{\"amount\": 5000}', '[]', 'req-' || i, 'pending', \
         NULL, NULL, now(), now() + interval '1 hour', NULL FROM generate_series(1, 10000) AS i",
    )
    .await;
    // As autovacuum would after a burst of inserts.
    crate::common::sql(&db.url, "ANALYZE jobs").await;
    crate::common::sql(&db.url, "ANALYZE approvals").await;
    let after = median(&gw, &alice).await;
    println!("FIGURE median call before {before:?}, with 10,000 pending requests {after:?}");
    // A sanity bound only (other suites share this machine in CI); the figure is the result.
    assert!(after < before * 4 + Duration::from_millis(10), "ordinary calls slowed: {before:?} → {after:?}");
    let bob = gw.token("bob", &["treasurer"]);
    let t = Instant::now();
    let (status, queue) = gw.get("/admin/approvals?limit=100", Some(&bob)).await;
    assert_eq!(status, 200);
    assert_eq!(queue["approvals"].as_array().unwrap().len(), 100);
    println!("FIGURE approval queue page with 10,000 pending: {:?}", t.elapsed());
    gw.stop().await;
    backend.stop().await;
    db.drop_db().await;
}

/// The console's Approvals page in headless Chromium: the requester (holding the approver
/// role) sees their own request without buttons; the approver sees the arguments and the rule
/// that fired, must give a reason, and approves; the call then runs.
#[actix_web::test]
async fn an_approver_decides_in_the_console() {
    if !crate::console::browser_ready() {
        return;
    }
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer", "treasurer"]);
    let (status, held) = post(
        &gw,
        "/mcp/invoke",
        &alice,
        json!({ "tool_name": "transfer", "arguments": { "amount": 2500, "to": "<img src=x onerror=alert(1)>" } }),
    )
    .await;
    assert_eq!(status, 202, "{held}");
    let id = held["id"].as_str().unwrap().to_owned();
    let output = crate::console::browse(json!({
        "mode": "approvals",
        "base": gw.base,
        "tokens": { "requester": alice, "approver": gw.token("bob", &["treasurer"]) },
        "request": id,
        "argument_marker": "<img src=x onerror=alert(1)>",
    }))
    .await;
    assert!(output.contains("STEP approvals-approved PASS"), "{output}");
    job_until(&gw, &alice, &id, |s| s == "succeeded").await;
    gw.stop().await;
    backend.stop().await;
}

/// `APPROVAL_WEBHOOK_URL` hears of each request (retried after a failure), without its
/// arguments or anyone's token.
#[actix_web::test]
async fn the_webhook_hears_of_each_request_without_its_arguments() {
    use std::sync::{Arc, Mutex};
    let heard: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
    let port = crate::common::free_port();
    let sink = heard.clone();
    let server = actix_web::HttpServer::new(move || {
        let sink = sink.clone();
        actix_web::App::new().route(
            "/hook",
            actix_web::web::post().to(move |body: actix_web::web::Json<Value>| {
                let sink = sink.clone();
                async move {
                    let mut seen = sink.lock().unwrap();
                    // The first delivery fails: the gateway must try again.
                    let status = if seen.is_empty() { 503 } else { 204 };
                    seen.push((status, body.into_inner()));
                    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("transfer", &backend.url)
        .policy(&policy(600))
        .var("APPROVAL_WEBHOOK_URL", &format!("http://127.0.0.1:{port}/hook"))
        .start()
        .await;
    let alice = gw.token("alice", &["developer"]);
    let (status, held) = invoke(&gw, &alice, json!({ "secret-ish": "acct-secret-777" })).await;
    assert_eq!(status, 202, "{held}");
    let started = Instant::now();
    while heard.lock().unwrap().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "the webhook was not retried");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = heard.lock().unwrap().clone();
    assert_eq!(seen[0].0, 503);
    let payload = &seen[1].1;
    assert_eq!(payload["id"], held["id"]);
    assert_eq!(payload["tool_name"], "transfer");
    assert_eq!(payload["approver_role"], "treasurer");
    let text = payload.to_string();
    assert!(!text.contains("acct-secret-777") && !text.contains(&alice) && !text.contains("acct-9"), "{text}");
    gw.stop().await;
    handle.stop(true).await;
    backend.stop().await;
}

/// One caller cannot bury the queue (`APPROVAL_MAX_PENDING_PER_USER`), and a repeated
/// `Idempotency-Key` answers with the held job it made (its request untouched).
#[actix_web::test]
async fn held_calls_are_bounded_per_caller_and_idempotent() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("transfer", &backend.url)
        .policy(&policy(600))
        .var("APPROVAL_MAX_PENDING_PER_USER", "2")
        .start()
        .await;
    let alice = gw.token("alice", &["developer"]);
    let submit = |key: &'static str| {
        let (base, token) = (gw.base.clone(), alice.clone());
        async move {
            let mut resp = client()
                .post(format!("{base}/mcp/jobs"))
                .bearer_auth(token)
                .insert_header(("Idempotency-Key", key))
                .send_json(&json!({ "tool_name": "transfer", "arguments": { "amount": 5000 } }))
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, first) = submit("k1").await;
    assert_eq!((status, first["status"].as_str()), (202, Some("awaiting_approval")), "{first}");
    let (status, again) = submit("k1").await;
    assert_eq!(status, 202);
    assert_eq!(again["id"], first["id"], "the same job");
    let bob = gw.token("bob", &["treasurer"]);
    let (_, request) = gw.get(&format!("/admin/approvals/{}", first["id"].as_str().unwrap()), Some(&bob)).await;
    assert_eq!(request["status"], "pending", "{request}");
    assert_eq!(invoke(&gw, &alice, json!(6000)).await.0, 202);
    let (status, body) = invoke(&gw, &alice, json!(7000)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("wait for approval"), "{body}");
    // Others are not affected.
    assert_eq!(invoke(&gw, &gw.token("carol", &["developer"]), json!(7000)).await.0, 202);
    gw.stop().await;
    backend.stop().await;
}

/// A client that runs tasks (2025-11-25) gets its held call as a task at once: `working`,
/// "awaiting approval", then completed once approved; `tasks/cancel` withdraws another.
#[actix_web::test]
async fn a_held_call_sent_as_a_task_is_a_task() {
    use crate::common::mcp::{init, post as mcp_post, rpc};
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let opened = mcp_post(&gw, Some(&alice), None, &[], init("2025-11-25")).await;
    let sid = opened.session.unwrap();
    let (s, v) = (Some(sid.as_str()), [("MCP-Protocol-Version", "2025-11-25")]);
    let call = |id: u64, amount: u64| {
        rpc(id, "tools/call", json!({"name": "transfer", "arguments": {"amount": amount}, "task": {}}))
    };
    let created = mcp_post(&gw, Some(&alice), s, &v, call(2, 5000)).await;
    let task = created.body["result"]["task"].clone();
    assert_eq!(task["status"], "working", "{}", created.body);
    assert_eq!(task["statusMessage"], "awaiting approval", "{}", created.body);
    let id = task["taskId"].as_str().unwrap().to_owned();
    let bob = gw.token("bob", &["treasurer"]);
    assert_eq!(post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "ok" })).await.0, 200);
    let result = mcp_post(&gw, Some(&alice), s, &v, rpc(3, "tasks/result", json!({"taskId": id}))).await;
    assert!(result.body["result"].to_string().contains("5000"), "{}", result.body);
    let other = mcp_post(&gw, Some(&alice), s, &v, call(4, 8000)).await;
    let other_id = other.body["result"]["task"]["taskId"].as_str().unwrap().to_owned();
    let cancelled = mcp_post(&gw, Some(&alice), s, &v, rpc(5, "tasks/cancel", json!({"taskId": other_id}))).await;
    assert_eq!(cancelled.body["result"]["status"], "cancelled", "{}", cancelled.body);
    let (_, request) = gw.get(&format!("/admin/approvals/{other_id}"), Some(&bob)).await;
    assert_eq!(request["status"], "withdrawn", "{request}");
    assert_eq!(backend.with("tools/call").len(), 1);
    gw.stop().await;
    backend.stop().await;
}

/// Attack (outside review): an approval must not override a policy that changed while the
/// call waited. The requester's role loses the tool; the approver's "approve" ends the call
/// denied, saying why, and the backend never hears of it.
#[actix_web::test]
async fn an_approval_does_not_override_a_policy_revoked_while_the_call_waited() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let (_, held) = invoke(&gw, &alice, json!(5000)).await;
    let id = held["id"].as_str().unwrap().to_owned();
    // Developers may no longer call transfer.
    let path = gw.settings.policy_config.clone();
    let revoked = std::fs::read_to_string(&path).unwrap().replace(
        "developer: { allowed_tools: ['*'], denied_tools: [admin_only] }",
        "developer: { allowed_tools: ['*'], denied_tools: [admin_only, transfer] }",
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, revoked).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let started = Instant::now();
    while invoke(&gw, &alice, json!(10)).await.0 != 403 {
        assert!(started.elapsed() < Duration::from_secs(10), "the policy was not reloaded");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let bob = gw.token("bob", &["treasurer"]);
    let (status, decided) = post(&gw, &format!("/admin/approvals/{id}/approve"), &bob, json!({ "reason": "ok" })).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "denied", "{decided}");
    assert!(decided["reason"].as_str().unwrap().contains("refused on approval"), "{decided}");
    let job = job_until(&gw, &alice, &id, |s| s == "denied").await;
    assert!(job["error"]["message"].as_str().unwrap().contains("no longer allows"), "{job}");
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let held_ran = backend.with("tools/call").iter().any(|c| c.params["arguments"]["amount"] == 5000);
    assert!(!held_ran, "the held call never ran");
    gw.stop().await;
    backend.stop().await;
}

/// Attack (outside review): 40 concurrent held calls from one caller with a cap of 3 leave at
/// most 3 requests pending (the count is taken after the insert).
#[actix_web::test]
async fn the_pending_cap_holds_under_concurrent_requests() {
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("transfer", &backend.url)
        .policy(&policy(600))
        .var("APPROVAL_MAX_PENDING_PER_USER", "3")
        .start()
        .await;
    let alice = gw.token("alice", &["developer"]);
    let calls = (0..40).map(|i| invoke(&gw, &alice, json!(5000 + i)));
    let answers = futures_util::future::join_all(calls).await;
    let held = answers.iter().filter(|(s, _)| *s == 202).count();
    assert!(answers.iter().all(|(s, _)| *s == 202 || *s == 503), "{answers:?}");
    assert_eq!(held, 3, "exactly the cap is held");
    let bob = gw.token("bob", &["treasurer"]);
    let (_, queue) = gw.get("/admin/approvals", Some(&bob)).await;
    assert!(queue["approvals"].as_array().unwrap().len() <= 3, "{queue}");
    gw.stop().await;
    backend.stop().await;
    db.drop_db().await;
}

/// Attack (outside review): a decision racing the caller's cancel never leaves the request and
/// its job disagreeing, nor two ends for one call.
#[actix_web::test]
async fn a_decision_racing_a_cancel_leaves_one_story() {
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let bob = gw.token("bob", &["treasurer"]);
    let mut ids = Vec::new();
    for i in 0..12 {
        let (_, held) = invoke(&gw, &alice, json!(5000 + i)).await;
        let id = held["id"].as_str().unwrap().to_owned();
        let verb = if i % 2 == 0 { "deny" } else { "approve" };
        let path = format!("/admin/approvals/{id}/{verb}");
        let decide = post(&gw, &path, &bob, json!({ "reason": "race" }));
        let cancel = async {
            client()
                .delete(format!("{}/mcp/jobs/{id}", gw.base))
                .bearer_auth(&alice)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        let _ = futures_util::future::join(decide, cancel).await;
        ids.push(id);
    }
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    for id in &ids {
        let (_, request) = gw.get(&format!("/admin/approvals/{id}"), Some(&bob)).await;
        let (_, job) = gw.get(&format!("/mcp/jobs/{id}"), Some(&alice)).await;
        let pair = (request["status"].as_str().unwrap(), job["status"].as_str().unwrap());
        assert!(
            matches!(
                pair,
                ("withdrawn", "cancelled")
                    | ("denied", "denied")
                    | ("approved", "succeeded" | "cancelled" | "pending" | "running")
            ),
            "{id}: request {} but job {}",
            pair.0,
            pair.1
        );
    }
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    // Per held call: one request row and at most one end row (the call's own).
    let held_ids: Vec<&str> =
        rows.iter().filter(|r| r.status == "awaiting_approval").map(|r| r.request_id.as_str()).collect();
    for rid in held_ids {
        let ends = rows
            .iter()
            .filter(|r| r.request_id == rid && r.transport == "job")
            .map(|r| r.status.as_str())
            .collect::<Vec<_>>();
        assert!(ends.len() <= 1, "{rid}: {ends:?}");
    }
    backend.stop().await;
    db.drop_db().await;
}

/// Attack (outside review): held calls inside a JSON-RPC batch answer at once (the job to
/// follow), never holding the batch (and a connection nobody reads) behind a decision.
#[actix_web::test]
async fn held_calls_in_a_batch_answer_at_once() {
    use crate::common::mcp::{init, post as mcp_post, rpc};
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let alice = gw.token("alice", &["developer"]);
    let sid = mcp_post(&gw, Some(&alice), None, &[], init("2025-06-18")).await.session.unwrap();
    let v = [("MCP-Protocol-Version", "2025-06-18")];
    let call =
        |id: u64, amount: u64| rpc(id, "tools/call", json!({"name": "transfer", "arguments": {"amount": amount}}));
    let started = Instant::now();
    let reply = mcp_post(&gw, Some(&alice), Some(&sid), &v, json!([call(2, 5000), call(3, 6000), call(4, 5)])).await;
    assert!(started.elapsed() < Duration::from_secs(5), "the batch waited");
    let answers = reply.body.as_array().unwrap_or_else(|| panic!("{}", reply.body));
    let by_id = |id: u64| answers.iter().find(|a| a["id"] == id).unwrap()["result"].clone();
    for id in [2, 3] {
        assert_eq!(by_id(id)["isError"], true, "{}", reply.body);
        assert!(by_id(id)["content"][0]["text"].as_str().unwrap().contains("held for approval by treasurer"));
    }
    assert_eq!(by_id(4)["isError"], false, "{}", reply.body);
    let bob = gw.token("bob", &["treasurer"]);
    let (_, queue) = gw.get("/admin/approvals", Some(&bob)).await;
    assert_eq!(queue["approvals"].as_array().unwrap().len(), 2, "{queue}");
    gw.stop().await;
    backend.stop().await;
}

/// `explain` says a call would be held, and for whom.
#[actix_web::test]
async fn explain_shows_the_hold() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = start(&db, &backend, 600).await;
    let admin = gw.token("root", &["admin"]);
    let ask = |amount: u64| json!({"subject": {"sub": "a", "roles": ["developer"]}, "tool_name": "transfer", "arguments": {"amount": amount}});
    let (_, held) = post(&gw, "/admin/policy/explain", &admin, ask(5000)).await;
    assert_eq!(held["allowed"], true, "{held}");
    assert_eq!(held["approval"]["approver_role"], "treasurer", "{held}");
    assert_eq!(held["steps"].as_array().unwrap().last().unwrap()["effect"], "hold", "{held}");
    let (_, free) = post(&gw, "/admin/policy/explain", &admin, ask(5)).await;
    assert!(free.get("approval").is_none(), "{free}");
    gw.stop().await;
    backend.stop().await;
}
