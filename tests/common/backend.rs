//! A real MCP backend for tests: an actix-web server on 127.0.0.1:0 speaking MCP Streamable
//! HTTP, with switchable behaviour (echo, slow, garbage, SSE, sessions) and a log of what it saw.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// How the backend answers `tools/call`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// JSON reply echoing the arguments.
    Echo,
    /// Same, but as an SSE stream with a progress notification first.
    Sse,
    /// Sleep this long before answering.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
    /// A tool-level error (`isError: true`).
    ToolError,
    /// An SSE reply: three progress notifications for the request's token, then the result.
    Progress,
    /// An SSE reply: one progress notification, then nothing for 30 s (until cancelled).
    Hang,
    /// HTTP 503 for the first n `tools/call`s (as a proxy in front of a restarting server), then echo.
    FailFirst(usize),
}

/// What the backend saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub id: Value,
    pub params: Value,
    pub authorization: Option<String>,
    pub session: Option<String>,
    pub traceparent: Option<String>,
}

#[derive(Default)]
struct State {
    /// Tool definitions answered to `tools/list` (empty unless a test sets them).
    listing: Mutex<Vec<Value>>,
    streams: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<actix_web::web::Bytes>>>,
    seen: Mutex<Vec<Seen>>,
    sessions: Mutex<Vec<String>>,
    issued: AtomicUsize,
    calls: AtomicUsize,
}

