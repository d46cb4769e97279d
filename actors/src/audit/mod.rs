//! `AuditWriterActor`: batches audit rows and writes them through an [`AuditSink`].
//!
//! Handlers hand rows over with `do_send` and never wait. The actor flushes a batch when it
//! holds `max_events` rows or when `timeout` has passed, whichever comes first. Up to
//! `max_in_flight` writes run at once, each on its own connection; rows that arrive while all
//! are busy gather in the buffer, and the next write takes them all (up to `max_batch_rows` and
//! `max_batch_bytes`), so batches grow with the backlog instead of the backlog growing: one
//! write's latency no longer caps the rows per second. Rows carry their chain position, so
//! writes that commit out of order still verify. A failed write keeps its rows and is retried
//! after a back-off, so a database outage delays rows but does not drop them. [`Flush`] writes
//! everything held, waits for every write in flight, and answers once they are stored:
//! graceful shutdown sends it last.

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
    /// Writes running at once (each holds a database connection).
    pub max_in_flight: usize,
    /// Rows one write takes at most.
    pub max_batch_rows: usize,
    /// Bytes of row text one write takes at most (an estimate; at least one row is taken).
    pub max_batch_bytes: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: 1000,
            timeout: Duration::from_millis(200),
            retry_backoff: Duration::from_secs(1),
            max_in_flight: 1,
            max_batch_rows: 20_000,
            max_batch_bytes: 16 << 20,
        }
    }
}

/// About how many bytes a row takes in a write (its text fields plus fixed-size ones).
fn approx_bytes(r: &AuditRecord) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    128 + r.id.len()
        + r.request_id.len()
        + r.roles.iter().map(|x| x.len() + 3).sum::<usize>()
        + opt(&r.user_id)
        + opt(&r.workspace)
        + opt(&r.tool_name)
        + r.decision.len()
        + r.status.len()
        + opt(&r.client_ip)
        + opt(&r.arguments_sha256)
        + opt(&r.error_message)
        + opt(&r.arguments_logged)
        + r.transport.len()
        + r.chain_id.len()
        + r.prev_hash.len()
        + r.row_hash.len()
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
    /// Callers waiting for their rows to be durable (strict mode), by the row's `seq`:
    /// answered when the write holding that row ends.
    waiting: Vec<(i64, tokio::sync::oneshot::Sender<Result<(), IoFailure>>)>,
    durable_flush_scheduled: bool,
    /// Writes running now.
    in_flight: usize,
    /// [`Flush`]es waiting for every write in flight to end.
    idle: Vec<tokio::sync::oneshot::Sender<()>>,
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
            in_flight: 0,
            idle: Vec::new(),
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

    /// Start writes of the held rows while fewer than `max_in_flight` run (none while backing
    /// off after a failure, unless `now` asks for one: a caller waits for its row).
    fn flush(&mut self, ctx: &mut Context<Self>, now: bool) {
        if now {
            self.retry_at = None;
        }
        while !self.buffer.is_empty() && self.in_flight < self.config.max_in_flight.max(1) && !self.backing_off() {
            let rows: Arc<[AuditRecord]> = self.buffer.drain(..self.batch_len()).collect();
            self.in_flight += 1;
            let write = self.write(rows.clone());
            ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
                let _ = act.finished(result, &rows); // a failure is logged and its rows kept
                act.after_write(ctx);
            }));
        }
    }

    /// How many rows from the front of the buffer the next write takes.
    fn batch_len(&self) -> usize {
        let (max_rows, max_bytes) = (self.config.max_batch_rows.max(1), self.config.max_batch_bytes);
        let mut bytes = 0;
        let mut n = 0;
        for row in self.buffer.iter().take(max_rows) {
            bytes += approx_bytes(row);
            if n > 0 && bytes > max_bytes {
                break;
            }
            n += 1;
        }
        n
    }

    /// A write ended: account for it and answer the callers waiting for its rows.
    fn finished(&mut self, result: Result<Stored, IoFailure>, rows: &Arc<[AuditRecord]>) -> Result<usize, IoFailure> {
        self.in_flight -= 1;
        let settled = self.settle(result, rows.clone());
        // A batch is a run of the buffer, which is kept in `seq` order.
        let holds = |seq: &i64| rows.binary_search_by_key(seq, |r| r.seq).is_ok();
        if self.waiting.iter().any(|(seq, _)| holds(seq)) {
            let outcome = match &settled {
                Ok((_, Stored::Database)) => Ok(()),
                Ok((_, Stored::Spooled)) => {
                    Err(IoFailure::new("audit rows are not reaching the database (held in the local spool)"))
                }
                Err(e) => Err(e.clone()),
            };
            let (mine, others) =
                std::mem::take(&mut self.waiting).into_iter().partition::<Vec<_>, _>(|(seq, _)| holds(seq));
            self.waiting = others;
            for (_, w) in mine {
                let _ = w.send(outcome.clone());
            }
        }
        if self.in_flight == 0 {
            for w in self.idle.drain(..) {
                let _ = w.send(());
            }
        }
        settled.map(|(n, _)| n)
    }

    /// After a write: go on with what gathered meanwhile if it makes a batch or someone waits.
    fn after_write(&mut self, ctx: &mut Context<Self>) {
        if self.buffer.len() >= self.config.max_events || !self.waiting.is_empty() {
            self.flush(ctx, false);
        }
    }

    /// Resolves once no write is in flight.
    fn when_idle(&mut self) -> LocalBoxFuture<'static, ()> {
        if self.in_flight == 0 {
            return Box::pin(async {});
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.idle.push(tx);
        Box::pin(async move {
            let _ = rx.await;
        })
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
                // Back in `seq` order: other writes may have taken later rows meanwhile.
                let mut kept = rows.to_vec();
                kept.append(&mut self.buffer);
                kept.sort_by_key(|r| r.seq);
                self.buffer = kept;
                Err(error)
            }
        }
    }
}

impl Actor for AuditWriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.config.timeout, |act, ctx| act.flush(ctx, false));
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
        let seq = row.seq;
        self.buffer.push(row);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiting.push((seq, tx));
        if !self.durable_flush_scheduled {
            self.durable_flush_scheduled = true;
            // After the messages already queued, so they share the write (group commit).
            ctx.run_later(Duration::ZERO, |act, ctx| {
                act.durable_flush_scheduled = false;
                act.flush(ctx, true);
            });
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
            self.flush(ctx, false);
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
            self.flush(ctx, false);
        }
    }
}

impl Handler<Flush> for AuditWriterActor {
    type Result = ResponseActFuture<Self, Result<usize, IoFailure>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        // An explicit flush ignores the back-off and the batch limits: shutdown wants one last
        // try of everything. It answers once the writes already in flight have ended too.
        self.retry_at = None;
        let rows: Arc<[AuditRecord]> = std::mem::take(&mut self.buffer).into();
        if rows.is_empty() {
            return Box::pin(self.when_idle().into_actor(self).map(|_, _, _| Ok(0)));
        }
        self.in_flight += 1;
        let write = self.write(rows.clone());
        Box::pin(write.into_actor(self).then(move |result, act, _| {
            let stored = act.finished(result, &rows);
            act.when_idle().into_actor(act).map(move |_, _, _| stored)
        }))
    }
}

impl Handler<GetHealth> for AuditWriterActor {
    type Result = MessageResult<GetHealth>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.report("audit_writer", true))
    }
}

#[cfg(test)]
mod tests;
