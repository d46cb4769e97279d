//! Bearer JWT verification and minting.
//!
//! The accepted algorithm comes from configuration, never from the token header. `exp` is
//! required; `nbf`, `iat`, `iss` and `aud` are checked (the last two when configured, and then
//! required); the leeway is explicit. With no `JWT_SECRET_KEY` the gateway runs in dev mode: it
//! generates a random secret once and keeps it under the data directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix_web::HttpRequest;
use gateway_actors::Caller;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, JwtSettings};
use crate::error::GatewayError;

/// The claims the gateway reads; unknown claims are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Roles granting tools through `policy.yaml`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Optional workspace restricting tools further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Expiry (seconds since the epoch); required.
    pub exp: u64,
    /// Issued-at; a token from the future is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not-before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: one string, or a list (RFC 7519 §4.1.3; identity providers send both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// OAuth scopes, space-separated (RFC 9068 §2.2.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A token's `aud`: the configured audience must be the one, or one of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "mcp-gateway"`.
    One(String),
    /// `"aud": ["mcp-gateway", "other-api"]`.
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(aud: &str) -> Self {
        Self::One(aud.to_owned())
    }
}

enum Keys {
    /// Only identity providers' keys are trusted.
    None,
    Single(DecodingKey),
    /// JWKS keys by `kid`; a set with one key also serves tokens without `kid`.
    Set(HashMap<String, DecodingKey>, Option<DecodingKey>),
}

/// Verifies bearer tokens; built once at start-up and shared by all workers.
pub struct Authenticator {
    keys: Keys,
    validation: Validation,
    leeway: u64,
    max_ttl: u64,
    /// True when the secret was generated for local development.
    pub dev_mode: bool,
    secret: Option<Vec<u8>>,
    verified: dashmap::DashMap<Box<str>, Verified>,
    /// Identity providers whose published keys verify tokens naming them as `iss`.
    pub providers: crate::identity::Providers,
    jwks_refetch: std::time::Duration,
}

/// Why a token did not verify: a refusal, or a `kid` the provider may have just published.
enum Refusal {
    Refused(GatewayError),
    UnknownKid(usize),
}

impl From<GatewayError> for Refusal {
    fn from(e: GatewayError) -> Self {
        Self::Refused(e)
    }
}

fn fail(reason: &'static str) -> GatewayError {
    GatewayError::Unauthenticated { reason: reason.to_owned(), token_sent: true }
}

/// A token's claims as written, without checking anything: `T` picks what is read.
fn unverified_claims<T: serde::de::DeserializeOwned>(token: &str) -> Option<T> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `iss` a token claims, read before verification only to pick whose keys verify it.
fn claimed_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    unverified_claims::<Issuer>(token)?.iss
}

/// A token that passed full verification: what it grants and until when. An agent sends the
/// same token on every call; checking its signature and claims again each time was ~6% of a
/// proxied call's CPU. The key is the whole token, signature included, so only a token that
/// verified can hit; time-bound claims (`exp`) are checked again on every hit.
struct Verified {
    caller: Caller,
    exp: u64,
    /// For a provider's token: the provider and the `kid` that verified it. A hit counts only
    /// while that key is still published (a withdrawn key stops its tokens at once).
    key: Option<(usize, Option<String>)>,
}

/// Verified tokens kept at most; a full cache is emptied (tokens re-verify once).
const VERIFIED_CACHE_MAX: usize = 10_000;

fn config_err(name: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(name, reason.to_string())
}

/// The dev-mode secret under `data_dir`, created with owner-only permissions on first use.
fn dev_secret(data_dir: &Path) -> Result<String, ConfigError> {
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| config_err(&data_dir.display().to_string(), e))?;
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| config_err(&path.display().to_string(), e))?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(|e| config_err(&path.display().to_string(), e))?;
    Ok(secret)
}

/// Whether `alg` is an HMAC algorithm (a shared secret rather than a key pair).
pub fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

