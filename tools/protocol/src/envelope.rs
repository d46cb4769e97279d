//! JSON-RPC 2.0 envelopes as MCP uses them: typed messages, strict parsing, bounded batches.
//!
//! A message is sorted by [`classify`] into a [`Message`] or refused as [`Invalid`] with the
//! error to answer. A POST body is split by [`split`] into one message or a batch, refusing
//! what no JSON reader should be asked to build (a batch longer than its bound is refused while
//! it is read, before its items exist).

use serde_json::{json, Map, Value};

use crate::code;

/// A JSON-RPC error object: what a response carries in `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code, one of [`crate::code`].
    pub code: i32,
    /// A message a person can act on.
    pub message: String,
    /// `error.data`: what a client can act on by program (an error kind, a retry delay).
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without `data`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// The `error` object.
    pub fn to_value(&self) -> Value {
        match &self.data {
            Some(data) => json!({ "code": self.code, "message": self.message, "data": data }),
            None => json!({ "code": self.code, "message": self.message }),
        }
    }
}

/// One JSON-RPC message, sorted by what its receiver must do with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Needs an answer with the same id.
    Request {
        /// String or integer id.
        id: Value,
        /// Method name.
        method: String,
        /// Params: an object (empty when absent).
        params: Value,
    },
    /// Needs no answer.
    Notification {
        /// Method name.
        method: String,
        /// Params: an object (empty when absent).
        params: Value,
    },
    /// The peer's answer to a request of ours (`result` or `error`).
    Response {
        /// The id of the request it answers.
        id: Value,
        /// Whether it carries `error` rather than `result`.
        is_error: bool,
    },
}

/// A message that is not valid JSON-RPC 2.0: the error to answer, and the id to answer it to
/// (`null` when none could be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The request's id when it had a valid one, else `null`.
    pub id: Value,
    /// What to answer.
    pub error: RpcError,
    /// Why, in a few words (the error's message without its prefix), for logs and audit rows.
    pub why: String,
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// Sort one message, or say why it is not valid JSON-RPC 2.0 (`"jsonrpc": "2.0"` required; ids
/// are strings or integers; params, when present, an object).
pub fn classify(msg: &Value) -> Result<Message, Invalid> {
    let invalid = |id: Option<&Value>, why: &str| Invalid {
        id: id.filter(|id| valid_id(id)).cloned().unwrap_or(Value::Null),
        error: RpcError::new(code::INVALID_REQUEST, format!("invalid request: {why}")),
        why: why.to_owned(),
    };
    let Some(obj) = msg.as_object() else {
        return Err(invalid(None, "expected a JSON-RPC object"));
    };
    let id = obj.get("id");
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(id, "jsonrpc must be \"2.0\""));
    }
    let method = match (id, obj.get("method")) {
        // A peer's answer to a request of ours, whatever its id (JSON-RPC allows `null`).
        (Some(id), None) if obj.contains_key("result") || obj.contains_key("error") => {
            return Ok(Message::Response { id: id.clone(), is_error: obj.contains_key("error") });
        }
        (None, Some(Value::String(m))) => m.clone(),
        (Some(i), Some(Value::String(m))) if valid_id(i) => m.clone(),
        _ => return Err(invalid(id, "expected a request, a notification or a response")),
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(Invalid {
                id: id.cloned().unwrap_or(Value::Null),
                error: RpcError::new(code::INVALID_PARAMS, "params must be an object"),
                why: "params must be an object".into(),
            })
        }
    };
    match id {
        Some(id) => Ok(Message::Request { id: id.clone(), method, params }),
        None => Ok(Message::Notification { method, params }),
    }
}

/// A response answering `id`: its result, or its error.
pub fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => json!({ "jsonrpc": "2.0", "id": id, "error": e.to_value() }),
    }
}

/// A POST body: one message, or a batch (MCP 2025-03-26 only).
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// One message (not yet classified).
    Single(Value),
    /// A non-empty batch of at most the bound's messages (not yet classified).
    Batch(Vec<Value>),
}

/// Why a body could not be split into messages.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    /// A number literal at this byte offset is below what a 64-bit float holds: a reader would
    /// turn it into 0, a value the sender never sent.
    Underflow(usize),
    /// Not JSON (the reader's words).
    NotJson(String),
    /// `[]`.
    EmptyBatch,
    /// More messages than the bound.
    BatchTooLong(usize),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Underflow(at) => write!(
                f,
                "the number literal at byte {at} is below what a 64-bit float holds and would arrive as 0; send \
                 numbers this small as strings"
            ),
            Self::NotJson(e) => f.write_str(e),
            Self::EmptyBatch => f.write_str("empty batch"),
            Self::BatchTooLong(max) => f.write_str(&batch_too_long(*max)),
        }
    }
}

impl BodyError {
    /// Whether the body is not JSON at all (-32700), rather than JSON of the wrong shape.
    pub fn is_parse_error(&self) -> bool {
        matches!(self, Self::Underflow(_) | Self::NotJson(_))
    }

    /// What to answer (always to id `null`).
    pub fn error(&self) -> RpcError {
        if self.is_parse_error() {
            RpcError::new(code::PARSE_ERROR, format!("parse error: {self}"))
        } else {
            RpcError::new(code::INVALID_REQUEST, self.to_string())
        }
    }
}

fn batch_too_long(max: usize) -> String {
    format!("batch longer than {max} messages")
}

