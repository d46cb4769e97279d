//! Replicas that share MCP sessions: two and three gateway processes with one Redis and one
//! database, behind a plain round-robin load balancer (no sticky routing), driven as a client
//! and as an attacker would — raw HTTP, the official Python SDK client, replicas killed and
//! Redis stopped mid-session.

use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::common::backend::{Mode, TestBackend};
use crate::common::mcp::{init, post_to, rpc, stateless_to};
use crate::common::replicas::{python_client, python_has_mcp, replica, Redis, Replica, RoundRobin};
use crate::common::{claims, client, sign, TestDb, SECRET};

const POLICY: &str = "default_action: deny\nroles:\n  developer: {allowed_tools: ['*']}\n";

fn token(sub: &str) -> String {
    sign(&claims(sub, &["developer"], None), SECRET)
}

/// A fresh database both replicas share (PostgreSQL when the tests have one).
async fn shared_db() -> TestDb {
    match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    }
}

/// `tools.yaml` (an echo tool, a slow one, one that reports progress) and the policy, in a fresh folder.
fn config(echo: &TestBackend, slow: &TestBackend, progress: &TestBackend) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tools = format!(
        "tools:\n  - {{name: echo, backend_url: \"{}\"}}\n  - {{name: slow, backend_url: \"{}\", timeout_seconds: 60}}\n  - {{name: progress, backend_url: \"{}\"}}\n",
        echo.url, slow.url, progress.url
    );
    std::fs::write(dir.path().join("tools.yaml"), tools).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    dir
}

/// Where the replicas share their sessions.
#[derive(Clone, Copy, PartialEq)]
enum Store {
    /// `REDIS_URL` set (sessions in Redis, pub/sub between replicas; the database is
    /// PostgreSQL when the tests have one).
    Redis,
    /// No Redis, PostgreSQL (sessions in a table, `LISTEN/NOTIFY` between replicas).
    Postgres,
}

/// One test body, run with sessions in Redis and in PostgreSQL: `NAME::redis`, `NAME::postgres`.
macro_rules! on_both_stores {
    ($name:ident => $body:ident) => {
        mod $name {
            #[actix_web::test]
            async fn redis() {
                super::$body(super::Store::Redis).await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::$body(super::Store::Postgres).await;
            }
        }
    };
}

/// What every replica test starts with: Redis or not, a database, backends, `n` replicas.
struct Cluster {
    replicas: Vec<Replica>,
    redis: Option<Redis>,
    db: TestDb,
    _dir: tempfile::TempDir,
    _echo: TestBackend,
    _slow: TestBackend,
    _progress: TestBackend,
}

impl Cluster {
    async fn start(n: usize) -> Option<Self> {
        Self::start_on(n, Store::Redis).await
    }

    /// `None` when the store is missing (outside CI: no redis-server, no TEST_DATABASE_URL).
    async fn start_on(n: usize, store: Store) -> Option<Self> {
        let (redis, db) = match store {
            Store::Redis => (Some(Redis::start()?), shared_db().await),
            Store::Postgres => (None, TestDb::postgres().await?),
        };
        let echo = TestBackend::start(Mode::Echo).await;
        let slow = TestBackend::start(Mode::Slow(Duration::from_secs(30))).await;
        let progress = TestBackend::start(Mode::Progress).await;
        let dir = config(&echo, &slow, &progress);
        let mut replicas = Vec::new();
        for i in 0..n {
            let url = redis.as_ref().map(|r| r.url.as_str());
            replicas.push(replica(&db, url, dir.path(), &format!("r{i}"), &[]).await);
        }
        Some(Self { replicas, redis, db, _dir: dir, _echo: echo, _slow: slow, _progress: progress })
    }

    fn base(&self, i: usize) -> &str {
        &self.replicas[i].base
    }

    fn balancer(&self) -> RoundRobin {
        RoundRobin::start(&self.replicas.iter().collect::<Vec<_>>())
    }

    async fn stop(mut self) {
        self.replicas.clear();
        self.db.drop_db().await;
    }
}

