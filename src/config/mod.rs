//! Typed settings read from the environment (and `.env`), validated once at start-up.
//!
//! Every variable is documented in `example.env`. Settings are a value passed around as
//! `Arc<Settings>`, never a global, so tests can build as many gateways as they like.
//! [`files`] loads and validates `tools.yaml` and `policy.yaml`; [`watch`] asks their owners to
//! reload them when they change.

pub mod files;
pub mod providers;
pub mod servers;
pub mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// A configuration problem, naming the variable (or file and field) and the reason; the
/// underlying error (a read, a parse, a compile), when there is one, is its `source()`.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct ConfigError {
    /// The environment variable or `file: field` at fault.
    pub source_name: String,
    /// Why the value was refused.
    pub reason: String,
    #[source]
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConfigError {
    /// A problem with `source_name` the gateway itself found.
    pub fn new(source_name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { source_name: source_name.into(), reason: reason.into(), cause: None }
    }

    /// A problem with `source_name` in `cause`'s own words (kept as the source).
    pub fn because(source_name: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        let reason = cause.to_string();
        Self::caused(source_name, reason, cause)
    }

    /// A problem with `source_name` that `cause` reported (kept as the source).
    pub fn caused(
        source_name: impl Into<String>,
        reason: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self { source_name: source_name.into(), reason: reason.into(), cause: Some(Box::new(cause)) }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default: for log shippers).
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// What happens when a backend's tool definition no longer matches its pinned digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Do not compare.
    Off,
    /// Log, flag in `/health/actors`, `/metrics` and `/admin/tools`; keep serving.
    Warn,
    /// Flag, and refuse calls to the tool until an operator approves the new definition.
    Block,
}

