//! The MCP clients connected to this replica: their sessions, their open event streams, their
//! requests still running and their waiting `tasks/result` long polls — one component, so the
//! front doors (`/mcp`, `/sse`) and whoever must reach clients (a catalog change) use one API.

use std::sync::Arc;

use actix_web::web::Bytes;
use dashmap::DashMap;
use serde_json::Value;
use tokio::task::AbortHandle;

pub mod asks;
pub mod bus;
pub mod cache;
pub mod pg_sessions;
pub mod redis_sessions;
pub mod session;
pub mod stream;

use bus::{Bus, Inbound, Link};
use pg_sessions::PgSessions;
use redis_sessions::RedisSessions;
use session::{session_key, SessionError, SessionView, Sessions, MAX_SESSIONS_PER_USER};
use stream::StreamTx;

/// Where sessions live: in this process (one replica), or shared by replicas in Redis or
/// PostgreSQL.
enum Store {
    Local(Arc<Sessions>),
    Redis(RedisSessions),
    Postgres(PgSessions),
}

/// A lazily connected Redis connection waiting at most `response` for an answer (connecting:
/// 500 ms, one retry).
fn redis_connection(
    client: &redis::Client,
    response: std::time::Duration,
) -> anyhow::Result<redis::aio::ConnectionManager> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_millis(500)))
        .set_response_timeout(Some(response))
        .set_number_of_retries(1)
        .set_max_delay(std::time::Duration::from_millis(500));
    redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), config)
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))
}

/// A shared store's failure, as the client sees it (503), logged once here.
fn unavailable(e: &dyn std::fmt::Display) -> SessionError {
    tracing::warn!(error = %e, "the shared session store cannot be reached");
    SessionError::Unavailable
}

/// Connected clients.
pub struct Clients {
    store: Store,
    replica: Arc<str>,
    bus: Option<Bus>,
    /// `GET /mcp` streams held here, by session key.
    streams: DashMap<String, StreamTx>,
    /// Legacy SSE streams held here, by session key.
    sse: DashMap<String, StreamTx>,
    running: DashMap<String, AbortHandle>,
    waiting: DashMap<String, usize>,
    /// Upstreams' requests (sampling, elicitation, roots) waiting for a client's answer.
    pub asks: asks::Asks,
}

/// Where the events of one request go: a stream this replica holds, or one another replica
/// holds (sent over the bus).
#[derive(Clone)]
pub enum EventSink {
    /// A stream held here.
    Local(StreamTx),
    /// Session `key`'s stream, held by replica `holder`.
    Remote {
        /// The bus to send it on.
        bus: Bus,
        /// The replica holding the stream.
        holder: Arc<str>,
        /// The session's key.
        key: Arc<str>,
    },
}

impl EventSink {
    /// Send one SSE event; `false` when it can no longer be delivered.
    pub fn send(&self, event: Bytes) -> bool {
        match self {
            Self::Local(tx) => tx.send(event),
            Self::Remote { bus, holder, key } => bus.event(holder, key, &event),
        }
    }
}

impl Clients {
    /// No client yet; sessions idle longer than `idle` expire. They live in Redis when
    /// `redis_url` is set, else in PostgreSQL when `db` is PostgreSQL (`database_url`), and the
    /// replicas reach each other's streams through the same store (this replica is `replica`);
    /// on SQLite without Redis they live in this process.
    pub fn new(
        idle: std::time::Duration,
        redis_url: Option<&str>,
        db: &crate::db::Db,
        database_url: &str,
        replica: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let replica: Arc<str> = replica.into();
        let (store, link) = match (redis_url, db) {
            (Some(url), _) => {
                let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
                let manager = redis_connection(&client, std::time::Duration::from_millis(500))?;
                // Publishing has its own connection, with time for a large answer: a session
                // lookup never queues behind one.
                let publisher = redis_connection(&client, std::time::Duration::from_secs(30))?;
                let store = Store::Redis(RedisSessions::new(manager, idle, MAX_SESSIONS_PER_USER));
                (store, Link::Redis { client, manager: publisher })
            }
            (None, crate::db::Db::Pg(pool)) => {
                let store = Store::Postgres(PgSessions::new(pool.clone(), idle, MAX_SESSIONS_PER_USER));
                (store, Link::Postgres { url: database_url.to_owned(), pool: pool.clone() })
            }
            (None, crate::db::Db::Sqlite(_)) => {
                return Ok(Arc::new(Self::with(Store::Local(Arc::new(Sessions::new(idle))), replica, None)))
            }
        };
        let bus = Bus::start(replica.clone(), link);
        let clients = Arc::new(Self::with(store, replica, Some(bus.clone())));
        let weak = Arc::downgrade(&clients);
        bus.listen(move |inbound| {
            if let Some(clients) = weak.upgrade() {
                clients.inbound(inbound);
            }
        });
        Ok(clients)
    }

