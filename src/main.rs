//! The `mcp-gateway` binary; everything lives in the library (see `cli`).

fn main() -> std::process::ExitCode {
    match mcp_gateway::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
