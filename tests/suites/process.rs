//! The gateway as a user runs it: the real binary, a real third-party MCP server, signals.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::backend::{Mode, TestBackend};
use crate::common::{free_port, sql, DbKind, TestDb, TestGateway, SECRET};
use serde_json::json;

async fn wait_until_up(url: &str, child: &mut Child) {
    for _ in 0..200 {
        if crate::common::client().get(url).send().await.is_ok() {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "{url}: the process exited early");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

/// Kills the child if a test fails half-way.
struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_sdk_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import mcp.server.fastmcp"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must install the Python MCP SDK (pip install 'mcp<2')");
        eprintln!("python3 with the mcp package is not installed: skipping the interoperability test");
    }
    ok
}

#[actix_web::test]
async fn a_third_party_python_sdk_server_is_proxied_with_sessions_and_sse() {
    if !python_sdk_available() {
        return;
    }
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python_mcp_server.py");
    let mut server =
        Reaper(Command::new("python3").arg(script).arg(port.to_string()).stderr(Stdio::null()).spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}/mcp");
    // Any HTTP answer (even 4xx to a GET) means uvicorn is listening.
    wait_until_up(&url, &mut server.0).await;
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db).tool("add", &url).start().await;
    let token = gw.token("py", &["developer"]);
    for (a, b) in [(2, 3), (40, 2)] {
        let (status, body) = gw.invoke(&token, "add", json!({"a": a, "b": b})).await;
        assert_eq!(status, 200, "{body}");
        let text = body["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(text, (a + b).to_string());
    }
    let (status, body) = gw.invoke(&token, "add", json!({"a": "not a number"})).await;
    assert!(status == 200 && body["result"]["isError"] == true || status == 400, "{status} {body}");
    gw.stop().await;
}

/// The gateway binary over `db_url`, with one `echo` tool and `vars`; its data dir is `dir`.
async fn spawn_gateway(db_url: &str, echo_url: &str, dir: &std::path::Path, vars: &[(&str, &str)]) -> (Reaper, String) {
    spawn_gateway_logging(db_url, echo_url, dir, vars, Stdio::null()).await
}

/// [`spawn_gateway`], its log (stderr) going to `log`.
async fn spawn_gateway_logging(
    db_url: &str,
    echo_url: &str,
    dir: &std::path::Path,
    vars: &[(&str, &str)],
    log: Stdio,
) -> (Reaper, String) {
    let tools = dir.join("tools.yaml");
    std::fs::write(&tools, format!("tools:\n  - name: echo\n    backend_url: {echo_url}\n")).unwrap();
    // No rate limits: the load is meant to reach the backend.
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, "default_action: deny\nroles:\n  admin: {allowed_tools: ['*']}\n").unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"));
    command
        .env("BUNDLED_TOOLS", "off")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GATEWAY_PORT", port.to_string())
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET_KEY", SECRET)
        .env("TOOLS_CONFIG", &tools)
        .env("POLICY_CONFIG", &policy)
        .env("DATA_DIR", dir.join("data"))
        .env("GATEWAY_WORKERS", "2")
        .stderr(log);
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = Reaper(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/health"), &mut child.0).await;
    (child, base)
}

/// Steady load: 8 callers in a loop until the gateway stops answering, while `signal` is sent
/// after `after`. Returns the request ids of the calls answered 200.
async fn load_until_signal(base: &str, pid: u32, signal: &str, after: Duration) -> Vec<String> {
    let token = crate::common::sign(&crate::common::claims("load", &["admin"], None), SECRET);
    let answered = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let callers = (0..8).map(|c| {
        let (base, token, answered) = (base.to_owned(), token.clone(), answered.clone());
        async move {
            let client = crate::common::client();
            for i in 0u64.. {
                let Ok(resp) = client
                    .post(format!("{base}/mcp/invoke"))
                    .bearer_auth(&token)
                    .send_json(&json!({"tool_name": "echo", "arguments": {"c": c, "i": i}}))
                    .await
                else {
                    return;
                };
                if resp.status() == 200 {
                    let id = resp.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
                    answered.borrow_mut().push(id);
                } else if resp.status() != 503 {
                    panic!("unexpected status {}", resp.status());
                }
            }
        }
    });
    let name = signal;
    let signal = async move {
        actix_web::rt::time::sleep(after).await;
        assert!(Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success());
    };
    futures_util::future::join(futures_util::future::join_all(callers), signal).await;
    let ids = answered.borrow().clone();
    eprintln!("{name}: {} calls answered 200 before the gateway stopped", ids.len());
    ids
}

