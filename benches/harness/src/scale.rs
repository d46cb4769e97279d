//! `mcp-bench scale`: does the gateway use its cores? For each `GATEWAY_WORKERS` value it starts
//! a fresh gateway (and audit database), drives it from several load-generator processes, each
//! pinned to a core of its own, and reports calls/s, latency, the gateway's CPU per call, its
//! RSS at the end, and the audit rows stored against the calls answered — beside the backend
//! called directly by the same generators in the same run.
//!
//! CPU layout on a machine with C cores and G generators: generators on CPUs 0..G, the backend
//! and local PostgreSQL on the next third of the rest, the gateway on the remaining cores (16
//! cores, 4 generators: backend and PostgreSQL on 4–7, gateway on 8–15). With 2 cores it is
//! `run`'s layout: gateway on CPU 1, everything else on CPU 0.

use crate::load::Outcome;
use crate::procfs;
use crate::run::{Bench, Cpus, Setup};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `mcp-bench scale`.
#[derive(clap::Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    setup: Setup,
    /// `GATEWAY_WORKERS` values to sweep (default: 1, 2, 4, … up to the gateway's cores).
    #[arg(long, value_delimiter = ',')]
    workers: Vec<usize>,
    /// Load-generator processes, each on a core of its own (default: a quarter of the cores).
    #[arg(long)]
    generators: Option<usize>,
    /// Keep-alive connections per generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds before each step's window.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Where the Markdown table is written.
    #[arg(long, default_value = "target/mcp-bench/scale.md")]
    out: PathBuf,
}

/// Where each process runs.
struct Layout {
    cpus: Cpus,
    /// One CPU list per generator.
    generators: Vec<String>,
    /// How many cores the gateway has.
    gateway_cores: usize,
    /// Cores of the machine.
    cores: usize,
}

fn layout(setup: &Setup, generators: Option<usize>) -> Layout {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = setup.pin != "off" && cores >= 2;
    if !pin || cores < 4 {
        let cpus = Cpus::on_two(pin);
        let gateway_cores = if pin { 1 } else { cores };
        return Layout { cpus, generators: vec!["0".into(); generators.unwrap_or(1).max(1)], gateway_cores, cores };
    }
    let g = generators.unwrap_or(cores / 4).clamp(1, cores - 2);
    let rest = cores - g;
    let b = (rest / 3).max(1);
    let list = |from: usize, to: usize| if to - from == 1 { from.to_string() } else { format!("{from}-{}", to - 1) };
    Layout {
        cpus: Cpus { pin, backend: list(g, g + b), gateway: list(g + b, cores), postgres: list(g, g + b) },
        generators: (0..g).map(|c| c.to_string()).collect(),
        gateway_cores: cores - g - b,
        cores,
    }
}

/// One sweep step, measured.
struct Step {
    label: String,
    workers: Option<usize>,
    outcome: Outcome,
    cpu_us_per_call: Option<f64>,
    rss_mib: Option<f64>,
    rows: Option<(u64, u64, usize)>,
}

/// Run every generator against `url` at once and merge what they measured; the gateway's CPU
/// time (`pid`) is read at the window's edges.
async fn drive(
    args: &ScaleArgs,
    layout: &Layout,
    url: &str,
    body: &str,
    headers: &[String],
    pid: Option<u32>,
    work: &Path,
) -> anyhow::Result<(Outcome, f64)> {
    let me = std::env::current_exe()?;
    let mut children: Vec<(Child, PathBuf)> = Vec::new();
    for (i, cpu) in layout.generators.iter().enumerate() {
        let out = work.join(format!("generator-{i}.json"));
        let mut command = if layout.cpus.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(&me);
            c
        } else {
            Command::new(&me)
        };
        command
            .args(["load", "--url", url, "--body", body])
            .args(["--connections", &args.connections.to_string()])
            .args(["--duration", &args.duration.to_string(), "--warmup", &args.warmup.to_string()])
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null());
        for h in headers {
            command.args(["--header", h]);
        }
        children.push((command.spawn()?, out));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup) + Duration::from_millis(60)).await;
    let before = pid.map(procfs::cpu_seconds).transpose()?;
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let after = pid.map(procfs::cpu_seconds).transpose()?;
    let mut parts = Vec::new();
    for (mut child, out) in children {
        if !child.wait()?.success() {
            bail!("a load generator failed");
        }
        parts.push(Outcome::load(&out).with_context(|| format!("reading {}", out.display()))?);
    }
    let cpu = match (before, after) {
        (Some(b), Some(a)) => a - b,
        _ => 0.0,
    };
    Ok((Outcome::merge(parts), cpu))
}