/// JWT verification settings.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HMAC secret for HS256/384/512; `None` means dev mode (a generated secret under the data dir).
    pub secret: Option<String>,
    /// The only algorithm accepted, whatever a token's header claims.
    pub algorithm: Algorithm,
    /// PEM public key for RS256/ES256.
    pub public_key_file: Option<PathBuf>,
    /// JWKS file for RS256/ES256 (keys chosen by `kid`).
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` value, when set.
    pub issuer: Option<String>,
    /// Required `aud` value, when set.
    pub audience: Option<String>,
    /// Clock-skew tolerance for `exp`, `nbf` and `iat`, in seconds (at most 60).
    pub leeway_seconds: u64,
    /// Longest lifetime a token may have (`exp` − `iat`, or `exp` − now without `iat`): a
    /// stolen long-lived token is refused even though its signature holds.
    pub max_ttl_seconds: u64,
    /// Identity providers whose published keys verify tokens (`JWT_ISSUER` with discovery or
    /// `JWT_JWKS_URL`, and `IDENTITY_PROVIDERS_FILE`).
    pub providers: Vec<providers::ProviderConfig>,
    /// Whether a shared secret, key file or `JWT_ALGORITHM` is configured besides providers
    /// (without providers, always: dev mode generates a secret).
    pub static_keys: bool,
    /// Least time between two key-set fetches caused by tokens naming an unknown `kid` (a
    /// flood of made-up `kid`s costs the provider one request per period).
    pub jwks_refetch: Duration,
}

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Directory for the embedded database and the dev-mode secret.
    pub data_dir: PathBuf,
    /// JWT verification.
    pub jwt: JwtSettings,
    /// Path of `tools.yaml`.
    pub tools_config: PathBuf,
    /// Path of `policy.yaml`.
    pub policy_config: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Largest backend reply accepted, in bytes.
    pub max_response_bytes: usize,
    /// Default backend timeout (a tool's `timeout_seconds` overrides it).
    pub backend_timeout: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// HTTP worker threads (defaults to the number of cores).
    pub workers: Option<usize>,
    /// Audit rows per batch insert.
    pub audit_batch_size: usize,
    /// `AUDIT_WRITES`: audit batch writes running at once, each on its own connection
    /// (default: 4 on PostgreSQL, 1 on SQLite, which has one writer anyway).
    pub audit_writes: Option<usize>,
    /// Longest time an audit row waits before its batch is flushed.
    pub audit_flush_interval: Duration,
    /// Database pool size.
    pub database_pool_size: usize,
    /// Browser origins allowed on the MCP endpoints (empty: only localhost origins).
    pub allowed_origins: Vec<String>,
    /// Extra `Host` values accepted when bound to loopback (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Public base URL (`https://gw.example.com`) for protected-resource metadata.
    pub public_url: Option<String>,
    /// The console's OAuth client id at the (first) identity provider: with it, the console
    /// signs in by the authorization code flow with PKCE (`CONSOLE_CLIENT_ID`, a public client
    /// whose redirect URI is `<gateway>/console`). Without it, a pasted token.
    pub console_client_id: Option<String>,
    /// Scopes the console asks for (`CONSOLE_SCOPES`, default `openid`).
    pub console_scopes: String,
    /// Where a held call's approval request is announced (`APPROVAL_WEBHOOK_URL`, a chat or
    /// ticketing hook; POSTed JSON without arguments, retried with back-off).
    pub approval_webhook_url: Option<String>,
    /// Most calls one caller may have waiting for approval at once
    /// (`APPROVAL_MAX_PENDING_PER_USER`, default 20): more are refused (503 busy).
    pub approval_max_pending_per_user: i64,
    /// Peers whose `Forwarded`/`X-Forwarded-*` headers are believed (a reverse proxy in front):
    /// from anyone else those headers are ignored, so a client cannot choose the URL the
    /// gateway advertises or the address it audits.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Idle time after which an MCP session is forgotten.
    pub mcp_session_idle: Duration,
    /// Interval of keep-alive comments on SSE streams.
    pub sse_keepalive: Duration,
    /// TEST ONLY: principal (`sub:role,role`) given to MCP requests without a token.
    pub mcp_anonymous_principal: Option<(String, Vec<String>)>,
    /// Redis shared by replicas for rate limits (local limits when unset).
    pub redis_url: Option<String>,
    /// Whether calls pass (`open`) or fail (`closed`) while Redis is unreachable.
    pub rate_limit_fail_open: bool,
    /// Consecutive backend failures that open its circuit.
    pub breaker_failures: u32,
    /// How long an open circuit fails fast before a trial call.
    pub breaker_cooldown: Duration,
    /// Longest wait for a request's headers (slow clients are disconnected).
    pub header_timeout: Duration,
    /// Longest wait for a request's body.
    pub body_timeout: Duration,
    /// Idle keep-alive connections are closed after this long.
    pub keep_alive: Duration,
    /// Jobs this replica runs at once (more stay pending, in order).
    pub job_max_concurrent: usize,
    /// `JOB_MAX_PER_USER`: one user's jobs running at once across all replicas (default 4), so
    /// one user's slow jobs cannot take every slot; pending jobs are claimed fairly across users.
    pub job_max_per_user: i64,
    /// `JOB_MAX_PER_TOOL`: one tool's jobs running at once across all replicas (0, the default:
    /// no limit beyond the others), to spare a slow backend.
    pub job_max_per_tool: i64,
    /// How often the replica looks for pending jobs.
    pub job_poll: Duration,
    /// A running job whose replica has not beaten for this long is recovered.
    pub job_stale: Duration,
    /// Terminal jobs (and their results) are kept this long.
    pub job_result_ttl: Duration,
    /// `AUDIT_MODE=strict`: a call's audit row is durable before its response is sent.
    pub audit_strict: bool,
    /// `AUDIT_QUEUE_MAX`: audit rows held in memory at most. Beyond it a call waits until its
    /// own row is durable (database or spool) before it is answered: the queue stays bounded
    /// and a crash cannot lose more than this many answered calls.
    pub audit_queue_max: i64,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: export request spans over OTLP/HTTP there (off when unset).
    pub otel_endpoint: Option<String>,
    /// `AUDIT_RETENTION_DAYS`: audit rows older than this are deleted (hourly, behind a
    /// checkpoint so what remains still verifies); `None` (0, the default) keeps them forever.
    pub audit_retention: Option<Duration>,
    /// `AUDIT_HMAC_KEY` (hex, at least 32 bytes): signs the audit ledger, chain heads and
    /// checkpoints, so someone holding only the database cannot rewrite history unnoticed.
    /// Keep it outside the database (a secret store); `audit verify` needs it to check them.
    pub audit_hmac_key: Option<crate::db::audit::evidence::AuditKey>,
    /// Tool-definition pinning mode.
    pub pinning: Pinning,
    /// How often backends' definitions are compared with their pins.
    pub pin_check: Duration,
}

