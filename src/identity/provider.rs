//! One identity provider's signing keys, kept fresh by their owner, the [`ProviderKeys`] actor.
//!
//! The actor finds the key set (OIDC discovery, or the configured `jwks_url`), fetches it,
//! keeps it for its HTTP cache lifetime (bounded), and refreshes it in the background. Token
//! verification never waits for it, except once for a token naming a `kid` the gateway has not
//! seen: the actor then fetches again — at most once per `JWKS_REFETCH_SECONDS`, and one fetch
//! however many tokens ask (a flood of made-up `kid`s cannot hammer the provider). When the
//! provider cannot be reached, or answers with something that is not a usable key set, the last
//! good keys keep verifying and the snapshot says they are stale.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use arc_swap::ArcSwap;
use serde_json::Value;

use super::jwks::{self, KeySet};
use crate::config::providers::{trusted_url, ProviderConfig};

/// Longest wait for the provider's answer (discovery or keys).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;
/// Largest key set read.
const MAX_JWKS_BYTES: usize = 512 * 1024;
/// Key-set lifetime when the provider sends no `Cache-Control: max-age`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Bounds on the lifetime a provider may ask for.
const MIN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Retry after a failed refresh: doubling from the first, at most the second.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// What verification reads: the keys and how fresh they are.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// The trusted keys (empty until the first good fetch).
    pub keys: Arc<KeySet>,
    /// When the keys were fetched (`None`: never).
    pub fetched_at: Option<SystemTime>,
    /// Whether the last refresh failed (the keys are the last good ones).
    pub stale: bool,
    /// The last failure, for health (no secret: a URL and a reason).
    pub last_error: Option<String>,
    /// Requests made to the provider (discovery and keys).
    pub fetches: u64,
    /// Key-set fetches made because a token named an unknown `kid`.
    pub unknown_kid_fetches: u64,
}

/// The published snapshot of one provider's keys.
pub type Published = Arc<ArcSwap<Snapshot>>;

/// Owns the fetching of one provider's keys.
pub struct ProviderKeys {
    config: ProviderConfig,
    published: Published,
    jwks_url: Option<String>,
    fetching: bool,
    waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    last_fetch: Option<Instant>,
    min_refetch: Duration,
    retry: Duration,
    refresh: Option<SpawnHandle>,
}

impl ProviderKeys {
    /// An owner for `config`'s keys, publishing to `published`.
    pub fn new(config: ProviderConfig, published: Published, min_refetch: Duration) -> Self {
        let jwks_url = config.jwks_url.clone();
        Self {
            config,
            published,
            jwks_url,
            fetching: false,
            waiters: Vec::new(),
            last_fetch: None,
            min_refetch,
            retry: RETRY_FIRST,
            refresh: None,
        }
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut next = (**self.published.load()).clone();
        change(&mut next);
        self.published.store(Arc::new(next));
    }

    /// Start a fetch unless one runs; every waiter is woken when it ends.
    fn fetch(&mut self, ctx: &mut Context<Self>, unknown_kid: bool) {
        if self.fetching {
            return;
        }
        self.fetching = true;
        self.last_fetch = Some(Instant::now());
        let (config, known) = (self.config.clone(), self.jwks_url.clone());
        // A client per fetch (a few a minute at most): no pooled connection or connector state
        // outlives a fetch that timed out or a provider that went away.
        let work = async move {
            let http = awc::Client::builder().timeout(FETCH_TIMEOUT).disable_redirects().finish();
            fetch_keys(&http, &config, known).await
        };
        ctx.spawn(work.into_actor(self).map(move |outcome, act, ctx| {
            act.fetching = false;
            let requests = outcome.requests;
            match outcome.result {
                Ok((set, refused, lifetime, url)) => {
                    for r in &refused {
                        tracing::warn!(issuer = %act.config.issuer, key = %r.key, why = r.why, "identity provider key refused");
                    }
                    tracing::info!(issuer = %act.config.issuer, keys = set.len(), lifetime_s = lifetime.as_secs(), "identity provider keys fetched");
                    act.jwks_url = Some(url);
                    act.update(|s| {
                        s.keys = Arc::new(set);
                        s.fetched_at = Some(SystemTime::now());
                        s.stale = false;
                        s.last_error = None;
                        s.fetches += requests;
                        s.unknown_kid_fetches += u64::from(unknown_kid);
                    });
                    act.retry = RETRY_FIRST;
                    act.schedule(ctx, lifetime);
                }
                Err(why) => {
                    // The error names the URL fetched: a credential in it stays out of reports.
                    let why = crate::error::without_credentials(&why);
                    tracing::error!(issuer = %act.config.issuer, error = %why, "identity provider keys could not be refreshed; the last good keys stay in use");
                    act.update(|s| {
                        s.stale = true;
                        s.last_error = Some(why.clone());
                        s.fetches += requests;
                        s.unknown_kid_fetches += u64::from(unknown_kid);
                    });
                    // Discovery is tried again next time (the provider may have moved its keys).
                    act.jwks_url = act.config.jwks_url.clone();
                    let wait = act.retry;
                    act.retry = (act.retry * 2).min(RETRY_MAX);
                    act.schedule(ctx, wait);
                }
            }
            for waiter in act.waiters.drain(..) {
                let _ = waiter.send(());
            }
        }));
    }