fn wait_exit(child: Reaper) -> std::process::ExitStatus {
    let mut child = std::mem::ManuallyDrop::new(child);
    child.0.wait().unwrap()
}

crate::common::on_both_databases!(sigterm_under_load_stores_a_row_for_every_answered_call => sigterm_under_load);

async fn sigterm_under_load(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    // Rows wait in memory (the timer never fires): only the graceful drain stores them.
    let vars =
        [("AUDIT_FLUSH_INTERVAL_MS", "3600000"), ("AUDIT_BATCH_SIZE", "1000000"), ("AUDIT_QUEUE_MAX", "1000000")];
    let (child, base) = spawn_gateway(&db.url, &echo.url, dir.path(), &vars).await;
    let answered = load_until_signal(&base, child.0.id(), "-TERM", Duration::from_millis(1500)).await;
    let status = wait_exit(child);
    assert!(status.success(), "{status}");
    assert!(answered.len() > 100, "the load ran ({} calls)", answered.len());
    let rows = db.audit_rows().await;
    let stored: std::collections::HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(stored.len(), rows.len(), "no duplicates");
    let missing: Vec<&String> = answered.iter().filter(|id| !stored.contains(id.as_str())).collect();
    assert!(missing.is_empty(), "{} of {} answered calls have no row", missing.len(), answered.len());
    db.drop_db().await;
}

/// `mcp-gateway migrate` runs the embedded migrations alone, once: a second run has nothing left.
#[test]
fn migrate_runs_the_embedded_migrations_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .env("JWT_SECRET_KEY", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let migrations =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite")).unwrap().count();
    assert_eq!(run(), format!("{migrations} migrations applied"));
    assert_eq!(run(), "0 migrations applied");
}

