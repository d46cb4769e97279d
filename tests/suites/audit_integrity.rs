//! The audit trail against a caller who tries to stop, skip or bloat it, written as the attacks
//! (the requests an attacker sends), each on PostgreSQL and SQLite.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::backend::{Mode, TestBackend};
use crate::common::{audit_row as row, sql, DbKind, TestDb, TestGateway};
use actix::Actor;
use base64::Engine;
use gateway_actors::{ActorStats, AuditRecord, AuditWriterActor, BatchConfig, Flush, Record};
use mcp_gateway::db::audit::{verify, DbAuditSink, Spool};
use mcp_gateway::db::Db;
use serde_json::{json, Value};

/// A token nobody signed whose header names the algorithm `"\u0000"`.
fn poison_token() -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!("{}.{}.{}", b64(br#"{"alg":"\u0000","kid":"\u0000\u001b[31mforged"}"#), b64(br#"{"sub":"x"}"#), b64(b"sig"))
}

/// Before: PostgreSQL refused the row of the poison request ("invalid byte sequence for
/// encoding UTF8: 0x00"), the batch went to the spool, the replay failed forever and every
/// later row queued behind it. Now every row is stored, the trail verifies, nothing is spooled.
async fn nul_bytes_cannot_stop_the_audit_trail(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).start().await;
    let token = gw.token("alice", &["developer"]);
    assert_eq!(gw.invoke(&token, "echo", json!({"n": 1})).await.0, 200);
    // The anonymous poison: its 401 carries a fixed reason, nothing of the token.
    let (status, headers, body) =
        gw.post_invoke(Some(&poison_token()), br#"{"tool_name":"echo","arguments":{}}"#.to_vec()).await;
    assert_eq!(status, 401);
    let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap().to_owned();
    for echoed in [body.to_string(), challenge] {
        assert!(!echoed.contains("\\u0000") && !echoed.contains("forged") && !echoed.contains('\0'), "{echoed}");
    }
    // A valid token, a tool name holding NUL (and a forged log line).
    let (status, _) = gw.invoke(&token, "ec\0ho\n{\"level\":\"INFO\"}", json!({})).await;
    assert_eq!(status, 404);
    for n in 2..5 {
        assert_eq!(gw.invoke(&token, "echo", json!({ "n": n })).await.0, 200);
    }
    let rows = db.wait_for_rows(6).await;
    assert_eq!(rows.len(), 6, "every attempt has its row, the poison ones included");
    assert!(rows.iter().any(|r| r.tool_name.as_deref() == Some("ec\\u{0}ho\\u{a}{\"level\":\"INFO\"}")));
    let (_, ready) = gw.get("/health/ready", None).await;
    assert_eq!((ready["status"].as_str(), ready["audit"]["spooled"].as_u64()), (Some("ready"), Some(0)), "{ready}");
    gw.stop().await;
    let problems = verify(&Db::connect(&db.url, 1).unwrap(), &Default::default()).await.unwrap().problems;
    assert!(problems.is_empty(), "{problems:?}");
    db.drop_db().await;
}

crate::common::on_both_databases!(nul_bytes_cannot_stop_the_audit_trail => nul_bytes_cannot_stop_the_audit_trail);

/// The real writer over the real database sink, as the gateway wires it.
async fn writer(db: &TestDb, dir: &std::path::Path) -> (Db, actix::Addr<AuditWriterActor>, Rc<Spool>, Arc<AtomicU64>) {
    mcp_gateway::db::migrate(&db.url).await.unwrap();
    let pool = Db::connect(&db.url, 2).unwrap();
    let set_aside = Arc::new(AtomicU64::new(0));
    let spool = Rc::new(Spool::open(dir.join("spool.jsonl"), Arc::default()).counting_set_aside(set_aside.clone()));
    let sink = Rc::new(DbAuditSink::new(pool.clone(), spool.clone()));
    let config = BatchConfig { max_events: 64, ..BatchConfig::default() };
    let addr = AuditWriterActor::new(sink, config, Arc::new(ActorStats::default())).start();
    (pool, addr, spool, set_aside)
}

/// Property: rows with arbitrary strings (any Unicode, NUL and every control character,
/// long values) in every text field, written through the real writer into the real database,
/// are each stored, and the stored trail verifies.
async fn arbitrary_strings_in_every_field_are_stored(kind: DbKind) {
    use proptest::strategy::{Strategy, ValueTree};
    let Some(db) = TestDb::of(kind).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (pool, writer, spool, set_aside) = writer(&db, dir.path()).await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let field = proptest::prop_oneof![
        proptest::string::string_regex("(?s).{0,40}").unwrap(),
        proptest::string::string_regex("[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{202e}\\u{2028}]{0,20}").unwrap(),
        proptest::string::string_regex("(?s).{3000,5000}").unwrap(),
    ];
    let n = 300;
    for i in 0..n {
        let fields: Vec<String> = (0..14).map(|_| field.new_tree(&mut runner).unwrap().current()).collect();
        writer.do_send(Record(row(i, &|k| fields[k].clone())));
    }
    writer.send(Flush).await.unwrap().unwrap();
    let stored = db.audit_rows().await;
    assert_eq!(stored.len(), n, "each row is stored");
    let mut prefixes: Vec<String> = stored.iter().map(|r| r.id[..6].to_owned()).collect();
    prefixes.sort();
    assert_eq!(prefixes, (0..n).map(|i| format!("{i:06}")).collect::<Vec<_>>());
    assert!(stored.iter().all(|r| !r.tool_name.as_deref().unwrap_or("").contains('\0')));
    assert_eq!((spool.held(), set_aside.load(Ordering::Relaxed)), (0, 0), "nothing spooled or set aside");
    let found = verify(&pool, &Default::default()).await.unwrap();
    let (rows, problems) = (found.rows, found.problems);
    assert_eq!((rows, problems), (n, vec![]));
    db.drop_db().await;
}

crate::common::on_both_databases!(arbitrary_strings_in_every_field_are_stored => arbitrary_strings_in_every_field_are_stored);

/// A database that refuses one row (here a constraint the operator added) gets every other
/// row of the batch; the refused one is set aside alone, counted, and `audit verify` walks
/// through it. A spool holding such a row replays past it.
async fn a_refused_row_is_set_aside_alone(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (pool, writer, spool, set_aside) = writer(&db, dir.path()).await;
    match kind {
        DbKind::Postgres => {
            sql(&db.url, "ALTER TABLE audit_logs ADD CONSTRAINT no_poison CHECK (tool_name <> 'poison')").await
        }
        DbKind::Sqlite => {
            sql(
                &db.url,
                "CREATE TRIGGER no_poison BEFORE INSERT ON audit_logs WHEN NEW.tool_name = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poison'); END",
            )
            .await
        }
    }
    for i in 0..10 {
        let name = if i == 6 { "poison" } else { "echo" };
        writer.do_send(Record(row(i, &|k| if k == 6 { name.to_owned() } else { format!("f{k}") })));
    }
    writer.send(Flush).await.unwrap().unwrap();
    assert_eq!(db.audit_rows().await.len(), 9, "the rows before and after the refused one are stored");
    assert_eq!(set_aside.load(Ordering::Relaxed), 1);
    assert_eq!(spool.held(), 0, "nothing waits behind it");
    let found = verify(&pool, &Default::default()).await.unwrap();
    let (rows, problems) = (found.rows, found.problems);
    assert_eq!((rows, problems), (10, vec![]), "verify walks through the set-aside row");

    // A spool (written by an older gateway, say) holding the same kind of row replays past it.
    let mut lines = String::new();
    for i in 20..25 {
        let mut r = row(i, &|k| if k == 6 && i == 21 { "poison".into() } else { format!("s{k}") });
        r.chain_id = "old-chain".into();
        r.seq = (i - 19) as i64;
        lines.push_str(&serde_json::to_string(&r).unwrap());
        lines.push('\n');
    }
    let path = dir.path().join("old-spool.jsonl");
    std::fs::write(&path, lines).unwrap();
    let old = Spool::open(path.clone(), Arc::default()).counting_set_aside(set_aside.clone());
    assert_eq!(old.replay(&pool).await.unwrap(), 5);
    assert_eq!((old.held(), std::fs::read_to_string(&path).unwrap().len()), (0, 0), "the spool is emptied");
    assert_eq!(db.audit_rows().await.len(), 13);
    assert_eq!(set_aside.load(Ordering::Relaxed), 2);
    db.drop_db().await;
}

crate::common::on_both_databases!(a_refused_row_is_set_aside_alone => a_refused_row_is_set_aside_alone);

/// Before: `AUDIT_MODE=strict` counted the local spool as durable and kept answering 200
/// while no row reached the database. Now it answers 503 until rows reach it again, and
/// `/health/ready` says the replica is not ready.
#[actix_web::test]
async fn strict_mode_answers_503_while_rows_do_not_reach_the_database_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).var("AUDIT_MODE", "strict").start().await;
    let token = gw.token("s", &["developer"]);
    assert_eq!(gw.invoke(&token, "echo", json!({})).await.0, 200);
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    sql(&admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    for _ in 0..3 {
        let (status, body) = gw.invoke(&token, "echo", json!({})).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (503, Some(-32603)), "{body}");
    }
    let (status, ready) = gw.get("/health/ready", None).await;
    assert_eq!((status, ready["audit"]["status"].as_str()), (503, Some("not_reaching_database")), "{ready}");
    sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let mut status = 0;
    for _ in 0..100 {
        status = gw.invoke(&token, "echo", json!({})).await.0;
        if status == 200 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "served again once rows reach the database");
    gw.stop().await;
    let rows = db.audit_rows().await;
    assert!(rows.iter().filter(|r| r.http_status == 503).count() >= 3, "the refused calls are audited too");
    db.drop_db().await;
}

