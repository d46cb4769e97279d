//! MCP sessions: ids from the OS CSPRNG (256 bits), bound to the JWT subject that created
//! them, forgotten after an idle timeout. A session id is never authentication: every request
//! is authenticated, and a session only answers the subject that owns it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use sha2::{Digest, Sha256};

/// One client session.
#[derive(Debug)]
pub struct Session {
    /// The JWT subject that created it.
    pub user_id: String,
    /// The negotiated protocol version.
    pub version: String,
    /// Legacy SSE sessions: the replica holding the session's event stream, where its
    /// responses go (`/messages` answers 202 and the answer is written there).
    pub holder: Option<Arc<str>>,
    last_seen: AtomicU64,
}

/// What a request needs to know of its session, wherever the session is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The negotiated protocol version.
    pub version: Arc<str>,
    /// The replica holding the session's legacy SSE stream, if it has one.
    pub holder: Option<Arc<str>>,
}

impl Session {
    /// The part a request needs.
    pub fn view(&self) -> SessionView {
        SessionView { version: self.version.as_str().into(), holder: self.holder.clone() }
    }
}

/// Why a session could not be used or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// No session id was sent (HTTP 400).
    Missing,
    /// Unknown, expired, or owned by another subject (HTTP 404; indistinguishable on purpose).
    Unknown,
    /// The subject already holds [`MAX_SESSIONS_PER_USER`] live sessions (HTTP 429).
    Full,
    /// The shared session store cannot be reached (HTTP 503; the client retries).
    Unavailable,
}

/// The name a session is stored, routed and cancelled under: the SHA-256 of its id, so the
/// shared store, its pub/sub messages and the in-flight keys never hold an id a client could
/// present.
pub fn session_key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The refusal of a session past [`MAX_SESSIONS_PER_USER`] (429, with `Retry-After`).
pub fn too_many() -> crate::error::GatewayError {
    crate::error::GatewayError::RateLimited {
        limit: "mcp_sessions_per_user".into(),
        retry_after: Duration::from_secs(60),
        quota: gateway_actors::Quota { requests_per_minute: 0, burst: MAX_SESSIONS_PER_USER as u32 },
    }
}

/// All live sessions of this replica.
#[derive(Debug)]
pub struct Sessions {
    map: DashMap<String, Arc<Session>>,
    idle: Duration,
    epoch: Instant,
    /// Live sessions per subject: one caller cannot fill the table.
    per_user: DashMap<String, usize>,
    max_per_user: usize,
}

/// Most live sessions one subject may hold at once (`initialize` past it: 429).
pub const MAX_SESSIONS_PER_USER: usize = 256;

/// A new session id: 256 bits from the OS CSPRNG, as hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS CSPRNG failing is not recoverable for session security; fall back to two v4
        // UUIDs, which are CSPRNG-backed as well.
        return format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    }
    hex::encode(bytes)
}

impl Sessions {
    /// An empty store whose sessions expire after `idle` without use.
    pub fn new(idle: Duration) -> Self {
        Self::with_limit(idle, MAX_SESSIONS_PER_USER)
    }

    /// Sessions idle-expiring after `idle`, at most `max_per_user` live per subject.
    pub fn with_limit(idle: Duration, max_per_user: usize) -> Self {
        Self { map: DashMap::new(), idle, epoch: Instant::now(), per_user: DashMap::new(), max_per_user }
    }

