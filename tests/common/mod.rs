//! Test harness: real gateways, real MCP backends and real databases, all on 127.0.0.1:0.
//!
//! ```ignore
//! let db = TestDb::sqlite().await;
//! let backend = TestBackend::start(Mode::Echo).await;
//! let gw = TestGateway::builder(&db).tool("echo", &backend.url).start().await;
//! let (status, body) = gw.invoke(&gw.token("alice", &["developer"]), "echo", json!({"x": 1})).await;
//! ```
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod backend;
pub mod mcp;
pub mod replicas;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mcp_gateway::app::Gateway;
use mcp_gateway::auth::Claims;
use mcp_gateway::config::Settings;
use mcp_gateway::db::audit::{query, AuditFilter, AuditRow};
use mcp_gateway::db::Db;
use serde_json::Value;

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";

/// One test body, run against SQLite and against PostgreSQL: two tests, `NAME::sqlite` and
/// `NAME::postgres`, each calling `body(kind)` with a fresh database of its kind.
macro_rules! on_both_databases {
    ($name:ident => $body:ident) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$body($crate::common::DbKind::Sqlite).await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::$body($crate::common::DbKind::Postgres).await;
            }
        }
    };
}
pub(crate) use on_both_databases;

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// A fresh database for one test: a temp SQLite file, or a new PostgreSQL database.
pub struct TestDb {
    pub url: String,
    pub kind: DbKind,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        Self { url, kind: DbKind::Sqlite, dir, pg: None }
    }

    /// A fresh PostgreSQL database, or `None` (skip) when `TEST_DATABASE_URL` is unset.
    /// Under CI a missing `TEST_DATABASE_URL` fails the test instead of skipping it.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set TEST_DATABASE_URL: PostgreSQL tests may not be skipped"
            );
            eprintln!("TEST_DATABASE_URL is not set: skipping the PostgreSQL variant");
            return None;
        };
        let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect to TEST_DATABASE_URL");
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let (base, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL has a database path");
        let url = format!("{base}/{name}");
        Some(Self { url, kind: DbKind::Postgres, dir: tempfile::tempdir().unwrap(), pg: Some((admin, name)) })
    }

    pub async fn of(kind: DbKind) -> Option<Self> {
        match kind {
            DbKind::Sqlite => Some(Self::sqlite().await),
            DbKind::Postgres => Self::postgres().await,
        }
    }

    /// Every audit row, newest first, read from the real table.
    pub async fn audit_rows(&self) -> Vec<AuditRow> {
        let db = Db::connect(&self.url, 1).unwrap();
        query(&db, &AuditFilter { limit: 100_000, ..Default::default() }).await.unwrap()
    }

    /// Wait (up to 10 s) until the table holds at least `n` rows.
    pub async fn wait_for_rows(&self, n: usize) -> Vec<AuditRow> {
        for _ in 0..200 {
            let rows = self.audit_rows().await;
            if rows.len() >= n {
                return rows;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        self.audit_rows().await
    }

    pub async fn drop_db(mut self) {
        if let Some((admin, name)) = self.pg.take() {
            drop_database(&admin, &name).await;
        }
    }
}

async fn drop_database(admin: &str, name: &str) {
    let mut conn = AsyncPgConnection::establish(admin).await.unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
}

/// A PostgreSQL test database is dropped even when its test fails (panics) before `drop_db`:
/// from a thread of its own, since the test's event loop may be the one unwinding.
impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else { return };
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(drop_database(&admin, &name));
        })
        .join();
        if dropped.is_err() {
            eprintln!("a test database could not be dropped");
        }
    }
}

const TEST_POLICY: &str = "
default_action: deny
roles:
  admin: { allowed_tools: ['*'] }
  developer: { allowed_tools: ['*'], denied_tools: [admin_only] }
  guest: { allowed_tools: [echo] }
workspaces:
  open: {}
  locked: { denied_tools: [echo] }
  audited: {}
";

