//! Legacy HTTP+SSE upstreams (MCP 2024-11-05): one [`SseUpstream`] actor per `servers:` entry
//! with `transport: sse`. It holds the server's event stream open (`GET url`), learns the
//! endpoint to `POST` messages to from its first `endpoint` event (same origin only), and
//! serves calls through the same multiplexing link as stdio programs: answers and
//! notifications arrive on the stream. A stream that ends or fails is reopened with back-off;
//! calls waiting on it fail with 502.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message};
use awc::http::header::{self, HeaderName, HeaderValue};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::processes::{handshake, on_line, OnEvent, ProcessStatus, Stop};
use crate::backend::oauth::TokenSource;
use crate::backend::stdio::{Links, StdioLink};
use crate::config::servers::{ServerConfig, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_PENDING};

/// Longest wait between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long the server has to name its endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// The actor holding one legacy SSE server's stream.
pub struct SseUpstream {
    config: Arc<ServerConfig>,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    token: Option<Arc<TokenSource>>,
    links: Links,
    status: Arc<ProcessStatus>,
    on_event: OnEvent,
    generation: u64,
    backoff: Duration,
    connected_at: Option<Instant>,
    stopping: bool,
}

impl SseUpstream {
    /// An actor for `config`, sending `headers` (the gateway's credentials) on every request.
    pub fn new(
        config: Arc<ServerConfig>,
        headers: Arc<Vec<(HeaderName, HeaderValue)>>,
        token: Option<Arc<TokenSource>>,
        links: Links,
        status: Arc<ProcessStatus>,
        on_event: OnEvent,
    ) -> Self {
        Self {
            config,
            headers,
            token,
            links,
            status,
            on_event,
            generation: 0,
            backoff: Duration::from_secs(1),
            connected_at: None,
            stopping: false,
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        self.generation += 1;
        self.connected_at = Some(Instant::now());
        let generation = self.generation;
        let credentials = Credentials { headers: self.headers.clone(), token: self.token.clone() };
        let (config, links, status, on_event, addr) =
            (self.config.clone(), self.links.clone(), self.status.clone(), self.on_event.clone(), ctx.address());
        actix_web::rt::spawn(async move {
            let how = run(&config, &credentials, &links, &status, &on_event).await;
            addr.do_send(Ended { generation, how });
        });
    }
}

impl Actor for SseUpstream {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.links.remove(&self.config.name);
    }
}

/// The stream ended (or could not be opened).
#[derive(Message)]
#[rtype(result = "()")]
struct Ended {
    generation: u64,
    how: String,
}

impl Handler<Ended> for SseUpstream {
    type Result = ();

    fn handle(&mut self, msg: Ended, ctx: &mut Context<Self>) {
        if msg.generation != self.generation {
            return;
        }
        self.links.remove(&self.config.name);
        self.status.up.store(false, Ordering::Relaxed);
        if let Ok(mut last) = self.status.last_exit.lock() {
            *last = Some(msg.how.clone());
        }
        if let Ok(mut slot) = self.status.link.lock() {
            if let Some(link) = slot.take() {
                link.close();
            }
        }
        if self.stopping {
            ctx.stop();
            return;
        }
        let ran = self.connected_at.map(|t| t.elapsed()).unwrap_or_default();
        if ran >= Duration::from_secs(60) {
            self.backoff = Duration::from_secs(1);
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.status.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server = %self.config.name, why = %msg.how, retry_in_ms = wait.as_millis() as u64, "SSE upstream stream ended; calls in flight failed");
        ctx.run_later(wait, |actor, ctx| actor.connect(ctx));
    }
}

impl Handler<Stop> for SseUpstream {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.stopping = true;
        if let Ok(mut slot) = self.status.link.lock() {
            if let Some(link) = slot.take() {
                link.close();
            }
        }
        ctx.stop();
    }
}

/// What the gateway presents to the server: static headers and, with OAuth, its token.
#[derive(Clone)]
struct Credentials {
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    token: Option<Arc<TokenSource>>,
}

impl Credentials {
    async fn apply(&self, http: &awc::Client, mut req: awc::ClientRequest) -> Result<awc::ClientRequest, String> {
        for (name, value) in self.headers.iter() {
            req = req.insert_header((name.clone(), value.clone()));
        }
        if let Some(token) = &self.token {
            let authorization = token.authorization(http).await.map_err(|e| e.to_string())?;
            req = req.insert_header((header::AUTHORIZATION, authorization));
        }
        Ok(req)
    }
}

/// `endpoint` resolved against the stream's URL; only the same scheme, host and port.
fn resolve(base: &str, endpoint: &str) -> Option<String> {
    let base_uri: awc::http::Uri = base.parse().ok()?;
    let origin = format!("{}://{}", base_uri.scheme_str()?, base_uri.authority()?);
    let full = if endpoint.starts_with('/') { format!("{origin}{endpoint}") } else { endpoint.to_owned() };
    let uri: awc::http::Uri = full.parse().ok()?;
    let same = uri.scheme_str() == base_uri.scheme_str() && uri.authority() == base_uri.authority();
    same.then_some(full)
}