impl Authenticator {
    /// Build the verifier from settings, loading key files (or the dev secret).
    pub fn from_settings(jwt: &JwtSettings, data_dir: &Path) -> Result<Self, ConfigError> {
        let mut dev_mode = false;
        let mut secret = None;
        let keys = if !jwt.static_keys {
            Keys::None
        } else if is_hmac(jwt.algorithm) {
            let value = match &jwt.secret {
                Some(s) => s.clone(),
                None => {
                    dev_mode = true;
                    dev_secret(data_dir)?
                }
            };
            secret = Some(value.clone().into_bytes());
            Keys::Single(DecodingKey::from_secret(value.as_bytes()))
        } else if let Some(path) = &jwt.jwks_file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| config_err(&name, e))?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| config_err(&name, e))?;
            let mut by_kid = HashMap::new();
            let mut only = None;
            for (i, jwk) in set.keys.iter().enumerate() {
                let key = DecodingKey::from_jwk(jwk).map_err(|e| config_err(&format!("{name}: keys[{i}]"), e))?;
                if set.keys.len() == 1 {
                    only = Some(key.clone());
                }
                if let Some(kid) = &jwk.common.key_id {
                    by_kid.insert(kid.clone(), key);
                }
            }
            if set.keys.is_empty() {
                return Err(config_err(&name, "the key set is empty"));
            }
            Keys::Set(by_kid, only)
        } else if let Some(path) = &jwt.public_key_file {
            let name = path.display().to_string();
            let pem = std::fs::read(path).map_err(|e| config_err(&name, e))?;
            let key = match jwt.algorithm {
                Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                _ => DecodingKey::from_rsa_pem(&pem),
            };
            Keys::Single(key.map_err(|e| config_err(&name, e))?)
        } else {
            return Err(config_err("JWT_PUBLIC_KEY_FILE", "RS256/ES256 need a public key or a JWKS file"));
        };
        let mut validation = Validation::new(jwt.algorithm);
        validation.leeway = jwt.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &jwt.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &jwt.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            keys,
            validation,
            leeway: jwt.leeway_seconds,
            max_ttl: jwt.max_ttl_seconds,
            dev_mode,
            secret,
            verified: dashmap::DashMap::new(),
            providers: Arc::new(jwt.providers.iter().cloned().map(crate::identity::Provider::new).collect()),
            jwks_refetch: jwt.jwks_refetch,
        })
    }

    /// Which claim of a token produced each of its roles (`[(role, "claim: value")]`), for the
    /// policy explanation. Read after the token verified; `None` when it cannot be read.
    pub fn role_sources(&self, token: &str) -> Option<Vec<(String, String)>> {
        let claims: serde_json::Map<String, serde_json::Value> = unverified_claims(token)?;
        let issuer = claims.get("iss").and_then(serde_json::Value::as_str);
        match self.providers.iter().find(|p| Some(p.config.issuer.as_str()) == issuer) {
            Some(provider) => crate::identity::map_claims(&claims, &provider.config).ok().map(|m| m.roles),
            None => Some(
                claims
                    .get("roles")
                    .and_then(serde_json::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str)
                    .map(|r| (r.to_owned(), format!("roles: {r}")))
                    .collect(),
            ),
        }
    }

    /// Start fetching every provider's keys (in the background; tokens from a provider verify
    /// once its keys arrive).
    pub fn start_providers(&self) {
        for provider in self.providers.iter() {
            provider.start(self.jwks_refetch);
        }
    }

    fn key_for(&self, token: &str) -> Result<&DecodingKey, &'static str> {
        match &self.keys {
            Keys::None => Err("invalid token: not issued by a trusted identity provider"),
            Keys::Single(key) => Ok(key),
            Keys::Set(by_kid, only) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| MALFORMED)?;
                match header.kid {
                    Some(kid) => by_kid.get(&kid).ok_or("invalid token: unknown key id"),
                    None => only.as_ref().ok_or("invalid token: no key id (kid)"),
                }
            }
        }
    }

    /// Verify `token` and return the caller it names (from the verified-token cache when
    /// this exact token verified before and has not expired since).
    /// A provider's token naming a `kid` not held now is refused (see [`Self::verify_fetching`]).
    pub fn verify(&self, token: &str) -> Result<Caller, GatewayError> {
        match self.verify_once(token) {
            Ok(caller) => Ok(caller),
            Err(Refusal::Refused(e)) => Err(e),
            Err(Refusal::UnknownKid(_)) => Err(fail("invalid token: unknown key id")),
        }
    }

    fn verify_once(&self, token: &str) -> Result<Caller, Refusal> {
        if let Some(hit) = self.verified.get(token) {
            let published = match &hit.key {
                None => true,
                Some((i, kid)) => self.providers[*i].keys.load().keys.find(kid.as_deref()).is_some(),
            };
            if published && hit.exp + self.leeway >= jsonwebtoken::get_current_timestamp() {
                return Ok(hit.caller.clone());
            }
            drop(hit);
            self.verified.remove(token);
        }
        self.verify_uncached(token)
    }

    /// [`Self::verify`], except that a token naming a `kid` its provider has not published
    /// (yet) makes the provider's key owner fetch the keys again once (rate-limited), then the
    /// token is tried again.
    pub async fn verify_fetching(&self, token: &str) -> Result<Caller, GatewayError> {
        match self.verify_once(token) {
            Ok(caller) => Ok(caller),
            Err(Refusal::Refused(e)) => Err(e),
            Err(Refusal::UnknownKid(i)) => {
                self.providers[i].unknown_kid().await;
                match self.verify_uncached(token) {
                    Ok(caller) => Ok(caller),
                    Err(Refusal::Refused(e)) => Err(e),
                    Err(Refusal::UnknownKid(_)) => Err(fail("invalid token: unknown key id")),
                }
            }
        }
    }

    /// Nothing of a refused token is echoed: the reason is one of a few fixed phrases (a
    /// token's `alg` or `kid` would otherwise travel into the 401 body, `WWW-Authenticate`, the
    /// log and the audit row, unverified and unbounded).
    fn verify_uncached(&self, token: &str) -> Result<Caller, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(fail("invalid token: too long").into());
        }
        check_header(token).map_err(fail)?;
        if !self.providers.is_empty() {
            let issuer = claimed_issuer(token);
            if let Some(i) = self.providers.iter().position(|p| Some(&p.config.issuer) == issuer.as_ref()) {
                return self.verify_from_provider(i, token);
            }
        }
        let key = self.key_for(token).map_err(fail)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| fail(refusal(e.kind())))?;
        let claims = data.claims;
        self.check_lifetime(claims.exp, claims.iat)?;
        if claims.sub.is_empty() {
            return Err(fail("invalid token: empty subject").into());
        }
        let scopes = claims.scope.as_deref().map(crate::identity::scopes_of).unwrap_or_default();
        let caller = Caller { user_id: claims.sub, roles: claims.roles, workspace: claims.workspace, scopes };
        self.remember(token, &caller, claims.exp, None);
        Ok(caller)
    }

    /// The checks `jsonwebtoken` does not make: not issued in the future, and a lifetime
    /// (`exp` − `iat`, or `exp` − now without `iat`) within `JWT_MAX_TTL_SECONDS`.
    fn check_lifetime(&self, exp: u64, iat: Option<u64>) -> Result<(), GatewayError> {
        let now = jsonwebtoken::get_current_timestamp();
        if iat.is_some_and(|iat| iat > now + self.leeway) {
            return Err(fail("invalid token: issued in the future"));
        }
        let born = iat.unwrap_or(now).min(now);
        if exp.saturating_sub(born) > self.max_ttl + self.leeway {
            return Err(fail("invalid token: lifetime longer than JWT_MAX_TTL_SECONDS"));
        }
        Ok(())
    }

    fn remember(&self, token: &str, caller: &Caller, exp: u64, key: Option<(usize, Option<String>)>) {
        if self.verified.len() >= VERIFIED_CACHE_MAX {
            self.verified.clear();
        }
        self.verified.insert(token.into(), Verified { caller: caller.clone(), exp, key });
    }

    /// Verify a token from provider `index`: a key it published (the token's algorithm must
    /// be one that key verifies), its issuer, one of its audiences, and the time claims; then
    /// its claims are mapped to the caller.
    fn verify_from_provider(&self, index: usize, token: &str) -> Result<Caller, Refusal> {
        let provider = &self.providers[index];
        let header = jsonwebtoken::decode_header(token).map_err(|_| fail(MALFORMED))?;
        let snapshot = provider.keys.load();
        let Some(key) = snapshot.keys.find(header.kid.as_deref()) else {
            return match header.kid {
                Some(_) => Err(Refusal::UnknownKid(index)),
                None if snapshot.keys.is_empty() => Err(Refusal::UnknownKid(index)),
                None => Err(fail("invalid token: no key id (kid)").into()),
            };
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(fail("invalid token: algorithm not allowed for this key").into());
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&provider.config.issuer]);
        validation.set_audience(&provider.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key.key, &validation)
            .map_err(|e| fail(refusal(e.kind())))?;
        let claims = data.claims;
        // RFC 7519 NumericDate may carry a fraction.
        let number = |name: &str| {
            let v = claims.get(name)?;
            v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
        };
        let exp = number("exp").ok_or_else(|| fail("invalid token: expired"))?;
        self.check_lifetime(exp, number("iat"))?;
        let mapped = crate::identity::map_claims(&claims, &provider.config).map_err(fail)?;
        let caller = Caller {
            user_id: mapped.subject,
            roles: mapped.roles.into_iter().map(|(role, _)| role).collect(),
            workspace: mapped.workspace,
            scopes: mapped.scopes,
        };
        self.remember(token, &caller, exp, Some((index, header.kid.clone())));
        Ok(caller)
    }

    /// Verify the request's `Authorization: Bearer` header (the scheme in any case, RFC 7235).
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Caller, GatewayError> {
        let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
            return Err(GatewayError::Unauthenticated { reason: "missing bearer token".into(), token_sent: false });
        };
        let token = bearer_token(value.as_bytes()).ok_or_else(|| GatewayError::Unauthenticated {
            reason: "malformed Authorization header: expected 'Bearer <token>'".into(),
            token_sent: true,
        })?;
        self.verify_fetching(token).await
    }

    /// Sign a token with the configured HMAC secret (the `token` command; dev and tests).
    pub fn mint(&self, claims: &Claims, algorithm: Algorithm) -> Result<String, MintError> {
        let secret = self.secret.as_ref().ok_or(MintError::NoSecret)?;
        jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, &EncodingKey::from_secret(secret))
            .map_err(MintError::Sign)
    }
}