/// The bearer-token settings (`JWT_*`), checked together.
fn jwt(lookup: Lookup<'_>) -> Result<JwtSettings, ConfigError> {
    let algorithm = algorithm(&get(lookup, "JWT_ALGORITHM").unwrap_or_else(|| "HS256".into()))?;
    let jwt = JwtSettings {
        secret: get(lookup, "JWT_SECRET_KEY"),
        algorithm,
        public_key_file: get(lookup, "JWT_PUBLIC_KEY_FILE").map(PathBuf::from),
        jwks_file: get(lookup, "JWT_JWKS_FILE").map(PathBuf::from),
        issuer: get(lookup, "JWT_ISSUER"),
        audience: get(lookup, "JWT_AUDIENCE"),
        leeway_seconds: parse(lookup, "JWT_LEEWAY_SECONDS", 30)?,
        max_ttl_seconds: parse(lookup, "JWT_MAX_TTL_SECONDS", 86_400)?,
        providers: Vec::new(),
        static_keys: true,
        jwks_refetch: Duration::from_secs(parse::<u64>(lookup, "JWKS_REFETCH_SECONDS", 10)?.max(1)),
    };
    let mut jwt = jwt;
    let static_keys = jwt.secret.is_some()
        || jwt.public_key_file.is_some()
        || jwt.jwks_file.is_some()
        || get(lookup, "JWT_ALGORITHM").is_some();
    let default_audiences: Vec<String> = match (get(lookup, "JWT_AUDIENCE"), get(lookup, "PUBLIC_URL")) {
        (Some(aud), _) => aud.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect(),
        (None, Some(url)) => {
            let url = url.trim_end_matches('/');
            vec![url.to_owned(), format!("{url}/mcp")]
        }
        (None, None) => Vec::new(),
    };
    let jwks_url = get(lookup, "JWT_JWKS_URL");
    if jwks_url.is_some() || (jwt.issuer.is_some() && !static_keys) {
        let issuer = jwt
            .issuer
            .clone()
            .ok_or_else(|| ConfigError::new("JWT_ISSUER", "JWT_JWKS_URL needs the issuer its tokens name"))?;
        let words = |name: &str| {
            get(lookup, name)
                .map(|v| v.split(',').map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect::<Vec<_>>())
        };
        let algorithms = match words("JWT_ALGORITHMS") {
            None => Vec::new(),
            Some(names) => names
                .iter()
                .map(|n| providers::parse_algorithm(n).map_err(|e| ConfigError::new("JWT_ALGORITHMS", e)))
                .collect::<Result<_, _>>()?,
        };
        let mut role_map = std::collections::BTreeMap::<String, Vec<String>>::new();
        for pair in words("JWT_ROLE_MAP").unwrap_or_default() {
            let (from, to) = pair.split_once(':').ok_or_else(|| {
                ConfigError::new("JWT_ROLE_MAP", "expected provider-value:gateway-role pairs, comma-separated")
            })?;
            role_map.entry(from.trim().to_owned()).or_default().push(to.trim().to_owned());
        }
        let provider = providers::ProviderConfig {
            issuer,
            jwks_url,
            audiences: Vec::new(),
            algorithms,
            subject_claim: get(lookup, "JWT_SUBJECT_CLAIM").unwrap_or_else(|| "sub".into()),
            roles_claims: words("JWT_ROLES_CLAIM").unwrap_or_else(|| vec!["roles".into()]),
            role_map,
            workspace_claim: get(lookup, "JWT_WORKSPACE_CLAIM").unwrap_or_else(|| "workspace".into()),
            scopes_supported: words("JWT_SCOPES_SUPPORTED").unwrap_or_default(),
            subject_prefix: get(lookup, "JWT_SUBJECT_PREFIX"),
        };
        jwt.providers.push(provider.finish("JWT_ISSUER", &default_audiences)?);
    }
    if let Some(path) = get(lookup, "IDENTITY_PROVIDERS_FILE") {
        for p in providers::load_file(std::path::Path::new(&path), &default_audiences)? {
            if jwt.providers.iter().any(|o| o.issuer == p.issuer) {
                return Err(ConfigError::new("IDENTITY_PROVIDERS_FILE", "lists JWT_ISSUER's provider again"));
            }
            jwt.providers.push(p);
        }
    }
    jwt.static_keys = static_keys || jwt.providers.is_empty();
    providers::scope_subjects(&mut jwt.providers, static_keys)?;
    let jwt = jwt;
    if jwt.max_ttl_seconds == 0 {
        return Err(ConfigError::new("JWT_MAX_TTL_SECONDS", "must be at least 1"));
    }
    if jwt.leeway_seconds > 60 {
        return Err(ConfigError::new("JWT_LEEWAY_SECONDS", "must be at most 60"));
    }
    let is_hmac = matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
    if let Some(secret) = &jwt.secret {
        if is_hmac && secret.len() < 32 {
            return Err(ConfigError::new("JWT_SECRET_KEY", "must be at least 32 bytes for HS algorithms"));
        }
    }
    if !is_hmac && jwt.public_key_file.is_none() && jwt.jwks_file.is_none() && jwt.static_keys {
        return Err(ConfigError::new("JWT_ALGORITHM", "RS256/ES256 need JWT_PUBLIC_KEY_FILE or JWT_JWKS_FILE"));
    }
    Ok(jwt)
}