/// Every refusal at the MCP front doors leaves its row: no token, a forged token, a foreign
/// Origin, malformed JSON, an invalid JSON-RPC message, an unknown session, an oversize
/// chunked body, an oversize declared job body; `/sse` and `/messages` alike.
async fn every_refusal_on_every_transport_is_audited(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).var("MAX_PAYLOAD_BYTES", "4096").start().await;
    let token = gw.token("eve", &["developer"]);
    let send = |path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Vec<u8>| {
        let mut req = crate::common::client()
            .post(format!("{}{path}", gw.base))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Accept", "application/json, text/event-stream"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for h in headers {
            req = req.insert_header(*h);
        }
        async move {
            let resp = req.send_body(body).await.unwrap();
            resp.status().as_u16()
        }
    };
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec();
    let stateless = ("MCP-Protocol-Version", "2026-07-28");
    let mut expected = vec![
        send("/mcp", None, &[], ping.clone()).await,
        send("/mcp", Some(&poison_token()), &[], ping.clone()).await,
        send("/mcp", Some(&token), &[("Origin", "https://evil.example")], ping.clone()).await,
        send("/mcp", Some(&token), &[stateless], b"{not json".to_vec()).await,
        send("/mcp", Some(&token), &[stateless], br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec()).await,
        send("/mcp", Some(&token), &[("Mcp-Session-Id", "no-such-session")], ping.clone()).await,
        send("/messages?session_id=nope", Some(&token), &[], ping.clone()).await,
        send("/messages?session_id=nope", None, &[], ping.clone()).await,
        send("/mcp/jobs", Some(&token), &[], vec![b' '; 8192]).await,
    ];
    // A chunked body (no Content-Length) that grows past the limit.
    let chunks = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(actix_web::web::Bytes::from(vec![b' '; 1024]))),
    );
    let resp = crate::common::client()
        .post(format!("{}/mcp", gw.base))
        .bearer_auth(&token)
        .insert_header(stateless)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_stream(chunks)
        .await
        .unwrap();
    expected.push(resp.status().as_u16());
    let sse = crate::common::client().get(format!("{}/sse", gw.base)).send().await.unwrap();
    expected.push(sse.status().as_u16());
    assert_eq!(expected, vec![401, 401, 403, 400, 200, 404, 404, 401, 413, 413, 401]);
    let rows = db.wait_for_rows(expected.len()).await;
    assert_eq!(rows.len(), expected.len(), "one row per refused attempt: {rows:#?}");
    let mut statuses: Vec<i32> = rows.iter().map(|r| r.http_status).collect();
    statuses.sort();
    let mut want: Vec<i32> = expected.iter().map(|s| i32::from(*s)).collect();
    want.sort();
    assert_eq!(statuses, want);
    gw.stop().await;
    db.drop_db().await;
}

