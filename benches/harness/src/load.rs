//! The load generator: keep-alive connections, closed-loop (fixed concurrency) or open-loop
//! (fixed rate) load, latency percentiles, and the gateway's CPU time over the measured window.
//!
//! Open-loop latency is counted from the moment a call was due whenever the generator was
//! behind (all connections busy), so a stalled server cannot hide its stall (coordinated
//! omission); when the generator was on time it is counted from the actual send.

use crate::http::{self, Conn};
use crate::procfs;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the load is offered.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `connections` callers, each sending its next call when the last one is answered.
    Closed { connections: usize },
    /// One call every 1/`rate` s, spread over `connections` keep-alive connections.
    Rate { rate: u64, connections: usize },
}

/// What one load phase sends, and for how long.
#[derive(Clone)]
pub struct Plan {
    /// "127.0.0.1:port".
    pub addr: String,
    /// The whole request, sent unchanged on every call.
    pub request: Arc<Vec<u8>>,
    /// Concurrency or rate.
    pub mode: Mode,
    /// Load before the measured window (connections warm, pools filled, JIT-free steady state).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// A process whose CPU time is read at the window's edges (the gateway).
    pub watch_pid: Option<u32>,
}

/// What one phase measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Responses completed inside the window.
    pub completed: u64,
    /// Responses completed over the whole phase, warm-up included.
    pub completed_total: u64,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// Sorted latencies of the window's responses, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Responses per HTTP status, over the window.
    pub statuses: BTreeMap<u16, u64>,
    /// Responses per HTTP status over the whole phase, warm-up included (for the audit check).
    pub statuses_total: BTreeMap<u16, u64>,
    /// Connection errors (each one reconnects).
    pub errors: u64,
    /// CPU seconds the watched process used over the window.
    pub cpu_seconds: f64,
}

impl Outcome {
    /// Completed calls per second over the window.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.seconds
    }
    /// The `q` quantile (0..1) of latency, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i] as f64 / 1e6
    }
    /// Watched-process CPU per completed call, in microseconds.
    pub fn cpu_us_per_call(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.completed.max(1) as f64
    }
    /// Share of the window's responses with this status.
    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

struct Local {
    latencies: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    statuses_total: BTreeMap<u16, u64>,
    completed: u64,
    completed_total: u64,
    errors: u64,
}

/// Runs one phase and returns what it measured.
pub async fn drive(plan: Plan) -> anyhow::Result<Outcome> {
    let start = Instant::now() + Duration::from_millis(20);
    let window_start = start + plan.warmup;
    let window_end = window_start + plan.duration;
    let tickets = Arc::new(AtomicU64::new(0));
    let (connections, interval) = match plan.mode {
        Mode::Closed { connections } => (connections, None),
        Mode::Rate { rate, connections } => (connections, Some(Duration::from_nanos(1_000_000_000 / rate.max(1)))),
    };
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let plan = plan.clone();
        let tickets = tickets.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Local {
                latencies: Vec::with_capacity(1 << 16),
                statuses: BTreeMap::new(),
                statuses_total: BTreeMap::new(),
                completed: 0,
                completed_total: 0,
                errors: 0,
            };
            let mut conn: Option<Conn> = None;
            tokio::time::sleep_until(start.into()).await;
            loop {
                let began = match interval {
                    None => Instant::now(),
                    Some(interval) => {
                        let due = start + interval * tickets.fetch_add(1, Ordering::Relaxed) as u32;
                        if due >= window_end {
                            break;
                        }
                        if due > Instant::now() {
                            tokio::time::sleep_until(due.into()).await;
                            Instant::now()
                        } else {
                            due
                        }
                    }
                };
                if began >= window_end {
                    break;
                }
                if conn.is_none() {
                    match Conn::connect(&plan.addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            local.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let answer = match c.send(&plan.request).await {
                    Ok(()) => c.read().await,
                    Err(e) => Err(e),
                };
                let done = Instant::now();
                match answer {
                    Ok(Some(response)) => {
                        local.completed_total += 1;
                        *local.statuses_total.entry(response.status()).or_default() += 1;
                        if done >= window_start && done < window_end {
                            local.completed += 1;
                            local.latencies.push((done - began).as_nanos() as u64);
                            *local.statuses.entry(response.status()).or_default() += 1;
                        }
                    }
                    _ => {
                        local.errors += 1;
                        conn = None;
                    }
                }
            }
            local
        }));
    }
    tokio::time::sleep_until(window_start.into()).await;
    let cpu_before = plan.watch_pid.map(procfs::cpu_seconds).transpose()?;
    tokio::time::sleep_until(window_end.into()).await;
    let cpu_after = plan.watch_pid.map(procfs::cpu_seconds).transpose()?;
    let mut outcome = Outcome { seconds: plan.duration.as_secs_f64(), ..Outcome::default() };
    for task in tasks {
        let local = task.await?;
        outcome.latencies.extend(local.latencies);
        for (status, n) in local.statuses {
            *outcome.statuses.entry(status).or_default() += n;
        }
        for (status, n) in local.statuses_total {
            *outcome.statuses_total.entry(status).or_default() += n;
        }
        outcome.completed += local.completed;
        outcome.completed_total += local.completed_total;
        outcome.errors += local.errors;
    }
    outcome.latencies.sort_unstable();
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        outcome.cpu_seconds = after - before;
    }
    Ok(outcome)
}

