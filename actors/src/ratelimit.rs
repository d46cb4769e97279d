//! `RateLimiterActor` and the GCRA limiter behind it.
//!
//! Every limit that applies to a call (per user, per tool, per user × tool) is checked at
//! once; the call passes only if all pass, and only then are the cells updated, so a rejection
//! costs nothing against the other limits. GCRA (the generic cell rate algorithm) gives exact
//! bursts and exact refill with no boundary burst. Cells live in a [`RateStore`]: in-process
//! ([`LocalStore`]) or shared by replicas (Redis, in the gateway crate).

use crate::failure::IoFailure;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult, ResponseFuture, Supervised};
use futures_util::future::BoxFuture;

use crate::health::{ActorStats, GetHealth};

/// A rate: `per_minute` calls on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Sustained calls per minute.
    pub requests_per_minute: u32,
    /// Calls allowed back to back after an idle period (at least 1).
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

impl Quota {
    /// Emission interval: time between calls at the sustained rate, in nanoseconds.
    pub fn interval_ns(&self) -> u64 {
        60_000_000_000 / u64::from(self.requests_per_minute.max(1))
    }

    /// Tolerance: how far ahead of now a cell may run, in nanoseconds.
    pub fn tolerance_ns(&self) -> u64 {
        self.interval_ns() * u64::from(self.burst.max(1))
    }
}

/// One limit to check: its cell key, its quota, and its name for the 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Cell key (`u:alice`, `t:search`, `ut:alice:search`).
    pub key: String,
    /// The quota.
    pub quota: Quota,
    /// Which configured limit this is (`per_user`, `role:viewer`, `per_tool`, `per_user_tool`).
    pub name: String,
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; the tightest limit and what remains of it (for `RateLimit` headers).
    Allowed {
        /// Index of the limit with the fewest calls left.
        tightest: Option<usize>,
        /// Calls left on it.
        remaining: u64,
    },
    /// Refused by limit `index`; retry after the duration.
    Limited {
        /// Index into the checked limits.
        index: usize,
        /// When a retry can pass.
        retry_after: Duration,
    },
}

/// GCRA over a set of cells, all or nothing. `tats` are the cells' theoretical arrival times
/// (nanoseconds, same clock as `now`); on `Allowed`, the new values are written back. When
/// several limits refuse, the strictest — the one whose retry comes last — is the one named,
/// so `Retry-After` is never too early.
pub fn gcra(limits: &[Limit], tats: &mut [u64], now: u64) -> Verdict {
    let mut next = Vec::with_capacity(limits.len());
    let mut refused: Option<(usize, u64)> = None;
    for (i, (limit, tat)) in limits.iter().zip(tats.iter()).enumerate() {
        let (t, tau) = (limit.quota.interval_ns(), limit.quota.tolerance_ns());
        let new_tat = (*tat).max(now) + t;
        if new_tat - now > tau {
            let wait = new_tat - tau - now;
            if refused.is_none_or(|(_, longest)| wait > longest) {
                refused = Some((i, wait));
            }
        }
        next.push(new_tat);
    }
    if let Some((index, wait)) = refused {
        return Verdict::Limited { index, retry_after: Duration::from_nanos(wait) };
    }
    let mut tightest = None;
    let mut remaining = u64::MAX;
    for (i, (limit, new_tat)) in limits.iter().zip(&next).enumerate() {
        let left = (limit.quota.tolerance_ns() - (new_tat - now)) / limit.quota.interval_ns();
        if left < remaining {
            remaining = left;
            tightest = Some(i);
        }
    }
    tats.copy_from_slice(&next);
    Verdict::Allowed { tightest, remaining: if tightest.is_some() { remaining } else { 0 } }
}

/// Nanoseconds on a monotonic clock; tests inject their own.
pub trait Clock: Send + Sync {
    /// Now, in nanoseconds since an arbitrary epoch.
    fn now_ns(&self) -> u64;
}

/// The process's monotonic clock.
#[derive(Debug)]
pub struct SystemClock(std::time::Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// What is left of one limit (see [`RateStore::peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Calls that would pass back to back now.
    pub available: u64,
    /// Milliseconds until the whole burst is available again.
    pub full_in_ms: u64,
}