crate::common::on_both_databases!(every_refusal_on_every_transport_is_audited => every_refusal_on_every_transport_is_audited);

/// Before: a 1 MiB batch of 524,000 invalid items built a 57 MB reply and took the gateway to
/// 890 MB. Now a batch is refused past 100 items while it is parsed, and each item of a batch
/// counts against the caller's rate limit.
#[actix_web::test]
async fn huge_batches_are_refused_and_batch_items_are_rate_limited() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &echo.url)
        .policy("rate_limits:\n  per_user: { requests_per_minute: 60, burst: 10 }\n")
        .start()
        .await;
    let token = gw.token("b", &["developer"]);
    let post = |body: Vec<u8>| {
        let req = crate::common::client()
            .post(format!("{}/mcp", gw.base))
            .bearer_auth(&token)
            .insert_header(("MCP-Protocol-Version", "2026-07-28"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Accept", "application/json, text/event-stream"));
        async move {
            let mut resp = req.send_body(body).await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.body().limit(1 << 20).await.unwrap();
            (status, body.len(), serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
        }
    };
    let invalid: Vec<u8> = format!("[{}{{}}]", "{},".repeat(524_000 / 2)).into_bytes();
    let (status, len, body) = post(invalid).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(-32600)), "{body}");
    assert!(len < 512, "a short refusal, not a reply per item: {len} bytes");
    let pings: Vec<Value> = (0..20).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"})).collect();
    let (status, _, body) = post(serde_json::to_vec(&pings).unwrap()).await;
    assert_eq!(status, 200);
    let limited = body.as_array().unwrap().iter().filter(|a| a["error"]["code"] == -32006).count();
    assert_eq!(limited, 10, "the burst of 10 passes, the other 10 items are rate-limited: {body}");
    gw.stop().await;
}