/// Stop the gateway gracefully (its audit rows flushed), then count and verify its rows with
/// its own `audit verify`: (rows stored, calls answered, problems).
fn stop_and_verify(bench: &mut Bench, setup: &Setup, answered: u64) -> anyhow::Result<(u64, u64, usize)> {
    let pid = bench.gateway_pid().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    for _ in 0..600 {
        if bench.gateway.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let me = std::env::current_exe()?;
    let gateway_bin = setup.gateway.clone().unwrap_or_else(|| me.with_file_name("mcp-gateway"));
    let out = Command::new(gateway_bin)
        .args(["audit", "verify"])
        .env("DATABASE_URL", &bench.audit_db_url)
        .env("DATA_DIR", bench.work.join("data"))
        .env("BUNDLED_TOOLS", "off")
        .env("RUST_LOG", "error")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "N rows in M chains checked, P problem(s)"
    let last = text.lines().last().unwrap_or("");
    let rows = last.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let problems =
        last.rsplit(", ").next().and_then(|p| p.split_whitespace().next()?.parse().ok()).unwrap_or(usize::MAX);
    Ok((rows, answered, problems))
}

/// Runs the sweep and writes the table.
pub async fn scale(args: ScaleArgs) -> anyhow::Result<()> {
    let layout = layout(&args.setup, args.generators);
    let workers: Vec<usize> = if args.workers.is_empty() {
        std::iter::successors(Some(1usize), |w| Some(w * 2)).take_while(|w| *w <= layout.gateway_cores.max(1)).collect()
    } else {
        args.workers.clone()
    };
    eprintln!(
        "mcp-bench scale: {} generator(s) on CPU {:?}, backend and PostgreSQL on {}, gateway on {} ({}), workers {workers:?}",
        layout.generators.len(),
        layout.generators,
        layout.cpus.backend,
        layout.cpus.gateway,
        if layout.cpus.pin { "pinned" } else { "unpinned" },
    );
    let mut steps = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        let mut bench = Bench::start(&args.setup, &layout.cpus, Some(*w)).await?;
        if i == 0 {
            let url = format!("http://{}/mcp", bench.backend_addr);
            let accept = "Accept: application/json, text/event-stream".to_owned();
            let body = bench.backend.direct_body();
            let (outcome, _) = drive(&args, &layout, &url, &body, &[accept], None, &bench.work).await?;
            report_line("direct to the backend", &outcome, None);
            steps.push(Step {
                label: "direct".into(),
                workers: None,
                outcome,
                cpu_us_per_call: None,
                rss_mib: None,
                rows: None,
            });
        }
        let url = format!("http://{}/mcp/invoke", bench.gateway_addr);
        let auth = format!("Authorization: Bearer {}", bench.tokens.developer);
        let body = bench.backend.invoke_body();
        let pid = bench.gateway_pid();
        let (outcome, cpu) = drive(&args, &layout, &url, &body, &[auth], Some(pid), &bench.work).await?;
        let rss = procfs::status_mib(pid, "VmRSS").ok();
        let cpu_us = cpu * 1e6 / outcome.completed.max(1) as f64;
        report_line(&format!("gateway, {w} worker(s)"), &outcome, Some(cpu_us));
        let answered: u64 = outcome.statuses_total.values().sum();
        let rows = stop_and_verify(&mut bench, &args.setup, answered)?;
        eprintln!(
            "    audit rows stored {} of {} calls answered, {} problem(s) in audit verify",
            rows.0, rows.1, rows.2
        );
        steps.push(Step {
            label: "gateway".into(),
            workers: Some(*w),
            outcome,
            cpu_us_per_call: Some(cpu_us),
            rss_mib: rss,
            rows: Some(rows),
        });
    }
    let table = table(&steps, &layout, &args);
    println!("{table}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &table)?;
    Ok(())
}

fn report_line(label: &str, o: &Outcome, cpu_us: Option<f64>) {
    eprintln!(
        "  {label:<26} {:>9.0} calls/s  p99 {:.3} ms  p99.9 {:.3} ms  statuses {:?}  errors {}{}",
        o.rate(),
        o.quantile_ms(0.99),
        o.quantile_ms(0.999),
        o.statuses,
        o.errors,
        cpu_us.map(|c| format!("  gateway CPU {c:.1} µs/call")).unwrap_or_default()
    );
}

fn table(steps: &[Step], layout: &Layout, args: &ScaleArgs) -> String {
    let cores = layout.cores;
    let one = steps.iter().find(|s| s.workers == Some(1)).map(|s| s.outcome.rate());
    let mut t = format!(
        "## Scaling (mcp-bench scale)\n\n{cores} cores; {} generator(s) × {} connections on CPU {:?}; backend and local \
         PostgreSQL on {}; gateway on {}; {} s measured after {} s warm-up per step; audit to {}.\n\n\
         | | calls/s | × 1 worker | p99 | p99.9 | gateway CPU/call | RSS at end | audit rows stored / calls answered |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        layout.generators.len(),
        args.connections,
        layout.generators,
        layout.cpus.backend,
        layout.cpus.gateway,
        args.duration,
        args.warmup,
        if args.setup.database_url == "sqlite" { "SQLite" } else { "PostgreSQL" },
    );
    for s in steps {
        let o = &s.outcome;
        let name = match s.workers {
            Some(w) => format!("gateway, `GATEWAY_WORKERS={w}`"),
            None => format!("{} (direct to the backend)", s.label),
        };
        let ratio = match (s.workers, one) {
            (Some(_), Some(one)) if one > 0.0 => format!("{:.2}×", o.rate() / one),
            _ => String::new(),
        };
        t.push_str(&format!(
            "| {name} | {:.0} | {ratio} | {:.2} ms | {:.2} ms | {} | {} | {} |\n",
            o.rate(),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999),
            s.cpu_us_per_call.map(|c| format!("{c:.1} µs")).unwrap_or_default(),
            s.rss_mib.map(|r| format!("{r:.0} MiB")).unwrap_or_default(),
            s.rows
                .map(|(r, a, p)| format!("{r} / {a}{}", if p == 0 { "" } else { " (verify found problems)" }))
                .unwrap_or_default(),
        ));
    }
    t
}