/// Longest token accepted (bytes): far above any real JWT, far below a header flood.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

const MALFORMED: &str = "invalid token: malformed";

/// The token of an `Authorization` value whose scheme is `Bearer` in any letter case
/// (RFC 7235 §2.1); `None` for another scheme, no token, or bytes a token cannot hold.
pub fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_matches(' ');
    let token68 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.chars().all(token68)).then_some(token)
}

/// The header checks `jsonwebtoken` does not make: a `crit` parameter names extensions the
/// recipient must understand or refuse the token (RFC 7515 §4.1.11); the gateway understands
/// none.
fn check_header(token: &str) -> Result<(), &'static str> {
    use base64::Engine;
    let segment = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).map_err(|_| MALFORMED)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).map_err(|_| MALFORMED)?;
    if header.contains_key("crit") {
        return Err("invalid token: critical header parameters are not supported");
    }
    Ok(())
}

/// A fixed, short reason for each way `jsonwebtoken` refuses a token.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "invalid token: expired",
        K::ImmatureSignature => "invalid token: not yet valid",
        K::InvalidSignature => "invalid token: bad signature",
        K::InvalidIssuer => "invalid token: issuer not accepted",
        K::InvalidAudience => "invalid token: audience not accepted",
        K::InvalidSubject => "invalid token: subject not accepted",
        K::MissingRequiredClaim(_) => "invalid token: a required claim is missing",
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => "invalid token: algorithm not accepted",
        _ => MALFORMED,
    }
}

