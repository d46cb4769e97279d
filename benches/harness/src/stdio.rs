//! `mcp-bench stdio`: what a stdio upstream costs through the gateway.
//!
//! `mcp-bench echo-stdio` is the echo MCP server over stdio (newline-delimited JSON-RPC, the
//! same constant `tools/call` reply as the HTTP echo). `mcp-bench stdio` measures, in one run:
//! the program called directly over its stdin/stdout (the harness keeps `connections` requests
//! outstanding, as a multiplexing client would); the same program behind the gateway
//! (`servers:` entry, `/mcp/invoke` with the full pipeline, gateway CPU per call); and the HTTP
//! echo behind the same gateway (the HTTP path's figures, unchanged by the stdio server).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::load::{self, Mode, Outcome};
use crate::run::{Bench, Cpus, Setup};

/// `mcp-bench stdio`.
#[derive(clap::Args)]
pub struct StdioArgs {
    #[command(flatten)]
    setup: Setup,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds before each phase's window.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Requests in flight at once (connections through the gateway; outstanding requests on
    /// the program's stdin when called directly).
    #[arg(long, default_value_t = 32)]
    connections: usize,
}

/// Serve the echo MCP server on stdin/stdout until stdin closes.
pub fn echo_stdio() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
        let Some(id) = message.get("id").cloned() else { continue };
        let result = match message.get("method").and_then(Value::as_str).unwrap_or("") {
            "initialize" => json!({
                "protocolVersion": message.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-06-18")),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "echo-stdio", "version": "1"}
            }),
            "tools/call" => json!({"content": [{"type": "text", "text": "ok"}], "isError": false}),
            "tools/list" => {
                json!({"tools": [{"name": "echo", "description": "Constant reply.", "inputSchema": {"type": "object"}}]})
            }
            "ping" => json!({}),
            _ => {
                writeln!(
                    out,
                    "{}",
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}})
                )?;
                out.flush()?;
                continue;
            }
        };
        writeln!(out, "{}", json!({"jsonrpc": "2.0", "id": id, "result": result}))?;
        out.flush()?;
    }
    Ok(())
}

/// Call the program directly over stdio with `outstanding` requests in flight.
async fn direct(
    me: &std::path::Path,
    cpus: &Cpus,
    outstanding: usize,
    warmup: u64,
    duration: u64,
) -> anyhow::Result<Outcome> {
    let mut command = if cpus.pin {
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", &cpus.backend]).arg(me);
        c
    } else {
        tokio::process::Command::new(me)
    };
    let mut child =
        command.arg("echo-stdio").stdin(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true).spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?).lines();
    let request = |id: u64| {
        format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hello"}}})
        )
    };
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut next = 1u64;
    for _ in 0..outstanding {
        stdin.write_all(request(next).as_bytes()).await?;
        sent.insert(next, Instant::now());
        next += 1;
    }
    stdin.flush().await?;
    let start = Instant::now();
    let (window_start, window_end) =
        (start + Duration::from_secs(warmup), start + Duration::from_secs(warmup + duration));
    let mut outcome = Outcome { seconds: duration as f64, ..Default::default() };
    while let Some(line) = lines.next_line().await? {
        let now = Instant::now();
        if now >= window_end {
            break;
        }
        let answer: Value = serde_json::from_str(&line)?;
        let id = answer["id"].as_u64().unwrap_or(0);
        if let Some(at) = sent.remove(&id) {
            outcome.completed_total += 1;
            if now >= window_start {
                outcome.completed += 1;
                outcome.latencies.push(now.duration_since(at).as_nanos() as u64);
                *outcome.statuses.entry(200).or_default() += 1;
            }
        }
        stdin.write_all(request(next).as_bytes()).await?;
        stdin.flush().await?;
        sent.insert(next, Instant::now());
        next += 1;
    }
    outcome.latencies.sort_unstable();
    Ok(outcome)
}

