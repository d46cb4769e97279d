//! Asynchronous jobs as clients and operators meet them: submit, poll, cancel, survive a
//! restart, and never run twice with two replicas sharing the store.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::backend::{Mode, TestBackend};
use crate::common::{client, TestDb, TestGateway, SECRET};
use serde_json::{json, Value};

async fn submit(base: &str, token: &str, tool: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = client().post(format!("{base}/mcp/jobs")).bearer_auth(token);
    if let Some(k) = key {
        req = req.insert_header(("Idempotency-Key", k));
    }
    let mut resp = req.send_json(&json!({"tool_name": tool, "arguments": {"n": 1}})).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn poll(base: &str, token: &str, id: &str) -> (u16, Value) {
    let mut resp = client().get(format!("{base}/mcp/jobs/{id}")).bearer_auth(token).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn wait_for(base: &str, token: &str, id: &str, done: impl Fn(&str) -> bool) -> Value {
    for _ in 0..400 {
        let (_, job) = poll(base, token, id).await;
        if done(job["status"].as_str().unwrap_or("")) {
            return job;
        }
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} never reached the expected state");
}

#[actix_web::test]
async fn a_job_is_submitted_polled_and_finished_through_a_real_backend() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Slow(Duration::from_millis(300))).await;
    let gw = TestGateway::builder(&db).tool("slow", &backend.url).var("JOB_POLL_MS", "20").start().await;
    let alice = gw.token("alice", &["developer"]);
    let (status, job) = submit(&gw.base, &alice, "slow", Some("k-1")).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "pending");
    let id = job["id"].as_str().unwrap().to_owned();
    let (_, again) = submit(&gw.base, &alice, "slow", Some("k-1")).await;
    assert_eq!(again["id"], id.as_str(), "the same Idempotency-Key returns the same job");
    wait_for(&gw.base, &alice, &id, |s| s == "running").await;
    let done = wait_for(&gw.base, &alice, &id, |s| s == "succeeded").await;
    assert_eq!(done["result"]["structuredContent"]["echo"], json!({"n": 1}));
    assert!(done["finished_at"].is_string());
    assert_eq!(backend.count("tools/call"), 1);
    // Visible to its owner and admins only.
    assert_eq!(poll(&gw.base, &gw.token("mallory", &["developer"]), &id).await.0, 404);
    assert_eq!(poll(&gw.base, &gw.token("root", &["admin"]), &id).await.0, 200);
    let mut list =
        client().get(format!("{}/mcp/jobs?status=succeeded", gw.base)).bearer_auth(&alice).send().await.unwrap();
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    // Submission and completion are audited under one request id.
    let rows = db.wait_for_rows(3).await;
    let job_rows: Vec<_> = rows.iter().filter(|r| r.transport == "job").collect();
    assert_eq!(job_rows.len(), 1);
    assert!(rows.iter().any(|r| r.transport == "rest" && r.request_id == job_rows[0].request_id));
    // Denied tools are refused at submission.
    let (status, _) = submit(&gw.base, &gw.token("g", &["guest"]), "slow", None).await;
    assert_eq!(status, 403);
    gw.stop().await;
}

