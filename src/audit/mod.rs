//! The audit trail as the rest of the gateway sees it: one component that takes every attempt's
//! row, makes it durable when the mode asks, and reports how the trail is doing.
//!
//! Behind it: the `AuditWriterActor` (batches rows into the database sink), the local spool (rows
//! kept on disk while the database is away) and the rows the database refused (set aside). Its
//! callers never see the actor, the counters or the spool: they hand a row over, commit one, or
//! read a [`Health`].

pub mod handoff;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::Addr;
use gateway_actors::audit::{RecordDurable, WriteStats};
use gateway_actors::{ActorReport, ActorStats, AuditRecord, AuditWriterActor, Flush, Mailbox};

thread_local! {
    /// Each thread's UUID v7 sequence: `Uuid::now_v7` keeps one sequence for the whole process
    /// behind a mutex, which every worker took once per call.
    static ROW_IDS: uuid::ContextV7 = const { uuid::ContextV7::new() };
}

/// A new audit row id: a UUID v7 (sorts by time, so ids page in time order), ordered within
/// the thread that makes it; across threads, the millisecond and 74 random or counter bits keep
/// ids unique.
pub fn row_id() -> String {
    let context = uuid::timestamp::context::ThreadLocalContext::new(&ROW_IDS);
    uuid::Uuid::new_v7(uuid::Timestamp::now(context)).to_string()
}

/// The audit trail of this gateway.
pub struct Audit {
    writer: Addr<AuditWriterActor>,
    stats: Arc<ActorStats>,
    spooled: Arc<AtomicU64>,
    set_aside: Arc<AtomicU64>,
    writes: Arc<WriteStats>,
    /// One chain verification at a time on this gateway: it walks every row.
    verifying: tokio::sync::Semaphore,
}

/// Why a row could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Neither the database nor the spool took it.
    #[error("the audit record could not be made durable: {0}")]
    NotDurable(#[source] gateway_actors::IoFailure),
    /// The writer is gone (the gateway is stopping).
    #[error("audit writer unreachable: {0}")]
    Unreachable(#[from] actix::MailboxError),
}

/// How the trail is doing, for `/health/ready`, `/health/actors` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Rows handed over and not yet stored (database or spool).
    pub backlog: i64,
    /// Rows in the local spool, waiting for the database.
    pub spooled: u64,
    /// Rows the database refused, kept alone in `audit_set_aside` (since start).
    pub set_aside: u64,
}

/// The audit writer's batches so far (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    /// Batches written.
    pub batches: u64,
    /// Rows in those batches.
    pub rows: u64,
    /// Batch writes that failed (rows kept and retried or spooled).
    pub failures: u64,
    /// Time spent writing, in microseconds.
    pub write_micros: u64,
    /// The latest batch write, in microseconds.
    pub last_write_micros: u64,
}

impl Audit {
    /// The trail written by `writer`, counted in `stats`, with the spool's and set-aside
    /// counters and the writer's batch statistics.
    pub fn new(
        writer: Addr<AuditWriterActor>,
        stats: Arc<ActorStats>,
        spooled: Arc<AtomicU64>,
        set_aside: Arc<AtomicU64>,
        writes: Arc<WriteStats>,
    ) -> Self {
        Self { writer, stats, spooled, set_aside, writes, verifying: tokio::sync::Semaphore::new(1) }
    }

    /// The right to walk the chains now (`None` while another verification runs here).
    pub fn verification(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.verifying.try_acquire().ok()
    }

    /// Hand `row` to the writer (never waits: batched with the rest of this event-loop turn).
    pub fn hand_over(&self, row: AuditRecord) {
        self.stats.enqueued(1);
        handoff::hand_over(&self.writer, row);
    }

    /// Hand `row` over and wait until it is durable (in the database, or in the spool).
    pub async fn make_durable(&self, row: AuditRecord) -> Result<(), AuditError> {
        self.stats.enqueued(1);
        self.writer.send(RecordDurable(row)).await?.map_err(AuditError::NotDurable)
    }

    /// Whether a row handed over now should be made durable rather than batched: more than
    /// `queue_max` rows are waiting.
    pub fn overloaded(&self, queue_max: i64) -> bool {
        self.stats.backlog() >= queue_max
    }

    /// Whether rows are not reaching the database now (spooling, or the writer's last batch
    /// failed): strict mode refuses calls meanwhile.
    pub fn not_reaching_database(&self) -> bool {
        self.spooled.load(Ordering::Relaxed) > 0 || self.stats.report("audit_writer", true).last_error.is_some()
    }

    /// Backlog, spool and set-aside counts now.
    pub fn health(&self) -> Health {
        Health {
            backlog: self.stats.backlog(),
            spooled: self.spooled.load(Ordering::Relaxed),
            set_aside: self.set_aside.load(Ordering::Relaxed),
        }
    }

    /// The writer's batch statistics now.
    pub fn writes(&self) -> Writes {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let w = &self.writes;
        Writes {
            batches: load(&w.batches),
            rows: load(&w.rows),
            failures: load(&w.failures),
            write_micros: load(&w.write_micros),
            last_write_micros: load(&w.last_write_micros),
        }
    }

    /// Ask the writer for its report (not counted as traffic).
    pub async fn probe(&self) -> Result<ActorReport, actix::MailboxError> {
        Mailbox::new(self.writer.clone(), self.stats.clone()).probe().await
    }

    /// The writer's counters, for a report when it does not answer.
    pub fn report(&self, alive: bool) -> ActorReport {
        self.stats.report("audit_writer", alive)
    }

    /// Store every row handed over so far; how many were stored.
    pub async fn flush(&self) -> Result<Result<usize, gateway_actors::IoFailure>, actix::MailboxError> {
        self.writer.send(Flush).await
    }
}

#[cfg(test)]
mod tests {
    /// Ids page in time order within a thread and never repeat across threads (each thread has
    /// its own sequence now, so uniqueness rests on the random bits, not on one shared counter).
    #[test]
    fn row_ids_increase_within_a_thread_and_are_unique_across_threads() {
        let one: Vec<String> = (0..10_000).map(|_| super::row_id()).collect();
        assert!(one.windows(2).all(|w| w[0] < w[1]), "ids of one thread sort in the order made");
        let threads: Vec<_> =
            (0..8).map(|_| std::thread::spawn(|| (0..20_000).map(|_| super::row_id()).collect::<Vec<_>>())).collect();
        let mut all: std::collections::HashSet<String> = one.into_iter().collect();
        for t in threads {
            for id in t.join().unwrap() {
                assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
                assert!(all.insert(id), "an id repeated across threads");
            }
        }
        assert_eq!(all.len(), 10_000 + 8 * 20_000);
    }
}
