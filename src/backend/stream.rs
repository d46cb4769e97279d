//! Reading a backend's SSE: a reply that arrives as an event stream (with the backend's
//! notifications before it), and the backend's own server-to-client stream ([`McpClient::watch`]).

use std::time::Duration;

use awc::http::header;
use serde_json::Value;

use super::{into_result, send_error, sse, McpClient, Observer, Session};
use crate::error::GatewayError;

impl McpClient {
    /// Read an SSE reply as it arrives: hand notifications to the observer, return the
    /// response to request `id` as soon as it comes.
    /// The upstream's requests on the stream (sampling, elicitation, roots) are put to the
    /// observer's client and answered with a POST in the same session.
    pub(super) async fn read_stream<S>(
        &self,
        resp: &mut awc::ClientResponse<S>,
        id: u64,
        observer: &Observer,
        (url, session): (&str, &Session),
    ) -> Result<Value, GatewayError>
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
    {
        use futures_util::StreamExt;
        let mut buffer: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut asking = futures_util::stream::FuturesUnordered::new();
        loop {
            let chunk = tokio::select! {
                Some(answer) = asking.next(), if !asking.is_empty() => {
                    self.post_aside(url, session, answer);
                    continue;
                }
                chunk = resp.next() => match chunk {
                    Some(chunk) => chunk,
                    None => break,
                },
            };
            let chunk = chunk.map_err(|e| GatewayError::BackendBadReply(format!("cannot read reply: {e}")))?;
            total += chunk.len();
            if total > self.max_response_bytes {
                return Err(GatewayError::BackendBadReply("reply exceeds MAX_RESPONSE_BYTES".into()));
            }
            buffer.extend_from_slice(&chunk);
            while let Some(end) = event_end(&buffer) {
                let block: Vec<u8> = buffer.drain(..end).collect();
                let text = String::from_utf8_lossy(&block);
                for event in sse::parse(&text).into_iter().filter(|e| e.event == "message") {
                    let Ok(message) = serde_json::from_str::<Value>(&event.data) else { continue };
                    let is_reply = message.get("id").and_then(Value::as_u64) == Some(id)
                        && (message.get("result").is_some() || message.get("error").is_some());
                    if is_reply {
                        return into_result(message, id);
                    }
                    match (message.get("method").is_some(), message.get("id").is_some()) {
                        (true, false) => (observer.on_event)(message),
                        (true, true) if event.data.len() > crate::clients::asks::MAX_RELAYED_BYTES => self.post_aside(
                            url,
                            session,
                            super::refusal(&message, "the request is larger than the gateway relays (1 MiB)"),
                        ),
                        (true, true) if asking.len() < crate::clients::asks::MAX_PER_CALL => {
                            asking.push(super::answer_upstream(Some(observer), message));
                        }
                        (true, true) => self.post_aside(
                            url,
                            session,
                            super::refusal(&message, "too many requests of this call are waiting for its client"),
                        ),
                        _ => {}
                    }
                }
            }
        }
        Err(GatewayError::BackendBadReply("SSE reply ended without a response".into()))
    }
}

impl McpClient {
    /// Hold the backend's server-to-client stream open (`GET`, within the session that tool
    /// calls opened), handing each notification to `on_message` until the stream ends.
    pub async fn watch(&self, url: &str, mut on_message: impl FnMut(Value)) -> Result<Watch, GatewayError> {
        use futures_util::StreamExt;
        let Some(session) = self.sessions.get(url).map(|s| s.clone()) else {
            return Ok(Watch::NoSession);
        };
        let mut req = self
            .http
            .get(url)
            .timeout(Duration::from_secs(10))
            .insert_header((header::ACCEPT, "text/event-stream"))
            .insert_header(("MCP-Protocol-Version", session.protocol_version.as_str()));
        if let Some(sid) = &session.id {
            req = req.insert_header(("Mcp-Session-Id", sid.as_str()));
        }
        req = super::with_headers(req, self.own_headers(url).as_deref());
        if let Some(authorization) = self.oauth_authorization(url).await? {
            req = req.insert_header((header::AUTHORIZATION, authorization));
        }
        let mut resp = req.send().await.map_err(send_error)?;
        match resp.status().as_u16() {
            405 => return Ok(Watch::NoStream),
            404 if session.id.is_none() => return Ok(Watch::NoStream),
            404 => {
                // The session expired; the next tool call opens a new one.
                self.sessions.remove(url);
                return Ok(Watch::NoSession);
            }
            s if !(200..300).contains(&s) => return Err(GatewayError::BackendUnavailable(format!("HTTP {s} on GET"))),
            _ => {}
        }
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.next().await {
            let chunk = chunk.map_err(|e| GatewayError::BackendBadReply(e.to_string()))?;
            buffer.extend_from_slice(&chunk);
            if buffer.len() > self.max_response_bytes {
                buffer.clear();
            }
            while let Some(end) = event_end(&buffer) {
                let block: Vec<u8> = buffer.drain(..end).collect();
                for event in sse::parse(&String::from_utf8_lossy(&block)) {
                    if let Ok(message) = serde_json::from_str::<Value>(&event.data) {
                        on_message(message);
                    }
                }
            }
        }
        Ok(Watch::Ended)
    }
}

/// How a [`McpClient::watch`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// No session with the backend yet (nothing to listen within).
    NoSession,
    /// The backend offers no server-to-client stream.
    NoStream,
    /// The stream was open and has ended.
    Ended,
}

/// Where the first complete SSE event in `buffer` ends.
pub(crate) fn event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The response to request `id` among the events of an SSE reply.
pub(super) fn find_in_sse(bytes: &[u8], id: u64) -> Result<Value, GatewayError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| GatewayError::BackendBadReply("SSE reply is not UTF-8".into()))?;
    sse::parse(text)
        .into_iter()
        .filter(|e| e.event == "message")
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .find(|m| {
            m.get("id").and_then(Value::as_u64) == Some(id) && (m.get("result").is_some() || m.get("error").is_some())
        })
        .ok_or_else(|| GatewayError::BackendBadReply("SSE reply holds no response to the request".into()))
}