impl Usage {
    /// Usage of a cell whose theoretical arrival time is `tat_ns` at `now_ns`.
    pub fn of(quota: &Quota, tat_ns: u64, now_ns: u64) -> Self {
        let ahead = tat_ns.saturating_sub(now_ns);
        Self {
            available: quota.tolerance_ns().saturating_sub(ahead) / quota.interval_ns(),
            full_in_ms: ahead / 1_000_000,
        }
    }
}

/// Where cells live.
pub trait RateStore: Send + Sync {
    /// Check and (if all pass) consume `limits` atomically.
    fn check(&self, limits: Vec<Limit>) -> BoxFuture<'static, Result<Verdict, IoFailure>>;
    /// What is left of each limit now, consuming nothing (the console's usage view).
    fn peek(&self, limits: Vec<Limit>) -> BoxFuture<'static, Result<Vec<Usage>, IoFailure>> {
        let _ = limits;
        Box::pin(async { Err(IoFailure::new("this rate-limit store cannot be read")) })
    }
    /// Whether the store answers (always, in this process).
    fn ping(&self) -> BoxFuture<'static, Result<(), IoFailure>> {
        Box::pin(async { Ok(()) })
    }
    /// Drop idle cells; returns how many.
    fn evict(&self) -> usize {
        0
    }
    /// Live cells (0 when unknown).
    fn len(&self) -> usize {
        0
    }
    /// Whether no cell is live.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Cells in this process: one small critical section per check, idle cells evicted.
pub struct LocalStore {
    cells: Mutex<HashMap<String, u64>>,
    clock: Arc<dyn Clock>,
}

impl LocalStore {
    /// An empty store on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { cells: Mutex::new(HashMap::new()), clock }
    }

    /// The cell table. A panic elsewhere while it was held poisons the mutex; every update
    /// below is a single insert or assignment, so the table is whole either way, and limiting
    /// goes on (answering `Allowed` to every call from then on turned limiting off silently).
    fn cells(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.cells.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many cells the table has room for (memory held, whether used or not).
    pub fn capacity(&self) -> usize {
        self.cells().capacity()
    }

    /// The synchronous check the actor uses (no await, so no lock across one).
    pub fn check_now(&self, limits: &[Limit]) -> Verdict {
        let now = self.clock.now_ns();
        let mut cells = self.cells();
        let mut tats: Vec<u64> = limits.iter().map(|l| cells.get(&l.key).copied().unwrap_or(now)).collect();
        let verdict = gcra(limits, &mut tats, now);
        if matches!(verdict, Verdict::Allowed { .. }) {
            for (limit, tat) in limits.iter().zip(tats) {
                match cells.get_mut(&limit.key) {
                    Some(cell) => *cell = tat,
                    None => {
                        cells.insert(limit.key.clone(), tat);
                    }
                }
            }
        }
        verdict
    }
}

impl RateStore for LocalStore {
    fn check(&self, limits: Vec<Limit>) -> BoxFuture<'static, Result<Verdict, IoFailure>> {
        let verdict = self.check_now(&limits);
        Box::pin(async move { Ok(verdict) })
    }

    fn peek(&self, limits: Vec<Limit>) -> BoxFuture<'static, Result<Vec<Usage>, IoFailure>> {
        let now = self.clock.now_ns();
        let cells = self.cells();
        let usage =
            limits.iter().map(|l| Usage::of(&l.quota, cells.get(&l.key).copied().unwrap_or(now), now)).collect();
        Box::pin(async move { Ok(usage) })
    }

    fn evict(&self) -> usize {
        let now = self.clock.now_ns();
        let mut cells = self.cells();
        let before = cells.len();
        // A cell whose arrival time has passed is indistinguishable from no cell.
        cells.retain(|_, tat| *tat > now);
        // After a burst of distinct keys the table gives its memory back, not just its entries.
        if cells.capacity() > 4 * cells.len().max(1024) {
            let keep = cells.len() * 2;
            cells.shrink_to(keep);
        }
        before - cells.len()
    }

    fn len(&self) -> usize {
        self.cells().len()
    }
}