/// Why a token could not be minted (the `token` command).
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The configured algorithm has no HMAC secret to sign with.
    #[error("minting needs an HS algorithm with a secret; use --private-key-file")]
    NoSecret,
    /// The private key file is not a PEM key of the algorithm's kind.
    #[error("{0}")]
    Key(#[source] jsonwebtoken::errors::Error),
    /// Signing failed.
    #[error("{0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Sign a token with a PEM private key (RS256 or ES256).
pub fn mint_with_pem(
    claims: &Claims,
    algorithm: Algorithm,
    pem: &[u8],
    kid: Option<String>,
) -> Result<String, MintError> {
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(MintError::Key)?;
    let mut header = jsonwebtoken::Header::new(algorithm);
    header.kid = kid;
    jsonwebtoken::encode(&header, claims, &key).map_err(MintError::Sign)
}

/// Claims for a new token valid for `ttl_seconds` from now.
pub fn claims_for(
    sub: &str,
    roles: Vec<String>,
    workspace: Option<String>,
    ttl_seconds: u64,
    jwt: &JwtSettings,
) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: sub.to_owned(),
        roles,
        workspace,
        exp: now + ttl_seconds,
        iat: Some(now),
        nbf: Some(now),
        iss: jwt.issuer.clone(),
        aud: jwt.audience.clone().map(Audience::One),
        scope: None,
    }
}

/// Shared handle used by the HTTP layer.
pub type SharedAuthenticator = Arc<Authenticator>;
