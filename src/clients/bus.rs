//! Messages between replicas, over Redis pub/sub (with `REDIS_URL`) or PostgreSQL
//! `LISTEN/NOTIFY` (without it, on PostgreSQL): what one replica must tell the replica that
//! holds a client's stream or runs a client's call. No clustering of our own: every replica
//! listens on its own channel and on one channel for all.
//!
//! - its own channel (`mcpgw:bus:<replica>` in Redis, `mcpgw_bus_<replica>` in PostgreSQL): an
//!   event for a legacy SSE stream this replica holds — the session's key (64 hex digits), then
//!   the SSE event's bytes. A `POST /messages` served by replica B is answered on the stream
//!   held by replica A this way, in order (one publishing queue per replica, published in
//!   order on one connection).
//! - the channel for all (`mcpgw:bus:all`, `mcpgw_bus_all`): `c` + an in-flight key
//!   (`notifications/cancelled` reaching the replica that runs the call), or `d` + a session
//!   key (a session ended: drop cached copies, close its streams).
//!
//! A NOTIFY payload is text of at most 8,000 bytes: a larger message (or one holding a NUL)
//! is stored in `mcp_bus_messages` and the notification carries `@<row id>`; the replica it is
//! for deletes the row as it reads it (messages for all, and rows nobody read, go after a
//! minute). PostgreSQL folds identical notifications of one transaction into one, so each
//! payload starts with a sequence number (`<hex> `), stripped on arrival.
//!
//! Publishing never blocks a request: messages wait in a queue bounded in bytes
//! ([`QUEUE_MAX_BYTES`]; past it they are dropped and counted) and go out in batches, on a
//! connection of their own (a large answer in flight never delays a session lookup).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use diesel::sql_types::{Array, BigInt, Binary, Text};
use diesel::QueryableByName;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

