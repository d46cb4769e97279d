//! Backend protection: a concurrency limit per tool (excess calls wait up to the tool's
//! `queue_timeout_ms`, then get 503) and a circuit breaker per backend (opens after N
//! consecutive failures, fails fast while open, lets one trial through after a cool-down).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use gateway_actors::{Catalog, Tool};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::GatewayError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open(Instant),
    /// One trial call is allowed; another is allowed if it has not answered within the cool-down.
    HalfOpen(Instant),
}

#[derive(Debug)]
struct Breaker {
    state: State,
    consecutive_failures: u32,
}

/// Concurrency slots and circuit breakers, shared by all workers.
#[derive(Debug)]
pub struct Protection {
    slots: DashMap<String, Arc<Semaphore>>,
    breakers: DashMap<String, Mutex<Breaker>>,
    failures_to_open: u32,
    cooldown: Duration,
}

impl Protection {
    /// Slots for every tool with `max_concurrency`; breakers open after `failures_to_open`.
    pub fn new(catalog: &Catalog, failures_to_open: u32, cooldown: Duration) -> Self {
        let slots = DashMap::new();
        for tool in catalog.all() {
            if let Some(n) = tool.max_concurrency {
                slots.insert(tool.name.clone(), Arc::new(Semaphore::new(n.max(1) as usize)));
            }
        }
        Self { slots, breakers: DashMap::new(), failures_to_open: failures_to_open.max(1), cooldown }
    }

    /// Add slots for tools of a reloaded catalog that have a limit and none yet (a changed
    /// limit of an existing tool applies after a restart: calls may hold its current slots).
    pub fn add_slots(&self, catalog: &Catalog) {
        for tool in catalog.all() {
            if let Some(n) = tool.max_concurrency {
                self.slots.entry(tool.name.clone()).or_insert_with(|| Arc::new(Semaphore::new(n.max(1) as usize)));
            }
        }
    }

    /// A slot for a call to `tool` (none needed when the tool has no limit).
    pub async fn slot(&self, tool: &Tool) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
        let Some(semaphore) = self.slots.get(&tool.name).map(|s| s.clone()) else { return Ok(None) };
        let busy = || {
            GatewayError::Busy(format!(
                "{} is at its limit of {} concurrent calls",
                tool.name,
                tool.max_concurrency.unwrap_or(0)
            ))
        };
        if tool.queue_timeout_ms == 0 {
            return semaphore.try_acquire_owned().map(Some).map_err(|_| busy());
        }
        match tokio::time::timeout(Duration::from_millis(tool.queue_timeout_ms), semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(busy()),
        }
    }

    /// Refuse at once while the backend's circuit is open.
    pub fn admit(&self, url: &str) -> Result<(), GatewayError> {
        // Looked up by &str first: the owned key (an allocation) only for a backend's first call.
        let entry = match self.breakers.get(url) {
            Some(entry) => entry,
            None => self
                .breakers
                .entry(url.to_owned())
                .or_insert_with(|| Mutex::new(Breaker { state: State::Closed, consecutive_failures: 0 }))
                .downgrade(),
        };
        let mut breaker = entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match breaker.state {
            State::Closed => Ok(()),
            State::Open(since) | State::HalfOpen(since) if since.elapsed() >= self.cooldown => {
                breaker.state = State::HalfOpen(Instant::now());
                Ok(())
            }
            _ => {
                Err(GatewayError::BackendUnavailable("circuit open: the backend failed repeatedly; retry later".into()))
            }
        }
    }

    /// Count the outcome of a call that reached (or tried to reach) the backend.
    pub fn record(&self, url: &str, healthy: bool) {
        let Some(entry) = self.breakers.get(url) else { return };
        let mut breaker = entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if healthy {
            if breaker.state != State::Closed {
                tracing::info!(backend = url, "circuit closed");
            }
            breaker.state = State::Closed;
            breaker.consecutive_failures = 0;
            return;
        }
        breaker.consecutive_failures += 1;
        let trip = matches!(breaker.state, State::HalfOpen(_)) || breaker.consecutive_failures >= self.failures_to_open;
        if trip && !matches!(breaker.state, State::Open(_)) {
            tracing::warn!(backend = url, failures = breaker.consecutive_failures, "circuit opened");
            breaker.state = State::Open(Instant::now());
        }
    }

    /// Calls of `tool` holding a concurrency slot now, and its limit (none without a limit).
    pub fn in_use(&self, tool: &Tool) -> Option<(usize, u32)> {
        let limit = tool.max_concurrency?;
        let semaphore = self.slots.get(&tool.name)?;
        Some(((limit.max(1) as usize).saturating_sub(semaphore.available_permits()), limit))
    }

    /// The circuit of `url`: `closed`, `open` or `half_open`, and its consecutive failures.
    pub fn circuit(&self, url: &str) -> (&'static str, u32) {
        let Some(entry) = self.breakers.get(url) else { return ("closed", 0) };
        let b = entry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = match b.state {
            State::Closed => "closed",
            State::Open(_) => "open",
            State::HalfOpen(_) => "half_open",
        };
        (state, b.consecutive_failures)
    }

    /// Breakers that are not closed, for `/health/actors`.
    pub fn report(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .breakers
            .iter()
            .filter_map(|e| {
                let b = e.value().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let state = match b.state {
                    State::Closed => return None,
                    State::Open(_) => "open",
                    State::HalfOpen(_) => "half_open",
                };
                Some(json!({ "backend": e.key(), "state": state, "consecutive_failures": b.consecutive_failures }))
            })
            .collect();
        out.sort_by(|a, b| a["backend"].as_str().cmp(&b["backend"].as_str()));
        out
    }
}

/// Whether an outcome says the backend is unhealthy (tool-level errors do not count).
pub fn unhealthy(result: &Result<Value, GatewayError>) -> bool {
    matches!(
        result,
        Err(GatewayError::BackendTimeout(_) | GatewayError::BackendUnavailable(_) | GatewayError::BackendBadReply(_))
    )
}
