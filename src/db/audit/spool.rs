//! The local spool: rows that could not reach the database, kept on disk in order and replayed
//! (idempotently, always making progress past a bad row) when it answers again.

use super::evidence::Evidence;
use super::sink::store_or_set_aside;
use crate::db::Db;
use gateway_actors::AuditRecord;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Why the spool could not take or give back rows.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A row could not be written as JSON.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// The spool file (or the file of unreadable lines beside it) could not be written.
    #[error("audit spool {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The thread doing the file work ended early.
    #[error("{0}")]
    Thread(#[from] tokio::task::JoinError),
    /// The database could not be reached while replaying.
    #[error("{0}")]
    Database(#[from] crate::db::DbError),
}

/// Rows per INSERT statement while replaying the spool.
const ROWS_PER_STATEMENT: usize = 1000;

/// The local spool: an append-only file of rows that could not reach the database, replayed
/// in order (and idempotently) when it answers again. While it holds rows, new batches are
/// appended behind them so order is kept.
pub struct Spool {
    path: std::path::PathBuf,
    lock: tokio::sync::Mutex<()>,
    rows: Arc<std::sync::atomic::AtomicU64>,
    last_replay: std::cell::Cell<Option<std::time::Instant>>,
    pub(super) set_aside: Arc<AtomicU64>,
    pub(super) evidence: Arc<Evidence>,
}

impl Spool {
    /// A spool at `path`; `rows` counts what it holds (for health and metrics).
    /// A write torn by a crash (no final newline) is cut off first: its rows were never
    /// fsynced, so no caller was answered for them.
    pub fn open(path: std::path::PathBuf, rows: Arc<std::sync::atomic::AtomicU64>) -> Self {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            tracing::warn!(path = %path.display(), bytes = text.len() - keep, "audit spool ends in a torn write; cutting it off");
            let cut = std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| {
                f.set_len(keep as u64)?;
                f.sync_all()
            });
            if let Err(e) = cut {
                tracing::error!(path = %path.display(), error = %e, "cannot cut the torn audit spool write");
            }
        }
        let held = text[..text.rfind('\n').map_or(0, |i| i + 1)].lines().filter(|l| !l.trim().is_empty()).count();
        rows.store(held as u64, std::sync::atomic::Ordering::Relaxed);
        Self {
            path,
            lock: tokio::sync::Mutex::new(()),
            rows,
            last_replay: std::cell::Cell::new(None),
            set_aside: Arc::default(),
            evidence: Arc::default(),
        }
    }

    /// Leave `evidence` (ledger registration, signed heads) with every batch written, from the
    /// writer and from replays alike.
    pub fn with_evidence(mut self, evidence: Arc<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }

    /// Count rows set aside (refused by the database) into `counter` (shared with `/metrics`).
    pub fn counting_set_aside(mut self, counter: Arc<AtomicU64>) -> Self {
        self.set_aside = counter;
        self
    }

    /// Rows held in the spool now.
    pub fn held(&self) -> u64 {
        std::sync::atomic::AtomicU64::load(&self.rows, std::sync::atomic::Ordering::Relaxed)
    }

    /// Append `rows` durably (fsync before returning).
    pub(super) async fn append(&self, rows: &[AuditRecord]) -> Result<(), SpoolError> {
        let _guard = self.lock.lock().await;
        let mut text = String::new();
        for r in rows {
            text.push_str(&serde_json::to_string(r).map_err(SpoolError::Encode)?);
            text.push('\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(text.as_bytes())?;
            file.sync_data()
        })
        .await?
        .map_err(|source| SpoolError::File { path: self.path.clone(), source })?;
        self.rows.fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Move the spooled rows into the database, in order; the file is emptied only after
    /// every row is stored. At most one attempt a second.
    pub async fn replay(&self, db: &Db) -> Result<u64, SpoolError> {
        if self.held() == 0 || self.last_replay.get().is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1)) {
            return Ok(0);
        }
        self.last_replay.set(Some(std::time::Instant::now()));
        let _guard = self.lock.lock().await;
        let text = tokio::fs::read_to_string(&self.path).await.unwrap_or_default();
        let mut rows: Vec<AuditRecord> = Vec::new();
        let mut unreadable = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(row) => rows.push(row),
                Err(_) => {
                    unreadable.push_str(line);
                    unreadable.push('\n');
                }
            }
        }
        if !unreadable.is_empty() {
            // Never dropped: set aside beside the spool for an operator to inspect.
            let aside = self.path.with_extension("unreadable");
            tracing::error!(path = %aside.display(), "unreadable audit spool lines set aside");
            let kept = tokio::fs::OpenOptions::new().create(true).append(true).open(&aside).await;
            let written = match kept {
                Ok(mut f) => {
                    use tokio::io::AsyncWriteExt;
                    f.write_all(unreadable.as_bytes()).await.and(f.sync_all().await)
                }
                Err(e) => Err(e),
            };
            written.map_err(|source| SpoolError::File { path: aside, source })?;
        }
        // A row the database refuses is set aside alone; only an outage stops the replay (and
        // the rows stored so far are skipped next time: inserts are idempotent on the row id).
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            store_or_set_aside(db, chunk, &self.set_aside, &self.evidence).await?;
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().write(true).truncate(true).open(&path).and_then(|f| f.sync_all())
        })
        .await?
        .map_err(|source| SpoolError::File { path: self.path.clone(), source })?;
        self.rows.store(0, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(rows = rows.len(), "audit spool replayed into the database");
        Ok(rows.len() as u64)
    }
}