/// One connection: open the stream, wait for the endpoint, serve the link until the stream
/// ends. Returns why it ended.
async fn run(
    config: &ServerConfig,
    credentials: &Credentials,
    links: &Links,
    status: &Arc<ProcessStatus>,
    on_event: &OnEvent,
) -> String {
    let url = config.url.clone().unwrap_or_default();
    let name = config.name.as_str();
    let http = awc::Client::builder().timeout(Duration::from_secs(3600)).disable_redirects().finish();
    let req = match credentials.apply(&http, http.get(&url).insert_header((header::ACCEPT, "text/event-stream"))).await
    {
        Ok(req) => req,
        Err(e) => return e,
    };
    let mut resp = match req.send().await {
        Ok(resp) if resp.status().is_success() => resp,
        Ok(resp) => return format!("GET answered HTTP {}", resp.status().as_u16()),
        Err(e) => return format!("cannot connect: {e}"),
    };
    let max = config.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE_BYTES);
    let max_pending = config.max_pending.unwrap_or(DEFAULT_MAX_PENDING);
    let (lines_tx, mut lines_rx) = mpsc::channel::<Vec<u8>>(max_pending + 16);
    let link = Arc::new(StdioLink::new(&format!("SSE server {name}"), lines_tx, max_pending));
    if let Ok(mut slot) = status.link.lock() {
        *slot = Some(link.clone());
    }
    let mut buffer: Vec<u8> = Vec::new();
    let mut endpoint: Option<String> = None;
    let opened = Instant::now();
    let ended = loop {
        if link.is_closed() {
            break "closed".to_owned();
        }
        let next = tokio::time::timeout(Duration::from_secs(1), resp.next()).await;
        let chunk = match next {
            Err(_) => {
                if endpoint.is_none() && opened.elapsed() > ENDPOINT_TIMEOUT {
                    break "the server named no endpoint".to_owned();
                }
                continue;
            }
            Ok(None) => break "the server closed the stream".to_owned(),
            Ok(Some(Err(e))) => break format!("stream failed: {e}"),
            Ok(Some(Ok(chunk))) => chunk,
        };
        buffer.extend_from_slice(&chunk);
        if buffer.len() > max {
            status.dropped_lines.fetch_add(1, Ordering::Relaxed);
            break format!("an event over {max} bytes");
        }
        while let Some(end) = crate::backend::stream::event_end(&buffer) {
            let block: Vec<u8> = buffer.drain(..end).collect();
            for event in crate::backend::sse::parse(&String::from_utf8_lossy(&block)) {
                match event.event.as_str() {
                    "endpoint" if endpoint.is_none() => {
                        let Some(target) = resolve(&url, event.data.trim()) else {
                            return "the server named an endpoint on another origin; refused".to_owned();
                        };
                        endpoint = Some(target.clone());
                        spawn_writer(&http, target, credentials.clone(), &mut lines_rx);
                        let (link, links, status, on_event, name) =
                            (link.clone(), links.clone(), status.clone(), on_event.clone(), name.to_owned());
                        actix_web::rt::spawn(async move {
                            if let Err(e) = handshake(&name, &link, &links, &status, &on_event).await {
                                tracing::error!(server = %name, error = %e, "SSE upstream did not complete initialize");
                                link.close();
                            }
                        });
                    }
                    "message" => on_line(name, event.data.as_bytes(), &link, status, on_event),
                    _ => {}
                }
            }
        }
    };
    ended
}

/// POST each message the link writes to the endpoint (each on its own task, so one slow POST
/// does not hold the others).
fn spawn_writer(http: &awc::Client, endpoint: String, credentials: Credentials, lines: &mut mpsc::Receiver<Vec<u8>>) {
    let (http, mut rx) = (http.clone(), std::mem::replace(lines, mpsc::channel(1).1));
    actix_web::rt::spawn(async move {
        while let Some(line) = rx.recv().await {
            let post = http
                .post(&endpoint)
                .timeout(Duration::from_secs(30))
                .insert_header((header::CONTENT_TYPE, "application/json"));
            let req = match credentials.apply(&http, post).await {
                Ok(req) => req,
                Err(e) => {
                    tracing::warn!(error = %e, "no credentials for a message to an SSE upstream; not sent");
                    continue;
                }
            };
            actix_web::rt::spawn(async move {
                if let Err(e) = req.send_body(line).await {
                    tracing::debug!(error = %e, "POST to an SSE upstream's endpoint failed");
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_stay_on_the_streams_origin() {
        let base = "http://127.0.0.1:9000/sse";
        assert_eq!(resolve(base, "/message?sessionId=1").as_deref(), Some("http://127.0.0.1:9000/message?sessionId=1"));
        assert_eq!(resolve(base, "http://127.0.0.1:9000/m").as_deref(), Some("http://127.0.0.1:9000/m"));
        assert_eq!(resolve(base, "http://evil.example:9000/m"), None);
        assert_eq!(resolve(base, "http://127.0.0.1:9001/m"), None);
    }
}
