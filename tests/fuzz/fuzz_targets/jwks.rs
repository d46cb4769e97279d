//! What an identity provider publishes and signs: a key set (each key judged on its own) and,
//! when the input is a JSON object, a token's claims mapped to a subject, roles and workspace
//! through nested paths and a role map. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::config::providers::{ProviderConfig, DEFAULT_ALGORITHMS};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = mcp_gateway::identity::jwks::read(data, &DEFAULT_ALGORITHMS);
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) else { return };
    let yaml = "issuer: https://idp.example\naudiences: [gw]\nroles_claims: [realm_access.roles, groups, scope]\n\
                role_map: { g-admins: [admin] }\nworkspace_claim: org.tenant\n";
    let Ok(config) = serde_yaml::from_str::<ProviderConfig>(yaml) else { return };
    let _ = mcp_gateway::identity::map_claims(&claims, &config);
    let mut plain = config.clone();
    plain.role_map.clear();
    let _ = mcp_gateway::identity::map_claims(&claims, &plain);
});
