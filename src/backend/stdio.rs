//! Talking to a stdio MCP server: newline-delimited JSON-RPC over the program's stdin and
//! stdout, many callers' requests multiplexed over one process.
//!
//! A [`StdioLink`] is the handle callers use from any worker: it numbers each request with an
//! id of its own (clients' ids never reach the program, so two clients' ids cannot clash),
//! keeps the waiting callers by that id, and routes progress notifications by the gateway's
//! own progress token. The process that owns the link ([`crate::registry::processes`]) reads
//! the program's stdout into [`StdioLink::deliver`] and fails every waiting call when the
//! program exits.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::{into_result, refusal, Observer};
use crate::error::GatewayError;

/// Routing keys of stdio servers, and the link of each that is up.
pub type Links = Arc<DashMap<String, Arc<StdioLink>>>;

/// What the program said that is not an answer to a request, for its owner to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Nothing for the owner.
    Nothing,
    /// `notifications/tools/list_changed` (or resources, prompts).
    ListChanged,
    /// An answer to an id nobody asked (counted and logged by the owner).
    UnknownId,
    /// A line that is not a JSON-RPC message.
    Garbage,
}

/// The handle to one running stdio program.
pub struct StdioLink {
    server: String,
    lines: mpsc::Sender<Vec<u8>>,
    pending: DashMap<u64, oneshot::Sender<Value>>,
    progress: DashMap<String, mpsc::UnboundedSender<Value>>,
    /// Calls whose client can be asked (sampling, elicitation, roots), by the gateway's id:
    /// the client, and where the call's loop hears the program's requests.
    askers: DashMap<u64, Asker>,
    next_id: AtomicU64,
    max_pending: usize,
    closed: AtomicBool,
    protocol_version: std::sync::Mutex<String>,
    born: std::time::Instant,
    /// Milliseconds after `born` of the last request.
    last_used: AtomicU64,
}

/// A call whose client can be asked: who, where its loop hears the program's requests, and
/// how many of them it holds (queued or waiting for the client).
#[derive(Clone)]
struct Asker {
    client: Arc<str>,
    tx: mpsc::UnboundedSender<Value>,
    held: Arc<AtomicUsize>,
}

/// Fails nothing, forgets the waiting caller and tells the program when a call is abandoned
/// (timeout, client gone) before its answer.
struct Abandon<'a> {
    link: &'a StdioLink,
    id: u64,
    token: Option<String>,
    answered: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.link.pending.remove(&self.id);
        self.link.askers.remove(&self.id);
        if let Some(token) = &self.token {
            self.link.progress.remove(token);
        }
        if !self.answered && !self.link.closed.load(Ordering::Relaxed) {
            let note = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": { "requestId": self.id, "reason": "cancelled by the gateway" } });
            let _ = self.link.lines.try_send(line(&note));
        }
    }
}

/// The numeric `"id"` member near the start of a JSON-RPC message, read without parsing the
/// rest (the message is too long to hold). An `"id"` inside `params` or `result` cannot come
/// first in the object's members as SDKs write them, and a wrong guess only fails one call.
fn leading_id(head: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(head).ok().or_else(|| {
        let valid = std::str::from_utf8(head).err()?.valid_up_to();
        std::str::from_utf8(&head[..valid]).ok()
    })?;
    let before_body = text.split(r#""result""#).next()?.split(r#""error""#).next()?;
    let after = before_body.split_once(r#""id""#)?.1.trim_start().strip_prefix(':')?.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Refuses, when a call ends, the program's requests its client never answered.
struct Unanswered<'a> {
    link: &'a StdioLink,
    /// `{id, method}` of each request still waiting.
    asked: Vec<Value>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        for request in self.asked.drain(..) {
            let _ = self.link.lines.try_send(line(&refusal(&request, "the call that caused it has ended")));
        }
    }
}

fn line(message: &Value) -> Vec<u8> {
    let mut bytes = message.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

impl std::fmt::Debug for StdioLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioLink").field("server", &self.server).field("pending", &self.pending.len()).finish()
    }
}

impl StdioLink {
    /// A link to the upstream `server` names (\"stdio server fs\", as errors say it), writing
    /// lines into `lines`.
    pub fn new(server: &str, lines: mpsc::Sender<Vec<u8>>, max_pending: usize) -> Self {
        Self {
            server: server.to_owned(),
            lines,
            pending: DashMap::new(),
            progress: DashMap::new(),
            askers: DashMap::new(),
            next_id: AtomicU64::new(1),
            max_pending,
            closed: AtomicBool::new(false),
            protocol_version: std::sync::Mutex::new(super::PROTOCOL_VERSION.to_owned()),
            born: std::time::Instant::now(),
            last_used: AtomicU64::new(0),
        }
    }