    fn with(store: Store, replica: Arc<str>, bus: Option<Bus>) -> Self {
        Self {
            store,
            replica,
            bus,
            streams: DashMap::new(),
            sse: DashMap::new(),
            running: DashMap::new(),
            waiting: DashMap::new(),
            asks: asks::Asks::default(),
        }
    }

    /// Whether sessions are shared with other replicas (in Redis or PostgreSQL).
    pub fn shared(&self) -> bool {
        !matches!(self.store, Store::Local(_))
    }

    /// Open a session for `user_id`: its id. With `sse`, this replica holds the session's
    /// legacy event stream. `client` is what `initialize` said of the client (kept with a
    /// shared session).
    pub async fn open_session(
        &self,
        user_id: &str,
        version: &str,
        client: &Value,
        sse: Option<StreamTx>,
    ) -> Result<String, SessionError> {
        let holder = sse.as_ref().map(|_| self.replica.clone());
        let id = match &self.store {
            Store::Local(sessions) => sessions.create(user_id, version, holder).ok_or(SessionError::Full)?.0,
            Store::Redis(_) | Store::Postgres(_) => {
                let id = session::new_id();
                let (key, facts) = (session_key(&id), redis_sessions::client_facts(client));
                let created = match &self.store {
                    Store::Redis(s) => {
                        s.create(&key, user_id, version, holder.as_deref(), &facts).await.map_err(|e| unavailable(&e))
                    }
                    Store::Postgres(s) => {
                        s.create(&key, user_id, version, holder.as_deref(), &facts).await.map_err(|e| unavailable(&e))
                    }
                    Store::Local(_) => Err(SessionError::Unavailable),
                };
                match created? {
                    true => id,
                    false => return Err(SessionError::Full),
                }
            }
        };
        if let Some(tx) = sse {
            self.sse.insert(session_key(&id), tx);
        }
        Ok(id)
    }

    /// The session `id` if it is live and `user_id`'s; using it keeps it alive.
    pub async fn session(&self, id: Option<&str>, user_id: &str) -> Result<SessionView, SessionError> {
        let id = id.ok_or(SessionError::Missing)?;
        match &self.store {
            Store::Local(sessions) => sessions.get(Some(id), user_id).map(|s| s.view()),
            Store::Redis(sessions) => found(sessions.get(&session_key(id), user_id).await.map_err(|e| unavailable(&e))),
            Store::Postgres(sessions) => {
                found(sessions.get(&session_key(id), user_id).await.map_err(|e| unavailable(&e)))
            }
        }
    }

    /// End session `id` if it is `user_id`'s (on every replica); whether it was.
    pub async fn end_session(&self, id: &str, user_id: &str) -> Result<bool, SessionError> {
        let key = session_key(id);
        let ended = match &self.store {
            Store::Local(sessions) => sessions.remove(id, user_id),
            Store::Redis(sessions) => sessions.remove(&key, user_id).await.map_err(|e| unavailable(&e))?,
            Store::Postgres(sessions) => sessions.remove(&key, user_id).await.map_err(|e| unavailable(&e))?,
        };
        if ended {
            self.close_streams(&key);
            self.cancel_session_calls(&key);
            if let Some(bus) = &self.bus {
                bus.ended(&key);
            }
        }
        Ok(ended)
    }

    /// Session `id`'s legacy stream closed: the session ends with it, everywhere.
    pub fn stream_gone(self: &Arc<Self>, id: &str, user_id: &str) {
        let (clients, id, user_id) = (self.clone(), id.to_owned(), user_id.to_owned());
        actix_web::rt::spawn(async move {
            if let Err(e) = clients.end_session(&id, &user_id).await {
                tracing::debug!(error = ?e, "a closed stream's session is left to expire");
            }
        });
    }

    /// A keep-alive went out on session `id`'s stream: a client that listens is not idle.
    pub fn keepalive(self: &Arc<Self>, id: &str, user_id: &str) {
        match &self.store {
            Store::Local(sessions) => sessions.touch(id),
            Store::Redis(_) | Store::Postgres(_) => {
                let (clients, key, user_id) = (self.clone(), session_key(id), user_id.to_owned());
                actix_web::rt::spawn(async move {
                    match &clients.store {
                        Store::Redis(sessions) => drop(sessions.refresh(&key, &user_id).await),
                        Store::Postgres(sessions) => drop(sessions.refresh(&key, &user_id).await),
                        Store::Local(_) => {}
                    }
                });
            }
        }
    }

    /// Where session `id`'s legacy stream is, seen from here: held here, held by another live
    /// replica (over the bus), or nowhere (`None`).
    pub fn sink(&self, id: &str, session: &SessionView) -> Option<EventSink> {
        let key = session_key(id);
        if let Some(tx) = self.sse.get(&key).filter(|tx| !tx.is_closed()) {
            return Some(EventSink::Local(tx.clone()));
        }
        let holder = session.holder.clone().filter(|h| *h != self.replica)?;
        let bus = self.bus.clone()?;
        Some(EventSink::Remote { bus, holder, key: key.into() })
    }

