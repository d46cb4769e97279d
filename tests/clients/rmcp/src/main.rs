//! The matrix's rmcp client: through the same steps as python_client.py, in the lifecycle mode
//! named on the command line. Prints `STEP <name> PASS|FAIL <detail>`; exits 1 on a failure.
//! Usage: matrix-rmcp-client initialize|discover URL TOKEN

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, JsonObject, NumberOrString, ProgressNotificationParam, ProgressToken,
    ProtocolVersion, RequestMetaObject,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RoleClient};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ClientHandler;
use serde_json::json;

/// Counts the progress notifications the gateway forwards.
#[derive(Clone, Default)]
struct Progress(Arc<AtomicUsize>);

impl ClientHandler for Progress {
    async fn on_progress(&self, _: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn args(value: serde_json::Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

fn text_of(result: &CallToolResult) -> String {
    let value = serde_json::to_value(&result.content).unwrap_or_default();
    value.as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join(" ")
}

fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (mode, url, token) = (argv[1].as_str(), argv[2].clone(), argv[3].clone());
    let mut failed = 0;
    let mut step = |name: &str, ok: bool, detail: String| {
        let detail: String = detail.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
        println!("STEP {name} {} {detail}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            failed += 1;
        }
    };
    let transport =
        StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(url).auth_header(token));
    let lifecycle = match mode {
        "discover" => ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] },
        _ => ClientLifecycleMode::Initialize,
    };
    let progress = Progress::default();
    let client = match progress.clone().serve_with_lifecycle(transport, lifecycle).await {
        Ok(client) => {
            let info = client.peer_info().and_then(|i| serde_json::to_value(&*i).ok()).unwrap_or_default();
            let version = info["protocolVersion"].as_str().unwrap_or(mode).to_owned();
            step("connect", true, version);
            client
        }
        Err(e) => {
            step("connect", false, format!("{e:?}"));
            std::process::exit(1);
        }
    };
    match client.list_all_tools().await {
        Ok(tools) => {
            let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
            let want = ["exact_compute", "git_readonly", "document_generate", "slow_progress", "sleepy"];
            let ok = want.iter().all(|w| names.iter().any(|n| n == w)) && !names.iter().any(|n| n == "admin_only");
            step("tools/list", ok, names.join(","));
        }
        Err(e) => step("tools/list", false, format!("{e:?}")),
    }
    let compute = json!({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}});
    let calls = [
        ("exact_compute", compute.clone(), "3"),
        ("git_readonly", json!({"repo": "mcp-gateway", "action": "log", "limit": 1}), ""),
        ("document_generate", json!({"content": "# Hello", "format": "html"}), "Generated"),
    ];
    for (name, arguments, expect) in calls {
        match client.call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments))).await {
            Ok(r) => step(&format!("call:{name}"), !is_error(&r) && text_of(&r).contains(expect), text_of(&r)),
            Err(e) => step(&format!("call:{name}"), false, format!("{e:?}")),
        }
    }
    match client.call_tool(CallToolRequestParams::new("admin_only").with_arguments(JsonObject::new())).await {
        Ok(r) => step("denied-tool", is_error(&r), text_of(&r)),
        Err(e) => step("denied-tool", format!("{e:?}").contains("Unknown tool"), format!("{e:?}")),
    }
    let mut params = CallToolRequestParams::new("slow_progress").with_arguments(args(json!({"steps": 3})));
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::Number(7))));
    match client.call_tool(params).await {
        Ok(r) => {
            let seen = progress.0.load(Ordering::SeqCst);
            step("progress", !is_error(&r) && seen >= 1, format!("{seen} notifications"));
        }
        Err(e) => step("progress", false, format!("{e:?}")),
    }
    // Dropping the call (here: at its deadline) cancels it.
    let started = Instant::now();
    let sleepy = CallToolRequestParams::new("sleepy").with_arguments(args(json!({"seconds": 30})));
    let cancelled = tokio::time::timeout(Duration::from_millis(1500), client.call_tool(sleepy)).await.is_err();
    match client.call_tool(CallToolRequestParams::new("exact_compute").with_arguments(args(compute))).await {
        Ok(r) => step(
            "cancel",
            cancelled && !is_error(&r) && started.elapsed() < Duration::from_secs(5),
            format!("after {:.1}s", started.elapsed().as_secs_f64()),
        ),
        Err(e) => step("cancel", false, format!("{e:?}")),
    }
    let _ = client.cancel().await;
    std::process::exit(if failed > 0 { 1 } else { 0 });
}
