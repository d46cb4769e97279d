//! Tokens from real identity providers: their published keys ([`provider`], [`jwks`]) and
//! how their claims become the gateway's caller (subject, roles, workspace).

pub mod jwks;
pub mod provider;

use std::sync::{Arc, OnceLock};

use actix::Addr;
use serde_json::{Map, Value};

use crate::config::providers::ProviderConfig;
use provider::{ProviderKeys, Published};

/// Most role values read from one token, and longest value kept.
const MAX_CLAIM_VALUES: usize = 256;
const MAX_VALUE_CHARS: usize = 256;

/// One trusted provider: its configuration, the keys its owner publishes, and the owner.
pub struct Provider {
    /// What the operator configured.
    pub config: ProviderConfig,
    /// The keys, as the owner last published them.
    pub keys: Published,
    owner: OnceLock<Addr<ProviderKeys>>,
}

impl Provider {
    /// A provider with no keys yet (its owner starts with [`Provider::start`]).
    pub fn new(config: ProviderConfig) -> Self {
        Self { config, keys: Published::default(), owner: OnceLock::new() }
    }

    /// Start the owner that fetches and refreshes the keys (on the current arbiter).
    pub fn start(&self, min_refetch: std::time::Duration) {
        use actix::Actor;
        let owner = ProviderKeys::new(self.config.clone(), self.keys.clone(), min_refetch).start();
        let _ = self.owner.set(owner);
    }

    /// Ask the owner for fresher keys (a token named an unknown `kid`); returns when they are
    /// as fresh as the refetch limit allows, or after the fetch timeout.
    pub async fn unknown_kid(&self) {
        let Some(owner) = self.owner.get().cloned() else { return };
        let wait = provider::FETCH_TIMEOUT * 2 + std::time::Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, owner.send(provider::UnknownKid)).await;
    }
}

impl Provider {
    /// What operators see of this provider's keys (`/health/actors`).
    pub fn report(&self) -> Value {
        let snapshot = self.keys.load();
        let age = snapshot.fetched_at.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs());
        serde_json::json!({
            "issuer": crate::error::without_credentials(&self.config.issuer),
            "keys": snapshot.keys.len(),
            "key_ids": snapshot.keys.by_kid.keys().collect::<Vec<_>>(),
            "keys_age_seconds": age,
            "stale": snapshot.stale,
            "last_error": snapshot.last_error,
            "fetches": snapshot.fetches,
            "unknown_kid_fetches": snapshot.unknown_kid_fetches,
        })
    }
}

/// The claim at `path`: the dotted path through nested objects (`realm_access.roles`), or a
/// top-level claim for a name without dots or a namespaced one (`https://example.com/roles`).
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    // A dotted name is read whole only when it is a namespaced (URL) claim: otherwise a
    // top-level claim literally named `realm_access.roles` (which some providers let users
    // set) would shadow the provider's nested one.
    if !path.contains('.') || path.contains("://") {
        return claims.get(path);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current)
}

/// A claim's values: the strings of an array, or a string split at spaces (`scope`, `scp`).
fn values(value: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = match value {
        Value::String(s) => s.split(' ').filter(|v| !v.is_empty()).collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    out.truncate(MAX_CLAIM_VALUES);
    out.retain(|v| v.chars().count() <= MAX_VALUE_CHARS && !v.chars().any(char::is_control));
    out
}

/// What a provider's token says of its bearer, in the gateway's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The subject.
    pub subject: String,
    /// Gateway roles, each with the claim that produced it (for the policy explanation).
    pub roles: Vec<(String, String)>,
    /// The workspace, when the claim is there.
    pub workspace: Option<String>,
    /// The OAuth scopes granted (`scope`, else `scp`).
    pub scopes: Vec<String>,
}

/// Scopes of a space-separated `scope` value (bounded like every claim read).
pub fn scopes_of(scope: &str) -> Vec<String> {
    values(&Value::String(scope.to_owned())).into_iter().map(str::to_owned).collect()
}

