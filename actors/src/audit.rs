//! `AuditWriterActor`: batches audit rows and writes them through an [`AuditSink`].
//!
//! Handlers hand rows over with `do_send` and never wait. The actor flushes a batch when it
//! holds `max_events` rows or when `timeout` has passed, whichever comes first; one write is in
//! flight at a time (`ctx.wait`), and rows that arrive meanwhile queue in the mailbox. A failed
//! write keeps its rows and is retried after a back-off, so a database outage delays rows but
//! does not drop them. [`Flush`] writes everything held and answers once it is stored: graceful
//! shutdown sends it last.

use crate::failure::IoFailure;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult, ResponseActFuture, ResponseFuture,
    Supervised, WrapFuture,
};
use futures_util::future::LocalBoxFuture;

use crate::health::{ActorStats, GetHealth};
use crate::model::AuditRecord;

/// A random value for chain ids (no clock: two writers started together still differ).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

/// Where audit batches go (the database in production, a vector in tests).
pub trait AuditSink: 'static {
    /// Store `rows` as one batch. On error nothing may be half-written that a retry would
    /// duplicate (one transaction per batch). `Ok` says where the rows are now.
    fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<Stored, IoFailure>>;
}

/// Where a written batch ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// In the database: the rows are where auditors read them.
    Database,
    /// Durable on local disk only (the spool), waiting for the database: safe from loss, but
    /// not yet audited where anyone can see it. Strict mode counts this as a failure.
    Spooled,
}

/// When to flush: on size or on time, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Flush as soon as this many rows are held.
    pub max_events: usize,
    /// Flush rows older than this even if the batch is not full.
    pub timeout: Duration,
    /// Wait this long after a failed write before trying again.
    pub retry_backoff: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_events: 1000, timeout: Duration::from_millis(200), retry_backoff: Duration::from_secs(1) }
    }
}

/// What the writer's batches look like, for `/metrics`: how many, how big, how long they take.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// Batches written (successfully).
    pub batches: std::sync::atomic::AtomicU64,
    /// Rows in those batches.
    pub rows: std::sync::atomic::AtomicU64,
    /// Batches that failed (and were kept for a retry).
    pub failures: std::sync::atomic::AtomicU64,
    /// Total time spent writing batches, in microseconds.
    pub write_micros: std::sync::atomic::AtomicU64,
    /// The latest batch's write time, in microseconds.
    pub last_write_micros: std::sync::atomic::AtomicU64,
}

/// Owns the pending batch and the sink.
pub struct AuditWriterActor {
    sink: Rc<dyn AuditSink>,
    config: BatchConfig,
    stats: Arc<ActorStats>,
    buffer: Vec<AuditRecord>,
    retry_at: Option<Instant>,
    failing: bool,
    chain_id: String,
    seq: i64,
    last_hash: String,
    /// Callers waiting for their rows to be durable (strict mode), answered by the next flush.
    waiting: Vec<tokio::sync::oneshot::Sender<Result<(), IoFailure>>>,
    durable_flush_scheduled: bool,
    writes: Arc<WriteStats>,
}

impl AuditWriterActor {
    /// Count batches into `writes` (shared with `/metrics`).
    pub fn with_write_stats(mut self, writes: Arc<WriteStats>) -> Self {
        self.writes = writes;
        self
    }

    /// A writer flushing into `sink` as `config` says, counting into `stats`.
    pub fn new(sink: Rc<dyn AuditSink>, config: BatchConfig, stats: Arc<ActorStats>) -> Self {
        Self {
            sink,
            config,
            stats,
            buffer: Vec::new(),
            retry_at: None,
            failing: false,
            chain_id: format!("chain-{:016x}{:016x}", rand_u64(), rand_u64()),
            seq: 0,
            last_hash: String::new(),
            waiting: Vec::new(),
            durable_flush_scheduled: false,
            writes: Arc::default(),
        }
    }

    fn backing_off(&self) -> bool {
        self.retry_at.is_some_and(|t| Instant::now() < t)
    }

    /// Chain a row in arrival order: each hash covers the previous one.
    /// Every field is made storable first, so a caller's bytes can never make the database
    /// refuse the row, and the hash covers exactly what is stored.
    fn chain(&mut self, mut row: AuditRecord) -> AuditRecord {
        row.make_storable();
        self.seq += 1;
        row.chain_id = self.chain_id.clone();
        row.seq = self.seq;
        row.prev_hash = std::mem::take(&mut self.last_hash);
        row.row_hash = row.compute_hash();
        self.last_hash = row.row_hash.clone();
        row
    }

