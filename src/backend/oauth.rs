//! OAuth 2.0 client credentials towards an upstream: the gateway gets its own access token from
//! the upstream's token endpoint, caches it, and refreshes it before it expires. The client's
//! token never goes upstream; this one never goes anywhere but the upstream.
//!
//! The fresh token is read without a lock (one atomic load per call); a refresh is single-flight
//! (one request to the token endpoint however many calls need it), and when the endpoint fails
//! the previous token is used until it actually expires.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use awc::http::header::{self, HeaderValue};
use serde_json::Value;

use crate::config::servers::OAuthClient;
use crate::error::GatewayError;

/// Largest token endpoint answer read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

#[derive(Debug)]
struct Token {
    header: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

/// One upstream's client-credentials token.
#[derive(Debug)]
pub struct TokenSource {
    config: OAuthClient,
    current: ArcSwapOption<Token>,
    refreshing: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

/// Upstream token sources by backend URL.
pub type Tokens = Arc<dashmap::DashMap<String, Arc<TokenSource>>>;

impl TokenSource {
    /// A source for `config` (nothing fetched until the first call needs it).
    pub fn new(config: OAuthClient) -> Self {
        Self {
            config,
            current: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The client configuration this source fetches with.
    pub fn config(&self) -> &OAuthClient {
        &self.config
    }

    /// Requests made to the token endpoint so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn fresh(&self) -> Option<HeaderValue> {
        self.current.load().as_ref().filter(|t| Instant::now() < t.refresh_at).map(|t| t.header.clone())
    }

    /// The `Authorization` value for the next request, fetching a token when none is fresh.
    pub async fn authorization(&self, http: &awc::Client) -> Result<HeaderValue, GatewayError> {
        if let Some(header) = self.fresh() {
            return Ok(header);
        }
        let _one = self.refreshing.lock().await;
        if let Some(header) = self.fresh() {
            return Ok(header);
        }
        match self.fetch(http).await {
            Ok(token) => {
                let header = token.header.clone();
                self.current.store(Some(Arc::new(token)));
                Ok(header)
            }
            Err(e) => {
                let still_valid =
                    self.current.load().as_ref().filter(|t| Instant::now() < t.expires_at).map(|t| t.header.clone());
                match still_valid {
                    Some(header) => {
                        tracing::warn!(error = %e, "upstream token refresh failed; using the current token until it expires");
                        Ok(header)
                    }
                    None => Err(e),
                }
            }
        }
    }

    async fn fetch(&self, http: &awc::Client) -> Result<Token, GatewayError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let c = &self.config;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret.0),
        ];
        if let Some(scope) = &c.scope {
            form.push(("scope", scope));
        }
        if let Some(audience) = &c.audience {
            form.push(("audience", audience));
        }
        if let Some(resource) = &c.resource {
            form.push(("resource", resource));
        }
        let failed = |why: String| GatewayError::BackendUnavailable(format!("upstream token endpoint: {why}"));
        let started = Instant::now();
        let mut resp = http
            .post(&c.token_url)
            .timeout(Duration::from_secs(10))
            .insert_header((header::ACCEPT, "application/json"))
            .send_form(&form)
            .await
            .map_err(|e| failed(format!("unreachable ({e})")))?;
        let status = resp.status();
        let body =
            resp.body().limit(MAX_TOKEN_RESPONSE).await.map_err(|e| failed(format!("unreadable answer ({e})")))?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            // The endpoint's own error code only (a short word), never its description.
            let code: String = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            return Err(failed(format!("HTTP {} {code}", status.as_u16())));
        }
        let token =
            answer.get("access_token").and_then(Value::as_str).ok_or_else(|| failed("no access_token".into()))?;
        let lifetime =
            Duration::from_secs(answer.get("expires_in").and_then(Value::as_u64).unwrap_or(300).clamp(1, 86_400));
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| failed("access_token is not a header value".into()))?;
        header.set_sensitive(true);
        // Refreshed at 80% of its life, and at least 30 s before it ends when it lives longer.
        let early = lifetime.mul_f64(0.2).max(Duration::from_secs(30).min(lifetime.mul_f64(0.5)));
        Ok(Token { header, refresh_at: started + lifetime - early, expires_at: started + lifetime })
    }
}