/// One of `options` (the first is the default when the variable is not set).
fn choice<T: Copy>(lookup: Lookup<'_>, name: &str, options: &[(&str, T)]) -> Result<T, ConfigError> {
    let Some(value) = get(lookup, name) else {
        return Ok(options[0].1);
    };
    if let Some((_, chosen)) = options.iter().find(|(text, _)| *text == value) {
        return Ok(*chosen);
    }
    let names: Vec<&str> = options.iter().map(|(text, _)| *text).collect();
    let (last, first) = names.split_last().map(|(l, f)| (*l, f.join(", "))).unwrap_or_default();
    Err(ConfigError::new(name, format!("{value:?} is not {first} or {last}")))
}

/// `TRUSTED_PROXIES`: IP addresses whose forwarded headers are believed.
fn trusted_proxies(lookup: Lookup<'_>) -> Result<Vec<std::net::IpAddr>, ConfigError> {
    list(lookup, "TRUSTED_PROXIES")
        .iter()
        .map(|ip| ip.parse().map_err(|_| ConfigError::new("TRUSTED_PROXIES", format!("{ip:?} is not an IP address"))))
        .collect()
}

/// `MCP_ANONYMOUS_PRINCIPAL` (`sub:role,role`), for local conformance testing only.
fn anonymous_principal(lookup: Lookup<'_>) -> Option<(String, Vec<String>)> {
    get(lookup, "MCP_ANONYMOUS_PRINCIPAL")
        .map(|p| {
            let (sub, roles) = p.split_once(':').unwrap_or((p.as_str(), ""));
            let roles = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect();
            (sub.trim().to_owned(), roles)
        })
        .filter(|(sub, _)| !sub.is_empty())
}

/// `AUDIT_HMAC_KEY`, when set.
fn audit_key(lookup: Lookup<'_>) -> Result<Option<crate::db::audit::evidence::AuditKey>, ConfigError> {
    match get(lookup, "AUDIT_HMAC_KEY").filter(|k| !k.trim().is_empty()) {
        None => Ok(None),
        Some(text) => crate::db::audit::evidence::AuditKey::parse(&text)
            .map(Some)
            .map_err(|why| ConfigError::because("AUDIT_HMAC_KEY", why)),
    }
}

/// `AUDIT_RETENTION_DAYS` (0: forever; beyond a century, as good as forever, and no date
/// arithmetic overflows).
fn retention(lookup: Lookup<'_>) -> Result<Option<Duration>, ConfigError> {
    Ok(match parse::<u64>(lookup, "AUDIT_RETENTION_DAYS", 0)? {
        0 => None,
        days => Some(Duration::from_secs(days.min(36_500) * 86_400)),
    })
}

/// `REDIS_URL`, checked here (no connection is made) so `check-config` and start-up refuse a
/// URL the client cannot use, before anything is started.
fn redis_url(lookup: Lookup<'_>) -> Result<Option<String>, ConfigError> {
    match get(lookup, "REDIS_URL") {
        Some(url) => match redis::Client::open(url.as_str()) {
            Ok(_) => Ok(Some(url)),
            Err(e) => Err(ConfigError::because("REDIS_URL", e)),
        },
        None => Ok(None),
    }
}