/// `mcp-bench load`: one URL, one body.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// http://host:port/path
    #[arg(long)]
    url: String,
    /// The JSON body to POST.
    #[arg(long)]
    body: String,
    /// Extra header, "Name: value" (repeatable), e.g. an Authorization header.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Calls per second (open loop); without it, closed loop at full speed.
    #[arg(long)]
    rate: Option<u64>,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds before the window.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Report this process's CPU time per call (e.g. the gateway's pid).
    #[arg(long)]
    pid: Option<u32>,
    /// Also write what was measured here (JSON; the latencies beside it in `PATH.lat`), for
    /// `mcp-bench scale` to merge several generators exactly.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

impl Outcome {
    /// Write the counts as JSON to `path` and the sorted latencies (little-endian u64
    /// nanoseconds) to `path.lat`.
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let counts = |m: &BTreeMap<u16, u64>| m.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>();
        let json = serde_json::json!({
            "completed": self.completed,
            "completed_total": self.completed_total,
            "seconds": self.seconds,
            "statuses": counts(&self.statuses),
            "statuses_total": counts(&self.statuses_total),
            "errors": self.errors,
        });
        std::fs::write(path, json.to_string())?;
        let bytes: Vec<u8> = self.latencies.iter().flat_map(|l| l.to_le_bytes()).collect();
        std::fs::write(latencies_path(path), bytes)?;
        Ok(())
    }

    /// Read what [`Outcome::save`] wrote.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        let counts = |v: &serde_json::Value| -> BTreeMap<u16, u64> {
            v.as_object()
                .map(|m| m.iter().filter_map(|(k, n)| Some((k.parse().ok()?, n.as_u64()?))).collect())
                .unwrap_or_default()
        };
        let bytes = std::fs::read(latencies_path(path))?;
        Ok(Self {
            completed: json["completed"].as_u64().unwrap_or(0),
            completed_total: json["completed_total"].as_u64().unwrap_or(0),
            seconds: json["seconds"].as_f64().unwrap_or(0.0),
            latencies: bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
            statuses: counts(&json["statuses"]),
            statuses_total: counts(&json["statuses_total"]),
            errors: json["errors"].as_u64().unwrap_or(0),
            cpu_seconds: 0.0,
        })
    }

    /// Several generators' outcomes as one (rates add; latencies merge exactly).
    pub fn merge(parts: Vec<Outcome>) -> Outcome {
        let mut all = Outcome::default();
        for part in parts {
            all.completed += part.completed;
            all.completed_total += part.completed_total;
            all.seconds = all.seconds.max(part.seconds);
            all.latencies.extend(part.latencies);
            for (status, n) in part.statuses {
                *all.statuses.entry(status).or_default() += n;
            }
            for (status, n) in part.statuses_total {
                *all.statuses_total.entry(status).or_default() += n;
            }
            all.errors += part.errors;
        }
        all.latencies.sort_unstable();
        all
    }
}

fn latencies_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lat");
    p.into()
}

/// Runs `mcp-bench load` and prints one line.
pub async fn cli(args: LoadArgs) -> anyhow::Result<()> {
    let rest = args.url.strip_prefix("http://").ok_or_else(|| anyhow::anyhow!("only http:// URLs"))?;
    let (addr, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let headers: Vec<(&str, &str)> =
        args.headers.iter().filter_map(|h| h.split_once(':')).map(|(n, v)| (n.trim(), v.trim())).collect();
    let mode = match args.rate {
        Some(rate) => Mode::Rate { rate, connections: args.connections },
        None => Mode::Closed { connections: args.connections },
    };
    let outcome = drive(Plan {
        addr: addr.to_owned(),
        request: Arc::new(http::post(addr, &path, &headers, &args.body)),
        mode,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
        watch_pid: args.pid,
    })
    .await?;
    println!(
        "{:.0} calls/s  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  statuses {:?}  errors {}{}",
        outcome.rate(),
        outcome.quantile_ms(0.5),
        outcome.quantile_ms(0.99),
        outcome.quantile_ms(0.999),
        outcome.statuses,
        outcome.errors,
        args.pid.map(|_| format!("  cpu {:.1} µs/call", outcome.cpu_us_per_call())).unwrap_or_default()
    );
    if let Some(out) = &args.out {
        outcome.save(out)?;
    }
    Ok(())
}