    fn schedule(&mut self, ctx: &mut Context<Self>, after: Duration) {
        if let Some(previous) = self.refresh.take() {
            ctx.cancel_future(previous);
        }
        self.refresh = Some(ctx.run_later(after, |act, ctx| act.fetch(ctx, false)));
    }
}

impl Actor for ProviderKeys {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.fetch(ctx, false);
    }
}

/// A token named a `kid` the gateway does not hold: fetch the keys again if the last fetch is
/// old enough (else answer at once); the answer comes when the keys are as fresh as allowed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnknownKid;

impl Handler<UnknownKid> for ProviderKeys {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: UnknownKid, ctx: &mut Context<Self>) -> Self::Result {
        let recent = self.last_fetch.is_some_and(|at| at.elapsed() < self.min_refetch);
        if recent && !self.fetching {
            return Box::pin(async {});
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiters.push(tx);
        self.fetch(ctx, true);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

struct Outcome {
    requests: u64,
    result: Result<(KeySet, Vec<jwks::Refused>, Duration, String), String>,
}

/// GET `url` (no redirects, within [`FETCH_TIMEOUT`], at most `limit` bytes): the body and
/// the lifetime its `Cache-Control` asks for.
async fn get(http: &awc::Client, url: &str, limit: usize) -> Result<(actix_web::web::Bytes, Option<Duration>), String> {
    let shown: String = url.chars().take(200).collect();
    let send = || http.get(url).insert_header(("Accept", "application/json")).send();
    // A connection that could not be made is tried once more (nothing reached the provider).
    let sent = match send().await {
        Err(awc::error::SendRequestError::Connect(_)) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            send().await
        }
        other => other,
    };
    let mut resp = sent.map_err(|e| {
        format!(
            "{shown}: {}",
            match e {
                awc::error::SendRequestError::Timeout => "no answer within 5 s".to_owned(),
                other => other.to_string().chars().take(200).collect(),
            }
        )
    })?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(format!("{shown}: redirects elsewhere (HTTP {}); redirects are not followed", status.as_u16()));
    }
    if !status.is_success() {
        return Err(format!("{shown}: HTTP {}", status.as_u16()));
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()))
        .map(Duration::from_secs);
    let body = tokio::time::timeout(FETCH_TIMEOUT, resp.body().limit(limit))
        .await
        .map_err(|_| format!("{shown}: the body did not arrive within 5 s"))?
        .map_err(|e| format!("{shown}: {}", e.to_string().chars().take(200).collect::<String>()))?;
    Ok((body, max_age))
}

/// Discover (unless `known`) and fetch the provider's keys.
async fn fetch_keys(http: &awc::Client, config: &ProviderConfig, known: Option<String>) -> Outcome {
    let mut requests = 0;
    let result = async {
        let url = match known {
            Some(url) => url,
            None => {
                requests += 1;
                discover(http, &config.issuer).await?
            }
        };
        requests += 1;
        let (body, max_age) = get(http, &url, MAX_JWKS_BYTES).await?;
        let (set, refused) = jwks::read(&body, &config.algorithms).map_err(|e| format!("{url}: {e}"))?;
        let lifetime = max_age.unwrap_or(DEFAULT_LIFETIME).clamp(MIN_LIFETIME, MAX_LIFETIME);
        Ok((set, refused, lifetime, url))
    }
    .await;
    Outcome { requests, result }
}

/// The `jwks_uri` of the issuer's OIDC discovery document, which must name the same issuer.
async fn discover(http: &awc::Client, issuer: &str) -> Result<String, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let (body, _) = get(http, &url, MAX_DISCOVERY_BYTES).await?;
    let doc: Value = serde_json::from_slice(&body).map_err(|_| format!("{url}: not a JSON document"))?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("{url}: the document names another issuer"));
    }
    let jwks = doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| format!("{url}: no jwks_uri"))?;
    if !trusted_url(jwks) || jwks.len() > 2048 {
        return Err(format!("{url}: jwks_uri is not an https URL (http only on a loopback host)"));
    }
    Ok(jwks.to_owned())
}