#[test]
fn check_config_exits_non_zero_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools.yaml");
    std::fs::write(&tools, "tools:\n  - name: x\n    backend_url: nowhere\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .env("BUNDLED_TOOLS", "off")
        .arg("check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TOOLS_CONFIG", &tools)
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tools.yaml: tools[0].backend_url"), "{err}");
    let ok = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .env("BUNDLED_TOOLS", "off")
        .arg("check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn policy_explain_answers_offline_from_the_configuration_files() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
            .env("BUNDLED_TOOLS", "off")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("JWT_SECRET_KEY", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let allowed = run(&[
        "policy",
        "explain",
        "--sub",
        "d",
        "--roles",
        "developer",
        "--tool",
        "exact_compute",
        "--arguments",
        "{}",
    ]);
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert_eq!(allowed["steps"].as_array().unwrap().last().unwrap()["rule"], "roles.developer.allowed_tools");
    let denied = run(&["policy", "explain", "--sub", "v", "--roles", "viewer", "--tool", "document_generate"]);
    assert_eq!(denied["allowed"], false, "viewers are capped at low-risk tools: {denied}");
    let workspace = run(&[
        "policy",
        "explain",
        "--sub",
        "w",
        "--roles",
        "developer",
        "--workspace",
        "restricted",
        "--tool",
        "git_readonly",
    ]);
    assert_eq!(workspace["steps"].as_array().unwrap().last().unwrap()["rule"], "workspaces.restricted");
}

#[actix_web::test]
async fn one_command_runs_the_gateway_with_all_three_tools_and_ctrl_c_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let [gw, calc, git, doc] = [free_port(), free_port(), free_port(), free_port()];
    let child = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GATEWAY_PORT", gw.to_string())
        .env("DATA_DIR", dir.path().join("data"))
        .env("CALCULATOR_BIND", format!("127.0.0.1:{calc}"))
        .env("CALCULATOR_URL", format!("http://127.0.0.1:{calc}/mcp"))
        .env("GIT_TOOL_BIND", format!("127.0.0.1:{git}"))
        .env("GIT_TOOL_URL", format!("http://127.0.0.1:{git}/mcp"))
        // No repository list, no secret, no database: the defaults a fresh checkout runs with
        // (the git tool serves this repository as `mcp-gateway`).
        .env_remove("GIT_REPOS")
        .env_remove("GIT_REPOS_FILE")
        .env_remove("JWT_SECRET_KEY")
        .env_remove("DATABASE_URL")
        .env("DOCGEN_BIND", format!("127.0.0.1:{doc}"))
        .env("DOCGEN_URL", format!("http://127.0.0.1:{doc}/mcp"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    let base = format!("http://127.0.0.1:{gw}");
    wait_until_up(&format!("{base}/health"), &mut child.0).await;
    // Dev mode: the token comes from the secret the gateway generated under DATA_DIR.
    let token = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .args(["token", "--sub", "demo", "--roles", "developer"])
        .env("DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    for (tool, arguments) in [
        ("exact_compute", json!({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}})),
        ("git_readonly", json!({"repo": "mcp-gateway", "action": "log", "limit": 1})),
        ("document_generate", json!({"content": "# Hello", "format": "html"})),
    ] {
        let mut resp = crate::common::client()
            .post(format!("{base}/mcp/invoke"))
            .bearer_auth(&token)
            .send_json(&json!({"tool_name": tool, "arguments": arguments}))
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(resp.status(), 200, "{tool}: {body}");
        assert_eq!(body["result"]["isError"], false, "{tool}: {body}");
    }
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let output = tokio::task::spawn_blocking(move || {
        let mut stdout = String::new();
        if let Some(mut out) = child.0.stdout.take() {
            use std::io::Read;
            let _ = out.read_to_string(&mut stdout);
        }
        let status = child.0.wait().unwrap();
        std::mem::forget(child);
        (status, stdout)
    })
    .await
    .unwrap();
    assert!(output.0.success(), "{}", output.0);
    assert!(output.1.contains("mcp-gateway is listening on http://127.0.0.1:"), "{}", output.1);
    assert!(output.1.contains("bundled tool exact_compute"));
    assert!(output.1.contains("DEV MODE"), "the dev secret is announced loudly: {}", output.1);
    assert!(
        output.1.contains("token --sub demo --roles developer") && output.1.contains("/mcp/invoke"),
        "{}",
        output.1
    );
    for port in [calc, git, doc] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "tool server on {port} stopped");
    }
    // The three calls are in the embedded SQLite audit table, stored before the exit.
    let db =
        mcp_gateway::db::Db::connect(&format!("sqlite://{}", dir.path().join("data/gateway.db").display()), 1).unwrap();
    let filter = mcp_gateway::db::audit::AuditFilter { limit: 100, ..Default::default() };
    let rows = mcp_gateway::db::audit::query(&db, &filter).await.unwrap();
    assert_eq!(rows.len(), 3, "one row per call");
    assert!(rows.iter().all(|r| r.user_id.as_deref() == Some("demo") && r.decision == "allowed" && r.status == "ok"));
}

crate::common::on_both_databases!(in_strict_mode_every_answered_call_survives_kill_9_under_load => kill_9_under_load);

async fn kill_9_under_load(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    // The batch timer never fires: only strict commits write.
    let vars = [("AUDIT_MODE", "strict"), ("AUDIT_FLUSH_INTERVAL_MS", "3600000"), ("AUDIT_BATCH_SIZE", "1000000")];
    let (child, base) = spawn_gateway(&db.url, &echo.url, dir.path(), &vars).await;
    // SIGKILL in the middle of the load: no drain, no flush.
    let answered = load_until_signal(&base, child.0.id(), "-KILL", Duration::from_millis(1500)).await;
    wait_exit(child);
    assert!(answered.len() > 100, "the load ran ({} calls)", answered.len());
    // Restart on the same database and data dir (a spooled row would be replayed now).
    let (child, _) = spawn_gateway(&db.url, &echo.url, dir.path(), &vars).await;
    drop(child);
    let rows = db.audit_rows().await;
    let stored: std::collections::HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(stored.len(), rows.len(), "no duplicates");
    let missing = answered.iter().filter(|id| !stored.contains(id.as_str())).count();
    assert_eq!(missing, 0, "every answered call's row was durable before its answer ({} answered)", answered.len());
    // A crash loses only unanswered rows at a chain's end: the trail still verifies.
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    db.drop_db().await;
}