    /// Write everything held now and answer every caller waiting for durability (group commit).
    fn flush_durable(&mut self, ctx: &mut Context<Self>) {
        self.durable_flush_scheduled = false;
        let waiting = std::mem::take(&mut self.waiting);
        let rows: Arc<[AuditRecord]> = std::mem::take(&mut self.buffer).into();
        let write = self.write(rows.clone());
        ctx.wait(write.into_actor(self).map(move |result, act, _| {
            let outcome = match act.settle(result, rows) {
                Ok((_, Stored::Database)) => Ok(()),
                Ok((_, Stored::Spooled)) => {
                    Err(IoFailure::new("audit rows are not reaching the database (held in the local spool)"))
                }
                Err(e) => Err(e),
            };
            for w in waiting {
                let _ = w.send(outcome.clone());
            }
        }));
    }

    /// Write the held rows, holding the mailbox until the write ends (one write in flight).
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.buffer.is_empty() || self.backing_off() {
            return;
        }
        let rows: Arc<[AuditRecord]> = std::mem::take(&mut self.buffer).into();
        let write = self.write(rows.clone());
        ctx.wait(write.into_actor(self).map(move |result, act, _| {
            let _ = act.settle(result, rows);
        }));
    }

    /// Start writing `rows`, timed for [`WriteStats`].
    fn write(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<Stored, IoFailure>> {
        let (write, writes) = (self.sink.write_batch(rows), self.writes.clone());
        Box::pin(async move {
            let started = Instant::now();
            let result = write.await;
            let micros = started.elapsed().as_micros() as u64;
            writes.write_micros.fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
            writes.last_write_micros.store(micros, std::sync::atomic::Ordering::Relaxed);
            result
        })
    }

    /// Account for a finished write: on failure, put the rows back in front for a retry. Rows
    /// that went to the spool are safe, but the writer reports itself failing until rows reach
    /// the database again (readiness and strict mode read that).
    fn settle(
        &mut self,
        result: Result<Stored, IoFailure>,
        rows: Arc<[AuditRecord]>,
    ) -> Result<(usize, Stored), IoFailure> {
        let n = rows.len();
        let counter = if result.is_ok() { &self.writes.batches } else { &self.writes.failures };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if result.is_ok() {
            self.writes.rows.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(Stored::Spooled) => {
                self.stats.handled(n as i64);
                self.retry_at = None;
                self.failing = true;
                self.stats.failed("audit rows are not reaching the database (held in the local spool)");
                Ok((n, Stored::Spooled))
            }
            Ok(Stored::Database) => {
                self.stats.handled(n as i64);
                self.retry_at = None;
                if std::mem::take(&mut self.failing) {
                    self.stats.recovered();
                    tracing::info!(rows = n, "audit writer recovered");
                }
                Ok((n, Stored::Database))
            }
            Err(error) => {
                tracing::error!(rows = n, %error, "audit batch write failed; rows kept for retry");
                self.stats.failed(format!("audit write failed: {error}"));
                self.retry_at = Some(Instant::now() + self.config.retry_backoff);
                self.failing = true;
                let mut kept = rows.to_vec();
                kept.append(&mut self.buffer);
                self.buffer = kept;
                Err(error)
            }
        }
    }
}

impl Actor for AuditWriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.config.timeout, |act, ctx| act.flush(ctx));
    }
}

impl Supervised for AuditWriterActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.stats.restarted();
    }
}

/// Store one audit row (fire-and-forget: send it with `do_send`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Record(pub AuditRecord);

/// Store one audit row and answer once it is durable (strict mode): rows arriving together are
/// written in one batch (group commit).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), IoFailure>")]
pub struct RecordDurable(pub AuditRecord);

impl Handler<RecordDurable> for AuditWriterActor {
    type Result = ResponseFuture<Result<(), IoFailure>>;

    fn handle(&mut self, msg: RecordDurable, ctx: &mut Context<Self>) -> Self::Result {
        let row = self.chain(msg.0);
        self.buffer.push(row);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiting.push(tx);
        if !self.durable_flush_scheduled {
            self.durable_flush_scheduled = true;
            // After the messages already queued, so they share the write.
            ctx.run_later(Duration::ZERO, |act, ctx| act.flush_durable(ctx));
        }
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(IoFailure::new("the audit writer stopped"))) })
    }
}

/// Write every row held now and answer with how many were written.
///
/// Rows sent before the `Flush` are in the mailbox ahead of it, so when it answers `Ok`, they
/// are all stored.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<usize, IoFailure>")]
pub struct Flush;

impl Handler<Record> for AuditWriterActor {
    type Result = ();

    fn handle(&mut self, msg: Record, ctx: &mut Context<Self>) {
        let row = self.chain(msg.0);
        self.buffer.push(row);
        if self.buffer.len() >= self.config.max_events {
            self.flush(ctx);
        }
    }
}

/// Store several audit rows at once (fire-and-forget). What a gateway worker hands over at the
/// end of an event-loop turn: one message, one wake-up of this actor, for every row the turn
/// produced.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordBatch(pub Vec<AuditRecord>);

impl Handler<RecordBatch> for AuditWriterActor {
    type Result = ();