fn list(lookup: Lookup<'_>, name: &str) -> Vec<String> {
    get(lookup, name)
        .map(|v| v.split(',').map(|s| s.trim().trim_end_matches('/').to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// Reads variables by name; tests pass a map instead of the process environment.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn get(lookup: Lookup<'_>, name: &str) -> Option<String> {
    lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse<T: std::str::FromStr>(lookup: Lookup<'_>, name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(lookup, name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
    }
}

fn algorithm(raw: &str) -> Result<Algorithm, ConfigError> {
    match raw.to_ascii_uppercase().as_str() {
        "HS256" => Ok(Algorithm::HS256),
        "HS384" => Ok(Algorithm::HS384),
        "HS512" => Ok(Algorithm::HS512),
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        other => {
            Err(ConfigError::new("JWT_ALGORITHM", format!("{other:?} is not one of HS256, HS384, HS512, RS256, ES256")))
        }
    }
}

impl Settings {
    /// Settings from the process environment (after `.env` was loaded by the binary).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Settings from a map of variables (for tests and tools).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| vars.get(name).cloned())
    }

    /// Settings from any variable source; validates every value.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(get(lookup, "DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = get(lookup, "DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gateway.db").display()));
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite://"))
        {
            return Err(ConfigError::new("DATABASE_URL", "must start with postgres://, postgresql:// or sqlite://"));
        }
        let jwt = jwt(lookup)?;
        let log_format = choice(lookup, "LOG_FORMAT", &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)])?;
        let backend_timeout: u64 = parse(lookup, "BACKEND_TIMEOUT_SECONDS", 30)?;
        if backend_timeout == 0 {
            return Err(ConfigError::new("BACKEND_TIMEOUT_SECONDS", "must be at least 1"));
        }
        let max_payload_bytes = parse(lookup, "MAX_PAYLOAD_BYTES", 1024 * 1024)?;
        let audit_batch_size = parse(lookup, "AUDIT_BATCH_SIZE", 1000)?;
        if max_payload_bytes == 0 || audit_batch_size == 0 {
            return Err(ConfigError::new("MAX_PAYLOAD_BYTES/AUDIT_BATCH_SIZE", "must be positive"));
        }
        Ok(Self {
            host: get(lookup, "GATEWAY_HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: parse(lookup, "GATEWAY_PORT", 8000)?,
            database_url,
            data_dir,
            jwt,
            tools_config: PathBuf::from(get(lookup, "TOOLS_CONFIG").unwrap_or_else(|| "config/tools.yaml".into())),
            policy_config: PathBuf::from(get(lookup, "POLICY_CONFIG").unwrap_or_else(|| "config/policy.yaml".into())),
            max_payload_bytes,
            max_response_bytes: parse(lookup, "MAX_RESPONSE_BYTES", 16 * 1024 * 1024)?,
            backend_timeout: Duration::from_secs(backend_timeout),
            log_format,
            workers: get(lookup, "GATEWAY_WORKERS")
                .map(|w| w.parse())
                .transpose()
                .map_err(|e: std::num::ParseIntError| ConfigError::because("GATEWAY_WORKERS", e))?,
            audit_batch_size,
            audit_writes: Some(parse::<usize>(lookup, "AUDIT_WRITES", 0)?).filter(|w| *w > 0),
            audit_flush_interval: Duration::from_millis(parse(lookup, "AUDIT_FLUSH_INTERVAL_MS", 20)?),
            database_pool_size: parse(lookup, "DATABASE_POOL_SIZE", 8)?,
            allowed_origins: list(lookup, "ALLOWED_ORIGINS"),
            allowed_hosts: list(lookup, "ALLOWED_HOSTS"),
            public_url: get(lookup, "PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned()),
            console_client_id: get(lookup, "CONSOLE_CLIENT_ID").filter(|c| !c.trim().is_empty()),
            console_scopes: get(lookup, "CONSOLE_SCOPES").unwrap_or_else(|| "openid".to_owned()),
            approval_webhook_url: get(lookup, "APPROVAL_WEBHOOK_URL"),
            approval_max_pending_per_user: parse::<i64>(lookup, "APPROVAL_MAX_PENDING_PER_USER", 20)?.max(1),
            trusted_proxies: trusted_proxies(lookup)?,
            mcp_session_idle: Duration::from_secs(parse(lookup, "MCP_SESSION_IDLE_SECONDS", 1800)?),
            sse_keepalive: Duration::from_secs(parse::<u64>(lookup, "SSE_KEEPALIVE_SECONDS", 15)?.max(1)),
            mcp_anonymous_principal: anonymous_principal(lookup),
            redis_url: redis_url(lookup)?,
            breaker_failures: parse(lookup, "BREAKER_FAILURES", 5)?,
            breaker_cooldown: Duration::from_secs(parse(lookup, "BREAKER_COOLDOWN_SECONDS", 30)?),
            header_timeout: Duration::from_millis(parse(lookup, "HEADER_TIMEOUT_MS", 5000)?),
            body_timeout: Duration::from_millis(parse(lookup, "BODY_TIMEOUT_MS", 30000)?),
            keep_alive: Duration::from_secs(parse(lookup, "KEEP_ALIVE_SECONDS", 75)?),
            job_max_concurrent: parse(lookup, "JOB_MAX_CONCURRENT", 16)?,
            job_max_per_user: parse::<i64>(lookup, "JOB_MAX_PER_USER", 4)?.max(1),
            job_max_per_tool: match parse::<i64>(lookup, "JOB_MAX_PER_TOOL", 0)? {
                n if n <= 0 => i64::MAX,
                n => n,
            },
            job_poll: Duration::from_millis(parse::<u64>(lookup, "JOB_POLL_MS", 200)?.max(10)),
            job_stale: Duration::from_secs(parse::<u64>(lookup, "JOB_STALE_SECONDS", 30)?.max(1)),
            job_result_ttl: Duration::from_secs(parse(lookup, "JOB_RESULT_TTL_SECONDS", 86_400)?),
            audit_strict: choice(lookup, "AUDIT_MODE", &[("batched", false), ("strict", true)])?,
            audit_queue_max: parse(lookup, "AUDIT_QUEUE_MAX", 20_000)?,
            otel_endpoint: get(lookup, "OTEL_EXPORTER_OTLP_ENDPOINT").filter(|s| !s.trim().is_empty()),
            audit_retention: retention(lookup)?,
            audit_hmac_key: audit_key(lookup)?,
            pinning: choice(
                lookup,
                "TOOL_PINNING",
                &[("warn", Pinning::Warn), ("block", Pinning::Block), ("off", Pinning::Off)],
            )?,
            pin_check: Duration::from_secs(parse::<u64>(lookup, "PIN_CHECK_SECONDS", 300)?.max(1)),
            rate_limit_fail_open: choice(lookup, "RATE_LIMIT_FAILURE_MODE", &[("open", true), ("closed", false)])?,
        })
    }

    /// Whether the configured host is a loopback address (dev mode may only bind those).
    pub fn binds_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_are_safe_and_need_no_variables() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
        assert!(s.database_url.starts_with("sqlite://"));
        assert_eq!(s.jwt.leeway_seconds, 30);
        assert!(s.binds_loopback());
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(settings(&[("JWT_SECRET_KEY", "short")]).unwrap_err().source_name, "JWT_SECRET_KEY");
        assert_eq!(settings(&[("JWT_LEEWAY_SECONDS", "90")]).unwrap_err().source_name, "JWT_LEEWAY_SECONDS");
        assert_eq!(settings(&[("GATEWAY_PORT", "x")]).unwrap_err().source_name, "GATEWAY_PORT");
        assert_eq!(settings(&[("JWT_ALGORITHM", "none")]).unwrap_err().source_name, "JWT_ALGORITHM");
        assert_eq!(settings(&[("JWT_ALGORITHM", "RS256")]).unwrap_err().source_name, "JWT_ALGORITHM");
        assert_eq!(settings(&[("DATABASE_URL", "mysql://x")]).unwrap_err().source_name, "DATABASE_URL");
        // Before: accepted here (and by check-config); `serve` then failed after the audit
        // writer had started, and panicked stopping it.
        for url in ["redis://:pw@127.0.0.1:notaport", "rediss2://127.0.0.1"] {
            let e = settings(&[("REDIS_URL", url)]).unwrap_err();
            assert_eq!(e.source_name, "REDIS_URL");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
        assert!(settings(&[("REDIS_URL", "redis://127.0.0.1:6379")]).is_ok());
        assert!(settings(&[("AUDIT_WRITES", "many")]).is_err());
    }

    /// Before: a typed error that says its cause and also keeps it as its source printed the
    /// cause twice (`AUDIT_HMAC_KEY holds 2 bytes…: …holds 2 bytes…`).
    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let e = anyhow::Error::new(settings(&[("AUDIT_HMAC_KEY", "abcd")]).unwrap_err());
        let text = crate::error::explain(&e);
        assert_eq!(text.matches("at least 32 are needed").count(), 1, "{text}");
        let read = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(read).context("database: error connecting to server");
        assert_eq!(crate::error::explain(&e), "database: error connecting to server: connection refused");
    }
}
