//! A replica's short-lived copies of shared sessions (Redis or PostgreSQL): a busy session costs
//! one round trip to the shared store per [`RECHECK`] per replica, not one per request. A
//! session ended elsewhere is announced on the bus and dropped here at once; should that
//! message be lost, the copy lapses within [`RECHECK`] anyway, and with the store unreachable
//! session-bound requests fail (503) within the same bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::session::SessionView;

/// How long a session read from the shared store is trusted before it is read again.
pub const RECHECK: Duration = Duration::from_secs(1);

struct Cached {
    user_id: Arc<str>,
    view: SessionView,
    checked: Instant,
}

/// Copies by session key.
#[derive(Default)]
pub struct SessionCache {
    map: DashMap<String, Cached>,
}

impl SessionCache {
    /// `Some(answer)` when a fresh copy decides: the view if `user_id` owns the session,
    /// `None` (unknown) if another subject does; `None` when the store must be asked.
    pub fn fresh(&self, key: &str, user_id: &str) -> Option<Option<SessionView>> {
        let hit = self.map.get(key)?;
        (hit.checked.elapsed() < RECHECK).then(|| (&*hit.user_id == user_id).then(|| hit.view.clone()))
    }

    /// The store just said session `key` is `user_id`'s, as `view`.
    pub fn remember(&self, key: &str, user_id: &str, view: SessionView) {
        self.map.insert(key.to_owned(), Cached { user_id: user_id.into(), view, checked: Instant::now() });
    }

    /// Drop the copy of session `key`.
    pub fn forget(&self, key: &str) {
        self.map.remove(key);
    }

    /// Drop copies too old to be used; returns how many are left.
    pub fn sweep(&self) -> usize {
        self.map.retain(|_, c| c.checked.elapsed() < RECHECK * 10);
        self.map.len()
    }

    /// Sessions served here recently.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
