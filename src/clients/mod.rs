//! The MCP clients connected to this replica: their sessions, their open event streams, their
//! requests still running and their waiting `tasks/result` long polls — one component, so the
//! front doors (`/mcp`, `/sse`) and whoever must reach clients (a catalog change) use one API.

use std::sync::Arc;

use actix_web::web::Bytes;
use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

pub mod session;

use session::Sessions;

/// Connected clients.
pub struct Clients {
    sessions: Arc<Sessions>,
    streams: DashMap<String, UnboundedSender<Bytes>>,
    running: DashMap<String, AbortHandle>,
    waiting: DashMap<String, usize>,
}

impl Clients {
    /// No client yet; sessions idle longer than `idle` expire.
    pub fn new(idle: std::time::Duration) -> Self {
        Self {
            sessions: Arc::new(Sessions::new(idle)),
            streams: DashMap::new(),
            running: DashMap::new(),
            waiting: DashMap::new(),
        }
    }

    /// The clients' sessions (each bound to its subject).
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Tell every connected client that the tools it may call changed (a backend's listing,
    /// `tools.yaml` or `policy.yaml`).
    pub fn tools_changed(&self) {
        self.broadcast(&serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }));
    }

    /// Send a notification to every open client stream (`GET /mcp` and legacy `/sse`).
    pub fn broadcast(&self, message: &Value) {
        let event = sse_message(message);
        self.streams.retain(|_, tx| tx.send(event.clone()).is_ok());
        self.sessions.send_to_streams(&event);
    }

    /// Session `sid` opened its `GET /mcp` stream (replacing an older one).
    pub fn open_stream(&self, sid: &str, tx: UnboundedSender<Bytes>) {
        self.streams.insert(sid.to_owned(), tx);
    }

    /// Session `sid`'s stream `tx` closed (a newer stream of the session stays).
    pub fn close_stream(&self, sid: &str, tx: &UnboundedSender<Bytes>) {
        self.streams.remove_if(sid, |_, current| current.same_channel(tx));
    }

    /// A request is running under `key` (scope and request id): it can be cancelled.
    pub fn running(&self, key: String, task: AbortHandle) {
        self.running.insert(key, task);
    }

    /// The request under `key` ended.
    pub fn ended(&self, key: &str) {
        self.running.remove(key);
    }

    /// Stop the request under `key` if it is still running; whether it was.
    pub fn cancel(&self, key: &str) -> bool {
        match self.running.remove(key) {
            Some((_, task)) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// Stop every request whose key starts with `prefix` (a session that went away).
    pub fn cancel_all(&self, prefix: &str) {
        self.running.retain(|key, task| {
            let ours = key.starts_with(prefix);
            if ours {
                task.abort();
            }
            !ours
        });
    }

    /// Take one of `user`'s at most `max` waiting slots (`tasks/result` long polls); `None`
    /// when all are taken. The slot is given back when dropped.
    pub fn wait_slot(&self, user: &str, max: usize) -> Option<WaitSlot<'_>> {
        let mut n = self.waiting.entry(user.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        drop(n);
        Some(WaitSlot { waiting: &self.waiting, user: user.to_owned() })
    }
}

/// One subject's waiting long poll, released on drop.
pub struct WaitSlot<'a> {
    waiting: &'a DashMap<String, usize>,
    user: String,
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        if let Some(mut n) = self.waiting.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
        self.waiting.remove_if(&self.user, |_, n| *n == 0);
    }
}

/// One JSON-RPC message as an SSE `message` event.
pub fn sse_message(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}