    /// The stream held here for the session whose key is `key` (`GET /mcp`, else legacy
    /// `/sse`), for a request an upstream makes of the client outside any reply stream.
    pub fn stream_at(&self, key: &str) -> Option<StreamTx> {
        let open = |tx: &StreamTx| !tx.is_closed();
        self.streams
            .get(key)
            .filter(|tx| open(tx))
            .or_else(|| self.sse.get(key).filter(|tx| open(tx)))
            .map(|tx| tx.clone())
    }

    /// Tell every connected client that the tools it may call changed (a backend's listing,
    /// `tools.yaml` or `policy.yaml`). Each replica reloads its own configuration, so each
    /// tells its own clients.
    pub fn tools_changed(&self) {
        self.broadcast(&serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }));
    }

    /// Send a notification to every client stream this replica holds (`GET /mcp` and legacy
    /// `/sse`).
    pub fn broadcast(&self, message: &Value) {
        let event = sse_message(message);
        self.streams.retain(|_, tx| tx.send(event.clone()));
        self.sse.retain(|_, tx| tx.send(event.clone()));
    }

    /// Session `id` opened its `GET /mcp` stream, replacing (and ending) an older one.
    pub fn open_stream(&self, id: &str, tx: StreamTx) {
        if let Some(older) = self.streams.insert(session_key(id), tx) {
            older.close();
        }
    }

    /// Session `id`'s stream `tx` closed (a newer stream of the session stays).
    pub fn close_stream(&self, id: &str, tx: &StreamTx) {
        self.streams.remove_if(&session_key(id), |_, current| current.same_channel(tx));
    }

    /// Session `key`'s streams held here end.
    fn close_streams(&self, key: &str) {
        if let Some((_, tx)) = self.streams.remove(key) {
            tx.close();
        }
        if let Some((_, tx)) = self.sse.remove(key) {
            tx.close();
        }
    }

    /// A message from another replica.
    fn inbound(&self, inbound: Inbound) {
        match inbound {
            Inbound::Event { key, event } => {
                if let Some(tx) = self.sse.get(&key) {
                    tx.send(event);
                }
            }
            Inbound::Cancel(key) => {
                if self.cancel_here(&key) {
                    tracing::info!("request cancelled by the client through another replica");
                }
            }
            Inbound::Ended(key) => {
                match &self.store {
                    Store::Redis(sessions) => sessions.cache().forget(&key),
                    Store::Postgres(sessions) => sessions.cache().forget(&key),
                    Store::Local(_) => {}
                }
                self.close_streams(&key);
                self.cancel_session_calls(&key);
            }
        }
    }

    /// Stop the calls of session `key` running here (the session ended elsewhere or here).
    fn cancel_session_calls(&self, key: &str) {
        let marker = format!("\u{1}{key}\u{0}");
        self.running.retain(|running, task| {
            let ours = running.contains(&marker);
            if ours {
                task.abort();
            }
            !ours
        });
    }

    /// Forget expired sessions (or, when shared, stale cached copies, and in PostgreSQL the
    /// expired rows and old bus messages); how many remain here.
    pub async fn sweep(&self) -> usize {
        self.streams.retain(|_, tx| !tx.is_closed());
        self.sse.retain(|_, tx| !tx.is_closed());
        match &self.store {
            Store::Local(sessions) => {
                sessions.sweep();
                sessions.len()
            }
            Store::Redis(sessions) => sessions.cache().sweep(),
            Store::Postgres(sessions) => {
                if let Err(e) = sessions.expire().await {
                    tracing::debug!(error = %e, "expired MCP sessions are removed later");
                }
                if let Some(bus) = &self.bus {
                    bus.tidy().await;
                }
                sessions.cache().sweep()
            }
        }
    }

    /// Sessions live here (in-process store) or served here recently (shared store).
    pub fn session_count(&self) -> usize {
        match &self.store {
            Store::Local(sessions) => sessions.len(),
            Store::Redis(sessions) => sessions.cache().len(),
            Store::Postgres(sessions) => sessions.cache().len(),
        }
    }

    /// Messages to other replicas that were lost (queue full, Redis refused them).
    pub fn bus_dropped(&self) -> u64 {
        self.bus.as_ref().map_or(0, Bus::dropped)
    }

    /// A request is running under `key` (scope and request id): it can be cancelled.
    pub fn running(&self, key: String, task: AbortHandle) {
        self.running.insert(key, task);
    }

    /// The request under `key` ended.
    pub fn ended(&self, key: &str) {
        self.running.remove(key);
    }

    /// Ask the other replicas to stop the request under `key` (sessions shared).
    pub fn cancel_elsewhere(&self, key: &str) {
        if let Some(bus) = &self.bus {
            bus.cancel(key);
        }
    }

    /// Stop the request under `key` if it runs here; whether it did.
    pub fn cancel_here(&self, key: &str) -> bool {
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

/// A shared store's answer to a lookup, as the front doors see it.
fn found(answer: Result<Option<SessionView>, SessionError>) -> Result<SessionView, SessionError> {
    answer?.ok_or(SessionError::Unknown)
}
