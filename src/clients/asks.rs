//! Requests an upstream server makes of the client whose call it is serving (sampling,
//! elicitation, roots), on their way to that client and back.
//!
//! The gateway renumbers each such request with an unguessable id of its own and remembers who
//! it asked (the caller's [`crate::mcp::scope`]: subject and session). The client's answer is a
//! JSON-RPC response POSTed to `/mcp` (or the legacy message endpoint); it is handed back only
//! when it comes from that same scope, so no other caller can answer (or read) it. An answer
//! that arrives at another replica, or after the call ended, is dropped; the upstream then sees
//! its request unanswered until the call's own timeout.

use std::sync::Arc;

use dashmap::DashMap;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The server-to-client methods the gateway relays; anything else an upstream asks is refused.
pub const RELAYED: [&str; 3] = ["sampling/createMessage", "elicitation/create", "roots/list"];

/// Most requests one call may have waiting on its client at once.
pub const MAX_PER_CALL: usize = 8;

/// Largest request an upstream may relay to a client (its whole JSON-RPC line): sampling
/// carries messages, images included, but the client's stream holds at most a few MiB.
pub const MAX_RELAYED_BYTES: usize = 1024 * 1024;

/// Most requests waiting on clients at once, on this replica.
const MAX_WAITING: usize = 10_000;

/// Longest error message from a client that is passed on to the upstream.
const MAX_ERROR_MESSAGE: usize = 500;

struct Waiting {
    scope: String,
    answer: oneshot::Sender<Result<Value, Value>>,
}

/// The requests waiting for a client's answer, by the gateway's id.
#[derive(Default, Clone)]
pub struct Asks {
    waiting: Arc<DashMap<String, Waiting>>,
}

/// Forgets a request when whoever waits for its answer stops waiting (answered, timed out, the
/// call ended).
pub struct Pending {
    asks: Asks,
    id: String,
    rx: Option<oneshot::Receiver<Result<Value, Value>>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.asks.waiting.remove(&self.id);
    }
}

impl Pending {
    /// The gateway's id for the request (what the client answers to).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wait for the client's answer: its `result`, or a JSON-RPC `error` object.
    pub async fn answer(mut self) -> Result<Value, Value> {
        let Some(rx) = self.rx.take() else { return Err(error(-32603, "already answered")) };
        rx.await.unwrap_or_else(|_| Err(error(-32603, "the client's session ended before it answered")))
    }
}

/// A JSON-RPC error object.
pub fn error(code: i64, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

impl Asks {
    /// Expect an answer from the caller in `scope`; `None` when too many requests wait.
    pub fn expect(&self, scope: &str) -> Option<Pending> {
        if self.waiting.len() >= MAX_WAITING {
            return None;
        }
        let id = format!("gw-ask-{}", uuid::Uuid::new_v4().simple());
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(id.clone(), Waiting { scope: scope.to_owned(), answer: tx });
        Some(Pending { asks: self.clone(), id, rx: Some(rx) })
    }

    /// A client in `scope` answered request `id` with `message` (a JSON-RPC response); whether
    /// it was a request of ours waiting for that client.
    pub fn answered(&self, scope: &str, id: &Value, message: &Value) -> bool {
        let Some(id) = id.as_str() else { return false };
        let Some((_, waiting)) = self.waiting.remove_if(id, |_, w| w.scope == scope) else { return false };
        let outcome = match (message.get("result"), message.get("error")) {
            (Some(result), None) if result.is_object() => Ok(result.clone()),
            (None, Some(e)) => {
                let code = e.get("code").and_then(Value::as_i64).unwrap_or(-32603);
                let text: String = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control() && !crate::registry::servers::hidden(*c))
                    .take(MAX_ERROR_MESSAGE)
                    .collect();
                Err(error(code, &text))
            }
            _ => Err(error(-32603, "the client's answer was not a JSON-RPC response")),
        };
        let _ = waiting.answer.send(outcome);
        true
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn only_the_asked_scope_can_answer() {
        let asks = Asks::default();
        let pending = asks.expect("alice").unwrap();
        let id = json!(pending.id());
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"text": "x"}});
        assert!(!asks.answered("mallory", &id, &answer));
        assert!(!asks.answered("alice", &json!("gw-ask-other"), &answer));
        assert!(asks.answered("alice", &id, &answer));
        assert_eq!(pending.answer().await, Ok(json!({"text": "x"})));
        assert!(asks.is_empty());
    }

    #[actix_web::test]
    async fn a_dropped_request_is_forgotten_and_errors_are_cleaned() {
        let asks = Asks::default();
        let pending = asks.expect("alice").unwrap();
        let id = json!(pending.id());
        drop(pending);
        assert!(asks.is_empty());
        let pending = asks.expect("alice").unwrap();
        let id2 = json!(pending.id());
        assert_ne!(id, id2);
        let refused = json!({"jsonrpc": "2.0", "id": id2, "error": {"code": -1, "message": "no\u{1b}[31m"}});
        assert!(asks.answered("alice", &id2, &refused));
        assert_eq!(pending.answer().await, Err(json!({"code": -1, "message": "no[31m"})));
    }
}