    /// How long since the last request (or since the link opened).
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_used.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    /// Requests waiting for an answer now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The revision the program agreed at `initialize`.
    pub fn protocol_version(&self) -> String {
        self.protocol_version.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Record the revision the program agreed.
    pub fn set_protocol_version(&self, version: &str) {
        if let Ok(mut v) = self.protocol_version.lock() {
            *v = version.to_owned();
        }
    }

    fn unavailable(&self, why: &str) -> GatewayError {
        GatewayError::BackendUnavailable(format!("{} {why}", self.server))
    }

    /// Send one request and wait for its answer (its `result`), within `timeout`; the
    /// program's notifications for the request's progress token reach `observer`.
    pub async fn request(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
        observer: Option<&Observer>,
    ) -> Result<Value, GatewayError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(self.unavailable("is not running"));
        }
        if self.pending.len() >= self.max_pending {
            return Err(GatewayError::Busy(format!(
                "{} has {} requests waiting (max_pending)",
                self.server, self.max_pending
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.last_used.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.insert(id, tx);
        let token = params.get("_meta").and_then(|m| m.get("progressToken")).map(Value::to_string);
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        let held = Arc::new(AtomicUsize::new(0));
        if let Some((client, _)) = observer.and_then(|o| o.ask.as_ref()) {
            self.askers.insert(id, Asker { client: client.clone(), tx: notes_tx.clone(), held: held.clone() });
        }
        if let (Some(token), Some(_)) = (&token, observer) {
            self.progress.insert(token.clone(), notes_tx);
        }
        let mut guard = Abandon { link: self, id, token, answered: false };
        if self.closed.load(Ordering::Relaxed) {
            // Closed between the first check and the insert: nobody would ever answer.
            guard.answered = true;
            return Err(self.unavailable("is not running"));
        }
        if let Some(o) = observer {
            o.backend_id.set(Some(id));
        }
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if self.lines.try_send(line(&message)).is_err() {
            guard.answered = true;
            return Err(GatewayError::Busy(format!("{} is not reading its input", self.server)));
        }
        let wait = async {
            use futures_util::StreamExt;
            let mut rx = rx;
            let mut asking = futures_util::stream::FuturesUnordered::new();
            // The program's requests still waiting for this call's client: refused when the
            // call ends without their answers (the program would wait for nothing).
            let mut unanswered = Unanswered { link: self, asked: Vec::new() };
            loop {
                tokio::select! {
                    reply = &mut rx => return reply.map_err(|_| self.unavailable("exited before it answered")),
                    Some(answer) = asking.next(), if !asking.is_empty() => {
                        let answered: &Value = &answer;
                        unanswered.asked.retain(|asked| asked.get("id") != answered.get("id"));
                        held.fetch_sub(1, Ordering::Relaxed);
                        let _ = self.lines.try_send(line(&answer));
                    }
                    Some(note) = notes.recv() => {
                        if note.get("id").is_some() {
                            // A request of the program's, routed to this call's client (the
                            // link counted it in `held`, at most MAX_PER_CALL).
                            let method = note.get("method").cloned().unwrap_or(Value::Null);
                            unanswered.asked.push(json!({ "id": note.get("id").cloned(), "method": method }));
                            asking.push(super::answer_upstream(observer, note));
                        } else if let Some(o) = observer {
                            (o.on_event)(note);
                        }
                    }
                }
            }
        };
        let reply = match tokio::time::timeout(timeout, wait).await {
            Ok(reply) => reply,
            Err(_) => return Err(GatewayError::BackendTimeout(timeout.as_secs())),
        };
        guard.answered = true;
        into_result(reply?, id)
    }

    /// Send a notification (no answer expected).
    pub fn notify(&self, method: &str, params: Value) {
        let _ = self.lines.try_send(line(&json!({ "jsonrpc": "2.0", "method": method, "params": params })));
    }

    /// Hand one line the program printed to whoever waits for it.
    pub fn deliver(&self, text: &[u8]) -> Said {
        let Ok(message) = serde_json::from_slice::<Value>(text) else { return Said::Garbage };
        let method = message.get("method").and_then(Value::as_str);
        let id = message.get("id");
        match (method, id) {
            (None, Some(id)) if message.get("result").is_some() || message.get("error").is_some() => {
                match id.as_u64().and_then(|id| self.pending.remove(&id)) {
                    Some((_, waiting)) => {
                        let _ = waiting.send(message);
                        Said::Nothing
                    }
                    None => Said::UnknownId,
                }
            }
            (Some(method), None) => {
                if method == "notifications/progress" {
                    let token = message.get("params").and_then(|p| p.get("progressToken")).map(Value::to_string);
                    if let Some(sink) = token.and_then(|t| self.progress.get(&t).map(|s| s.clone())) {
                        let _ = sink.send(message);
                    }
                    Said::Nothing
                } else if method.ends_with("/list_changed") {
                    Said::ListChanged
                } else {
                    Said::Nothing
                }
            }
            (Some(_), Some(id)) if !(id.is_string() || id.is_i64() || id.is_u64()) => Said::Garbage,
            (Some(method), Some(_)) => {
                // A request from the program: ping is answered here; sampling, elicitation and
                // roots go to the client whose call caused them.
                let refused = if method == "ping" {
                    let id = message.get("id").cloned().unwrap_or(Value::Null);
                    Some(json!({ "jsonrpc": "2.0", "id": id, "result": {} }))
                } else if !crate::clients::asks::RELAYED.contains(&method) {
                    Some(refusal(&message, "the gateway does not relay this request"))
                } else if text.len() > crate::clients::asks::MAX_RELAYED_BYTES {
                    Some(refusal(&message, "the request is larger than the gateway relays (1 MiB)"))
                } else {
                    match self.asker() {
                        Ok((_, held)) if held.load(Ordering::Relaxed) >= crate::clients::asks::MAX_PER_CALL => {
                            Some(refusal(&message, "too many requests of this call are waiting for its client"))
                        }
                        Ok((tx, held)) => {
                            held.fetch_add(1, Ordering::Relaxed);
                            match tx.send(message) {
                                Ok(()) => None,
                                Err(returned) => Some(refusal(&returned.0, "the call that caused it has ended")),
                            }
                        }
                        Err(why) => Some(refusal(&message, why)),
                    }
                };
                if let Some(answer) = refused {
                    let _ = self.lines.try_send(line(&answer));
                }
                Said::Nothing
            }
            _ => Said::Garbage,
        }
    }

    /// The call whose client a request of the program's goes to. Over stdio nothing says which
    /// call a request belongs to, so it goes to the newest call only when every call in flight
    /// that could answer is the same client's (always so with `session_mode: per_client`).
    /// Calls that cannot be asked (REST calls, jobs, the gateway's own listings) count too: a
    /// request may be theirs, so another client must not see it.
    fn asker(&self) -> Result<(mpsc::UnboundedSender<Value>, Arc<AtomicUsize>), &'static str> {
        let mut newest: Option<(u64, Asker)> = None;
        for entry in self.askers.iter() {
            let asker = entry.value();
            match &newest {
                Some((_, n)) if n.client != asker.client => {
                    return Err("calls of several clients are in flight, so the gateway cannot tell which one asked")
                }
                Some((id, _)) if id > entry.key() => {}
                _ => newest = Some((*entry.key(), asker.clone())),
            }
        }
        let (_, asker) = newest.ok_or("no call in flight comes from a client the gateway can ask")?;
        if self.pending.len() > self.askers.len() {
            return Err("calls that cannot be asked are in flight too, so the gateway cannot tell which one asked");
        }
        Ok((asker.tx, asker.held))
    }

    /// The program printed a line longer than allowed (dropped unread); `head` is its start.
    /// When the start names a request still waiting, that call fails now with a clear error
    /// rather than at its timeout. Whether one did.
    pub fn overlong(&self, head: &[u8], max_line_bytes: usize) -> bool {
        let Some(id) = leading_id(head) else { return false };
        let Some((_, waiting)) = self.pending.remove(&id) else { return false };
        let message = format!("the answer is longer than max_line_bytes ({max_line_bytes})");
        let _ = waiting.send(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32603, "message": message } }));
        true
    }

    /// The program exited: every waiting call fails (502) and later ones are refused.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        // Dropping the senders wakes every waiter with "exited before it answered".
        self.pending.clear();
        self.progress.clear();
        self.askers.clear();
    }

    /// Whether the program behind this link has exited.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn answers_are_routed_by_the_gateways_own_ids() {
        let (tx, mut rx) = mpsc::channel(8);
        let link = Arc::new(StdioLink::new("t", tx, 8));
        let caller = link.clone();
        let call = actix_web::rt::spawn(async move {
            caller.request("tools/call", &json!({"name": "x"}), Duration::from_secs(5), None).await
        });
        let sent: Value = serde_json::from_slice(&rx.recv().await.unwrap()).unwrap();
        let id = sent["id"].as_u64().unwrap();
        assert_eq!(link.deliver(br#"{"jsonrpc":"2.0","id":999,"result":{}}"#), Said::UnknownId);
        assert_eq!(link.deliver(b"not json"), Said::Garbage);
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}}).to_string();
        assert_eq!(link.deliver(answer.as_bytes()), Said::Nothing);
        assert_eq!(call.await.unwrap().unwrap(), json!({"content": []}));
        assert_eq!(link.pending(), 0);
    }

    /// A program flooding one call's client with requests: at most MAX_PER_CALL are held,
    /// a request over MAX_RELAYED_BYTES is refused unread by the client, and a call that
    /// cannot be asked makes every request refused (it may be that call's).
    #[actix_web::test]
    async fn what_a_program_asks_a_client_is_bounded() {
        use crate::clients::asks::{MAX_PER_CALL, MAX_RELAYED_BYTES};
        let (tx, mut rx) = mpsc::channel(64);
        let link = Arc::new(StdioLink::new("t", tx, 8));
        let caller = link.clone();
        let call = actix_web::rt::spawn(async move {
            let never: super::super::Asker = Box::new(|_| Box::pin(std::future::pending()));
            let observer = Observer::new(|_| {}).asking("alice", never);
            caller.request("tools/call", &json!({"name": "x"}), Duration::from_secs(30), Some(&observer)).await
        });
        let sent: Value = serde_json::from_slice(&rx.recv().await.unwrap()).unwrap();
        let ask = |id: u64, text: &str| {
            json!({"jsonrpc": "2.0", "id": id, "method": "sampling/createMessage", "params": {"t": text}}).to_string()
        };
        for i in 0..(MAX_PER_CALL as u64 + 2) {
            link.deliver(ask(1000 + i, "x").as_bytes());
        }
        link.deliver(ask(2000, &"y".repeat(MAX_RELAYED_BYTES)).as_bytes());
        let mut refused = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            let v: Value = serde_json::from_slice(&line).unwrap();
            refused.push((v["id"].as_u64().unwrap(), v["error"]["message"].as_str().unwrap_or("").to_owned()));
        }
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].1.contains("too many requests"), "{refused:?}");
        assert!(refused[2].1.contains("larger than the gateway relays"), "{refused:?}");
        // A second call that cannot be asked (a REST call): nobody's request is relayed.
        let other = link.clone();
        let rest = actix_web::rt::spawn(async move {
            other.request("tools/call", &json!({"name": "y"}), Duration::from_secs(30), None).await
        });
        let _ = rx.recv().await;
        link.deliver(ask(3000, "z").as_bytes());
        let v: Value = serde_json::from_slice(&rx.recv().await.unwrap()).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("cannot be asked"), "{v}");
        let id = sent["id"].as_u64().unwrap();
        link.deliver(json!({"jsonrpc": "2.0", "id": id, "result": {}}).to_string().as_bytes());
        assert!(call.await.unwrap().is_ok());
        // The call ended with 8 requests unanswered: the program hears so for each.
        let mut ended = 0;
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            let v: Value = serde_json::from_slice(&line).unwrap();
            ended += usize::from(v["error"]["message"].as_str().unwrap_or("").contains("has ended"));
        }
        assert_eq!(ended, MAX_PER_CALL);
        rest.abort();
    }

    #[actix_web::test]
    async fn a_closed_link_fails_waiting_calls_and_refuses_new_ones() {
        let (tx, _rx) = mpsc::channel(8);
        let link = Arc::new(StdioLink::new("t", tx, 8));
        let caller = link.clone();
        let call = actix_web::rt::spawn(async move {
            caller.request("tools/list", &json!({}), Duration::from_secs(5), None).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        link.close();
        assert!(matches!(call.await.unwrap(), Err(GatewayError::BackendUnavailable(_))));
        let refused = link.request("tools/list", &json!({}), Duration::from_secs(1), None).await;
        assert!(matches!(refused, Err(GatewayError::BackendUnavailable(_))));
    }
}
