//! The bundled tool servers, run inside the gateway process for the one-command local run
//! (`cargo run --release`): calculator, document generator and git tool on their usual
//! loopback addresses, the git tool serving `GIT_REPOS` / `GIT_REPOS_FILE` when set (as the
//! standalone binary does), else the current repository; `DOCGEN_MAX_CONTENT_BYTES` as the
//! standalone docgen reads it. `BUNDLED_TOOLS=off` (the container images, the benchmarks)
//! leaves them to their own processes.

use std::net::TcpListener;

use actix_web::dev::ServerHandle;

/// One started tool server.
pub struct Bundled {
    /// The tool it serves.
    pub tool: &'static str,
    /// Where it listens.
    pub addr: String,
    handle: ServerHandle,
}

fn bind(var: &str, default: &str) -> (String, std::io::Result<TcpListener>) {
    let addr = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let listener = TcpListener::bind(&addr);
    (addr, listener)
}

/// Start the three tool servers; one whose address is taken (already running) is skipped.
pub fn start() -> Vec<Bundled> {
    let configured = std::env::var_os("GIT_REPOS").is_some() || std::env::var_os("GIT_REPOS_FILE").is_some();
    let repos = if configured {
        // As the standalone git tool reads them: GIT_REPOS_FILE (YAML) first, else GIT_REPOS.
        git_tool::repos::Repos::from_env()
    } else if std::path::Path::new(".git").exists() {
        git_tool::repos::Repos::from_list("mcp-gateway=.")
    } else {
        Ok(git_tool::repos::Repos::default())
    };
    let repos = repos.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "GIT_REPOS / GIT_REPOS_FILE is invalid; the bundled git tool serves no repository");
        git_tool::repos::Repos::default()
    });
    // As the standalone docgen binary reads it; an unreadable value keeps the default.
    let max = match std::env::var("DOCGEN_MAX_CONTENT_BYTES") {
        Ok(v) => v.parse().unwrap_or_else(|e| {
            tracing::warn!(value = %v, error = %e, "DOCGEN_MAX_CONTENT_BYTES is invalid; using the default");
            docgen::DEFAULT_MAX_CONTENT_BYTES
        }),
        Err(_) => docgen::DEFAULT_MAX_CONTENT_BYTES,
    };
    let servers = [
        ("exact_compute", "CALCULATOR_BIND", "127.0.0.1:8091", calculator::server()),
        ("git_readonly", "GIT_TOOL_BIND", "127.0.0.1:8092", git_tool::server(repos)),
        ("document_generate", "DOCGEN_BIND", "127.0.0.1:8093", docgen::server(max)),
    ];
    let mut started = Vec::new();
    for (tool, var, default, server) in servers {
        let (addr, listener) = bind(var, default);
        let served = listener.and_then(|l| tool_kit::server::serve(server, l, false));
        match served {
            Ok(server) => {
                let handle = server.handle();
                actix_web::rt::spawn(server);
                started.push(Bundled { tool, addr, handle });
            }
            Err(e) => {
                tracing::warn!(tool, %addr, error = %e, "bundled tool server not started (is one already running?)")
            }
        }
    }
    started
}

/// Stop them (after the gateway has drained).
pub async fn stop(servers: Vec<Bundled>) {
    for s in servers {
        s.handle.stop(true).await;
    }
}