async fn open(base: &str, token: &str) -> String {
    let reply = post_to(base, Some(token), None, &[], init("2025-06-18")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.session.unwrap()
}

async fn list(base: &str, token: &str, sid: &str) -> (u16, Value) {
    let reply = post_to(base, Some(token), Some(sid), &[], rpc(2, "tools/list", json!({}))).await;
    (reply.status, reply.body)
}

async fn call_echo(base: &str, token: &str, sid: &str, id: u64) -> (u16, Value, Option<String>) {
    let params = json!({"name": "echo", "arguments": {"n": id}});
    let reply = post_to(base, Some(token), Some(sid), &[], rpc(id, "tools/call", params)).await;
    let served_by = reply.headers.get("x-replica").map(|v| v.to_str().unwrap().to_owned());
    (reply.status, reply.body, served_by)
}

async fn delete(base: &str, token: &str, sid: &str) -> u16 {
    let resp = client()
        .delete(format!("{base}/mcp"))
        .bearer_auth(token)
        .insert_header(("Mcp-Session-Id", sid))
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

/// Poll until `status` answers `want` (at most `within`); how long it took.
async fn eventually<F, Fut>(within: Duration, want: u16, mut status: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    loop {
        let got = status().await;
        if got == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "still {got} after {within:?} (wanted {want})");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events of one SSE response (`GET /sse`, `GET /mcp`), read as they arrive.
struct Events {
    body: Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>,
    buf: Vec<u8>,
}

impl Events {
    async fn get(url: &str, token: &str, session: Option<&str>) -> (u16, Option<Self>) {
        let mut req = client().get(url).bearer_auth(token).insert_header(("Accept", "text/event-stream"));
        if let Some(s) = session {
            req = req.insert_header(("Mcp-Session-Id", s));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, (status == 200).then(|| Self { body: Box::pin(resp), buf: Vec::new() }))
    }

    /// The next event's `(event, data)`, keep-alive comments skipped; `None` when the stream
    /// ends or nothing arrives within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&raw).into_owned();
                let (mut event, mut data) = (String::from("message"), String::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if text.starts_with(':') {
                    continue;
                }
                return Some((event, data));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match actix_web::rt::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// The next JSON-RPC message on the stream.
    async fn message(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let (event, data) = self.next(wait).await?;
            if event == "message" {
                return Some(serde_json::from_str(&data).unwrap());
            }
        }
    }
}

async fn post_message(base: &str, token: &str, sid: &str, body: Value) -> u16 {
    let resp =
        client().post(format!("{base}/messages?session_id={sid}")).bearer_auth(token).send_json(&body).await.unwrap();
    resp.status().as_u16()
}

on_both_stores!(behind_a_round_robin_balancer_every_request_of_a_session_is_served => behind_a_round_robin_balancer_every_request_of_a_session_is_served_on);

async fn behind_a_round_robin_balancer_every_request_of_a_session_is_served_on(store: Store) {
    let Some(cluster) = Cluster::start_on(2, store).await else { return };
    let lb = cluster.balancer();
    let alice = token("alice");
    let sid = open(&lb.base, &alice).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post_to(&lb.base, Some(&alice), Some(&sid), &[], initialized).await.status, 202);
    let mut served = std::collections::HashSet::new();
    for i in 0..6 {
        let reply = post_to(&lb.base, Some(&alice), Some(&sid), &[], rpc(2, "tools/list", json!({}))).await;
        let body = reply.body;
        assert_eq!(reply.status, 200, "request {i} through the balancer: {body}");
        assert!(body["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "echo"), "{body}");
        served.extend(reply.headers.get("x-replica").map(|v| v.to_str().unwrap().to_owned()));
        let (status, body, replica) = call_echo(&lb.base, &alice, &sid, 10 + i).await;
        assert_eq!(status, 200, "call {i}: {body}");
        assert!(body["result"].is_object(), "call {i}: {body}");
        served.extend(replica);
    }
    assert_eq!(served.len(), 2, "both replicas served the session: {served:?}");
    // Each replica, asked directly, knows the session too.
    for i in 0..2 {
        assert_eq!(list(cluster.base(i), &alice, &sid).await.0, 200);
    }
    drop(lb);
    cluster.stop().await;
}

on_both_stores!(a_session_is_its_subjects_alone_on_every_replica_and_once_ended_is_gone_on_all => a_session_is_its_subjects_alone_on_every_replica_and_once_ended_is_gone_on_all_on);

async fn a_session_is_its_subjects_alone_on_every_replica_and_once_ended_is_gone_on_all_on(store: Store) {
    let Some(cluster) = Cluster::start_on(3, store).await else { return };
    let (alice, mallory) = (token("alice"), token("mallory"));
    let sid = open(cluster.base(0), &alice).await;
    for i in 0..3 {
        let (status, body) = list(cluster.base(i), &mallory, &sid).await;
        assert_eq!(status, 404, "replica {i} refuses another subject: {body}");
        assert_eq!(body["error"]["message"], "session not found; initialize again");
        assert_eq!(delete(cluster.base(i), &mallory, &sid).await, 404, "nor may it end the session on {i}");
        let params = json!({"name": "echo", "arguments": {}});
        let reply = post_to(cluster.base(i), Some(&mallory), Some(&sid), &[], rpc(3, "tools/call", params)).await;
        assert_eq!(reply.status, 404, "nor call in it on {i}");
    }
    for i in 0..3 {
        assert_eq!(list(cluster.base(i), &alice, &sid).await.0, 200, "the owner still uses it on {i}");
    }
    // A made-up session id is unknown everywhere, and initialize cannot pick its own id.
    assert_eq!(list(cluster.base(1), &alice, &"0".repeat(64)).await.0, 404);
    let chosen = post_to(cluster.base(1), Some(&alice), Some(&"f".repeat(64)), &[], init("2025-06-18")).await;
    assert_ne!(chosen.session.as_deref(), Some("f".repeat(64).as_str()));

    assert_eq!(delete(cluster.base(1), &alice, &sid).await, 200);
    for i in [0, 2] {
        let took =
            eventually(Duration::from_secs(2), 404, || async { list(cluster.base(i), &alice, &sid).await.0 }).await;
        assert!(took < Duration::from_millis(1500), "replica {i} forgot the ended session in {took:?}");
    }
    cluster.stop().await;
}

on_both_stores!(legacy_sse_answers_reach_the_stream_whichever_replica_takes_the_post => legacy_sse_answers_reach_the_stream_whichever_replica_takes_the_post_on);

async fn legacy_sse_answers_reach_the_stream_whichever_replica_takes_the_post_on(store: Store) {
    let Some(cluster) = Cluster::start_on(2, store).await else { return };
    let (alice, mallory) = (token("alice"), token("mallory"));
    let (status, stream) = Events::get(&format!("{}/sse", cluster.base(0)), &alice, None).await;
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();
    let (event, endpoint) = stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(event, "endpoint");
    let sid = endpoint.split("session_id=").nth(1).unwrap().to_owned();
    // Every POST goes to the replica that does not hold the stream.
    let b = cluster.base(1);
    assert_eq!(post_message(b, &alice, &sid, init("2024-11-05")).await, 202);
    assert_eq!(post_message(b, &alice, &sid, rpc(2, "tools/list", json!({}))).await, 202);
    for id in 3..8 {
        let call = rpc(id, "tools/call", json!({"name": "echo", "arguments": {"n": id}}));
        assert_eq!(post_message(b, &alice, &sid, call).await, 202);
    }
    let mut ids = Vec::new();
    for _ in 0..7 {
        let msg = stream.message(Duration::from_secs(5)).await.expect("an answer on the stream held by replica A");
        assert!(msg.get("result").is_some(), "{msg}");
        ids.push(msg["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7], "every answer arrived, once");
    // Identical messages are each delivered (PostgreSQL folds identical notifications of one
    // transaction unless they are told apart).
    let same = rpc(30, "tools/call", json!({"name": "echo", "arguments": {"same": true}}));
    let posts = (0..40).map(|_| post_message(b, &alice, &sid, same.clone()));
    assert!(futures_util::future::join_all(posts).await.iter().all(|s| *s == 202));
    for i in 0..40 {
        let msg = stream.message(Duration::from_secs(5)).await.unwrap_or_else(|| panic!("identical answer {i} of 40"));
        assert_eq!(msg["id"], 30, "{msg}");
    }
    // One request's messages arrive in the order they were sent: its progress, then its answer.
    let call = json!({"name": "progress", "arguments": {}, "_meta": {"progressToken": "p-1"}});
    assert_eq!(post_message(b, &alice, &sid, rpc(8, "tools/call", call)).await, 202);
    let mut seen = Vec::new();
    loop {
        let msg = stream.message(Duration::from_secs(5)).await.expect("the progress call's messages");
        if msg["id"] == 8 {
            assert!(msg["result"].is_object(), "{msg}");
            break;
        }
        assert_eq!(msg["method"], "notifications/progress", "{msg}");
        assert_eq!(msg["params"]["progressToken"], "p-1", "{msg}");
        seen.push(msg["params"]["progress"].as_f64().unwrap());
    }
    assert!(seen.len() >= 2 && seen.windows(2).all(|w| w[0] < w[1]), "progress in order: {seen:?}");
    // An answer larger than a PostgreSQL notification (8,000 bytes) crosses too, whole.
    let big = "x".repeat(20_000);
    let call = rpc(9, "tools/call", json!({"name": "echo", "arguments": {"big": big}}));
    assert_eq!(post_message(b, &alice, &sid, call).await, 202);
    let msg = stream.message(Duration::from_secs(5)).await.expect("the large answer");
    assert_eq!(msg["id"], 9);
    assert!(msg.to_string().contains(&big), "the whole answer arrived");
    // Another subject's POST with the session id is refused, on either replica.
    for i in 0..2 {
        assert_eq!(post_message(cluster.base(i), &mallory, &sid, rpc(19, "tools/list", json!({}))).await, 404);
    }
    assert!(stream.message(Duration::from_millis(500)).await.is_none(), "nothing of mallory's reached alice");
    // The stream closes: the session is gone on every replica.
    drop(stream);
    eventually(Duration::from_secs(5), 404, || async {
        post_message(b, &alice, &sid, rpc(10, "tools/list", json!({}))).await
    })
    .await;
    cluster.stop().await;
}

on_both_stores!(a_cancel_sent_through_another_replica_stops_the_call => a_cancel_sent_through_another_replica_stops_the_call_on);

async fn a_cancel_sent_through_another_replica_stops_the_call_on(store: Store) {
    let Some(cluster) = Cluster::start_on(2, store).await else { return };
    let alice = token("alice");
    let sid = open(cluster.base(0), &alice).await;
    let (a, started) = (cluster.base(0).to_owned(), Instant::now());
    let (token_a, sid_a) = (alice.clone(), sid.clone());
    let running = actix_web::rt::spawn(async move {
        let call = rpc(7, "tools/call", json!({"name": "slow", "arguments": {}}));
        post_to(&a, Some(&token_a), Some(&sid_a), &[], call).await
    });
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}});
    assert_eq!(post_to(cluster.base(1), Some(&alice), Some(&sid), &[], cancel).await.status, 202);
    let reply = actix_web::rt::time::timeout(Duration::from_secs(10), running).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(8), "the 30 s call stopped early: {:?}", started.elapsed());
    assert_eq!(reply.body["error"]["message"], "request cancelled", "{}", reply.body);
    cluster.stop().await;
}

#[actix_web::test]
async fn without_redis_session_requests_get_a_prompt_503_and_stateless_ones_go_on() {
    let Some(mut cluster) = Cluster::start(1).await else { return };
    let alice = token("alice");
    let base = cluster.base(0).to_owned();
    let sid = open(&base, &alice).await;
    assert_eq!(list(&base, &alice, &sid).await.0, 200);
    cluster.redis.as_mut().unwrap().stop();
    let started = Instant::now();
    let took = eventually(Duration::from_secs(4), 503, || async { list(&base, &alice, &sid).await.0 }).await;
    assert!(took < Duration::from_secs(3), "503 within {took:?}");
    let (status, body) = list(&base, &alice, &sid).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("session store"), "{body}");
    let each = Instant::now();
    assert_eq!(post_to(&base, Some(&alice), None, &[], init("2025-06-18")).await.status, 503);
    assert_eq!(Events::get(&format!("{base}/sse"), &alice, None).await.0, 503);
    assert!(each.elapsed() < Duration::from_secs(3), "each refusal is prompt: {:?}", each.elapsed());
    // Stateless requests (2026-07-28) need no session: they keep working.
    let (status, body) = stateless_to(&base, &alice, 5, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Redis returns (with its data): the same session works again.
    cluster.redis.as_mut().unwrap().restart();
    eventually(Duration::from_secs(10), 200, || async { list(&base, &alice, &sid).await.0 }).await;
    cluster.stop().await;
}

on_both_stores!(a_replica_killed_mid_session_leaves_the_session_to_the_others => a_replica_killed_mid_session_leaves_the_session_to_the_others_on);

async fn a_replica_killed_mid_session_leaves_the_session_to_the_others_on(store: Store) {
    let Some(mut cluster) = Cluster::start_on(3, store).await else { return };
    let lb = cluster.balancer();
    let alice = token("alice");
    let sid = open(&lb.base, &alice).await;
    for i in 0..3 {
        assert_eq!(call_echo(&lb.base, &alice, &sid, i).await.0, 200);
    }
    cluster.replicas[0].kill();
    for i in 0..6 {
        let (status, body, _) = call_echo(&lb.base, &alice, &sid, 10 + i).await;
        assert_eq!(status, 200, "after the kill, request {i}: {body}");
    }
    drop(lb);
    cluster.stop().await;
}

on_both_stores!(a_policy_reload_reaches_listening_clients_on_every_replica => a_policy_reload_reaches_listening_clients_on_every_replica_on);

async fn a_policy_reload_reaches_listening_clients_on_every_replica_on(store: Store) {
    let Some(cluster) = Cluster::start_on(2, store).await else { return };
    let alice = token("alice");
    let sid = open(cluster.base(0), &alice).await;
    // The session's GET stream on the replica that did not create it, and another on the first.
    let (status, on_b) = Events::get(&format!("{}/mcp", cluster.base(1)), &alice, Some(&sid)).await;
    assert_eq!(status, 200);
    let other = open(cluster.base(1), &alice).await;
    let (status, on_a) = Events::get(&format!("{}/mcp", cluster.base(0)), &alice, Some(&other)).await;
    assert_eq!(status, 200);
    let (mut on_a, mut on_b) = (on_a.unwrap(), on_b.unwrap());
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let policy = cluster._dir.path().join("policy.yaml");
    std::fs::write(&policy, format!("{POLICY}  auditor: {{allowed_tools: [echo]}}\n")).unwrap();
    for stream in [&mut on_a, &mut on_b] {
        let msg = stream.message(Duration::from_secs(10)).await.expect("list_changed on each replica's stream");
        assert_eq!(msg["method"], "notifications/tools/list_changed");
    }
    cluster.stop().await;
}

/// The official Python SDK client runs a whole session (connect, list, a call of each bundled
/// tool, a denied tool, progress, a cancel) through the balancer in front of three replicas,
/// over Streamable HTTP and over legacy SSE.
#[actix_web::test]
async fn the_python_sdk_runs_whole_sessions_through_three_replicas() {
    if !python_has_mcp() {
        return;
    }
    let Some(redis) = Redis::start() else { return };
    let db = shared_db().await;
    let dir = tempfile::tempdir().unwrap();
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (calc, git, docs, fixture) = (port(), port(), port(), port());
    let mut fixture_server = std::process::Command::new(crate::common::replicas::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/fixture_server.py"))
        .arg(fixture.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tools = format!(
        "tools:\n  - {{name: exact_compute, backend_url: \"http://127.0.0.1:{calc}/mcp\"}}\n  - {{name: git_readonly, backend_url: \"http://127.0.0.1:{git}/mcp\"}}\n  - {{name: document_generate, backend_url: \"http://127.0.0.1:{docs}/mcp\"}}\n  - {{name: slow_progress, backend_url: \"http://127.0.0.1:{fixture}/mcp\"}}\n  - {{name: sleepy, backend_url: \"http://127.0.0.1:{fixture}/mcp\"}}\n  - {{name: admin_only, backend_url: \"http://127.0.0.1:{fixture}/mcp\"}}\n"
    );
    std::fs::write(dir.path().join("tools.yaml"), tools).unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "default_action: deny\nroles:\n  developer: {allowed_tools: [exact_compute, git_readonly, document_generate, slow_progress, sleepy]}\n",
    )
    .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", fixture)).is_ok() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // The first replica runs the bundled tool servers; the others reach them over HTTP.
    let (calc_bind, git_bind, docs_bind) =
        (format!("127.0.0.1:{calc}"), format!("127.0.0.1:{git}"), format!("127.0.0.1:{docs}"));
    let repos = format!("mcp-gateway={}", env!("CARGO_MANIFEST_DIR"));
    let bundled = [
        ("BUNDLED_TOOLS", "on"),
        ("CALCULATOR_BIND", calc_bind.as_str()),
        ("GIT_TOOL_BIND", git_bind.as_str()),
        ("DOCGEN_BIND", docs_bind.as_str()),
        ("GIT_REPOS", repos.as_str()),
    ];
    let mut replicas = vec![replica(&db, Some(&redis.url), dir.path(), "r0", &bundled).await];
    for i in 1..3 {
        replicas.push(replica(&db, Some(&redis.url), dir.path(), &format!("r{i}"), &[]).await);
    }
    let lb = RoundRobin::start(&replicas.iter().collect::<Vec<_>>());
    let alice = token("sdk-user");
    let mut failures = Vec::new();
    for (mode, path) in [("session", "/mcp"), ("sse", "/sse")] {
        let url = format!("{}{path}", lb.base);
        let (passed, out) = actix_web::rt::task::spawn_blocking({
            let (url, alice) = (url.clone(), alice.clone());
            move || python_client(mode, &url, &alice)
        })
        .await
        .unwrap();
        if !passed || out.contains("FAIL") {
            failures.push(format!("{mode}:\n{out}"));
        }
    }
    let _ = fixture_server.kill();
    let _ = fixture_server.wait();
    drop(lb);
    drop(replicas);
    db.drop_db().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
