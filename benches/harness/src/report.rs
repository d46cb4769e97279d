//! The benchmark table: phases, then the targets with what was measured against each.

use crate::load::Outcome;
use serde_json::{json, Value};
use std::fmt::Write;

/// Everything `mcp-bench run` measured.
pub struct Report {
    /// Gateway on CPU 1, load generator and backend on CPU 0.
    pub pinned: bool,
    /// What the backend was.
    pub backend: &'static str,
    /// The audit database's scheme (postgres, sqlite).
    pub database: String,
    /// Connections of the closed-loop phases.
    pub connections: usize,
    /// Calls per second of the fixed-rate phases.
    pub rate: u64,
    /// Measured seconds per phase.
    pub duration: u64,
    /// Closed loop, straight to the backend.
    pub direct: Outcome,
    /// Closed loop, through the gateway.
    pub gateway: Outcome,
    /// Fixed rate, straight to the backend.
    pub direct_rate: Outcome,
    /// Fixed rate, through the gateway.
    pub gateway_rate: Outcome,
    /// Closed loop, refused calls (401, 403, 429).
    pub rejections: Vec<(&'static str, Outcome)>,
    /// Backend `tools/call` requests per gateway call (when the backend counts them).
    pub backend_per_call: Option<f64>,
    /// Gateway RSS after start-up, before any call.
    pub idle_rss_mib: f64,
    /// Gateway RSS after the run.
    pub rss_after_mib: f64,
    /// Gateway peak RSS (VmHWM).
    pub rss_peak_mib: f64,
    /// Audit rows per HTTP status (PostgreSQL runs only).
    pub audit: Option<Vec<(u16, u64)>>,
}

struct Derived {
    ratio: f64,
    added_p99_ms: f64,
    rejections_per_core: f64,
}

fn derive(r: &Report) -> Derived {
    let worst_rejection_cpu = r.rejections.iter().map(|(_, o)| o.cpu_us_per_call()).fold(0.0, f64::max);
    Derived {
        ratio: r.gateway.rate() / r.direct.rate(),
        added_p99_ms: r.gateway_rate.quantile_ms(0.99) - r.direct_rate.quantile_ms(0.99),
        rejections_per_core: 1e6 / worst_rejection_cpu.max(f64::MIN_POSITIVE),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // Counted from /proc/cpuinfo: the harness pins itself, so its own affinity says 1.
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    format!("{cpu}, {cpus} CPUs, commit {commit}")
}

fn met(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// The Markdown report the harness prints and writes.
pub fn markdown(r: &Report) -> String {
    let d = derive(r);
    let mut s = String::new();
    let _ = writeln!(s, "## mcp-bench — {}\n", machine());
    let _ = writeln!(
        s,
        "Backend: {}; gateway with JWT (HS256), RBAC, rate-limit check, batched audit to {}; {} s per phase; {}.\n",
        r.backend,
        r.database,
        r.duration,
        if r.pinned {
            "gateway pinned to CPU 1; load generator, backend and local PostgreSQL to CPU 0"
        } else {
            "unpinned"
        }
    );
    let _ = writeln!(s, "| phase | calls/s | p50 ms | p99 ms | p99.9 ms | gateway CPU µs/call | statuses |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
    let mut row = |label: String, o: &Outcome, cpu: bool| {
        let _ = writeln!(
            s,
            "| {label} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {} |",
            o.rate(),
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999),
            if cpu { format!("{:.1}", o.cpu_us_per_call()) } else { "—".into() },
            o.statuses.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(" ")
                + &if o.errors > 0 { format!(" errors×{}", o.errors) } else { String::new() }
        );
    };
    row(format!("direct, {} connections", r.connections), &r.direct, false);
    row(format!("gateway, {} connections", r.connections), &r.gateway, true);
    row(format!("direct, {} calls/s", r.rate), &r.direct_rate, false);
    row(format!("gateway, {} calls/s", r.rate), &r.gateway_rate, true);
    for (label, o) in &r.rejections {
        row(format!("gateway, {label}"), o, true);
    }
    let _ = writeln!(s, "\n| target | measured | goal | met |");
    let _ = writeln!(s, "|---|---:|---:|---|");
    let cpu = r.gateway.cpu_us_per_call();
    let _ = writeln!(s, "| gateway CPU per proxied call | {cpu:.1} µs | ≤ 25 µs | {} |", met(cpu <= 25.0));
    let _ = writeln!(
        s,
        "| throughput gateway ÷ direct, {} connections | {:.2} | ≥ 0.6 | {} |",
        r.connections,
        d.ratio,
        met(d.ratio >= 0.6)
    );
    let _ = writeln!(
        s,
        "| added p99 at {} calls/s | {:.3} ms | ≤ 0.5 ms | {} |",
        r.rate,
        d.added_p99_ms,
        met(d.added_p99_ms <= 0.5)
    );
    let _ = writeln!(
        s,
        "| rejections per core (1 s ÷ CPU per rejection, worst of 401/403/429) | {:.0}/s | ≥ 50,000/s | {} |",
        d.rejections_per_core,
        met(d.rejections_per_core >= 50_000.0)
    );
    let _ = writeln!(
        s,
        "| gateway idle RSS | {:.1} MiB | ≤ 20 MB | {} |",
        r.idle_rss_mib,
        met(r.idle_rss_mib * 1.048_576 <= 20.0)
    );
    if let Some(per_call) = r.backend_per_call {
        let _ = writeln!(
            s,
            "| backend requests per tool call | {per_call:.3} | 1 | {} |",
            met((per_call - 1.0).abs() < 0.001)
        );
    }
    let _ = writeln!(s, "\nGateway RSS after the run {:.1} MiB (peak {:.1} MiB).", r.rss_after_mib, r.rss_peak_mib);
    if let Some(audit) = &r.audit {
        let rows: u64 = audit.iter().map(|(_, n)| n).sum();
        let by_status = audit.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(" ");
        let mut answered = std::collections::BTreeMap::<u16, u64>::new();
        for o in [&r.gateway, &r.gateway_rate].into_iter().chain(r.rejections.iter().map(|(_, o)| o)) {
            for (status, n) in &o.statuses_total {
                *answered.entry(*status).or_default() += n;
            }
        }
        let missing: Vec<String> = answered
            .iter()
            .filter_map(|(status, n)| {
                let stored = audit.iter().find(|(s, _)| s == status).map_or(0, |(_, m)| *m);
                (stored < *n).then(|| format!("{status}: {stored} rows for {n} answers"))
            })
            .collect();
        let verdict = if missing.is_empty() {
            "every answered call has its row".to_owned()
        } else {
            format!("**rows missing**: {}", missing.join(", "))
        };
        let _ = writeln!(s, "Audit rows in PostgreSQL after the run: {rows} ({by_status}); {verdict}.");
    }
    s
}

fn outcome_json(o: &Outcome) -> Value {
    json!({
        "calls_per_second": o.rate(),
        "p50_ms": o.quantile_ms(0.5),
        "p99_ms": o.quantile_ms(0.99),
        "p999_ms": o.quantile_ms(0.999),
        "completed": o.completed,
        "completed_with_warmup": o.completed_total,
        "errors": o.errors,
        "cpu_us_per_call": o.cpu_us_per_call(),
        "statuses": o.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The same report as JSON, for tooling.
pub fn json(r: &Report) -> Value {
    let d = derive(r);
    json!({
        "machine": machine(),
        "pinned": r.pinned,
        "backend": r.backend,
        "database": r.database,
        "direct": outcome_json(&r.direct),
        "gateway": outcome_json(&r.gateway),
        "direct_fixed_rate": outcome_json(&r.direct_rate),
        "gateway_fixed_rate": outcome_json(&r.gateway_rate),
        "rejections": r.rejections.iter().map(|(l, o)| (l.to_string(), outcome_json(o))).collect::<serde_json::Map<_, _>>(),
        "ratio": d.ratio,
        "added_p99_ms": d.added_p99_ms,
        "rejections_per_core": d.rejections_per_core,
        "backend_requests_per_call": r.backend_per_call,
        "idle_rss_mib": r.idle_rss_mib,
        "rss_after_mib": r.rss_after_mib,
        "rss_peak_mib": r.rss_peak_mib,
        "audit_rows_by_status": r.audit.as_ref().map(|a| a.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()),
    })
}