/// Most bytes waiting to be published; past it a message is dropped (and counted).
pub const QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Longest in-flight key a cancellation is broadcast for (a longer request id is cancelled only
/// on the replica that received the cancel): bounds what one notification may fan out.
pub const MAX_CANCEL_KEY: usize = 512;

/// Most messages one batch publishes.
const BATCH: usize = 256;

/// Largest message sent as a NOTIFY payload itself (PostgreSQL's limit is 8,000 bytes).
const NOTIFY_MAX: usize = 7_900;

/// How the replicas reach each other.
#[derive(Clone)]
pub enum Link {
    /// Redis pub/sub.
    Redis {
        /// For the subscription's own connection.
        client: redis::Client,
        /// For publishing.
        manager: ConnectionManager,
    },
    /// PostgreSQL `LISTEN/NOTIFY`.
    Postgres {
        /// `DATABASE_URL`, for the listening connection.
        url: String,
        /// For publishing and reading stored messages.
        pool: Pool<AsyncPgConnection>,
    },
}

impl Link {
    fn own_channel(&self, replica: &str) -> String {
        match self {
            Self::Redis { .. } => format!("mcpgw:bus:{replica}"),
            Self::Postgres { .. } => format!("mcpgw_bus_{replica}"),
        }
    }

    fn all_channel(&self) -> &'static str {
        match self {
            Self::Redis { .. } => "mcpgw:bus:all",
            Self::Postgres { .. } => "mcpgw_bus_all",
        }
    }
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
    /// Decode a message of this replica's own channel (`for_all == false`) or of the channel
    /// for all; `None` when it is not one of ours.
    pub fn decode(for_all: bool, payload: &[u8]) -> Option<Self> {
        if !for_all {
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
    link: Arc<Link>,
    queue: mpsc::UnboundedSender<(String, Vec<u8>)>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl Bus {
    /// The bus of replica `replica` over `link`.
    pub fn start(replica: Arc<str>, link: Link) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let (dropped, queued_bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        let link = Arc::new(link);
        actix_web::rt::spawn(publish(rx, link.clone(), dropped.clone(), queued_bytes.clone()));
        Self { replica, link, queue, queued_bytes, dropped }
    }

    fn send(&self, channel: String, payload: Vec<u8>) -> bool {
        let len = payload.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > QUEUE_MAX_BYTES {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the replica bus is backed up; a message to another replica was dropped");
            return false;
        }
        if self.queue.send((channel, payload)).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Send an SSE `event` to session `key`'s stream on replica `holder`.
    pub fn event(&self, holder: &str, key: &str, event: &[u8]) -> bool {
        let mut payload = Vec::with_capacity(key.len() + event.len());
        payload.extend_from_slice(key.as_bytes());
        payload.extend_from_slice(event);
        self.send(self.link.own_channel(holder), payload)
    }

    /// Ask every replica to cancel the request under `inflight_key` (not past
    /// [`MAX_CANCEL_KEY`]).
    pub fn cancel(&self, inflight_key: &str) {
        if inflight_key.len() <= MAX_CANCEL_KEY {
            self.send(self.link.all_channel().to_owned(), [b"c", inflight_key.as_bytes()].concat());
        }
    }

    /// Tell every replica that session `key` ended.
    pub fn ended(&self, key: &str) {
        self.send(self.link.all_channel().to_owned(), [b"d", key.as_bytes()].concat());
    }

    /// Messages dropped because the queue was full or the store refused them.
    pub fn dropped(&self) -> u64 {
        AtomicU64::load(&self.dropped, Ordering::Relaxed)
    }

    /// Remove stored messages older than a minute (PostgreSQL; every replica may).
    pub async fn tidy(&self) {
        if let Link::Postgres { pool, .. } = &*self.link {
            if let Ok(mut conn) = pool.get().await {
                let _ =
                    diesel::sql_query("DELETE FROM mcp_bus_messages WHERE created_at < now() - interval '1 minute'")
                        .execute(&mut *conn)
                        .await;
            }
        }
    }

    /// Listen on this replica's channel and the channel for all, handing each message to
    /// `deliver`, for as long as the process runs (listening again after the store returns).
    pub fn listen(&self, deliver: impl Fn(Inbound) + 'static) {
        let (own, all, link) = (self.link.own_channel(&self.replica), self.link.all_channel(), self.link.clone());
        actix_web::rt::spawn(async move {
            loop {
                let outcome = match &*link {
                    Link::Redis { client, .. } => listen_redis(client, &own, all, &deliver).await,
                    Link::Postgres { url, pool } => listen_pg(url, pool, &own, all, &deliver).await,
                };
                match outcome {
                    Ok(()) => tracing::warn!("lost the channel to other replicas; listening again"),
                    Err(e) => tracing::warn!(error = %e, "cannot listen to other replicas; retrying"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

async fn listen_redis(client: &redis::Client, own: &str, all: &str, deliver: &impl Fn(Inbound)) -> Result<(), String> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| "timed out connecting to Redis".to_owned())?
        .map_err(|e| e.to_string())?;
    pubsub.subscribe(&[own, all]).await.map_err(|e| e.to_string())?;
    tracing::info!("listening for messages from other replicas (Redis)");
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        if let Some(inbound) = Inbound::decode(msg.get_channel_name() == all, msg.get_payload_bytes()) {
            deliver(inbound);
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Binary)]
    payload: Vec<u8>,
}

#[derive(QueryableByName)]
struct StoredId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// A quoted PostgreSQL identifier (channel names hold `-`).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn listen_pg(
    url: &str,
    pool: &Pool<AsyncPgConnection>,
    own: &str,
    all: &str,
    deliver: &impl Fn(Inbound),
) -> Result<(), String> {
    let mut conn = tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(url))
        .await
        .map_err(|_| "timed out connecting to PostgreSQL".to_owned())?
        .map_err(|e| e.to_string())?;
    for channel in [own, all] {
        diesel::sql_query(format!("LISTEN {}", quoted(channel))).execute(&mut conn).await.map_err(|e| e.to_string())?;
    }
    tracing::info!("listening for messages from other replicas (PostgreSQL)");
    loop {
        {
            // Notifications wait in the connection's own queue while the health check runs.
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            let check = tokio::time::sleep(Duration::from_secs(10));
            tokio::pin!(check);
            loop {
                tokio::select! {
                    next = notifications.next() => match next {
                        Some(Ok(n)) => {
                            let for_all = n.channel == all;
                            // `<sequence> <message>` (see the module's notes).
                            let body = n.payload.split_once(' ').map_or("", |(_, body)| body);
                            let payload = match body.strip_prefix('@').and_then(|id| id.parse::<i64>().ok()) {
                                Some(id) => match stored(pool, id, !for_all).await {
                                    Some(payload) => payload,
                                    None => continue,
                                },
                                None => body.as_bytes().to_vec(),
                            };
                            if let Some(inbound) = Inbound::decode(for_all, &payload) {
                                deliver(inbound);
                            }
                        }
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Ok(()),
                    },
                    _ = &mut check => break,
                }
            }
        }
        let alive =
            tokio::time::timeout(Duration::from_secs(5), diesel::sql_query("SELECT 1").execute(&mut conn)).await;
        if !matches!(alive, Ok(Ok(_))) {
            return Ok(());
        }
    }
}

/// A message too large for its notification, by row id; `take`: ours alone, deleted as read.
async fn stored(pool: &Pool<AsyncPgConnection>, id: i64, take: bool) -> Option<Vec<u8>> {
    let mut conn = pool.get().await.ok()?;
    let sql = if take {
        "DELETE FROM mcp_bus_messages WHERE id = $1 RETURNING payload"
    } else {
        "SELECT payload FROM mcp_bus_messages WHERE id = $1"
    };
    let rows = diesel::sql_query(sql).bind::<BigInt, _>(id).load::<Stored>(&mut *conn).await.ok()?;
    rows.into_iter().next().map(|r| r.payload)
}

/// The publishing loop: in order, in batches.
async fn publish(
    mut rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    link: Arc<Link>,
    dropped: Arc<AtomicU64>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        queued_bytes.fetch_sub(batch.iter().map(|(_, p)| p.len()).sum::<usize>(), Ordering::Relaxed);
        let outcome = match &*link {
            Link::Redis { manager, .. } => {
                let mut pipe = redis::pipe();
                for (channel, payload) in &batch {
                    pipe.publish(channel, payload.as_slice());
                }
                pipe.query_async::<Vec<i64>>(&mut manager.clone()).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Link::Postgres { pool, .. } => notify(pool, &batch).await,
        };
        if let Err(e) = outcome {
            dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, messages = batch.len(), "messages to other replicas were lost");
        }
        batch.clear();
    }
}

/// One batch as notifications of one transaction (delivered at commit, in order).
async fn notify(pool: &Pool<AsyncPgConnection>, batch: &[(String, Vec<u8>)]) -> Result<(), String> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    conn.transaction::<(), diesel::result::Error, _>(async |conn| {
        let (mut channels, mut texts) = (Vec::with_capacity(batch.len()), Vec::with_capacity(batch.len()));
        for (channel, payload) in batch {
            let inline = std::str::from_utf8(payload).ok().filter(|p| p.len() <= NOTIFY_MAX && !p.contains('\0'));
            let text = match inline {
                Some(text) => text.to_owned(),
                None => {
                    let row = diesel::sql_query("INSERT INTO mcp_bus_messages (payload) VALUES ($1) RETURNING id")
                        .bind::<Binary, _>(payload.as_slice())
                        .get_result::<StoredId>(conn)
                        .await?;
                    format!("@{}", row.id)
                }
            };
            channels.push(channel.as_str());
            texts.push(format!("{:x} {text}", SEQUENCE.fetch_add(1, Ordering::Relaxed)));
        }
        // The whole batch in one statement, notified in the batch's order.
        diesel::sql_query(
            "SELECT count(pg_notify(c, p)) AS n FROM \
             (SELECT c, p FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, i) ORDER BY i) ordered",
        )
        .bind::<Array<Text>, _>(channels)
        .bind::<Array<Text>, _>(texts)
        .execute(conn)
        .await?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_messages_are_taken() {
        let key = "a".repeat(64);
        let event = [key.as_bytes(), b"event: message\ndata: {}\n\n"].concat();
        assert_eq!(
            Inbound::decode(false, &event),
            Some(Inbound::Event { key: key.clone(), event: Bytes::from_static(b"event: message\ndata: {}\n\n") })
        );
        assert_eq!(Inbound::decode(false, b"short"), None);
        assert_eq!(Inbound::decode(false, &[b'z'; 70]), None);
        assert_eq!(Inbound::decode(true, b"ckey"), Some(Inbound::Cancel("key".into())));
        assert_eq!(Inbound::decode(true, b"dkey"), Some(Inbound::Ended("key".into())));
        assert_eq!(Inbound::decode(true, b"x"), None);
        assert_eq!(Inbound::decode(true, b""), None);
        assert_eq!(Inbound::decode(true, b"c\xff"), None);
        assert_eq!(quoted("mcpgw_bus_replica-1"), "\"mcpgw_bus_replica-1\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