/// Map verified `claims` through `config`; `Err` names what is missing.
pub fn map_claims(claims: &Map<String, Value>, config: &ProviderConfig) -> Result<Mapped, &'static str> {
    let subject = match claim(claims, &config.subject_claim) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("invalid token: no subject claim"),
    };
    if subject.is_empty() || subject.chars().count() > MAX_VALUE_CHARS || subject.chars().any(char::is_control) {
        return Err("invalid token: the subject claim is empty, too long or holds control characters");
    }
    let subject = match &config.subject_prefix {
        Some(prefix) => format!("{prefix}{subject}"),
        None => subject,
    };
    let mut roles: Vec<(String, String)> = Vec::new();
    for path in &config.roles_claims {
        let Some(value) = claim(claims, path) else { continue };
        for v in values(value) {
            let granted: Vec<&str> = if config.role_map.is_empty() {
                vec![v]
            } else {
                config.role_map.get(v).map(|r| r.iter().map(String::as_str).collect()).unwrap_or_default()
            };
            for role in granted {
                if !roles.iter().any(|(r, _)| r == role) {
                    roles.push((role.to_owned(), format!("{path}: {v}")));
                }
            }
        }
    }
    let workspace = match claim(claims, &config.workspace_claim) {
        Some(Value::String(w))
            if !w.is_empty() && w.chars().count() <= MAX_VALUE_CHARS && !w.chars().any(char::is_control) =>
        {
            Some(w.clone())
        }
        _ => None,
    };
    let scopes = claims
        .get("scope")
        .or_else(|| claims.get("scp"))
        .map(|v| values(v).into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Mapped { subject, roles, workspace, scopes })
}

/// The providers the gateway trusts, shared by every worker.
pub type Providers = Arc<Vec<Provider>>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(yaml: &str) -> ProviderConfig {
        serde_yaml::from_str::<ProviderConfig>(&format!("issuer: https://idp.test\naudiences: [gw]\n{yaml}"))
            .unwrap()
            .finish("t", &[])
            .unwrap()
    }

    #[test]
    fn keycloak_roles_okta_groups_and_scopes_map_to_gateway_roles() {
        let token = json!({
            "sub": "u-1",
            "preferred_username": "alice",
            "realm_access": { "roles": ["developer", "offline_access"] },
            "resource_access": { "gateway": { "roles": ["auditor"] } },
            "groups": ["/eng", "g-admins", "bad\u{1b}value"],
            "scope": "openid mcp:tools",
            "https://example.com/roles": ["operator"],
            "tenant": "acme",
        });
        let claims = token.as_object().unwrap();
        let kc = config("roles_claims: [realm_access.roles, resource_access.gateway.roles]\nworkspace_claim: tenant\n");
        let m = map_claims(claims, &kc).unwrap();
        let names: Vec<&str> = m.roles.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, ["developer", "offline_access", "auditor"]);
        assert_eq!(m.roles[2].1, "resource_access.gateway.roles: auditor");
        assert_eq!(m.workspace.as_deref(), Some("acme"));
        let okta = config("subject_claim: preferred_username\nroles_claims: [groups]\nrole_map: { g-admins: [admin], /eng: [developer] }\n");
        let m = map_claims(claims, &okta).unwrap();
        assert_eq!(m.subject, "alice");
        let names: Vec<&str> = m.roles.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, ["developer", "admin"], "only mapped groups grant roles");
        let scoped = config("roles_claims: [scope, \"https://example.com/roles\"]\n");
        let names: Vec<String> = map_claims(claims, &scoped).unwrap().roles.into_iter().map(|(r, _)| r).collect();
        assert_eq!(names, ["openid", "mcp:tools", "operator"]);
        assert!(map_claims(json!({"roles": []}).as_object().unwrap(), &kc).is_err(), "no subject");
    }

    #[test]
    fn a_flat_claim_cannot_shadow_a_nested_path() {
        let token = json!({ "sub": "u", "realm_access.roles": ["admin"], "realm_access": { "roles": ["developer"] } });
        let kc = config("roles_claims: [realm_access.roles]\n");
        let m = map_claims(token.as_object().unwrap(), &kc).unwrap();
        assert_eq!(m.roles, [("developer".to_owned(), "realm_access.roles: developer".to_owned())]);
        let only_flat = json!({ "sub": "u", "realm_access.roles": ["admin"] });
        assert!(map_claims(only_flat.as_object().unwrap(), &kc).unwrap().roles.is_empty());
    }

    #[test]
    fn subjects_of_several_sources_are_kept_apart() {
        use crate::config::providers::scope_subjects;
        let mut two = vec![config(""), config("")];
        two[1].issuer = "https://other.test".into();
        scope_subjects(&mut two, false).unwrap();
        assert_eq!(two[0].subject_prefix.as_deref(), Some("https://idp.test#"));
        let m = map_claims(json!({"sub": "alice"}).as_object().unwrap(), &two[1]).unwrap();
        assert_eq!(m.subject, "https://other.test#alice");
        let mut alone = vec![config("")];
        scope_subjects(&mut alone, false).unwrap();
        assert_eq!(alone[0].subject_prefix, None, "one source: subjects as the provider says");
        let mut clash = vec![config("subject_prefix: \"a:\"\n"), config("subject_prefix: \"a:b\"\n")];
        assert!(scope_subjects(&mut clash, false).is_err());
        let mut empty = vec![config("subject_prefix: \"\"\n")];
        assert!(scope_subjects(&mut empty, true).is_err(), "beside a shared secret");
    }
}