/// The worst case: the database is unreachable, rows go to the spool, and the gateway is
/// killed outright. After a restart every answered call is in the table, once.
#[actix_web::test]
async fn kill_9_during_a_database_outage_in_strict_mode_answers_503_and_loses_no_row_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let echo = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let vars = [("AUDIT_MODE", "strict")];
    let (child, base) = spawn_gateway(&db.url, &echo.url, dir.path(), &vars).await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    sql(&admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
    let answered = load_until_signal(&base, child.0.id(), "-KILL", Duration::from_millis(1500)).await;
    wait_exit(child);
    // Strict mode answers nothing while rows cannot reach the database (a spooled row is safe
    // but not where auditors read it): every call got 503, and each refusal's row was spooled.
    assert!(answered.is_empty(), "{} calls answered 200 during the outage", answered.len());
    let spool = std::fs::read_to_string(dir.path().join("data/audit-spool.jsonl")).unwrap_or_default();
    let spooled: Vec<String> = spool
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(spooled.len() > 10, "the refusals are audited into the spool ({})", spooled.len());
    sql(&admin, &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    let (child, _) = spawn_gateway(&db.url, &echo.url, dir.path(), &vars).await;
    let started = std::time::Instant::now();
    let mut rows = db.audit_rows().await;
    while rows.len() < spooled.len() && started.elapsed() < Duration::from_secs(30) {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        rows = db.audit_rows().await;
    }
    drop(child);
    let stored: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(stored.len(), rows.len(), "no duplicates");
    let missing = spooled.iter().filter(|id| !stored.contains(id.as_str())).count();
    assert_eq!(missing, 0, "{missing} of {} spooled rows lost after kill -9", spooled.len());
    db.drop_db().await;
}

#[actix_web::test]
async fn no_token_secret_or_document_body_reaches_the_logs_or_the_audit_table() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // Debug level: the most the gateway ever says about a request.
    let vars = [("RUST_LOG", "debug"), ("AUDIT_FLUSH_INTERVAL_MS", "20")];
    let (child, base) = spawn_gateway_logging(&db.url, &echo.url, dir.path(), &vars, Stdio::from(log)).await;
    let token = crate::common::sign(&crate::common::claims("leak-check", &["admin"], None), SECRET);
    let body = "TOP-SECRET-DOCUMENT-BODY-7f3a";
    let password = "hunter2-PASSWORD-91c2";
    let forged = format!(
        "{}x",
        crate::common::sign(&crate::common::claims("forger", &["admin"], None), "another-secret-key-32-bytes-long!!")
    );
    let call = |bearer: String| {
        let base = base.clone();
        async move {
            crate::common::client()
                .post(format!("{base}/mcp/invoke"))
                .bearer_auth(bearer)
                .send_json(&json!({"tool_name": "echo", "arguments": {"content": body, "password": password}}))
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(call(token.clone()).await, 200);
    assert_eq!(call(forged.clone()).await, 401);
    let opened = crate::common::client()
        .post(format!("{base}/mcp"))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .send_json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
            "capabilities": {}, "clientInfo": {"name": "leak-check", "version": "1"}}}),
        )
        .await
        .unwrap();
    let session = opened.headers().get("mcp-session-id").unwrap().to_str().unwrap().to_owned();
    let mcp = crate::common::client()
        .post(format!("{base}/mcp"))
        .bearer_auth(&token)
        .insert_header(("Accept", "application/json, text/event-stream"))
        .insert_header(("Mcp-Session-Id", session))
        .insert_header(("MCP-Protocol-Version", "2025-06-18"))
        .send_json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"content": body, "password": password}}}))
        .await
        .unwrap();
    assert_eq!(mcp.status(), 200);
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(wait_exit(child).success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 3, "the gateway logged: {log}");
    // Each request is one JSON line with its request id, user, tool, status and latency.
    let invoke_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            let f = l.get("fields").unwrap_or(l);
            f["path"] == "/mcp/invoke" && f["status"] == 200
        })
        .unwrap_or_else(|| panic!("a JSON line for the allowed call: {log}"));
    let fields = invoke_line.get("fields").unwrap_or(&invoke_line);
    assert_eq!(
        (fields["user_id"].as_str(), fields["tool"].as_str()),
        (Some("leak-check"), Some("echo")),
        "{invoke_line}"
    );
    assert!(fields["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{invoke_line}");
    assert!(fields["latency_ms"].is_number(), "{invoke_line}");
    let rows = format!("{:?}", db.audit_rows().await);
    assert!(rows.contains("leak-check"), "the calls were audited");
    let token_signature = token.rsplit('.').next().unwrap();
    for secret in [token.as_str(), token_signature, forged.as_str(), body, password, "hunter2"] {
        assert!(!log.contains(secret), "{secret} reached the log");
        assert!(!rows.contains(secret), "{secret} reached the audit table");
    }
}