/// What to do when the shared store (Redis) cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Allow the call (and count the failure).
    Open,
    /// Refuse the call.
    Closed,
}

/// The limiter's answer to `Acquire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Go ahead (with the tightest limit's state, for headers).
    Allowed(Verdict),
    /// Refused by a limit.
    Limited(Verdict),
    /// The store failed and the failure mode is open: go ahead, but count it.
    FailedOpen(IoFailure),
    /// The store failed and the failure mode is closed.
    Unavailable(IoFailure),
}

/// Owns the limiter's store and failure policy; one per worker (same-thread messages), all
/// sharing one store.
pub struct RateLimiterActor {
    store: Arc<dyn RateStore>,
    failure: FailureMode,
    stats: Arc<ActorStats>,
    evict_every: Option<Duration>,
}

impl RateLimiterActor {
    /// A limiter over `store`; with `evict_every`, this instance also evicts idle cells.
    pub fn new(
        store: Arc<dyn RateStore>,
        failure: FailureMode,
        stats: Arc<ActorStats>,
        evict_every: Option<Duration>,
    ) -> Self {
        Self { store, failure, stats, evict_every }
    }
}

impl Actor for RateLimiterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(every) = self.evict_every {
            ctx.run_interval(every, |act, _| {
                let evicted = act.store.evict();
                if evicted > 0 {
                    tracing::debug!(evicted, live = act.store.len(), "idle rate-limit cells evicted");
                }
            });
        }
    }
}

impl Supervised for RateLimiterActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.stats.restarted();
    }
}

/// Check and consume the limits of one call.
#[derive(Debug, Message)]
#[rtype(result = "Acquired")]
pub struct Acquire(pub Vec<Limit>);

impl Handler<Acquire> for RateLimiterActor {
    type Result = ResponseFuture<Acquired>;

    fn handle(&mut self, msg: Acquire, _: &mut Context<Self>) -> Self::Result {
        let (check, failure, stats) = (self.store.check(msg.0), self.failure, self.stats.clone());
        Box::pin(async move {
            match check.await {
                Ok(v @ Verdict::Allowed { .. }) => Acquired::Allowed(v),
                Ok(v) => Acquired::Limited(v),
                Err(e) => {
                    stats.failed(format!("rate-limit store: {e}"));
                    match failure {
                        FailureMode::Open => Acquired::FailedOpen(e),
                        FailureMode::Closed => Acquired::Unavailable(e),
                    }
                }
            }
        })
    }
}

