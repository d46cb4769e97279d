//! `mcp-bench run` and `mcp-bench soak`: start the echo backend and a release gateway, drive
//! them, and report.

use crate::http;
use crate::load::{self, Mode, Outcome, Plan};
use crate::procfs;
use crate::report::{self, Report};
use anyhow::{bail, Context};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Secret shared by the gateway and the tokens the harness mints.
const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256";
/// The backend every phase calls, directly and through the gateway.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The harness's echo server: a constant reply, the strictest baseline.
    Echo,
    /// The calculator tool server (`exact_compute`, `1 + 2` exactly): a real tool.
    Calculator,
}

impl BackendKind {
    fn tool(self) -> &'static str {
        match self {
            BackendKind::Echo => "echo",
            BackendKind::Calculator => "exact_compute",
        }
    }
    fn arguments(self) -> &'static str {
        match self {
            BackendKind::Echo => r#"{"text":"hello"}"#,
            BackendKind::Calculator => r#"{"operation":"arithmetic","params":{"operator":"+","x":1,"y":2}}"#,
        }
    }
    /// The REST body through the gateway.
    pub(crate) fn invoke_body(self) -> String {
        format!(r#"{{"tool_name":"{}","arguments":{}}}"#, self.tool(), self.arguments())
    }
    /// The JSON-RPC body straight to the backend.
    pub(crate) fn direct_body(self) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}","arguments":{}}}}}"#,
            self.tool(),
            self.arguments()
        )
    }
}

/// Options shared by `run` and `soak`.
#[derive(clap::Args, Clone)]
pub struct Setup {
    /// Audit database: a PostgreSQL server URL (a fresh database is created on it and dropped
    /// afterwards) or `sqlite` for a temporary embedded file.
    #[arg(long, env = "BENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub(crate) database_url: String,
    /// The gateway binary (default: `mcp-gateway` next to this binary, i.e. the same build).
    #[arg(long)]
    pub(crate) gateway: Option<PathBuf>,
    /// Pin the gateway to CPU 1 and the load generator and backend to CPU 0 (on, off, auto =
    /// on when there are at least 2 CPUs). Pinned, the gateway has a core of its own as it
    /// would in production, and the direct baseline gets the same core the backend gets.
    #[arg(long, default_value = "auto")]
    pub(crate) pin: String,
    /// Redis URL for shared rate limits (default: in-process limits).
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// The backend behind the gateway (and called directly for the baseline).
    #[arg(long, value_enum, default_value = "echo")]
    pub(crate) backend: BackendKind,
}

/// `mcp-bench run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    setup: Setup,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds before each phase's window.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Connections of the closed-loop phases.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Calls per second of the fixed-rate phases.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Where the Markdown table is written (a JSON twin goes next to it).
    #[arg(long, default_value = "target/mcp-bench/report.md")]
    out: PathBuf,
}

/// `mcp-bench soak`.
#[derive(clap::Args)]
pub struct SoakArgs {
    #[command(flatten)]
    setup: Setup,
    /// Minutes to hold the rate.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Calls per second; default: half the capacity measured in a 5 s closed-loop probe.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    interval: u64,
}

/// Which CPUs each process of a run is pinned to (`taskset` lists such as `0` or `8-15`).
#[derive(Clone, Debug)]
pub struct Cpus {
    /// Whether to pin at all.
    pub pin: bool,
    /// The backend's CPUs.
    pub backend: String,
    /// The gateway's CPUs.
    pub gateway: String,
    /// Local PostgreSQL's CPUs (its processes are moved there for the run).
    pub postgres: String,
}

impl Cpus {
    /// `run`'s layout: gateway on CPU 1; load generator, backend and PostgreSQL on CPU 0.
    fn two(setup: &Setup) -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Ok(Self::on_two(setup.pin == "on" || (setup.pin != "off" && cpus >= 2)))
    }

    /// The two-CPU layout, pinned or not.
    pub(crate) fn on_two(pin: bool) -> Self {
        Self { pin, backend: "0".into(), gateway: "1".into(), postgres: "0".into() }
    }
}

/// Everything one benchmark run started; dropping it stops the processes and drops the database.
pub struct Bench {
    pub(crate) work: PathBuf,
    pub(crate) backend_process: Child,
    pub(crate) backend_addr: String,
    pub(crate) backend: BackendKind,
    pub(crate) gateway: Child,
    pub(crate) gateway_addr: String,
    pub(crate) admin_db: Option<(String, String)>,
    pub(crate) audit_db_url: String,
    pub(crate) pinned: bool,
    pub(crate) idle_rss_mib: f64,
    pub(crate) tokens: Tokens,
    /// PostgreSQL processes moved to CPU 0 for the run (put back when dropped).
    _moved_postgres: MovedPostgres,
}