#[actix_web::test]
async fn cancelling_a_job_cancels_the_backend_call() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Hang).await;
    let gw = TestGateway::builder(&db).tool("hang", &backend.url).var("JOB_POLL_MS", "20").start().await;
    let token = gw.token("bob", &["developer"]);
    let (_, job) = submit(&gw.base, &token, "hang", None).await;
    let id = job["id"].as_str().unwrap().to_owned();
    wait_for(&gw.base, &token, &id, |s| s == "running").await;
    for _ in 0..100 {
        if backend.count("tools/call") == 1 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut resp = client().delete(format!("{}/mcp/jobs/{id}", gw.base)).bearer_auth(&token).send().await.unwrap();
    let cancelled: Value = resp.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    for _ in 0..100 {
        if backend.count("notifications/cancelled") == 1 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(backend.count("notifications/cancelled"), 1, "the backend was told");
    assert_eq!(poll(&gw.base, &token, &id).await.1["status"], "cancelled");
    gw.stop().await;
    // The cancellation is the job's end: audited under the submission's request id.
    let mut rows = db.audit_rows().await;
    for _ in 0..100 {
        if rows.iter().any(|r| r.status == "cancelled") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        rows = db.audit_rows().await;
    }
    let end = rows
        .iter()
        .find(|r| r.status == "cancelled")
        .unwrap_or_else(|| panic!("an audit row for the cancellation: {rows:#?}"));
    assert!(rows.iter().any(|r| r.request_id == end.request_id && r.status == "ok" && r.decision == "allowed"));
}

#[actix_web::test]
async fn jobs_run_under_their_own_time_limit_not_the_interactive_one() {
    let db = TestDb::sqlite().await;
    let slow = TestBackend::start(Mode::Slow(Duration::from_millis(1500))).await;
    let hang = TestBackend::start(Mode::Hang).await;
    let gw = TestGateway::builder(&db)
        .tool_with("slow", &slow.url, "timeout_seconds: 1\njob_timeout_seconds: 20")
        .tool_with("hang", &hang.url, "job_timeout_seconds: 1")
        .var("JOB_POLL_MS", "20")
        .start()
        .await;
    let token = gw.token("tim", &["developer"]);
    let (status, _) = gw.invoke(&token, "slow", json!({"n": 1})).await;
    assert_eq!(status, 504, "an interactive call stops at the tool's timeout_seconds");
    let (_, job) = submit(&gw.base, &token, "slow", None).await;
    let done = wait_for(&gw.base, &token, job["id"].as_str().unwrap(), |s| s != "pending" && s != "running").await;
    assert_eq!(done["status"], "succeeded", "a job gets job_timeout_seconds: {done}");
    let (_, job) = submit(&gw.base, &token, "hang", None).await;
    let done = wait_for(&gw.base, &token, job["id"].as_str().unwrap(), |s| s != "pending" && s != "running").await;
    assert_eq!(done["status"], "timed_out", "{done}");
    gw.stop().await;
    let rows = db.audit_rows().await;
    assert!(rows.iter().any(|r| r.transport == "job" && r.status == "backend_timeout"), "the timeout is audited");
}

#[actix_web::test]
async fn excess_jobs_wait_pending_in_order_under_the_concurrency_cap() {
    let db = TestDb::sqlite().await;
    let hang = TestBackend::start(Mode::Hang).await;
    let gw = TestGateway::builder(&db)
        .tool("hang", &hang.url)
        .var("JOB_POLL_MS", "20")
        .var("JOB_MAX_CONCURRENT", "1")
        .start()
        .await;
    let token = gw.token("cap", &["developer"]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, job) = submit(&gw.base, &token, "hang", None).await;
        ids.push(job["id"].as_str().unwrap().to_owned());
        // Distinct creation times, so the order is the submission order.
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for(&gw.base, &token, &ids[0], |s| s == "running").await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    for id in &ids[1..] {
        assert_eq!(poll(&gw.base, &token, id).await.1["status"], "pending", "one job at a time");
    }
    assert_eq!(hang.count("tools/call"), 1);
    client().delete(format!("{}/mcp/jobs/{}", gw.base, ids[0])).bearer_auth(&token).send().await.unwrap();
    wait_for(&gw.base, &token, &ids[1], |s| s == "running").await;
    assert_eq!(poll(&gw.base, &token, &ids[2]).await.1["status"], "pending", "the oldest pending job goes first");
    gw.stop().await;
}

struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn replica(db: &TestDb, dir: &std::path::Path, name: &str, port: u16, extra: &[(&str, &str)]) -> Replica {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"));
    cmd.env("BUNDLED_TOOLS", "off")
        .env("GATEWAY_PORT", port.to_string())
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET_KEY", SECRET)
        .env("TOOLS_CONFIG", dir.join("tools.yaml"))
        .env("POLICY_CONFIG", dir.join("policy.yaml"))
        .env("DATA_DIR", dir.join(format!("data-{name}")))
        .env("GATEWAY_WORKERS", "1")
        .env("JOB_POLL_MS", "20")
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = Replica(cmd.spawn().unwrap());
    for _ in 0..200 {
        if client().get(format!("http://127.0.0.1:{port}/health")).send().await.is_ok() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn configs(dir: &std::path::Path, tools: &str) {
    std::fs::write(dir.join("tools.yaml"), tools).unwrap();
    std::fs::write(dir.join("policy.yaml"), "default_action: deny\nroles: {developer: {allowed_tools: ['*']}}\n")
        .unwrap();
}

#[actix_web::test]
async fn two_replicas_never_run_a_job_twice_and_each_answers_for_all() {
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let backend = TestBackend::start(Mode::Slow(Duration::from_millis(100))).await;
    let dir = tempfile::tempdir().unwrap();
    configs(dir.path(), &format!("tools:\n  - name: work\n    backend_url: {}\n", backend.url));
    let (pa, pb) = (port(), port());
    let _a = replica(&db, dir.path(), "a", pa, &[("JOB_MAX_CONCURRENT", "3")]).await;
    let _b = replica(&db, dir.path(), "b", pb, &[("JOB_MAX_CONCURRENT", "3")]).await;
    let (base_a, base_b) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let token = crate::common::sign(&crate::common::claims("team", &["developer"], None), SECRET);
    let mut ids = Vec::new();
    for i in 0..24 {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        let (status, job) = submit(base, &token, "work", None).await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        // Each replica answers for jobs the other one runs.
        let base = if i % 2 == 0 { &base_b } else { &base_a };
        wait_for(base, &token, id, |s| s == "succeeded").await;
    }
    assert_eq!(backend.count("tools/call"), 24, "every job ran exactly once");
    // Both replicas ran jobs, and each answers for every job, whoever ran it.
    let store = mcp_gateway::db::Db::connect(&db.url, 1).unwrap();
    let mut runners = std::collections::BTreeSet::new();
    for id in &ids {
        let row = mcp_gateway::db::jobs::get(&store, id).await.unwrap().unwrap();
        runners.insert(row.claimed_by.unwrap());
        for base in [&base_a, &base_b] {
            assert_eq!(poll(base, &token, id).await.1["status"], "succeeded");
        }
    }
    assert_eq!(runners.len(), 2, "both replicas claimed jobs: {runners:?}");
    db.drop_db().await;
}

#[actix_web::test]
async fn a_job_interrupted_by_a_crash_is_requeued_or_failed_per_its_tool() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Slow(Duration::from_millis(1500))).await;
    let dir = tempfile::tempdir().unwrap();
    configs(
        dir.path(),
        &format!(
            "tools:\n  - name: safe\n    backend_url: {url}\n    idempotent: true\n  - name: once\n    backend_url: {url}\n",
            url = backend.url
        ),
    );
    let p = port();
    let extra = [("JOB_STALE_SECONDS", "1")];
    let mut first = replica(&db, dir.path(), "first", p, &extra).await;
    let base = format!("http://127.0.0.1:{p}");
    let token = crate::common::sign(&crate::common::claims("crash", &["developer"], None), SECRET);
    let (_, safe) = submit(&base, &token, "safe", None).await;
    let (_, once) = submit(&base, &token, "once", None).await;
    let (safe, once) = (safe["id"].as_str().unwrap().to_owned(), once["id"].as_str().unwrap().to_owned());
    wait_for(&base, &token, &safe, |s| s == "running").await;
    wait_for(&base, &token, &once, |s| s == "running").await;
    // The submissions' rows are stored before the crash (batched audit may lose up to a batch
    // on kill -9, as documented; this test is about the jobs, not that).
    for _ in 0..200 {
        if db.audit_rows().await.iter().filter(|r| r.transport == "rest").count() >= 2 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    // kill -9: no graceful anything.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let _second = replica(&db, dir.path(), "second", p, &extra).await;
    let safe_job = wait_for(&base, &token, &safe, |s| s == "succeeded" || s == "failed").await;
    let once_job = wait_for(&base, &token, &once, |s| s == "succeeded" || s == "failed").await;
    assert_eq!(safe_job["status"], "succeeded", "an idempotent tool's job is re-queued and finishes");
    assert_eq!(once_job["status"], "failed", "a non-idempotent tool's job is failed, never re-run");
    assert!(once_job["error"]["message"].as_str().unwrap().contains("stopped"));
    assert_eq!(backend.count("tools/call"), 3, "both ran once, the idempotent one again after the crash");
    // The failure found by recovery is audited under the submission's request id.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = db.audit_rows().await;
        if rows.iter().any(|r| r.transport == "job" && r.status == "unavailable") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = rows.iter().find(|r| r.transport == "job" && r.status == "unavailable").expect("an audit row");
    assert!(rows.iter().any(|r| r.request_id == ended.request_id && r.transport == "rest"), "same request id");
}

/// Who has how many jobs running now, per owner, from the store.
async fn running_by_owner(store: &mcp_gateway::db::Db) -> std::collections::HashMap<String, usize> {
    let mut by = std::collections::HashMap::new();
    for row in mcp_gateway::db::jobs::list(store, None, Some("running"), None, 500).await.unwrap() {
        *by.entry(row.owner).or_insert(0) += 1;
    }
    by
}

/// The attack: one user, inside their rate limit, submits 16 slow jobs. Before: they took all
/// 16 slots (`JOB_MAX_CONCURRENT`) and every other user's job waited pending behind them for
/// the whole run. Now: at most `JOB_MAX_PER_USER` (4) of theirs run at once, another user's
/// job starts at once, and `JOB_MAX_PER_TOOL` caps one tool across users.
async fn one_user_cannot_take_every_job_slot(kind: crate::common::DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let backend = TestBackend::start(Mode::Slow(Duration::from_millis(1500))).await;
    let dir = tempfile::tempdir().unwrap();
    configs(dir.path(), &format!("tools:\n  - name: work\n    backend_url: {}\n", backend.url));
    let p = port();
    let _gw = replica(&db, dir.path(), "fair", p, &[("JOB_MAX_CONCURRENT", "16"), ("JOB_MAX_PER_TOOL", "6")]).await;
    let base = format!("http://127.0.0.1:{p}");
    let token = |sub: &str| crate::common::sign(&crate::common::claims(sub, &["developer"], None), SECRET);
    let mut hog = Vec::new();
    for _ in 0..16 {
        let (status, job) = submit(&base, &token("hog"), "work", None).await;
        assert_eq!(status, 202, "{job}");
        hog.push(job["id"].as_str().unwrap().to_owned());
    }
    wait_for(&base, &token("hog"), &hog[0], |s| s == "running").await;
    let (_, victim) = submit(&base, &token("victim"), "work", None).await;
    let victim = victim["id"].as_str().unwrap().to_owned();
    let mut third = Vec::new();
    for _ in 0..4 {
        third.push(submit(&base, &token("third"), "work", None).await.1["id"].as_str().unwrap().to_owned());
    }
    let store = mcp_gateway::db::Db::connect(&db.url, 1).unwrap();
    let (mut most_hog, mut most_work) = (0, 0);
    let started = std::time::Instant::now();
    loop {
        let running = running_by_owner(&store).await;
        most_hog = most_hog.max(running.get("hog").copied().unwrap_or(0));
        most_work = most_work.max(running.values().sum::<usize>());
        let (_, v) = poll(&base, &token("victim"), &victim).await;
        if v["status"] == "succeeded" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the victim's job never finished: {v}");
        actix_web::rt::time::sleep(Duration::from_millis(30)).await;
    }
    let v = mcp_gateway::db::jobs::get(&store, &victim).await.unwrap().unwrap();
    let waited = (v.started_at.unwrap() - v.created_at).num_milliseconds();
    assert!(waited < 1000, "the victim's job waited {waited} ms behind the hog's (one job takes 1500 ms)");
    for id in hog.iter().chain(&third) {
        let owner = if hog.contains(id) { "hog" } else { "third" };
        wait_for(&base, &token(owner), id, |s| s == "succeeded").await;
    }
    assert!(most_hog <= 4, "the hog ran {most_hog} jobs at once (JOB_MAX_PER_USER is 4)");
    assert!(most_work <= 6, "{most_work} jobs of one tool ran at once (JOB_MAX_PER_TOOL is 6)");
    assert_eq!(backend.count("tools/call"), 21, "every job ran once");
    db.drop_db().await;
}

crate::common::on_both_databases!(one_user_cannot_take_every_job_slot => one_user_cannot_take_every_job_slot);

/// The attack of circumstance: PostgreSQL goes away for ~4 s while ten one-second jobs run
/// (five of an idempotent tool, five of one that is not). Before: the backend calls succeeded,
/// their ends could not be stored, and once the database returned recovery took the live
/// replica's jobs for a stopped one's: idempotent jobs ran again (15 backend calls), the others
/// ended `failed` ("stopped before it finished"). Now the replica holds each end and writes it
/// when the database returns; recovery waits until live replicas have beaten again.
#[actix_web::test]
async fn a_database_blip_loses_no_finished_job_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let backend = TestBackend::start(Mode::Slow(Duration::from_millis(1000))).await;
    let dir = tempfile::tempdir().unwrap();
    configs(
        dir.path(),
        &format!(
            "tools:\n  - name: safe\n    backend_url: {url}\n    idempotent: true\n  - name: once\n    backend_url: {url}\n",
            url = backend.url
        ),
    );
    let p = port();
    let _gw = replica(&db, dir.path(), "blip", p, &[("JOB_STALE_SECONDS", "1")]).await;
    let base = format!("http://127.0.0.1:{p}");
    let token = crate::common::sign(&crate::common::claims("blip", &["developer"], None), SECRET);
    let mut ids = Vec::new();
    for i in 0..10 {
        let tool = if i % 2 == 0 { "safe" } else { "once" };
        let (status, job) = submit(&base, &token, tool, None).await;
        assert_eq!(status, 202, "{job}");
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    // Started (JOB_MAX_PER_USER is 4: some still pending when the database goes).
    wait_for(&base, &token, &ids[0], |s| s == "running").await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    crate::common::sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    crate::common::sql(
        &admin,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    )
    .await;
    // Submissions during the outage get a prompt 503.
    let asked = std::time::Instant::now();
    let (status, body) = submit(&base, &token, "safe", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(asked.elapsed() < Duration::from_secs(6), "answered in {:?}", asked.elapsed());
    actix_web::rt::time::sleep(Duration::from_secs(4).saturating_sub(asked.elapsed())).await;
    crate::common::sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    for id in &ids {
        let job = wait_for(&base, &token, id, |s| !matches!(s, "pending" | "running" | "")).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    assert_eq!(backend.count("tools/call"), 10, "no job ran twice");
    db.drop_db().await;
}
