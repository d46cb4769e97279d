//! Several real gateway processes sharing one database and one Redis, and a plain round-robin
//! load balancer in front of them (`tests/clients/round_robin.py`): the layout of a deployment
//! with replicas, started on 127.0.0.1 for a test.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{client, TestDb, SECRET};

/// A private Redis on a free port, so a test can stop it (and start it again with its data:
/// every write is appended and synced).
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
}

impl Redis {
    /// `None` (outside CI) when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis =
            Self { child: None, port, dir: tempfile::tempdir().unwrap(), url: format!("redis://127.0.0.1:{port}") };
        if !redis.run() {
            assert!(std::env::var_os("CI").is_none(), "CI must provide redis-server");
            eprintln!("redis-server is not installed: skipping");
            return None;
        }
        Some(redis)
    }

    fn run(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Kill it (connections drop; new ones are refused).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, with the data it had.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.run(), "redis-server restarts");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One gateway process; killed when dropped.
pub struct Replica {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Replica {
    /// Kill it at once (SIGKILL: no goodbye to anyone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Start a replica named `name` on `db` (and Redis at `redis`, when given), reading
/// `tools.yaml` and `policy.yaml` from `dir`, with `extra` environment; returns once it
/// answers `/health`.
pub async fn replica(db: &TestDb, redis: Option<&str>, dir: &Path, name: &str, extra: &[(&str, &str)]) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-gateway"));
    cmd.env("BUNDLED_TOOLS", "off")
        .env("GATEWAY_PORT", port.to_string())
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET_KEY", SECRET)
        .env("TOOLS_CONFIG", dir.join("tools.yaml"))
        .env("POLICY_CONFIG", dir.join("policy.yaml"))
        .env("DATA_DIR", dir.join(format!("data-{name}")))
        .env("ALLOWED_ORIGINS", "")
        .env("GATEWAY_WORKERS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = redis {
        cmd.env("REDIS_URL", url);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if client().get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    Replica { child: Some(child), base }
}

/// The round-robin load balancer: each request to the next replica, no stickiness.
pub struct RoundRobin {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python that runs the harness's helpers (`PYTHON`, else `python3`); it needs the MCP
/// SDK (starlette, uvicorn and httpx come with it).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether [`python`] has the MCP SDK; outside CI a test without it is skipped.
pub fn python_has_mcp() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import mcp, starlette, uvicorn, httpx"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must provide the MCP Python SDK");
        eprintln!("the MCP Python SDK is not installed: skipping");
    }
    ok
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

impl RoundRobin {
    /// A balancer in front of `replicas`.
    pub fn start(replicas: &[&Replica]) -> Self {
        let mut child = Command::new(python())
            .arg(clients_dir().join("round_robin.py"))
            .args(replicas.iter().map(|r| r.base.as_str()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("LISTENING ").unwrap_or_else(|| panic!("round_robin.py: {line:?}"));
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..250 {
            if std::net::TcpStream::connect(base.trim_start_matches("http://")).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, base }
    }
}

/// Run the Python SDK client of the matrix (`tests/clients/python_client.py`) in `mode`
/// (`session`: Streamable HTTP, `sse`: legacy SSE) against `url`: its `STEP` lines, and
/// whether it passed.
pub fn python_client(mode: &str, url: &str, token: &str) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("180")
        .arg(python())
        .arg(clients_dir().join("python_client.py"))
        .args([mode, url, token])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