const AUDIT_KEY: &str = "5e0c7a1f3b9d2e4c6a8b0d1f3e5c7a9b1d3f5e7c9a0b2d4f6e8c0a1b3d5f7e9c";

/// `mcp-gateway audit verify` as an auditor runs it (with or without the key); (ok, stdout).
fn verify_cli(db: &TestDb, key: Option<&str>, expect_ledger: Option<&str>) -> (bool, String) {
    let args: Vec<&str> = expect_ledger.map(|end| vec!["--expect-ledger", end]).unwrap_or_default();
    verify_cli_args(db, key, &args)
}

/// [`verify_cli`] with any further arguments.
fn verify_cli_args(db: &TestDb, key: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gateway"));
    cmd.args(["audit", "verify"]).env("DATABASE_URL", &db.url).env("JWT_SECRET_KEY", crate::common::SECRET);
    cmd.env_remove("AUDIT_HMAC_KEY");
    if let Some(key) = key {
        cmd.env("AUDIT_HMAC_KEY", key);
    }
    cmd.args(args);
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One gateway run (one chain): `calls` echo calls by alice and one anonymous refusal.
async fn one_run(db: &TestDb, echo: &TestBackend, calls: usize) -> String {
    let gw = TestGateway::builder(db).tool("echo", &echo.url).var("AUDIT_HMAC_KEY", AUDIT_KEY).start().await;
    let token = gw.token("alice", &["developer"]);
    let before: std::collections::HashSet<String> = db.audit_rows().await.into_iter().map(|r| r.chain_id).collect();
    assert_eq!(gw.post_invoke(None, br#"{"tool_name":"echo","arguments":{}}"#.to_vec()).await.0, 401);
    for i in 0..calls {
        assert_eq!(gw.invoke(&token, "echo", json!({ "i": i })).await.0, 200);
    }
    gw.stop().await;
    let rows = db.audit_rows().await;
    rows.into_iter().map(|r| r.chain_id).find(|c| !before.contains(c) && c.starts_with("chain-")).unwrap()
}

/// The rows of `chain`, oldest first.
async fn chain_rows(db: &TestDb, chain: &str) -> Vec<mcp_gateway::db::audit::AuditRow> {
    let mut rows: Vec<_> = db.audit_rows().await.into_iter().filter(|r| r.chain_id == chain).collect();
    rows.sort_by_key(|r| r.seq);
    rows
}

/// The newest ledger entry: (ordinal, link).
async fn ledger_end(db: &TestDb) -> (i64, String) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use mcp_gateway::db::schema::audit_ledger as l;
    let query = l::table.order(l::ordinal.desc()).select((l::ordinal, l::link));
    match Db::connect(&db.url, 1).unwrap() {
        Db::Pg(pool) => query.first(&mut *pool.get().await.unwrap()).await.unwrap(),
        Db::Sqlite(pool) => query.first(&mut *pool.get().await.unwrap()).await.unwrap(),
    }
}

/// Before: `audit verify` passed after (a) a `roles` value rewritten to text that does not parse
/// (read back as `[]`, the hash matched), (b) a whole chain deleted with its head row, (c) a
/// chain's oldest rows deleted behind an inserted checkpoint, and — for anyone who can write
/// the database — (d) a row rewritten with every later hash and the head recomputed. Now (a),
/// (b), (c) are found without the key (the ledger links chains and checkpoints; fields parse
/// strictly), (d) and a forged ledger entry with the key, and a ledger cut short against an end
/// recorded elsewhere.
async fn tamper_evidence_holds(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let (a, b, c) = (one_run(&db, &echo, 3).await, one_run(&db, &echo, 6).await, one_run(&db, &echo, 2).await);
    let (ok, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(ok && report.contains("with AUDIT_HMAC_KEY, 0 problem(s)"), "{report}");
    let recorded_end = ledger_end(&db).await;

    // (a) The anonymous refusal's roles `[]` rewritten to text that is not JSON.
    let anonymous = chain_rows(&db, &a).await.into_iter().find(|r| r.roles == "[]").unwrap();
    sql(&db.url, &format!("UPDATE audit_logs SET roles = 'superuser' WHERE id = '{}'", anonymous.id)).await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(
        !ok && report.contains(&format!("row {} (chain {a}, seq 1): roles is not a JSON array", anonymous.id)),
        "{report}"
    );
    sql(&db.url, &format!("UPDATE audit_logs SET roles = '[]' WHERE id = '{}'", anonymous.id)).await;
    let (ok, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(ok, "restored: {report}");

    // (d) Someone with write access rewrites who called, recomputing every later hash and the
    // head: consistent without the key (and verify says what it cannot prove), found with it.
    let mut rows: Vec<AuditRecord> = chain_rows(&db, &a).await.iter().map(AuditRecord::from).collect();
    rows[1].user_id = Some("mallory".into());
    for i in 1..rows.len() {
        rows[i].prev_hash = rows[i - 1].row_hash.clone();
        rows[i].row_hash = rows[i].compute_hash();
        let r = &rows[i];
        let user = r.user_id.as_deref().unwrap();
        sql(
            &db.url,
            &format!(
                "UPDATE audit_logs SET user_id = '{user}', prev_hash = '{}', row_hash = '{}' WHERE id = '{}'",
                r.prev_hash, r.row_hash, r.id
            ),
        )
        .await;
    }
    let last = rows.last().unwrap();
    sql(&db.url, &format!("UPDATE audit_chain_heads SET row_hash = '{}' WHERE chain_id = '{a}'", last.row_hash)).await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(ok && report.contains("NOTE signed evidence present but not checked"), "{report}");
    let (ok, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(
        !ok && report.contains(&format!("chain {a}: its head (seq 4) does not check with AUDIT_HMAC_KEY")),
        "{report}"
    );

    // (e) Stripping the MACs to pass the chain off as written without the key does not help:
    // once the key is in use every gateway chain must be signed, and the ledger link covers it.
    sql(&db.url, &format!("UPDATE audit_ledger SET mac = NULL WHERE chain_id = '{a}'")).await;
    sql(&db.url, &format!("UPDATE audit_chain_heads SET mac = NULL WHERE chain_id = '{a}'")).await;
    let (ok, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(!ok && report.contains(&format!("(chain {a}): not signed")), "{report}");

    // (f) A whole chain forged, its head back-dated to look older than the ledger.
    let model = &chain_rows(&db, &c).await[0];
    sql(
        &db.url,
        &format!(
            "INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at) \
             VALUES ('chain-forged', 1, '{}', '2000-01-01 00:00:00')",
            model.row_hash
        ),
    )
    .await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(!ok && report.contains("chain chain-forged: not registered in the audit ledger"), "{report}");

    // (g) A row hidden from every query by moving it into the set-aside table.
    let hidden = &chain_rows(&db, &c).await[1];
    let b64 = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&AuditRecord::from(hidden)).unwrap());
    sql(&db.url, &format!("DELETE FROM audit_logs WHERE id = '{}'", hidden.id)).await;
    sql(
        &db.url,
        &format!(
            "INSERT INTO audit_set_aside (id, chain_id, seq, row_hash, row_b64, error, created_at) \
             VALUES ('{}', '{c}', {}, '{}', '{b64}', 'refused', '2026-01-01 00:00:00')",
            hidden.id, hidden.seq, hidden.row_hash
        ),
    )
    .await;
    let (_, report) = verify_cli(&db, None, None);
    assert!(report.contains("NOTE 1 row(s) are set aside"), "{report}");
    let (_, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(
        report.contains(&format!("set-aside row {} (chain {c}, seq 2): its MAC does not check", hidden.id)),
        "{report}"
    );

    // (c) Chain b's oldest half deleted, with a checkpoint copied from its last deleted row.
    let rows_b = chain_rows(&db, &b).await;
    let cut = &rows_b[3];
    sql(&db.url, &format!("DELETE FROM audit_logs WHERE chain_id = '{b}' AND seq <= 4")).await;
    sql(
        &db.url,
        &format!(
            "INSERT INTO audit_checkpoints (chain_id, seq, row_hash, created_at) VALUES ('{b}', 4, '{}', '2026-01-01 00:00:00')",
            cut.row_hash
        ),
    )
    .await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(
        !ok && report
            .contains(&format!("chain {b}: its checkpoint (seq 4) is not the one the ledger records (forged)")),
        "{report}"
    );
    assert!(report.contains(&format!("chain {b}: 4 row(s) missing before seq 5 (deleted)")), "{report}");
    // … and with a ledger entry forged at its end to match: the link recomputes, but without the
    // key it cannot be signed.
    let (ordinal, prev) = ledger_end(&db).await;
    let link = mcp_gateway::db::audit::evidence::link(&prev, ordinal + 1, "checkpoint", &b, 4, &cut.row_hash, false);
    sql(
        &db.url,
        &format!(
            "INSERT INTO audit_ledger (ordinal, kind, chain_id, seq, row_hash, prev_link, link, created_at) \
             VALUES ({}, 'checkpoint', '{b}', 4, '{}', '{prev}', '{link}', '2026-01-01 00:00:00')",
            ordinal + 1,
            cut.row_hash
        ),
    )
    .await;
    let (_, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(report.contains(&format!("audit ledger entry {} (checkpoint {b}): not signed", ordinal + 1)), "{report}");

    // (b) Chain c deleted whole, rows and head: its ledger entry remains …
    sql(&db.url, &format!("DELETE FROM audit_logs WHERE chain_id = '{c}'")).await;
    sql(&db.url, &format!("DELETE FROM audit_chain_heads WHERE chain_id = '{c}'")).await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(!ok && report.contains(&format!("chain {c} (audit ledger entry")), "{report}");
    assert!(report.contains("its rows and head are gone (deleted whole)"), "{report}");
    // … and deleting that entry too breaks the ledger's links.
    sql(&db.url, &format!("DELETE FROM audit_ledger WHERE chain_id = '{c}'")).await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(!ok && report.contains("audit ledger: entries") && report.contains("are missing (deleted)"), "{report}");

    // The ledger cut back to before the recorded end: found against the end kept elsewhere.
    sql(&db.url, &format!("DELETE FROM audit_ledger WHERE ordinal >= {}", recorded_end.0)).await;
    let expected = format!("{}:{}", recorded_end.0, recorded_end.1);
    let (ok, report) = verify_cli(&db, None, Some(&expected));
    assert!(!ok && report.contains(&format!("entry {}, recorded earlier, is gone", recorded_end.0)), "{report}");
    db.drop_db().await;
}

crate::common::on_both_databases!(tamper_evidence_holds => tamper_evidence_holds);

/// A database from before the ledger: its chains are registered by the first write after the
/// upgrade (never by their dates), so they verify, and a chain forged later still does not.
async fn chains_from_before_the_ledger_are_adopted_once(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let old = one_run(&db, &echo, 2).await;
    // As the database looked before the upgrade: chains and heads, no ledger.
    sql(&db.url, "DELETE FROM audit_ledger").await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(!ok && report.contains(&format!("chain {old}: not registered in the audit ledger")), "{report}");
    // verify's own CLI row registered its chain: the next write adopts nothing more, so start
    // from an empty ledger once more, as a gateway upgrade would.
    sql(&db.url, "DELETE FROM audit_ledger").await;
    let new = one_run(&db, &echo, 1).await;
    let (ok, report) = verify_cli(&db, None, None);
    assert!(ok && report.contains("6 rows in 3 chains checked, 0 problem(s)"), "{report}");
    // With the key: the adopted chains (entries 1 and 2) are unsigned, the new one signed.
    let (ok, report) = verify_cli_args(&db, Some(AUDIT_KEY), &["--signed-since", "3"]);
    assert!(ok, "{report}");
    let (ok, report) = verify_cli(&db, Some(AUDIT_KEY), None);
    assert!(!ok && report.contains(&format!("(chain {old}): not signed")), "{report}");
    assert!(!report.contains(&format!("(chain {new})")), "{report}");
    db.drop_db().await;
}

crate::common::on_both_databases!(chains_from_before_the_ledger_are_adopted_once => chains_from_before_the_ledger_are_adopted_once);

/// Before: a SQLite connection kept the event loop that opened it and ran its statements on
/// that loop's blocking threads. Pool connections are opened wherever they are first needed
/// (an HTTP worker, a job, the audit writer); once the opening loop stopped, every statement
/// on the connection failed ("task was cancelled"). Such a failure in the audit sink while the
/// database still answered a ping on another connection was taken for a refusal: the row was
/// set aside, missing from `audit_logs` (a cancelled job's row, lost in 2 of ~10 full runs).
/// Now SQLite's blocking work runs on threads of the process's own, whichever loop opened it.
#[test]
fn a_sqlite_connection_outlives_the_event_loop_that_opened_it() {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loops.db").display().to_string();
    let opened = std::thread::spawn(move || {
        actix_web::rt::System::new()
            .block_on(async move { mcp_gateway::db::SqliteConn::establish(&path).await.unwrap() })
    });
    let mut conn = opened.join().unwrap(); // that thread and its event loop are gone
    actix_web::rt::System::new().block_on(async move {
        conn.batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .await
            .expect("statements run after the opening event loop stopped");
    });
}

/// The attack (outside review): hold the audit table's lock longer than the database waits for
/// it — a long SQLite write transaction past its 5 s busy timeout, a PostgreSQL `LOCK TABLE`
/// with the database's `lock_timeout` at 1 s — while calls are answered. Before: the database
/// still answered a ping, so "database is locked" / "canceling statement due to lock timeout"
/// was taken for a refusal of the rows: they were set aside, out of `audit_logs` (and on SQLite
/// the spooled copy landed too, so `audit verify` reported an inserted row). Now a lock or a
/// timeout is the database being busy: the rows wait, and every one lands in `audit_logs`.
async fn a_held_lock_is_not_a_refusal(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    mcp_gateway::db::migrate(&db.url).await.unwrap();
    if kind == DbKind::Postgres {
        let name = db.url.rsplit('/').next().unwrap().to_owned();
        sql(&db.url, &format!("ALTER DATABASE {name} SET lock_timeout = '1s'")).await;
    }
    let gw = TestGateway::builder(&db).tool("echo", &echo.url).var("AUDIT_FLUSH_INTERVAL_MS", "20").start().await;
    let token = gw.token("alice", &["developer"]);
    assert_eq!(gw.invoke(&token, "echo", json!({"before": true})).await.0, 200);
    let held = std::time::Duration::from_millis(if kind == DbKind::Sqlite { 7000 } else { 3000 });
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = match kind {
        DbKind::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://").to_owned();
            std::thread::spawn(move || {
                use diesel::connection::SimpleConnection;
                use diesel::Connection;
                let mut c = diesel::SqliteConnection::establish(&path).unwrap();
                // A writer that writes and commits (as the reviewer's `sqlite3` did): the
                // gateway's waiting transactions then see a newer snapshot.
                c.batch_execute("CREATE TABLE IF NOT EXISTS lock_probe (x INTEGER)").unwrap();
                c.batch_execute("BEGIN IMMEDIATE; INSERT INTO lock_probe VALUES (1)").unwrap();
                locked_tx.send(()).unwrap();
                std::thread::sleep(held);
                c.batch_execute("COMMIT").unwrap();
            })
        }
        DbKind::Postgres => {
            let url = db.url.clone();
            std::thread::spawn(move || {
                use diesel_async::{AsyncConnection, SimpleAsyncConnection};
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let mut c = diesel_async::AsyncPgConnection::establish(&url).await.unwrap();
                    c.batch_execute("SET lock_timeout = 0; BEGIN; LOCK TABLE audit_logs IN SHARE MODE").await.unwrap();
                    locked_tx.send(()).unwrap();
                    tokio::time::sleep(held).await;
                    c.batch_execute("COMMIT").await.unwrap();
                })
            })
        }
    };
    locked_rx.recv().unwrap();
    let calls = if kind == DbKind::Sqlite { 10 } else { 4 };
    for i in 0..calls {
        assert_eq!(gw.invoke(&token, "echo", json!({ "i": i })).await.0, 200);
        actix_web::rt::time::sleep(held / (calls + 2)).await;
    }
    holder.join().unwrap();
    // The spool replays once a second: give the rows time to come back after the lock.
    let rows = db.wait_for_rows(calls as usize + 1).await;
    gw.stop().await;
    let rows = if rows.len() <= calls as usize { db.audit_rows().await } else { rows };
    let pool = Db::connect(&db.url, 1).unwrap();
    let set_aside: i64 = {
        use diesel::QueryDsl;
        use diesel_async::RunQueryDsl;
        let table = mcp_gateway::db::schema::audit_set_aside::table;
        match &pool {
            Db::Pg(p) => table.count().get_result(&mut *p.get().await.unwrap()).await.unwrap(),
            Db::Sqlite(p) => table.count().get_result(&mut *p.get().await.unwrap()).await.unwrap(),
        }
    };
    assert_eq!((rows.len(), set_aside), (calls as usize + 1, 0), "every call's row in audit_logs, none set aside");
    let found = verify(&pool, &Default::default()).await.unwrap();
    assert_eq!(found.problems, Vec::<String>::new());
    db.drop_db().await;
}

crate::common::on_both_databases!(a_held_lock_is_not_a_refusal => a_held_lock_is_not_a_refusal);
