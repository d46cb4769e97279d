//! Any text as `tools.yaml` and as `policy.yaml` (after `${VAR}` expansion), through the same
//! parsers and validators the gateway runs at start-up and on reload. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::config::files::{expand_vars, parse_policy, parse_tools};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lookup = |name: &str| (name == "HOST").then(|| "127.0.0.1".to_owned());
    let Ok(text) = expand_vars(text, &lookup) else { return };
    let _ = parse_tools("tools.yaml", &text);
    if let Ok(policy) = parse_policy("policy.yaml", &text) {
        let caller = mcp_gateway_fuzz_caller();
        let _ = policy.audit_arguments("exact_compute", &serde_json::json!({"operation": "x", "token": "y"}));
        let _ = policy.limits_for(&caller, "exact_compute");
    }
});

fn mcp_gateway_fuzz_caller() -> gateway_actors::Caller {
    gateway_actors::Caller {
        user_id: "fuzz".into(),
        roles: vec!["developer".into(), "admin".into()],
        workspace: Some("default".into()),
        scopes: vec![],
    }
}