    fn handle(&mut self, msg: RecordBatch, ctx: &mut Context<Self>) {
        for record in msg.0 {
            let row = self.chain(record);
            self.buffer.push(row);
        }
        if self.buffer.len() >= self.config.max_events {
            self.flush(ctx);
        }
    }
}

impl Handler<Flush> for AuditWriterActor {
    type Result = ResponseActFuture<Self, Result<usize, IoFailure>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        // An explicit flush ignores the back-off: shutdown wants one last try.
        self.retry_at = None;
        let rows: Arc<[AuditRecord]> = std::mem::take(&mut self.buffer).into();
        if rows.is_empty() {
            return Box::pin(actix::fut::ready(Ok(0)));
        }
        let write = self.write(rows.clone());
        Box::pin(write.into_actor(self).map(move |result, act, _| act.settle(result, rows).map(|(n, _)| n)))
    }
}

impl Handler<GetHealth> for AuditWriterActor {
    type Result = MessageResult<GetHealth>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.report("audit_writer", true))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use actix::Actor;

    use super::*;

    /// A sink that stores batches in memory and can be told to fail.
    #[derive(Default)]
    struct MemorySink {
        batches: Rc<RefCell<Vec<usize>>>,
        rows: Rc<RefCell<Vec<String>>>,
        fail: Rc<RefCell<bool>>,
    }

    impl AuditSink for MemorySink {
        fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<Stored, IoFailure>> {
            let (batches, stored, fail) = (self.batches.clone(), self.rows.clone(), self.fail.clone());
            Box::pin(async move {
                if *fail.borrow() {
                    return Err(IoFailure::new("database down"));
                }
                batches.borrow_mut().push(rows.len());
                stored.borrow_mut().extend(rows.iter().map(|r| r.id.clone()));
                Ok(Stored::Database)
            })
        }
    }

    fn row(i: usize) -> AuditRecord {
        AuditRecord {
            id: i.to_string(),
            created_at: chrono::Utc::now(),
            request_id: "r".into(),
            user_id: None,
            roles: vec![],
            workspace: None,
            tool_name: None,
            decision: "allowed".into(),
            status: "ok".into(),
            http_status: 200,
            error_code: None,
            duration_ms: 0.0,
            client_ip: None,
            arguments_sha256: None,
            error_message: None,
            arguments_logged: None,
            transport: "rest".into(),
            chain_id: String::new(),
            seq: 0,
            prev_hash: String::new(),
            row_hash: String::new(),
        }
    }

    // The sink is `!Send`; the actor runs on the test's thread, as it runs on one arbiter in production.
    fn start(sink: MemorySink, config: BatchConfig) -> (actix::Addr<AuditWriterActor>, Arc<ActorStats>) {
        let stats = Arc::new(ActorStats::default());
        (AuditWriterActor::new(Rc::new(sink), config, stats.clone()).start(), stats)
    }

    #[actix::test]
    async fn audit_batch_flushes_on_size() {
        let sink = MemorySink::default();
        let batches = sink.batches.clone();
        let config = BatchConfig { max_events: 10, timeout: Duration::from_secs(3600), ..Default::default() };
        let (addr, _) = start(sink, config);
        for i in 0..25 {
            addr.do_send(Record(row(i)));
        }
        assert_eq!(addr.send(Flush).await.unwrap(), Ok(5));
        assert_eq!(*batches.borrow(), vec![10, 10, 5]);
    }

    #[actix::test]
    async fn audit_batch_flushes_on_interval() {
        let sink = MemorySink::default();
        let rows = sink.rows.clone();
        let config = BatchConfig { max_events: 1000, timeout: Duration::from_millis(20), ..Default::default() };
        let (addr, _) = start(sink, config);
        addr.do_send(Record(row(1)));
        actix::clock::sleep(Duration::from_millis(100)).await;
        assert_eq!(*rows.borrow(), vec!["1".to_string()]);
    }

    #[actix::test]
    async fn failed_write_keeps_rows_in_order_until_the_sink_recovers() {
        let sink = MemorySink::default();
        let (rows, fail) = (sink.rows.clone(), sink.fail.clone());
        let config =
            BatchConfig { max_events: 2, timeout: Duration::from_secs(3600), retry_backoff: Duration::from_secs(3600) };
        let (addr, stats) = start(sink, config);
        *fail.borrow_mut() = true;
        for i in 0..5 {
            addr.do_send(Record(row(i)));
        }
        assert!(addr.send(Flush).await.unwrap().is_err());
        assert!(stats.report("a", true).last_error.is_some());
        *fail.borrow_mut() = false;
        assert_eq!(addr.send(Flush).await.unwrap(), Ok(5));
        assert_eq!(*rows.borrow(), (0..5).map(|i| i.to_string()).collect::<Vec<_>>());
        assert!(stats.report("a", true).last_error.is_none());
    }
}