impl Handler<GetHealth> for RateLimiterActor {
    type Result = MessageResult<GetHealth>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.report("rate_limiter", true))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct FakeClock(AtomicU64);
    impl Clock for FakeClock {
        fn now_ns(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn limit(key: &str, rpm: u32, burst: u32) -> Limit {
        Limit { key: key.into(), quota: Quota { requests_per_minute: rpm, burst }, name: key.into() }
    }

    fn allowed(v: &Verdict) -> bool {
        matches!(v, Verdict::Allowed { .. })
    }

    #[test]
    fn exact_burst_then_exact_refill_and_no_boundary_burst() {
        let clock = Arc::new(FakeClock::default());
        let store = LocalStore::new(clock.clone());
        let l = [limit("u:a", 60, 5)]; // one per second, five at once
        for _ in 0..5 {
            assert!(allowed(&store.check_now(&l)));
        }
        let Verdict::Limited { retry_after, .. } = store.check_now(&l) else { panic!("sixth call must be refused") };
        assert_eq!(retry_after, Duration::from_secs(1));
        clock.0.store(999_999_999, Ordering::SeqCst);
        assert!(!allowed(&store.check_now(&l)), "not a nanosecond early");
        clock.0.store(1_000_000_000, Ordering::SeqCst);
        assert!(allowed(&store.check_now(&l)), "exactly one cell refilled after one interval");
        assert!(!allowed(&store.check_now(&l)));
        // Long idle: the burst is back, but never more than the burst.
        clock.0.store(1_000_000_000_000, Ordering::SeqCst);
        let passed = (0..50).filter(|_| allowed(&store.check_now(&l))).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn every_limit_is_checked_and_a_rejection_consumes_nothing() {
        let store = LocalStore::new(Arc::new(FakeClock::default()));
        let user = limit("u:a", 600, 100);
        let tool = limit("t:x", 60, 2);
        let other_tool = limit("t:y", 60, 2);
        assert!(allowed(&store.check_now(&[user.clone(), tool.clone()])));
        assert!(allowed(&store.check_now(&[user.clone(), tool.clone()])));
        let Verdict::Limited { index, .. } = store.check_now(&[user.clone(), tool.clone()]) else { panic!() };
        assert_eq!(index, 1, "the stricter limit fired");
        // The user's quota on one tool does not block another tool.
        assert!(allowed(&store.check_now(&[user.clone(), other_tool])));
        // Rejections did not consume the user's cells: 100 - 3 left.
        let Verdict::Allowed { remaining, .. } = store.check_now(&[user]) else { panic!() };
        assert_eq!(remaining, 96);
    }

    #[test]
    fn when_several_limits_refuse_the_one_with_the_longest_wait_is_named() {
        let store = LocalStore::new(Arc::new(FakeClock::default()));
        // Both exhausted after one call: the per-minute-1 limit waits 60 s, the other 1 s.
        let fast = limit("u:a", 60, 1);
        let slow = limit("t:x", 1, 1);
        assert!(allowed(&store.check_now(&[fast.clone(), slow.clone()])));
        let Verdict::Limited { index, retry_after } = store.check_now(&[fast, slow]) else { panic!() };
        assert_eq!((index, retry_after), (1, Duration::from_secs(60)));
    }

    #[test]
    fn concurrent_callers_get_exactly_the_burst() {
        let store = Arc::new(LocalStore::new(Arc::new(FakeClock::default())));
        let l = vec![limit("u:hot", 60, 37)];
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (store, l) = (store.clone(), l.clone());
                std::thread::spawn(move || (0..10).filter(|_| allowed(&store.check_now(&l))).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 37, "64 tasks × 10 tries on one key at a frozen clock pass exactly the burst");
    }

    #[test]
    fn idle_cells_are_evicted() {
        let clock = Arc::new(FakeClock::default());
        let store = LocalStore::new(clock.clone());
        for i in 0..10_000 {
            store.check_now(&[limit(&format!("u:{i}"), 60, 10)]);
        }
        assert_eq!(store.len(), 10_000);
        clock.0.store(2_000_000_000, Ordering::SeqCst);
        assert_eq!(store.evict(), 10_000);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_million_distinct_keys_leave_no_memory_behind_once_idle() {
        let clock = Arc::new(FakeClock::default());
        let store = LocalStore::new(clock.clone());
        for i in 0..1_000_000 {
            store.check_now(&[limit(&format!("u:{i}"), 600, 10)]);
        }
        assert_eq!(store.len(), 1_000_000);
        assert!(store.capacity() >= 1_000_000);
        // A few keys stay busy; everything else has been idle longer than its refill.
        clock.0.store(10_000_000_000, Ordering::SeqCst);
        for i in 0..10 {
            store.check_now(&[limit(&format!("busy:{i}"), 1, 10)]);
        }
        assert_eq!(store.evict(), 1_000_000);
        assert_eq!(store.len(), 10);
        assert!(store.capacity() < 10_000, "the table shrank: {}", store.capacity());
    }

    /// Before: a thread that panicked while holding the cell table poisoned its mutex, and from
    /// then on every check answered `Allowed` — limiting silently off for the whole process.
    #[test]
    fn a_panic_while_holding_the_cells_does_not_turn_limiting_off() {
        let store = Arc::new(LocalStore::new(Arc::new(FakeClock::default())));
        let l = [limit("u:a", 60, 2)];
        assert!(allowed(&store.check_now(&l)));
        let poisoner = store.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.cells.lock();
            panic!("a panic inside the critical section");
        })
        .join();
        assert!(store.cells.is_poisoned());
        assert!(allowed(&store.check_now(&l)), "the second call of the burst still passes");
        assert!(!allowed(&store.check_now(&l)), "the third is refused: limiting is still on");
        assert_eq!(store.len(), 1);
        assert_eq!(store.evict(), 0);
    }
}