#[actix_web::test]
async fn sighup_reloads_the_policy() {
    let db = TestDb::sqlite().await;
    let echo = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = spawn_gateway(&db.url, &echo.url, dir.path(), &[]).await;
    let token = crate::common::sign(&crate::common::claims("ops", &["admin"], None), SECRET);
    let applied = || {
        let (base, token) = (base.clone(), token.clone());
        async move {
            let mut resp =
                crate::common::client().get(format!("{base}/metrics")).bearer_auth(token).send().await.unwrap();
            let text = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("mcpgw_config_reloads_total{result=\"applied\"} "))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }
    };
    assert_eq!(applied().await, 0);
    // The container health check: `mcp-gateway probe URL` exits 0 on 2xx, non-zero otherwise.
    let probe = |url: String| {
        Command::new(env!("CARGO_BIN_EXE_mcp-gateway")).args(["probe", &url]).output().unwrap().status.success()
    };
    assert!(probe(format!("{base}/health/ready")));
    assert!(!probe(format!("{base}/no/such/route")));
    assert!(Command::new("kill").args(["-HUP", &child.0.id().to_string()]).status().unwrap().success());
    let started = std::time::Instant::now();
    while applied().await == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "SIGHUP reloaded the policy");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(wait_exit(child).success(), "SIGHUP did not stop the gateway");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

async fn median_call_ms(base: &str, token: &str, calls: usize) -> f64 {
    let client = crate::common::client();
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let started = std::time::Instant::now();
        let resp = client
            .post(format!("{base}/mcp/invoke"))
            .bearer_auth(token)
            .send_json(&json!({"tool_name": "echo", "arguments": {"i": i}}))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The real binary under hostile connections: 200 slowloris connections and 8 clients pushing
/// 20 MiB bodies at once. The bodies get 413 without being buffered (RSS stays bounded), the
/// slowloris connections are closed by the header timeout, and a normal caller's median latency
/// stays what it was.
#[actix_web::test]
async fn slowloris_and_20_mib_bodies_leave_memory_bounded_and_normal_calls_fast() {
    use std::io::{Read, Write};
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = spawn_gateway(
        &db.url,
        &backend.url,
        dir.path(),
        &[("HEADER_TIMEOUT_MS", "2000"), ("BODY_TIMEOUT_MS", "2000"), ("RUST_LOG", "warn")],
    )
    .await;
    let pid = child.0.id();
    let token = crate::common::sign(&crate::common::claims("calm", &["admin"], None), SECRET);
    let _ = median_call_ms(&base, &token, 20).await;
    let (rss_before, calm) = (rss_kib(pid), median_call_ms(&base, &token, 50).await);

    let addr = base.trim_start_matches("http://").to_owned();
    let slowloris: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"POST /mcp/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let pushers: Vec<_> = (0..8)
        .map(|_| {
            let (addr, token) = (addr.clone(), token.clone());
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let head = format!(
                    "POST /mcp/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    20 << 20
                );
                s.write_all(head.as_bytes()).unwrap();
                let chunk = vec![b' '; 64 << 10];
                let mut sent = 0usize;
                // The gateway answers and closes early; writing then fails, which is the point.
                while sent < 20 << 20 && s.write_all(&chunk).is_ok() {
                    sent += chunk.len();
                }
                let mut answer = [0u8; 64];
                let n = s.read(&mut answer).unwrap_or(0);
                String::from_utf8_lossy(&answer[..n]).into_owned()
            })
        })
        .collect();
    let under_attack = median_call_ms(&base, &token, 50).await;
    let answers: Vec<String> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
    let rss_after = rss_kib(pid);
    eprintln!(
        "hostile: median call {calm:.2} ms calm, {under_attack:.2} ms under attack; RSS {rss_before} → {rss_after} KiB"
    );
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 413"), "a 20 MiB body got {answer:?}");
    }
    assert!(
        under_attack < calm * 5.0 + 50.0,
        "median latency {calm:.2} ms calm, {under_attack:.2} ms with 200 slowloris + 8 × 20 MiB"
    );
    assert!(
        rss_after < rss_before + 40 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB with 8 × 20 MiB bodies in flight"
    );
    // The header timeout (2 s) closes every slowloris connection.
    actix_web::rt::time::sleep(Duration::from_millis(3000)).await;
    for mut s in slowloris {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 256];
        let closed = match s.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed, "a slowloris connection was still open after the header timeout");
    }
    drop(child);
}