/// Builds a gateway over a test database with the tools a test needs.
pub struct GatewayBuilder<'a> {
    db: &'a TestDb,
    tools: String,
    servers: String,
    policy_base: Option<String>,
    policy_extra: String,
    vars: HashMap<String, String>,
    port: u16,
}

impl GatewayBuilder<'_> {
    /// Listen on `port` (default: any free one), e.g. to set `PUBLIC_URL` before starting.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Register tool `name` at `url`; `extra` is more YAML for the entry (e.g. `timeout_seconds: 1`).
    pub fn tool_with(mut self, name: &str, url: &str, extra: &str) -> Self {
        self.tools.push_str(&format!("  - name: {name}\n    backend_url: {url}\n"));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            self.tools.push_str(&format!("    {}\n", line.trim()));
        }
        self
    }

    pub fn tool(self, name: &str, url: &str) -> Self {
        self.tool_with(name, url, "")
    }

    /// `servers:` entries (YAML list items, unindented) for `tools.yaml`.
    pub fn servers(mut self, yaml: &str) -> Self {
        self.servers.push_str(yaml);
        self
    }

    /// Replace the test policy's roles and workspaces with `yaml`.
    pub fn policy_base(mut self, yaml: &str) -> Self {
        self.policy_base = Some(yaml.to_owned());
        self
    }

    /// More top-level `policy.yaml` (e.g. a `rate_limits:` section).
    pub fn policy(mut self, yaml: &str) -> Self {
        self.policy_extra.push_str(yaml);
        self
    }

    pub fn var(mut self, key: &str, value: &str) -> Self {
        self.vars.insert(key.into(), value.into());
        self
    }

    pub fn settings(&self, dir: &std::path::Path) -> Settings {
        let mut tools = if self.tools.is_empty() { "tools: []\n".into() } else { format!("tools:\n{}", self.tools) };
        if !self.servers.is_empty() {
            tools.push_str(&format!("servers:\n{}", self.servers));
        }
        std::fs::write(dir.join("tools.yaml"), tools).unwrap();
        let base = self.policy_base.as_deref().unwrap_or(TEST_POLICY);
        std::fs::write(dir.join("policy.yaml"), format!("{base}\n{}", self.policy_extra)).unwrap();
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", self.db.url.as_str()),
            ("JWT_SECRET_KEY", SECRET),
            ("GATEWAY_WORKERS", "1"),
            ("AUDIT_FLUSH_INTERVAL_MS", "20"),
            ("DATABASE_POOL_SIZE", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert("TOOLS_CONFIG".into(), dir.join("tools.yaml").display().to_string());
        vars.insert("POLICY_CONFIG".into(), dir.join("policy.yaml").display().to_string());
        vars.insert("DATA_DIR".into(), dir.join("data").display().to_string());
        vars.extend(self.vars.clone());
        Settings::from_map(&vars).unwrap()
    }

    pub async fn start(self) -> TestGateway {
        mcp_gateway::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let settings = Arc::new(self.settings(dir.path()));
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let gateway = mcp_gateway::app::start(settings.clone(), listener, false).await.expect("gateway starts");
        let base = format!("http://{}", gateway.addr());
        TestGateway { base, gateway, settings, _dir: dir }
    }
}

/// A gateway running in this test.
pub struct TestGateway {
    pub base: String,
    pub gateway: Gateway,
    pub settings: Arc<Settings>,
    _dir: tempfile::TempDir,
}

/// A test HTTP client that never times out first.
/// Run one SQL statement against `url` (PostgreSQL or SQLite): tampering, outages, old rows.
pub async fn sql(url: &str, statement: &str) {
    use diesel_async::RunQueryDsl;
    match Db::connect(url, 1).unwrap() {
        Db::Pg(pool) => {
            let mut c = pool.get().await.unwrap();
            diesel::sql_query(statement).execute(&mut *c).await.unwrap();
        }
        Db::Sqlite(pool) => {
            let mut c = pool.get().await.unwrap();
            diesel::sql_query(statement).execute(&mut *c).await.unwrap();
        }
    };
}