/// Reads a batch item by item, refusing it once it holds more than its bound: refused while
/// read, before the rest of its items are built, so a body of a million tiny items costs no more
/// than one string of the same size.
struct Items(usize);

impl<'de> serde::de::Visitor<'de> for Items {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON-RPC batch")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            if items.len() == self.0 {
                return Err(serde::de::Error::custom(batch_too_long(self.0)));
            }
            items.push(item);
        }
        Ok(items)
    }
}

fn read_batch(body: &[u8], max: usize) -> Result<Vec<Value>, BodyError> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let items = serde::Deserializer::deserialize_seq(&mut reader, Items(max)).map_err(|e| {
        if e.to_string().starts_with(&batch_too_long(max)) {
            BodyError::BatchTooLong(max)
        } else {
            BodyError::NotJson(e.to_string())
        }
    })?;
    reader.end().map_err(|e| BodyError::NotJson(e.to_string()))?;
    Ok(items)
}

/// Split a POST body into one message or a batch of at most `max_batch` (0: batches refused as
/// [`BodyError::BatchTooLong`]).
pub fn split(body: &[u8], max_batch: usize) -> Result<Body, BodyError> {
    if let Some(at) = crate::numbers::first_underflow(body) {
        return Err(BodyError::Underflow(at));
    }
    let is_batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if is_batch && max_batch == 0 {
        // Batches refused outright: the body is still read as JSON first, so a broken one is a
        // parse error like any other (the body is bounded by the caller's size limit).
        let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
        return Err(if value.as_array().is_some_and(Vec::is_empty) {
            BodyError::EmptyBatch
        } else {
            BodyError::BatchTooLong(0)
        });
    }
    if is_batch {
        let items = read_batch(body, max_batch)?;
        if items.is_empty() {
            return Err(BodyError::EmptyBatch);
        }
        return Ok(Body::Batch(items));
    }
    serde_json::from_slice(body).map(Body::Single).map_err(|e| BodyError::NotJson(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_sorted_strictly() {
        let request = classify(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).unwrap();
        assert_eq!(request, Message::Request { id: json!(1), method: "ping".into(), params: json!({}) });
        let note = classify(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
        assert!(matches!(note, Message::Notification { .. }));
        let answer = classify(&json!({"jsonrpc": "2.0", "id": "s1", "error": {"code": 1, "message": "x"}})).unwrap();
        assert_eq!(answer, Message::Response { id: json!("s1"), is_error: true });
        let answer = classify(&json!({"jsonrpc": "2.0", "id": null, "error": {"code": 1, "message": "x"}})).unwrap();
        assert_eq!(answer, Message::Response { id: Value::Null, is_error: true });
        for (bad, code) in [
            (json!({"id": 1, "method": "ping"}), code::INVALID_REQUEST),
            (json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}), code::INVALID_REQUEST),
            (json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}), code::INVALID_REQUEST),
            (json!({"jsonrpc": "2.0", "id": [1], "method": "ping"}), code::INVALID_REQUEST),
            (json!({"jsonrpc": "2.0", "id": 1, "method": 7}), code::INVALID_REQUEST),
            (json!({"jsonrpc": "2.0", "id": 1}), code::INVALID_REQUEST),
            (json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}), code::INVALID_PARAMS),
            (json!([]), code::INVALID_REQUEST),
        ] {
            assert_eq!(classify(&bad).map_err(|e| e.error.code), Err(code), "{bad}");
        }
        // The id is echoed only when it is a valid one.
        let e = classify(&json!({"jsonrpc": "1.0", "id": 9, "method": "x"})).unwrap_err();
        assert_eq!(e.id, json!(9));
        let e = classify(&json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"})).unwrap_err();
        assert_eq!(e.id, Value::Null);
    }

    #[test]
    fn bodies_split_with_a_bounded_batch() {
        assert_eq!(split(b" {\"a\":1}", 2), Ok(Body::Single(json!({"a": 1}))));
        assert_eq!(split(b"[1,2]", 2), Ok(Body::Batch(vec![json!(1), json!(2)])));
        assert_eq!(split(b"[1,2,3]", 2), Err(BodyError::BatchTooLong(2)));
        assert_eq!(split(b"[]", 2), Err(BodyError::EmptyBatch));
        assert!(matches!(split(b"[1,2] x", 2), Err(BodyError::NotJson(_))));
        assert!(matches!(split(b"{", 2), Err(BodyError::NotJson(_))));
        assert_eq!(split(b"{\"x\":1e-400}", 2), Err(BodyError::Underflow(5)));
        assert_eq!(split(b"[1]", 0), Err(BodyError::BatchTooLong(0)));
        assert!(matches!(split(b"[1] junk", 0), Err(BodyError::NotJson(_))), "broken, not a batch");
        let e = BodyError::BatchTooLong(100).error();
        assert_eq!((e.code, e.message.as_str()), (code::INVALID_REQUEST, "batch longer than 100 messages"));
    }

    #[test]
    fn responses_carry_data_only_when_there_is_some() {
        let plain = response(json!(1), Err(RpcError::new(code::INTERNAL_ERROR, "x")));
        assert_eq!(plain, json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "x"}}));
        let mut e = RpcError::new(code::RATE_LIMITED, "slow down");
        e.data = Some(json!({"retry_after_ms": 5}));
        assert_eq!(response(json!("a"), Err(e))["error"]["data"]["retry_after_ms"], 5);
    }
}
