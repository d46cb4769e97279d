//! Identity providers the gateway trusts (`JWT_ISSUER` / `JWT_JWKS_URL`, or several in
//! `IDENTITY_PROVIDERS_FILE`): where their keys are, which tokens are for this gateway, and how
//! their claims become a subject, roles and a workspace.

use std::collections::BTreeMap;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::ConfigError;

/// Algorithms accepted from a provider unless configured otherwise (asymmetric only: a
/// provider's keys are public).
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    RSA_ALGORITHMS[0],
    RSA_ALGORITHMS[1],
    RSA_ALGORITHMS[2],
    RSA_ALGORITHMS[3],
    RSA_ALGORITHMS[4],
    RSA_ALGORITHMS[5],
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The algorithms an RSA key may verify (PKCS#1 v1.5 and PSS).
pub const RSA_ALGORITHMS: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];

/// One trusted identity provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The `iss` its tokens carry; also where OIDC discovery starts
    /// (`<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The key set's URL; when absent it is discovered from the issuer.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Accepted `aud` values (one must be in the token): this gateway's identifier, e.g. its
    /// public URL (RFC 8707 resource).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted signature algorithms (`RS256`, `PS256`, `ES256`, `EdDSA`, …).
    #[serde(default, deserialize_with = "algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// The claim naming the subject (dot path).
    #[serde(default = "default_subject")]
    pub subject_claim: String,
    /// Claims holding roles or groups (dot paths: `realm_access.roles`,
    /// `resource_access.gateway.roles`, `groups`, `roles`, `scope`); a string value is split at
    /// spaces.
    #[serde(default = "default_roles")]
    pub roles_claims: Vec<String>,
    /// Provider values (groups, provider roles) → gateway roles. When given, only mapped
    /// values grant roles; without it, the values are the roles.
    #[serde(default)]
    pub role_map: BTreeMap<String, Vec<String>>,
    /// The claim holding the workspace (dot path).
    #[serde(default = "default_workspace")]
    pub workspace_claim: String,
    /// Scopes shown in the gateway's protected-resource metadata.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Put before every subject from this provider, so that two providers' `alice` (or a
    /// provider's and a shared-secret token's) are two users: their jobs, sessions, limits
    /// and rows apart. Default: none when this provider is the only source of tokens, else
    /// `<issuer>#`.
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

fn default_subject() -> String {
    "sub".into()
}

fn default_roles() -> Vec<String> {
    vec!["roles".into()]
}

fn default_workspace() -> String {
    "workspace".into()
}

fn algorithms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Algorithm>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    names.iter().map(|n| parse_algorithm(n).map_err(serde::de::Error::custom)).collect()
}

/// An asymmetric algorithm by name (one of [`DEFAULT_ALGORITHMS`]).
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    name.trim().parse::<Algorithm>().ok().filter(|a| DEFAULT_ALGORITHMS.contains(a)).ok_or_else(|| {
        format!(
            "{:?} is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
            name.chars().take(32).collect::<String>()
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    providers: Vec<ProviderConfig>,
}

/// Whether `url` may carry keys or discovery: `https`, or `http` to a loopback host (a
/// provider on the same machine, as in development and tests).
pub fn trusted_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') { host.split(']').next().map(|h| &h[1..]) } else { host.split(':').next() };
    matches!(name, Some("127.0.0.1" | "localhost" | "::1"))
}

impl ProviderConfig {
    /// Fill defaults (`algorithms`, `audiences` from `default_audiences`) and check it.
    pub fn finish(mut self, field: &str, default_audiences: &[String]) -> Result<Self, ConfigError> {
        let err = |name: &str, why: String| ConfigError::new(format!("{field}.{name}"), why);
        self.issuer = self.issuer.trim().to_owned();
        if !trusted_url(&self.issuer) || self.issuer.contains(['?', '#']) {
            return Err(err("issuer", "must be an https URL (http only on a loopback host), without query".into()));
        }
        if let Some(url) = &self.jwks_url {
            if !trusted_url(url) {
                return Err(err("jwks_url", "must be an https URL (http only on a loopback host)".into()));
            }
        }
        if self.algorithms.is_empty() {
            self.algorithms = DEFAULT_ALGORITHMS.to_vec();
        }
        if self.audiences.is_empty() {
            self.audiences = default_audiences.to_vec();
        }
        if self.audiences.is_empty() {
            return Err(err(
                "audiences",
                "tokens must be issued for this gateway: set JWT_AUDIENCE (or PUBLIC_URL, or audiences:)".into(),
            ));
        }
        if self.subject_claim.trim().is_empty() || self.roles_claims.iter().any(|c| c.trim().is_empty()) {
            return Err(err("subject_claim", "claim paths may not be empty".into()));
        }
        Ok(self)
    }
}