    /// One session of `user_id` is gone.
    fn forget(&self, user_id: &str) {
        if let Some(mut n) = self.per_user.get_mut(user_id) {
            *n = n.saturating_sub(1);
        }
        self.per_user.remove_if(user_id, |_, n| *n == 0);
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Create a session for `user_id`; returns its id. `None` when the subject already holds
    /// [`MAX_SESSIONS_PER_USER`] live sessions.
    pub fn create(&self, user_id: &str, version: &str, holder: Option<Arc<str>>) -> Option<(String, Arc<Session>)> {
        {
            let mut held = self.per_user.entry(user_id.to_owned()).or_insert(0);
            if *held >= self.max_per_user {
                return None;
            }
            *held += 1;
        }
        let id = new_id();
        let session = Arc::new(Session {
            user_id: user_id.to_owned(),
            version: version.to_owned(),
            holder,
            last_seen: AtomicU64::new(self.now()),
        });
        self.map.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The session `id` if it exists, is fresh and belongs to `user_id`; touches it.
    pub fn get(&self, id: Option<&str>, user_id: &str) -> Result<Arc<Session>, SessionError> {
        let id = id.ok_or(SessionError::Missing)?;
        let session = self.map.get(id).map(|s| s.clone()).ok_or(SessionError::Unknown)?;
        let now = self.now();
        if now.saturating_sub(session.last_seen.load(Ordering::Relaxed)) > self.idle.as_secs() {
            if let Some((_, gone)) = self.map.remove(id) {
                self.forget(&gone.user_id);
            }
            return Err(SessionError::Unknown);
        }
        if session.user_id != user_id {
            return Err(SessionError::Unknown);
        }
        session.last_seen.store(now, Ordering::Relaxed);
        Ok(session)
    }

    /// End session `id` if `user_id` owns it.
    pub fn remove(&self, id: &str, user_id: &str) -> bool {
        let removed = self.map.remove_if(id, |_, s| s.user_id == user_id).is_some();
        if removed {
            self.forget(user_id);
        }
        removed
    }

    /// Mark session `id` as in use: a client holding its stream open is not idle.
    pub fn touch(&self, id: &str) {
        if let Some(session) = self.map.get(id) {
            session.last_seen.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Forget a session whatever its owner (its stream closed).
    pub fn drop_session(&self, id: &str) {
        if let Some((_, gone)) = self.map.remove(id) {
            self.forget(&gone.user_id);
        }
    }

    /// Remove sessions idle for longer than the timeout; returns how many.
    pub fn sweep(&self) -> usize {
        let (now, idle) = (self.now(), self.idle.as_secs());
        let before = self.map.len();
        self.map.retain(|_, s| {
            let keep = now.saturating_sub(s.last_seen.load(Ordering::Relaxed)) <= idle;
            if !keep {
                self.forget(&s.user_id);
            }
            keep
        });
        before - self.map.len()
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_their_subject_and_expire() {
        let sessions = Sessions::new(Duration::from_secs(3600));
        let (id, _) = sessions.create("alice", "2025-06-18", None).unwrap();
        assert_eq!(id.len(), 64);
        assert!(sessions.get(Some(&id), "alice").is_ok());
        assert_eq!(sessions.get(Some(&id), "mallory").unwrap_err(), SessionError::Unknown);
        assert_eq!(sessions.get(None, "alice").unwrap_err(), SessionError::Missing);
        assert!(!sessions.remove(&id, "mallory"));
        assert!(sessions.remove(&id, "alice"));
        assert_eq!(sessions.get(Some(&id), "alice").unwrap_err(), SessionError::Unknown);

        let expiring = Sessions::new(Duration::from_secs(0));
        let (id, session) = expiring.create("bob", "2025-06-18", None).unwrap();
        session.last_seen.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expiring.get(Some(&id), "bob").unwrap_err(), SessionError::Unknown);
        expiring.create("bob", "2025-06-18", None).unwrap().1.last_seen.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expiring.sweep(), 1);
        assert!(expiring.is_empty());
    }

    #[test]
    fn one_subject_cannot_fill_the_session_table() {
        let sessions = Sessions::with_limit(Duration::from_secs(3600), 3);
        let ids: Vec<String> = (0..3).map(|_| sessions.create("eve", "2025-06-18", None).unwrap().0).collect();
        assert!(sessions.create("eve", "2025-06-18", None).is_none(), "the fourth is refused");
        assert!(sessions.create("alice", "2025-06-18", None).is_some(), "others are not affected");
        assert!(sessions.remove(&ids[0], "eve"));
        assert!(sessions.create("eve", "2025-06-18", None).is_some(), "a freed slot is usable again");
        sessions.drop_session(&ids[1]);
        assert!(sessions.create("eve", "2025-06-18", None).is_some());
        assert!(sessions.create("eve", "2025-06-18", None).is_none());
    }

    #[test]
    fn a_listening_stream_keeps_its_session_alive() {
        let sessions = Sessions::new(Duration::from_secs(1));
        let (id, session) = sessions.create("carol", "2025-06-18", None).unwrap();
        session.last_seen.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2100));
        sessions.touch(&id); // a keep-alive went out on its stream
        assert_eq!(sessions.sweep(), 0);
        assert!(sessions.get(Some(&id), "carol").is_ok());
    }
}