/// Wait until the gateway lists `tool` (the stdio program started and was discovered).
async fn wait_listed(bench: &Bench, tool: &str) -> anyhow::Result<()> {
    let auth = format!("Bearer {}", bench.tokens.developer);
    for _ in 0..300 {
        let listing = crate::http::get_with(&bench.gateway_addr, "/mcp/tools", &[("Authorization", &auth)]).await?;
        if String::from_utf8_lossy(&listing.body).contains(&format!("\"{tool}\"")) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the gateway never listed {tool}")
}

fn row(label: &str, o: &Outcome, direct: Option<&Outcome>, cpu: bool) -> String {
    format!(
        "| {label} | {:.0} | {:.3} | {:.3} | {} | {} |",
        o.rate(),
        o.quantile_ms(0.5),
        o.quantile_ms(0.99),
        if cpu { format!("{:.1}", o.cpu_us_per_call()) } else { "—".into() },
        direct.map(|d| format!("{:.2}×", o.rate() / d.rate())).unwrap_or_else(|| "—".into()),
    )
}

/// Runs the three phases and prints the table.
pub async fn stdio(args: StdioArgs) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let cpus =
        Cpus::on_two(args.setup.pin != "off" && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2);
    let (w, d, c) = (args.warmup, args.duration, args.connections);
    eprintln!("- the stdio program called directly, {c} requests outstanding");
    let straight = direct(&me, &cpus, c, w, d).await?;
    // Pinned, the program runs where it ran when called directly (the gateway's children
    // would otherwise inherit the gateway's core).
    let (command, args_prefix) = if cpus.pin {
        ("taskset".to_owned(), format!("-c, \"{}\", \"{}\", ", cpus.backend, me.display()))
    } else {
        (me.display().to_string(), String::new())
    };
    let servers = format!(
        "servers:\n  - name: stdio\n    transport: stdio\n    command: {command}\n    args: [{args_prefix}echo-stdio]\n    max_pending: 1024\n"
    );
    let bench = Bench::start_with_servers(&args.setup, &cpus, None, &servers).await?;
    wait_listed(&bench, "stdio.echo").await?;
    let pid = bench.gateway_pid();
    let plan = |request: Arc<Vec<u8>>| load::Plan {
        addr: bench.gateway_addr.clone(),
        request,
        mode: Mode::Closed { connections: c },
        warmup: Duration::from_secs(w),
        duration: Duration::from_secs(d),
        watch_pid: Some(pid),
    };
    let auth = format!("Bearer {}", bench.tokens.developer);
    let stdio_body = r#"{"tool_name":"stdio.echo","arguments":{"text":"hello"}}"#;
    let stdio_request =
        Arc::new(crate::http::post(&bench.gateway_addr, "/mcp/invoke", &[("Authorization", &auth)], stdio_body));
    eprintln!("- through the gateway to the stdio program");
    let through = load::drive(plan(stdio_request)).await?;
    eprintln!("- through the same gateway to the HTTP echo");
    let http = load::drive(plan(bench.invoke(&bench.tokens.developer))).await?;
    for (label, o) in [("stdio via gateway", &through), ("http via gateway", &http)] {
        if o.count(200) != o.completed {
            anyhow::bail!("{label}: not every call answered 200: {:?}", o.statuses);
        }
    }
    println!("| path | calls/s | p50 ms | p99 ms | gateway CPU µs/call | vs direct stdio |");
    println!("|---|---|---|---|---|---|");
    println!("{}", row("stdio program, called directly", &straight, None, false));
    println!("{}", row("stdio program through the gateway (full pipeline)", &through, Some(&straight), true));
    println!("{}", row("HTTP echo through the same gateway", &http, None, true));
    println!(
        "\n{c} in flight; {d} s windows after {w} s warm-up; audit to {}; {}",
        bench.audit_db_url.split(':').next().unwrap_or(""),
        if cpus.pin { "gateway on CPU 1, harness, programs and PostgreSQL on CPU 0" } else { "unpinned" }
    );
    Ok(())
}