/// The attack on the operator's logs: a 900 KB tool name and path, bidi overrides and control
/// characters in the tool name, the subject and the path. Before: a 900 KB JSON log line per
/// request, and U+202E raw in JSON logs (reordering what the operator reads). Now, in both log
/// formats, every line is short and holds no raw control or bidi character. And a non-ASCII
/// `MCP-Protocol-Version` is refused (400), not taken for absent.
#[actix_web::test]
async fn caller_bytes_cannot_bloat_or_forge_the_logs() {
    let echo = TestBackend::start(Mode::Echo).await;
    for format in ["json", "pretty"] {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("gateway.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let db = format!("sqlite://{}", dir.path().join("audit.db").display());
        let (child, base) =
            spawn_gateway_logging(&db, &echo.url, dir.path(), &[("LOG_FORMAT", format)], log.into()).await;
        let token = crate::common::sign(&crate::common::claims("eve\u{202e}\u{1b}[31m", &["admin"], None), SECRET);
        let huge = "t".repeat(900_000);
        for tool in [huge.as_str(), "ec\u{202e}ho\u{2066}\n{\"level\":\"ERROR\"}"] {
            let body = serde_json::to_vec(&json!({"tool_name": tool, "arguments": {}})).unwrap();
            let resp = crate::common::client()
                .post(format!("{base}/mcp/invoke"))
                .bearer_auth(&token)
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
                .unwrap();
            assert!(resp.status().is_client_error(), "{}", resp.status());
        }
        let long_path = format!("{base}/{}", "p".repeat(60_000));
        let _ = crate::common::client().get(long_path).send().await;
        let resp = crate::common::client()
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .insert_header(("content-type", "application/json"))
            .insert_header(("accept", "application/json, text/event-stream"))
            .insert_header(("mcp-protocol-version", awc::http::header::HeaderValue::from_bytes(b"\xff2026").unwrap()))
            .send_body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#)
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "a non-ASCII protocol version is not taken for absent");
        drop(child);
        let text = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
        let requests = text.lines().filter(|l| l.contains("/mcp/invoke")).count();
        assert!(requests >= 2, "{format}: the calls are logged:\n{text}");
        assert!(text.contains("ttttt"), "{format}: the tool name is logged, cut short:\n{text}");
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 4096, "{format}: a {longest}-byte log line");
        for bad in ['\u{202e}', '\u{2066}', '\u{1b}'] {
            assert!(!text.contains(bad), "{format}: {bad:?} raw in the log:\n{text}");
        }
        assert!(!text.lines().any(|l| l.starts_with("{\"level\":\"ERROR\"}")), "{format}: a forged line:\n{text}");
    }
}
