//! Messages between replicas, over Redis pub/sub: what one replica must tell the replica that
//! holds a client's stream or runs a client's call. No clustering of our own: every replica
//! subscribes to its own channel and to one channel for all.
//!
//! - `mcpgw:bus:<replica>`: an event for a legacy SSE stream this replica holds — the session's
//!   key (64 hex digits), then the SSE event's bytes. A `POST /messages` served by replica B is
//!   answered on the stream held by replica A this way, in order (one publishing queue per
//!   replica, one connection).
//! - `mcpgw:bus:all`: `c` + an in-flight key (`notifications/cancelled` reaching the replica that
//!   runs the call), or `d` + a session key (a session ended: drop cached copies, close its
//!   streams).
//!
//! Publishing never blocks a request: messages wait in a bounded queue (past
//! [`QUEUE_MAX`] they are dropped and counted) and go out in pipelined batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

/// Most messages waiting to be published; past it a message is dropped (and counted).
pub const QUEUE_MAX: usize = 65_536;

/// Most messages one pipelined batch publishes.
const BATCH: usize = 256;

const ALL: &str = "mcpgw:bus:all";

fn replica_channel(replica: &str) -> String {
    format!("mcpgw:bus:{replica}")
}

/// What arrives from another replica.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// An SSE event for the stream of session `key`, which this replica holds.
    Event {
        /// The session's key.
        key: String,
        /// The SSE event, as written to the stream.
        event: Bytes,
    },
    /// Cancel the in-flight request under this key, if it runs here.
    Cancel(String),
    /// Session `key` ended.
    Ended(String),
}

impl Inbound {
    /// Decode a message of `channel` (ours or [`ALL`]); `None` when it is not one of ours.
    pub fn decode(channel: &str, payload: &[u8]) -> Option<Self> {
        if channel != ALL {
            if payload.len() < 64 || !payload[..64].iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let key = String::from_utf8_lossy(&payload[..64]).into_owned();
            return Some(Self::Event { key, event: Bytes::copy_from_slice(&payload[64..]) });
        }
        let (kind, rest) = payload.split_first()?;
        let text = std::str::from_utf8(rest).ok()?.to_owned();
        match kind {
            b'c' => Some(Self::Cancel(text)),
            b'd' => Some(Self::Ended(text)),
            _ => None,
        }
    }
}

/// This replica's side of the bus: cheap to clone.
#[derive(Clone)]
pub struct Bus {
    replica: Arc<str>,
    queue: mpsc::Sender<(String, Vec<u8>)>,
    dropped: Arc<AtomicU64>,
}

impl Bus {
    /// The bus of replica `replica`, publishing through `manager`.
    pub fn start(replica: Arc<str>, manager: ConnectionManager) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_MAX);
        let dropped = Arc::new(AtomicU64::new(0));
        actix_web::rt::spawn(publish(rx, manager, dropped.clone()));
        Self { replica, queue, dropped }
    }

    /// This replica's id (the holder named in the sessions whose streams it holds).
    pub fn replica(&self) -> &Arc<str> {
        &self.replica
    }

    fn send(&self, channel: String, payload: Vec<u8>) -> bool {
        if self.queue.try_send((channel, payload)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the replica bus is backed up; a message to another replica was dropped");
            return false;
        }
        true
    }

    /// Send an SSE `event` to session `key`'s stream on replica `holder`.
    pub fn event(&self, holder: &str, key: &str, event: &[u8]) -> bool {
        let mut payload = Vec::with_capacity(key.len() + event.len());
        payload.extend_from_slice(key.as_bytes());
        payload.extend_from_slice(event);
        self.send(replica_channel(holder), payload)
    }

    /// Ask every replica to cancel the request under `inflight_key`.
    pub fn cancel(&self, inflight_key: &str) {
        self.send(ALL.to_owned(), [b"c", inflight_key.as_bytes()].concat());
    }

    /// Tell every replica that session `key` ended.
    pub fn ended(&self, key: &str) {
        self.send(ALL.to_owned(), [b"d", key.as_bytes()].concat());
    }

    /// Messages dropped because the queue was full or Redis refused them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Listen on this replica's channel and the channel for all, handing each message to
    /// `deliver`, for as long as the process runs (resubscribing after Redis comes back).
    pub fn listen(&self, client: redis::Client, deliver: impl Fn(Inbound) + 'static) {
        let own = replica_channel(&self.replica);
        actix_web::rt::spawn(async move {
            loop {
                match subscribe(&client, &own).await {
                    Ok(pubsub) => {
                        tracing::info!("listening for messages from other replicas");
                        let mut messages = pubsub.into_on_message();
                        while let Some(msg) = messages.next().await {
                            let channel = msg.get_channel_name().to_owned();
                            if let Some(inbound) = Inbound::decode(&channel, msg.get_payload_bytes()) {
                                deliver(inbound);
                            }
                        }
                        tracing::warn!("lost the subscription to other replicas' messages; resubscribing");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot subscribe to other replicas' messages; retrying"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

async fn subscribe(client: &redis::Client, own: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    pubsub.subscribe(&[own, ALL]).await?;
    Ok(pubsub)
}

/// The publishing loop: in order, pipelined.
async fn publish(mut rx: mpsc::Receiver<(String, Vec<u8>)>, mut manager: ConnectionManager, dropped: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.publish(channel, payload.as_slice());
        }
        if let Err(e) = pipe.query_async::<Vec<i64>>(&mut manager).await {
            dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, messages = batch.len(), "messages to other replicas were lost");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_messages_are_taken() {
        let key = "a".repeat(64);
        let event = [key.as_bytes(), b"event: message\ndata: {}\n\n"].concat();
        assert_eq!(
            Inbound::decode("mcpgw:bus:r1", &event),
            Some(Inbound::Event { key: key.clone(), event: Bytes::from_static(b"event: message\ndata: {}\n\n") })
        );
        assert_eq!(Inbound::decode("mcpgw:bus:r1", b"short"), None);
        assert_eq!(Inbound::decode("mcpgw:bus:r1", &[b'z'; 70]), None);
        assert_eq!(Inbound::decode(ALL, b"ckey"), Some(Inbound::Cancel("key".into())));
        assert_eq!(Inbound::decode(ALL, b"dkey"), Some(Inbound::Ended("key".into())));
        assert_eq!(Inbound::decode(ALL, b"x"), None);
        assert_eq!(Inbound::decode(ALL, b""), None);
        assert_eq!(Inbound::decode(ALL, b"c\xff"), None);
    }
}