/// Give every provider its subject prefix when tokens come from more than one source
/// (`others`: a shared secret or key file is trusted too); prefixes must then tell the sources
/// apart.
pub fn scope_subjects(providers: &mut [ProviderConfig], others: bool) -> Result<(), ConfigError> {
    let several = providers.len() + usize::from(others) > 1;
    for p in providers.iter_mut() {
        if p.subject_prefix.is_none() && several {
            p.subject_prefix = Some(format!("{}#", p.issuer));
        }
    }
    if several {
        for (i, p) in providers.iter().enumerate() {
            let prefix = p.subject_prefix.as_deref().unwrap_or("");
            if prefix.is_empty() {
                return Err(ConfigError::new(
                    format!("providers[{i}].subject_prefix"),
                    "may not be empty while tokens come from more than one source (subjects would collide)",
                ));
            }
            let clash = providers.iter().enumerate().any(|(j, o)| {
                let other = o.subject_prefix.as_deref().unwrap_or("");
                j != i && (other.starts_with(prefix) || prefix.starts_with(other))
            });
            if clash {
                return Err(ConfigError::new(
                    format!("providers[{i}].subject_prefix"),
                    "must not be the start of another provider's (subjects would collide)",
                ));
            }
        }
    }
    Ok(())
}

/// The providers `IDENTITY_PROVIDERS_FILE` lists.
pub fn load_file(path: &std::path::Path, default_audiences: &[String]) -> Result<Vec<ProviderConfig>, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(&name, e.to_string()))?;
    let file: ProvidersFile = serde_yaml::from_str(&text).map_err(|e| ConfigError::new(&name, e.to_string()))?;
    let mut out = Vec::new();
    for (i, p) in file.providers.into_iter().enumerate() {
        let p = p.finish(&format!("{name}: providers[{i}]"), default_audiences)?;
        if out.iter().any(|o: &ProviderConfig| o.issuer == p.issuer) {
            return Err(ConfigError::new(format!("{name}: providers[{i}].issuer"), "listed twice"));
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(trusted_url("https://idp.example.com/realms/a"));
        assert!(trusted_url("http://127.0.0.1:8080/"));
        assert!(trusted_url("http://localhost"));
        assert!(!trusted_url("http://idp.example.com"));
        assert!(!trusted_url("http://127.0.0.1.evil.com/"));
        assert!(!trusted_url("http://localhost@evil.com/"));
        assert!(!trusted_url("ftp://127.0.0.1/"));
    }

    #[test]
    fn a_file_lists_providers_with_their_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("providers.yaml");
        std::fs::write(
            &file,
            "providers:\n- issuer: https://kc.example.com/realms/acme\n  roles_claims: [realm_access.roles]\n\
             - issuer: https://login.example.com\n  audiences: [api://gw]\n  algorithms: [RS256]\n  \
             roles_claims: [groups]\n  role_map: {g-admins: [admin]}\n",
        )
        .unwrap();
        let list = load_file(&file, &["https://gw.example.com".into()]).unwrap();
        assert_eq!(list[0].audiences, ["https://gw.example.com"]);
        assert_eq!(list[0].algorithms.len(), DEFAULT_ALGORITHMS.len());
        assert_eq!(list[1].role_map["g-admins"], ["admin"]);
        assert!(load_file(&file, &[]).is_err(), "no audience for the first one");
        std::fs::write(&file, "providers:\n- issuer: http://idp.example.com\n  audiences: [x]\n").unwrap();
        assert!(load_file(&file, &[]).unwrap_err().to_string().contains("issuer"));
    }
}