pub(crate) struct Tokens {
    pub(crate) developer: String,
    pub(crate) guest: String,
    pub(crate) limited: String,
    pub(crate) forged: String,
}

/// Local `postgres` processes moved to the run's CPUs, with the CPU list each had before.
struct MovedPostgres(Vec<(String, String)>);

impl Drop for MovedPostgres {
    fn drop(&mut self) {
        for (pid, list) in &self.0 {
            let _ = Command::new("taskset").args(["-a", "-c", "-p", list, pid]).stdout(Stdio::null()).status();
        }
    }
}

/// Moves every local `postgres` process (and, as new backends fork from the postmaster, every
/// later one) to `cpus`, so the gateway's cores are its own.
fn move_postgres_to(cpus: &str) -> MovedPostgres {
    let Ok(out) = Command::new("pgrep").args(["-x", "postgres"]).output() else { return MovedPostgres(Vec::new()) };
    MovedPostgres(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|pid| {
                let before = Command::new("taskset").args(["-c", "-p", pid]).output().ok()?;
                let list = String::from_utf8_lossy(&before.stdout).rsplit(':').next()?.trim().to_owned();
                let moved =
                    Command::new("taskset").args(["-a", "-c", "-p", cpus, pid]).stdout(Stdio::null()).status().ok()?;
                moved.success().then(|| (pid.to_owned(), list))
            })
            .collect(),
    )
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.gateway.kill();
        let _ = self.gateway.wait();
        let _ = self.backend_process.kill();
        let _ = self.backend_process.wait();
        if let Some((server, name)) = &self.admin_db {
            let _ = psql(server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql").args([url, "-Atqc", sql]).output().context("psql is needed for PostgreSQL runs")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn pinned(cpu: &str, program: &Path, pin: bool) -> Command {
    if pin {
        let mut command = Command::new("taskset");
        command.args(["-c", cpu]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn token(gateway: &Path, secret: &str, sub: &str, roles: &str) -> anyhow::Result<String> {
    let out = Command::new(gateway)
        .args(["token", "--sub", sub, "--roles", roles, "--ttl", "86400"])
        .env("JWT_SECRET_KEY", secret)
        .env("BUNDLED_TOOLS", "off")
        .output()?;
    if !out.status.success() {
        bail!("mcp-gateway token: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn wait_healthy(addr: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(response) = http::get(addr, "/health").await {
            if response.status() == 200 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{addr} never became healthy")
}

impl Bench {
    /// Start the backend and the gateway (with `GATEWAY_WORKERS=workers` when given) on
    /// `cpus`, with a fresh audit database.
    pub async fn start(setup: &Setup, cpus: &Cpus, workers: Option<usize>) -> anyhow::Result<Self> {
        Self::start_with_servers(setup, cpus, workers, "").await
    }

    /// [`Bench::start`] with `servers` (a `servers:` section) appended to `tools.yaml`.
    pub async fn start_with_servers(
        setup: &Setup,
        cpus: &Cpus,
        workers: Option<usize>,
        servers: &str,
    ) -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        let gateway_bin = setup.gateway.clone().unwrap_or_else(|| me.with_file_name("mcp-gateway"));
        if !gateway_bin.exists() {
            bail!("no gateway binary at {} (cargo build --release -p mcp-gateway)", gateway_bin.display());
        }
        let pin = cpus.pin;
        if pin {
            let status = Command::new("taskset")
                .args(["-a", "-pc", "0", &std::process::id().to_string()])
                .stdout(Stdio::null())
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                bail!("taskset (util-linux) is needed to pin; pass --pin off to run unpinned");
            }
        }
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let work = std::env::temp_dir().join(format!("mcp-bench-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&work)?;

        let (backend_process, backend_addr) = match setup.backend {
            BackendKind::Echo => {
                let mut echo = pinned(&cpus.backend, &me, pin)
                    .args(["echo", "--bind", "127.0.0.1:0"])
                    .stdout(Stdio::piped())
                    .spawn()?;
                let mut line = String::new();
                std::io::BufReader::new(echo.stdout.take().context("echo stdout")?).read_line(&mut line)?;
                (echo, line.trim().to_owned())
            }
            BackendKind::Calculator => {
                let calculator = me.with_file_name("calculator");
                if !calculator.exists() {
                    bail!("no calculator at {} (cargo build --release -p calculator)", calculator.display());
                }
                let addr = format!("127.0.0.1:{}", free_port()?);
                let child = pinned(&cpus.backend, &calculator, pin)
                    .env("CALCULATOR_BIND", &addr)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?;
                (child, addr)
            }
        };

        std::fs::write(
            work.join("tools.yaml"),
            format!(
                "tools:\n  - name: {}\n    description: The benchmark's backend.\n    backend_url: http://{backend_addr}/mcp\n    risk_level: low\n{servers}",
                setup.backend.tool()
            ),
        )?;
        // developer: the full pipeline with limits too high to refuse; guest: no tools (403);
        // limited: one call a minute (429 after the first).
        std::fs::write(
            work.join("policy.yaml"),
            concat!(
                "default_action: deny\n",
                "roles:\n",
                "  developer: {allowed_tools: [\"*\"]}\n",
                "  limited: {allowed_tools: [\"*\"]}\n",
                "  guest: {allowed_tools: []}\n",
                "rate_limits:\n",
                "  per_user: {requests_per_minute: 4000000000, burst: 4000000000}\n",
                "  per_user_tool: {requests_per_minute: 4000000000, burst: 4000000000}\n",
                "  roles:\n",
                "    limited: {requests_per_minute: 1, burst: 1}\n",
            ),
        )?;

        // Local PostgreSQL shares the machine: with pinning it joins the load generator on CPU 0
        // (restored afterwards), or its inserts would run on the gateway's core.
        let local_db = setup.database_url.contains("127.0.0.1") || setup.database_url.contains("localhost");
        let moved_postgres = if pin && local_db { move_postgres_to(&cpus.postgres) } else { MovedPostgres(Vec::new()) };
        let (audit_db_url, admin_db) = if setup.database_url == "sqlite" {
            (format!("sqlite://{}", work.join("audit.db").display()), None)
        } else {
            let name = format!("mcp_bench_{}_{run}", std::process::id());
            psql(&setup.database_url, &format!("CREATE DATABASE {name}"))?;
            let base = setup.database_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&setup.database_url);
            (format!("{base}/{name}"), Some((setup.database_url.clone(), name)))
        };

        let port = free_port()?;
        let gateway_addr = format!("127.0.0.1:{port}");
        let mut command = pinned(&cpus.gateway, &gateway_bin, pin);
        command
            .env("GATEWAY_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("DATABASE_URL", &audit_db_url)
            .env("JWT_SECRET_KEY", SECRET)
            .env("DATA_DIR", work.join("data"))
            .env("TOOLS_CONFIG", work.join("tools.yaml"))
            .env("POLICY_CONFIG", work.join("policy.yaml"))
            .env("BUNDLED_TOOLS", "off")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("gateway.log"))?);
        if let Some(redis) = &setup.redis_url {
            command.env("REDIS_URL", redis);
        }
        if let Some(workers) = workers {
            command.env("GATEWAY_WORKERS", workers.to_string());
        }
        let gateway = command.spawn()?;
        let mut bench = Bench {
            tokens: Tokens {
                developer: token(&gateway_bin, SECRET, "bench", "developer")?,
                guest: token(&gateway_bin, SECRET, "bench-guest", "guest")?,
                limited: token(&gateway_bin, SECRET, "bench-limited", "limited")?,
                forged: token(&gateway_bin, "not-the-gateway-secret-but-long-enough", "bench", "developer")?,
            },
            work,
            backend_process,
            backend_addr,
            backend: setup.backend,
            gateway,
            gateway_addr,
            admin_db,
            audit_db_url,
            pinned: pin,
            idle_rss_mib: 0.0,
            _moved_postgres: moved_postgres,
        };
        wait_healthy(&bench.backend_addr).await?;
        if let Err(e) = wait_healthy(&bench.gateway_addr).await {
            let log = std::fs::read_to_string(bench.work.join("gateway.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            bail!("{e}; the gateway's log ends:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        bench.idle_rss_mib = procfs::status_mib(bench.gateway_pid(), "VmRSS")?;
        Ok(bench)
    }

    /// The gateway's pid (under taskset, taskset execs it, so the pid is the same).
    pub(crate) fn gateway_pid(&self) -> u32 {
        self.gateway.id()
    }

    pub(crate) fn invoke(&self, token: &str) -> Arc<Vec<u8>> {
        let auth = format!("Bearer {token}");
        Arc::new(http::post(
            &self.gateway_addr,
            "/mcp/invoke",
            &[("Authorization", &auth)],
            &self.backend.invoke_body(),
        ))
    }

    pub(crate) fn direct(&self) -> Arc<Vec<u8>> {
        let accept = [("Accept", "application/json, text/event-stream")];
        Arc::new(http::post(&self.backend_addr, "/mcp", &accept, &self.backend.direct_body()))
    }

    /// Tool calls the backend served so far (the echo backend counts them; others do not).
    async fn backend_tool_calls(&self) -> anyhow::Result<Option<u64>> {
        if self.backend != BackendKind::Echo {
            return Ok(None);
        }
        let stats: serde_json::Value = serde_json::from_slice(&http::get(&self.backend_addr, "/stats").await?.body)?;
        Ok(stats["tool_calls"].as_u64())
    }

    /// Audit rows per HTTP status, once the count has stopped moving.
    async fn audit_rows(&self) -> anyhow::Result<Option<Vec<(u16, u64)>>> {
        if self.admin_db.is_none() {
            return Ok(None);
        }
        let url = &self.audit_db_url;
        let mut last = String::new();
        for _ in 0..60 {
            let now =
                psql(url, "SELECT http_status || ':' || count(*) FROM audit_logs GROUP BY http_status ORDER BY 1")?;
            if now == last {
                break;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        Ok(Some(
            last.lines()
                .filter_map(|l| l.split_once(':'))
                .filter_map(|(s, n)| Some((s.parse().ok()?, n.parse().ok()?)))
                .collect(),
        ))
    }
}

fn plan(addr: &str, request: Arc<Vec<u8>>, mode: Mode, warmup: u64, duration: u64, pid: Option<u32>) -> Plan {
    Plan {
        addr: addr.to_owned(),
        request,
        mode,
        warmup: Duration::from_secs(warmup),
        duration: Duration::from_secs(duration),
        watch_pid: pid,
    }
}

fn progress(label: &str, outcome: &Outcome) {
    eprintln!(
        "  {label:<34} {:>9.0} calls/s  p50 {:.3} ms  p99 {:.3} ms  statuses {:?}  errors {}",
        outcome.rate(),
        outcome.quantile_ms(0.5),
        outcome.quantile_ms(0.99),
        outcome.statuses,
        outcome.errors
    );
}

/// Runs the whole benchmark and writes the report.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let bench = Bench::start(&args.setup, &Cpus::two(&args.setup)?, None).await?;
    let pid = bench.gateway_pid();
    let (w, d, c) = (args.warmup, args.duration, args.connections);
    eprintln!(
        "mcp-bench: backend {}, gateway {} (pid {pid}, audit to {}), {}",
        bench.backend_addr,
        bench.gateway_addr,
        bench.audit_db_url.split(':').next().unwrap_or(""),
        if bench.pinned {
            "gateway pinned to CPU 1; load generator, backend and local PostgreSQL to CPU 0"
        } else {
            "unpinned"
        }
    );
    let phase = |label: &'static str| {
        eprintln!("- {label}");
        label
    };

    phase("direct to the backend, closed loop");
    let direct =
        load::drive(plan(&bench.backend_addr, bench.direct(), Mode::Closed { connections: c }, w, d, None)).await?;
    progress("direct", &direct);

    phase("through the gateway, full pipeline, closed loop");
    let calls_before = bench.backend_tool_calls().await?;
    let gateway = load::drive(plan(
        &bench.gateway_addr,
        bench.invoke(&bench.tokens.developer),
        Mode::Closed { connections: c },
        w,
        d,
        Some(pid),
    ))
    .await?;
    let backend_per_call = match (calls_before, bench.backend_tool_calls().await?) {
        (Some(before), Some(after)) => Some((after - before) as f64 / gateway.completed_total.max(1) as f64),
        _ => None,
    };
    progress("gateway", &gateway);

    let rate = Mode::Rate { rate: args.rate, connections: 16 };
    phase("direct at a fixed rate");
    let direct_rate = load::drive(plan(&bench.backend_addr, bench.direct(), rate, w, d, None)).await?;
    progress("direct fixed rate", &direct_rate);
    phase("gateway at a fixed rate");
    let gateway_rate =
        load::drive(plan(&bench.gateway_addr, bench.invoke(&bench.tokens.developer), rate, w, d, Some(pid))).await?;
    progress("gateway fixed rate", &gateway_rate);

    let mut rejections = Vec::new();
    for (label, token) in [
        ("401 forged token", &bench.tokens.forged),
        ("403 denied by policy", &bench.tokens.guest),
        ("429 rate limited", &bench.tokens.limited),
    ] {
        phase(label);
        let outcome = load::drive(plan(
            &bench.gateway_addr,
            bench.invoke(token),
            Mode::Closed { connections: c },
            w,
            d,
            Some(pid),
        ))
        .await?;
        progress(label, &outcome);
        rejections.push((label, outcome));
    }
    let rss_after = procfs::status_mib(pid, "VmRSS")?;
    let rss_peak = procfs::status_mib(pid, "VmHWM")?;
    let audit = bench.audit_rows().await?;

    let report = Report {
        pinned: bench.pinned,
        backend: match bench.backend {
            BackendKind::Echo => "echo MCP backend (constant reply)",
            BackendKind::Calculator => "calculator tool server (exact_compute, 1 + 2)",
        },
        database: bench.audit_db_url.split(':').next().unwrap_or("").to_owned(),
        connections: c,
        rate: args.rate,
        duration: d,
        direct,
        gateway,
        direct_rate,
        gateway_rate,
        rejections,
        backend_per_call,
        idle_rss_mib: bench.idle_rss_mib,
        rss_after_mib: rss_after,
        rss_peak_mib: rss_peak,
        audit,
    };
    let markdown = report::markdown(&report);
    println!("{markdown}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &markdown)?;
    std::fs::write(args.out.with_extension("json"), serde_json::to_string_pretty(&report::json(&report))?)?;
    eprintln!("written to {} (and .json)", args.out.display());
    Ok(())
}

/// `mcp-bench up`: the benchmark's set-up, held until Ctrl-C, for profiling by hand.
pub async fn up(setup: Setup) -> anyhow::Result<()> {
    let bench = Bench::start(&setup, &Cpus::two(&setup)?, None).await?;
    println!("backend       http://{}/mcp", bench.backend_addr);
    println!("gateway       http://{}/mcp/invoke  (pid {})", bench.gateway_addr, bench.gateway_pid());
    println!("body          {}", bench.backend.invoke_body());
    println!("token         {}", bench.tokens.developer);
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Holds a fixed rate and samples the gateway's RSS and open files.
pub async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    let bench = Bench::start(&args.setup, &Cpus::two(&args.setup)?, None).await?;
    let pid = bench.gateway_pid();
    let request = bench.invoke(&bench.tokens.developer);
    let rate = match args.rate {
        Some(rate) => rate,
        None => {
            let probe =
                load::drive(plan(&bench.gateway_addr, request.clone(), Mode::Closed { connections: 32 }, 1, 5, None))
                    .await?;
            (probe.rate() / 2.0) as u64
        }
    };
    let sample = |label: &str| -> anyhow::Result<(f64, usize)> {
        let (rss, fds) = (procfs::status_mib(pid, "VmRSS")?, procfs::open_files(pid)?);
        println!("{label:>8}  RSS {rss:>6.1} MiB  open files {fds:>4}");
        Ok((rss, fds))
    };
    println!("soak: {rate} calls/s through the gateway for {} min", args.minutes);
    let start = sample("start")?;
    let rounds = (args.minutes * 60).div_ceil(args.interval.max(1));
    let mut total = 0;
    for round in 1..=rounds {
        let outcome = load::drive(plan(
            &bench.gateway_addr,
            request.clone(),
            Mode::Rate { rate, connections: 16 },
            0,
            args.interval,
            None,
        ))
        .await?;
        total += outcome.completed;
        let (rss, fds) = (procfs::status_mib(pid, "VmRSS")?, procfs::open_files(pid)?);
        println!(
            "{:>6} s  RSS {rss:>6.1} MiB  open files {fds:>4}  {:>7.0} calls/s  p99 {:.3} ms  non-200 {}  errors {}",
            round * args.interval,
            outcome.rate(),
            outcome.quantile_ms(0.99),
            outcome.completed - outcome.count(200),
            outcome.errors
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = sample("end")?;
    println!("soak: {total} calls; RSS {:.1} → {:.1} MiB, open files {} → {}", start.0, end.0, start.1, end.1);
    Ok(())
}
