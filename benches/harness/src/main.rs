//! `mcp-bench`: one command that measures what the gateway costs.
//!
//! `mcp-bench run` starts an echo MCP backend and a release gateway (JWT, RBAC, rate limits,
//! batched audit to PostgreSQL), drives both with a keep-alive load generator in the same run,
//! and prints (and writes) the table the README quotes. `mcp-bench soak` holds a fixed rate for
//! minutes and reports RSS and file descriptors at the start and the end. `mcp-bench scale`
//! sweeps `GATEWAY_WORKERS` with several pinned load-generator processes. `mcp-bench echo` and
//! `mcp-bench load` are the two halves, usable on their own.

mod echo;
mod http;
mod load;
mod procfs;
mod report;
mod run;
mod scale;
mod stdio;

use clap::{Parser, Subcommand};

/// Command line of the harness.
#[derive(Parser)]
#[command(name = "mcp-bench", about = "Benchmark harness for mcp-gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole benchmark: direct vs gateway, fixed rate, rejections; prints the table.
    Run(run::RunArgs),
    /// Hold a fixed rate through the gateway and report RSS and open files at start and end.
    Soak(run::SoakArgs),
    /// Sweep `GATEWAY_WORKERS` (1, 2, 4 …) with several pinned load generators: calls/s, p99,
    /// p99.9, gateway CPU per call, RSS and audit rows stored vs answered, beside direct.
    Scale(scale::ScaleArgs),
    /// Start the echo backend and the gateway as `run` does, print how to call them, and wait
    /// for Ctrl-C (for profiling by hand).
    Up(run::Setup),
    /// Serve the echo MCP backend (constant tools/call reply) until killed.
    Echo {
        /// Address to bind, e.g. 127.0.0.1:0 (the bound address is printed on stdout).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
    },
    /// Drive one URL with one request body and print calls/s and latency percentiles.
    Load(load::LoadArgs),
    /// A stdio upstream: the echo program called directly over stdio, then through the gateway
    /// (`servers:`), beside the HTTP echo through the same gateway.
    Stdio(stdio::StdioArgs),
    /// Serve the echo MCP server over stdin/stdout (what `stdio` puts behind the gateway).
    EchoStdio,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Soak(args) => runtime.block_on(run::soak(args)),
        Command::Scale(args) => runtime.block_on(scale::scale(args)),
        Command::Up(setup) => runtime.block_on(run::up(setup)),
        Command::Echo { bind } => runtime.block_on(echo::serve(&bind)),
        Command::Load(args) => runtime.block_on(load::cli(args)),
        Command::Stdio(args) => runtime.block_on(stdio::stdio(args)),
        Command::EchoStdio => stdio::echo_stdio(),
    }
}
