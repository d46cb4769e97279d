//! The `mcp-gateway` binary; everything lives in the library (see `cli`).

/// mimalloc instead of glibc malloc: a proxied call allocates and frees a few hundred small
/// objects across threads, where glibc's arenas spent ~15% of the gateway's CPU (perf, see
/// README "Performance"); mimalloc's thread-local free lists cost a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match mcp_gateway::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-gateway: {}", mcp_gateway::error::explain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