/// A running test backend.
pub struct TestBackend {
    pub url: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

struct Config {
    mode: Mode,
    stateful: bool,
}

/// `GET /mcp`: stateful backends keep a notification stream per client; others have none.
async fn stream(req: HttpRequest, state: web::Data<State>, config: web::Data<Config>) -> HttpResponse {
    let session = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok());
    if !config.stateful {
        return HttpResponse::MethodNotAllowed().finish();
    }
    if !session.is_some_and(|s| state.sessions.lock().unwrap().iter().any(|k| k == s)) {
        return HttpResponse::NotFound().finish();
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<actix_web::web::Bytes>();
    state.streams.lock().unwrap().push(tx);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    HttpResponse::Ok().content_type("text/event-stream").streaming(body)
}

async fn mcp(req: HttpRequest, body: web::Bytes, state: web::Data<State>, config: web::Data<Config>) -> HttpResponse {
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    let method = msg["method"].as_str().unwrap_or("").to_owned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let session = header("mcp-session-id");
    state.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        id: msg["id"].clone(),
        params: msg["params"].clone(),
        authorization: header("authorization"),
        session: session.clone(),
        traceparent: header("traceparent"),
    });
    if config.stateful && method != "initialize" {
        let known = session.as_ref().is_some_and(|s| state.sessions.lock().unwrap().contains(s));
        if !known {
            return HttpResponse::NotFound().finish();
        }
    }
    let id = msg["id"].clone();
    match method.as_str() {
        "initialize" => {
            let mut resp = HttpResponse::Ok();
            if config.stateful {
                let sid = format!("session-{}", state.issued.fetch_add(1, Ordering::SeqCst));
                state.sessions.lock().unwrap().push(sid.clone());
                resp.insert_header(("Mcp-Session-Id", sid));
            }
            resp.json(json!({"jsonrpc":"2.0","id":id,"result":{
                "protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"test-backend","version":"1"}}}))
        }
        "notifications/initialized" => HttpResponse::Accepted().finish(),
        "tools/list" => {
            let tools = state.listing.lock().unwrap().clone();
            HttpResponse::Ok().json(json!({"jsonrpc":"2.0","id":id,"result":{"tools": tools}}))
        }
        "tools/call" => {
            let args = msg["params"]["arguments"].clone();
            let result = json!({"content":[{"type":"text","text":args.to_string()}],"structuredContent":{"echo":args},"isError":false});
            match config.mode {
                Mode::Echo => HttpResponse::Ok().json(json!({"jsonrpc":"2.0","id":id,"result":result})),
                Mode::FailFirst(n) => {
                    if state.calls.fetch_add(1, Ordering::SeqCst) < n {
                        HttpResponse::ServiceUnavailable().finish()
                    } else {
                        HttpResponse::Ok().json(json!({"jsonrpc":"2.0","id":id,"result":result}))
                    }
                }
                Mode::ToolError => HttpResponse::Ok().json(json!({"jsonrpc":"2.0","id":id,"result":{
                    "content":[{"type":"text","text":"division by zero"}],"isError":true}})),
                Mode::Sse => {
                    let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}});
                    let reply = json!({"jsonrpc":"2.0","id":id,"result":result});
                    HttpResponse::Ok()
                        .content_type("text/event-stream")
                        .body(format!("event: message\ndata: {progress}\n\nevent: message\ndata: {reply}\n\n"))
                }
                Mode::Slow(d) => {
                    actix_web::rt::time::sleep(d).await;
                    HttpResponse::Ok().json(json!({"jsonrpc":"2.0","id":id,"result":result}))
                }
                Mode::Garbage => HttpResponse::Ok().content_type("application/json").body("<html>oops</html>"),
                Mode::Progress | Mode::Hang => {
                    let token = msg["params"]["_meta"]["progressToken"].clone();
                    let hang = config.mode == Mode::Hang;
                    let reply = json!({"jsonrpc":"2.0","id":id,"result":result});
                    let events = futures_util::stream::unfold(0u32, move |step| {
                        let (token, reply) = (token.clone(), reply.clone());
                        async move {
                            let event = match step {
                                0..=2 if !(hang && step > 0) => {
                                    actix_web::rt::time::sleep(std::time::Duration::from_millis(30)).await;
                                    let n = json!({"jsonrpc":"2.0","method":"notifications/progress",
                                        "params":{"progressToken": token, "progress": step * 50, "total": 100}});
                                    format!("event: message\ndata: {n}\n\n")
                                }
                                3 if !hang => format!("event: message\ndata: {reply}\n\n"),
                                _ if hang && step < 3 => {
                                    actix_web::rt::time::sleep(std::time::Duration::from_secs(30)).await;
                                    return None;
                                }
                                _ => return None,
                            };
                            Some((Ok::<_, actix_web::Error>(actix_web::web::Bytes::from(event)), step + 1))
                        }
                    });
                    HttpResponse::Ok().content_type("text/event-stream").streaming(events)
                }
            }
        }
        _ => HttpResponse::Ok()
            .json(json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":"method not found"}})),
    }
}

impl TestBackend {
    /// Start a stateless backend answering in `mode`.
    pub async fn start(mode: Mode) -> Self {
        Self::start_with(mode, false).await
    }

    /// Start a backend; `stateful` makes it hand out sessions and 404 unknown ones.
    pub async fn start_with(mode: Mode, stateful: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let state = web::Data::new(State::default());
        let config = web::Data::new(Config { mode, stateful });
        let (s, c) = (state.clone(), config.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(s.clone())
                .app_data(c.clone())
                .route("/mcp", web::post().to(mcp))
                .route("/mcp", web::get().to(stream))
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, state: state.into_inner(), handle }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The requests that had `method`.
    pub fn with(&self, method: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == method).collect()
    }

    /// How many requests had `method`.
    pub fn count(&self, method: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method).count()
    }

    /// Set the tool definitions `tools/list` answers.
    pub fn set_listing(&self, tools: Vec<Value>) {
        *self.state.listing.lock().unwrap() = tools;
    }

    /// How many notification streams (`GET /mcp`) are open.
    pub fn streams(&self) -> usize {
        self.state.streams.lock().unwrap().iter().filter(|s| !s.is_closed()).count()
    }

    /// Announce `notifications/tools/list_changed` on every open stream.
    pub fn announce_list_changed(&self) {
        let event = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
        for s in self.state.streams.lock().unwrap().iter() {
            let _ = s.send(actix_web::web::Bytes::from(event));
        }
    }

    /// Forget every session, as a restarted server would.
    pub fn forget_sessions(&self) {
        self.state.sessions.lock().unwrap().clear();
    }

    /// Stop the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
