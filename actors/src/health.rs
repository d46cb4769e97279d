//! Per-actor counters behind `GET /health/actors`.
//!
//! Each actor kind shares one [`ActorStats`] across all its instances (per-worker actors add
//! up): restarts, messages waiting, messages handled and the last error. Counters are atomics so
//! recording them costs nothing on the hot path; the last error sits behind a mutex that is only
//! taken when something fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix::Message;
use serde::Serialize;

/// Live counters of one actor kind.
#[derive(Debug, Default)]
pub struct ActorStats {
    restarts: AtomicU64,
    handled: AtomicU64,
    backlog: AtomicI64,
    last_error: Mutex<Option<String>>,
}

impl ActorStats {
    /// A message was queued for the actor (backlog grows).
    pub fn enqueued(&self, n: i64) {
        self.backlog.fetch_add(n, Ordering::Relaxed);
    }

    /// The actor took `n` messages out of its queue.
    pub fn handled(&self, n: i64) {
        self.backlog.fetch_sub(n, Ordering::Relaxed);
        self.handled.fetch_add(n.unsigned_abs(), Ordering::Relaxed);
    }

    /// Messages queued and not yet handled (bounds the audit queue).
    pub fn backlog(&self) -> i64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// The supervisor restarted the actor.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Remember the latest failure so operators can see it without reading logs.
    pub fn failed(&self, error: impl Into<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(error.into());
        }
    }

    /// Forget the last failure once the actor has recovered.
    pub fn recovered(&self) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = None;
        }
    }

    /// A point-in-time copy for the health endpoint.
    pub fn report(&self, name: &str, alive: bool) -> ActorReport {
        ActorReport {
            name: name.to_owned(),
            alive,
            // Not clamped: a negative backlog is a counting bug to see, not to hide.
            backlog: self.backlog.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// What `/health/actors` shows for one actor kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorReport {
    /// Actor kind (`registry`, `policy`, `audit_writer`, ...).
    pub name: String,
    /// The actor answered a [`GetHealth`] message.
    pub alive: bool,
    /// Messages (or audit rows) waiting to be handled.
    pub backlog: i64,
    /// Messages handled since start.
    pub handled: u64,
    /// Supervisor restarts since start.
    pub restarts: u64,
    /// The most recent failure, cleared on recovery.
    pub last_error: Option<String>,
}

/// All actor kinds' counters, shared by the actors and the health endpoint.
#[derive(Debug, Default)]
pub struct HealthBoard {
    stats: Mutex<BTreeMap<&'static str, Arc<ActorStats>>>,
}

impl HealthBoard {
    /// The counters of actor kind `name`, created on first use.
    pub fn stats(&self, name: &'static str) -> Arc<ActorStats> {
        match self.stats.lock() {
            Ok(mut map) => map.entry(name).or_default().clone(),
            // A poisoned map only happens after a panic elsewhere; keep serving fresh counters.
            Err(_) => Arc::new(ActorStats::default()),
        }
    }

    /// Every actor kind's counters now (for `/metrics`; asks no actor).
    pub fn snapshot(&self) -> Vec<ActorReport> {
        match self.stats.lock() {
            Ok(map) => map.iter().map(|(name, stats)| stats.report(name, true)).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Ask an actor whether it is alive; it answers with its report.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ActorReport")]
pub struct GetHealth;