pub fn client() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(60)).finish()
}

/// A port free on 127.0.0.1 now (for a server a test starts).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where `.ci/run` installs the npm packages the upstream and identity suites run
/// (`MCP_UPSTREAMS_NPM_DIR`).
pub fn npm_dir() -> std::path::PathBuf {
    std::env::var_os("MCP_UPSTREAMS_NPM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mcp-gateway-clients").join("upstreams"))
}

pub fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn claims(sub: &str, roles: &[&str], workspace: Option<&str>) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: sub.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        workspace: workspace.map(String::from),
        exp: now + 300,
        iat: Some(now),
        nbf: None,
        iss: None,
        aud: None,
        scope: None,
    }
}

impl TestGateway {
    pub fn builder(db: &TestDb) -> GatewayBuilder<'_> {
        GatewayBuilder {
            db,
            tools: String::new(),
            servers: String::new(),
            policy_base: None,
            policy_extra: String::new(),
            vars: HashMap::new(),
            port: 0,
        }
    }

    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        sign(&claims(sub, roles, None), SECRET)
    }

    pub fn token_in(&self, sub: &str, roles: &[&str], workspace: &str) -> String {
        sign(&claims(sub, roles, Some(workspace)), SECRET)
    }

    /// POST a raw body to `/mcp/invoke`; returns status, headers and JSON body.
    pub async fn post_invoke(&self, token: Option<&str>, body: Vec<u8>) -> (u16, awc::http::header::HeaderMap, Value) {
        let mut req = client().post(format!("{}/mcp/invoke", self.base)).content_type("application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send_body(body).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.body().limit(64 << 20).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Invoke `tool` with `arguments`; returns the status and the JSON-RPC body.
    pub async fn invoke(&self, token: &str, tool: &str, arguments: Value) -> (u16, Value) {
        let body = serde_json::json!({ "tool_name": tool, "arguments": arguments });
        let (status, _, json) = self.post_invoke(Some(token), body.to_string().into_bytes()).await;
        (status, json)
    }

    /// GET `path` with an optional token; returns status and JSON body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = client().get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.body().limit(64 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// The Prometheus text of `/metrics` (as an operator).
    /// An MCP session (2025-06-18) opened with `initialize` on `/mcp`; its `Mcp-Session-Id`.
    pub async fn mcp_session(&self, token: &str) -> String {
        mcp::session(self, token).await
    }

    pub async fn metrics(&self) -> String {
        let mut resp = client()
            .get(format!("{}/metrics", self.base))
            .bearer_auth(self.token("ops", &["operator"]))
            .send()
            .await
            .unwrap();
        String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap()
    }

    /// Graceful stop: in-flight requests finish and the audit writer flushes.
    pub async fn stop(self) {
        self.gateway.stop().await;
    }
}

/// An audit row numbered `i` whose text fields are `text(0)`, `text(1)`, …: id, request id,
/// user, two roles, workspace, tool, decision, status, client ip, hash, message, arguments,
/// transport (not chained: the writer chains it, or the caller does).
pub fn audit_row(i: usize, text: &dyn Fn(usize) -> String) -> gateway_actors::AuditRecord {
    gateway_actors::AuditRecord {
        id: format!("{i:06}-{}", text(0)),
        created_at: chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap(),
        request_id: text(1),
        user_id: Some(text(2)),
        roles: vec![text(3), text(4)],
        workspace: Some(text(5)),
        tool_name: Some(text(6)),
        decision: text(7),
        status: text(8),
        http_status: 200,
        error_code: Some(-32000),
        duration_ms: 1.5,
        client_ip: Some(text(9)),
        arguments_sha256: Some(text(10)),
        error_message: Some(text(11)),
        arguments_logged: Some(text(12)),
        transport: text(13),
        kind: gateway_actors::model::TOOL_CALL_KIND.into(),
        chain_id: String::new(),
        seq: 0,
        prev_hash: String::new(),
        row_hash: String::new(),
    }
}
