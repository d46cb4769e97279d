//! The audit table: the database side of `AuditWriterActor` and the queries behind
//! `GET /admin/audit-logs`.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::future::LocalBoxFuture;
use gateway_actors::{AuditRecord, AuditSink};
use serde::Serialize;

use super::schema::{audit_chain_heads, audit_checkpoints, audit_logs};
use super::{Db, DbError};
use crate::with_conn;

/// Rows per INSERT statement: keeps bind parameters under both backends' limits.
const ROWS_PER_STATEMENT: usize = 1000;

/// An audit row as stored.
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_logs, treat_none_as_default_value = false)]
pub struct AuditRow {
    /// Row id (UUID v7).
    pub id: String,
    /// When the attempt finished (UTC).
    pub created_at: NaiveDateTime,
    /// Request id returned to the client.
    pub request_id: String,
    /// Caller's `sub`.
    pub user_id: Option<String>,
    /// Caller's roles as a JSON array.
    pub roles: String,
    /// Caller's workspace.
    pub workspace: Option<String>,
    /// Tool asked for.
    pub tool_name: Option<String>,
    /// Access decision.
    pub decision: String,
    /// Outcome.
    pub status: String,
    /// HTTP status returned.
    pub http_status: i32,
    /// JSON-RPC error code returned.
    pub error_code: Option<i32>,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Client address.
    pub client_ip: Option<String>,
    /// SHA-256 of the arguments.
    pub arguments_sha256: Option<String>,
    /// Short error text.
    pub error_message: Option<String>,
    /// The front door the call came through.
    pub transport: String,
    /// Hash chain of the row.
    pub chain_id: String,
    /// Position in the chain.
    pub seq: i64,
    /// Previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub row_hash: String,
    /// Arguments the policy chose to record (masked), as JSON.
    pub arguments_logged: Option<String>,
}

impl From<&AuditRow> for AuditRecord {
    fn from(r: &AuditRow) -> Self {
        Self {
            id: r.id.clone(),
            created_at: r.created_at.and_utc(),
            request_id: r.request_id.clone(),
            user_id: r.user_id.clone(),
            roles: serde_json::from_str(&r.roles).unwrap_or_default(),
            workspace: r.workspace.clone(),
            tool_name: r.tool_name.clone(),
            decision: r.decision.clone(),
            status: r.status.clone(),
            http_status: r.http_status,
            error_code: r.error_code,
            duration_ms: r.duration_ms,
            client_ip: r.client_ip.clone(),
            arguments_sha256: r.arguments_sha256.clone(),
            error_message: r.error_message.clone(),
            arguments_logged: r.arguments_logged.clone(),
            transport: r.transport.clone(),
            chain_id: r.chain_id.clone(),
            seq: r.seq,
            prev_hash: r.prev_hash.clone(),
            row_hash: r.row_hash.clone(),
        }
    }
}

impl From<&AuditRecord> for AuditRow {
    fn from(r: &AuditRecord) -> Self {
        Self {
            id: r.id.clone(),
            created_at: r.created_at.naive_utc(),
            request_id: r.request_id.clone(),
            user_id: r.user_id.clone(),
            roles: serde_json::to_string(&r.roles).unwrap_or_else(|_| "[]".into()),
            workspace: r.workspace.clone(),
            tool_name: r.tool_name.clone(),
            decision: r.decision.clone(),
            status: r.status.clone(),
            http_status: r.http_status,
            error_code: r.error_code,
            duration_ms: r.duration_ms,
            client_ip: r.client_ip.clone(),
            arguments_sha256: r.arguments_sha256.clone(),
            error_message: r.error_message.clone(),
            arguments_logged: r.arguments_logged.clone(),
            transport: r.transport.clone(),
            chain_id: r.chain_id.clone(),
            seq: r.seq,
            prev_hash: r.prev_hash.clone(),
            row_hash: r.row_hash.clone(),
        }
    }
}

/// Insert `rows` in one transaction, as multi-row INSERTs. A row already stored (same id: a
/// replayed batch) is skipped, so replays never duplicate.
pub async fn insert_batch(db: &Db, rows: &[AuditRecord]) -> Result<(), DbError> {
    let rows: Vec<AuditRow> = rows.iter().map(AuditRow::from).collect();
    match db {
        // One statement per batch whatever its size: each column travels as one array
        // parameter and `unnest` turns them back into rows (21 binds, not 21 per row).
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            pg_unnest_insert(&rows).execute(&mut *conn).await.map(|_| ()).map_err(DbError::from_display)
        }
        // diesel's multi-row INSERT for SQLite lives in its synchronous API.
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            let heads = chain_heads(&rows);
            conn.spawn_blocking(move |conn| {
                conn.transaction(|conn| {
                    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                        diesel::RunQueryDsl::execute(
                            diesel::insert_into(audit_logs::table).values(chunk).on_conflict_do_nothing(),
                            conn,
                        )?;
                    }
                    for (chain, seq, hash) in &heads {
                        diesel::RunQueryDsl::execute(
                            diesel::sql_query(
                                "INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at) \
                                 VALUES (?, ?, ?, CURRENT_TIMESTAMP) ON CONFLICT (chain_id) DO UPDATE SET \
                                 seq = excluded.seq, row_hash = excluded.row_hash, updated_at = excluded.updated_at \
                                 WHERE excluded.seq > audit_chain_heads.seq",
                            )
                            .bind::<diesel::sql_types::Text, _>(chain)
                            .bind::<diesel::sql_types::BigInt, _>(seq)
                            .bind::<diesel::sql_types::Text, _>(hash),
                            conn,
                        )?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(DbError::from_display)
        }
    }
}

/// Each chain's newest row in `rows`: (chain, seq, row hash).
fn chain_heads(rows: &[AuditRow]) -> Vec<(String, i64, String)> {
    let mut heads: std::collections::BTreeMap<&str, (i64, &str)> = std::collections::BTreeMap::new();
    for r in rows.iter().filter(|r| !r.chain_id.is_empty()) {
        let head = heads.entry(&r.chain_id).or_insert((r.seq, &r.row_hash));
        if r.seq > head.0 {
            *head = (r.seq, &r.row_hash);
        }
    }
    heads.into_iter().map(|(c, (s, h))| (c.to_owned(), s, h.to_owned())).collect()
}

fn pg_unnest_insert(
    rows: &[AuditRow],
) -> impl diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send + use<> {
    use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamp};
    let col = |f: &dyn Fn(&AuditRow) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let opt = |f: &dyn Fn(&AuditRow) -> Option<String>| rows.iter().map(f).collect::<Vec<Option<String>>>();
    // Usually one chain per batch: its head is found here, not sorted out in SQL.
    let heads = chain_heads(rows);
    // The rows and their chains' heads in one statement: a head never runs ahead of its rows.
    diesel::sql_query(
        "WITH stored AS (INSERT INTO audit_logs (id, created_at, request_id, user_id, roles, workspace, tool_name, \
         decision, status, http_status, error_code, duration_ms, client_ip, arguments_sha256, error_message, \
         transport, chain_id, seq, prev_hash, row_hash, arguments_logged) \
         SELECT * FROM unnest($1::text[], $2::timestamp[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::int4[], $11::int4[], $12::float8[], $13::text[], $14::text[], \
         $15::text[], $16::text[], $17::text[], $18::int8[], $19::text[], $20::text[], $21::text[]) \
         ON CONFLICT DO NOTHING) \
         INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at) \
         SELECT c, s, h, now() AT TIME ZONE 'UTC' FROM unnest($22::text[], $23::int8[], $24::text[]) AS t(c, s, h) \
         ON CONFLICT (chain_id) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash, \
         updated_at = EXCLUDED.updated_at WHERE audit_chain_heads.seq < EXCLUDED.seq",
    )
    .bind::<Array<Text>, _>(col(&|r| r.id.clone()))
    .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(col(&|r| r.request_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.user_id.clone()))
    .bind::<Array<Text>, _>(col(&|r| r.roles.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.workspace.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.tool_name.clone()))
    .bind::<Array<Text>, _>(col(&|r| r.decision.clone()))
    .bind::<Array<Text>, _>(col(&|r| r.status.clone()))
    .bind::<Array<Integer>, _>(rows.iter().map(|r| r.http_status).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(rows.iter().map(|r| r.error_code).collect::<Vec<_>>())
    .bind::<Array<Double>, _>(rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.client_ip.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.arguments_sha256.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.error_message.clone()))
    .bind::<Array<Text>, _>(col(&|r| r.transport.clone()))
    .bind::<Array<Text>, _>(col(&|r| r.chain_id.clone()))
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(col(&|r| r.prev_hash.clone()))
    .bind::<Array<Text>, _>(col(&|r| r.row_hash.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.arguments_logged.clone()))
    .bind::<Array<Text>, _>(heads.iter().map(|h| h.0.clone()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(heads.iter().map(|h| h.1).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(heads.iter().map(|h| h.2.clone()).collect::<Vec<_>>())
}

/// The local spool: an append-only file of rows that could not reach the database, replayed
/// in order (and idempotently) when it answers again. While it holds rows, new batches are
/// appended behind them so order is kept.
pub struct Spool {
    path: std::path::PathBuf,
    lock: tokio::sync::Mutex<()>,
    rows: Arc<std::sync::atomic::AtomicU64>,
    last_replay: std::cell::Cell<Option<std::time::Instant>>,
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
        Self { path, lock: tokio::sync::Mutex::new(()), rows, last_replay: std::cell::Cell::new(None) }
    }

    fn held(&self) -> u64 {
        std::sync::atomic::AtomicU64::load(&self.rows, std::sync::atomic::Ordering::Relaxed)
    }

    /// Append `rows` durably (fsync before returning).
    async fn append(&self, rows: &[AuditRecord]) -> Result<(), String> {
        let _guard = self.lock.lock().await;
        let mut text = String::new();
        for r in rows {
            text.push_str(&serde_json::to_string(r).map_err(|e| e.to_string())?);
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
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("audit spool {}: {e}", self.path.display()))?;
        self.rows.fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Move the spooled rows into the database, in order; the file is emptied only after
    /// every row is stored. At most one attempt a second.
    pub async fn replay(&self, db: &Db) -> Result<u64, String> {
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
            written.map_err(|e| format!("audit spool {}: {e}", aside.display()))?;
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            insert_batch(db, chunk).await.map_err(|e| e.to_string())?;
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().write(true).truncate(true).open(&path).and_then(|f| f.sync_all())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        self.rows.store(0, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(rows = rows.len(), "audit spool replayed into the database");
        Ok(rows.len() as u64)
    }
}

/// Longest the writer waits on the database for one batch before spooling it.
const WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// The database as the audit writer's sink, with the spool behind it: a batch the database
/// refuses is made durable in the spool instead, so the writer never loses it.
pub struct DbAuditSink {
    db: Db,
    spool: std::rc::Rc<Spool>,
}

impl DbAuditSink {
    /// A sink writing to `db`, spilling to `spool`.
    pub fn new(db: Db, spool: std::rc::Rc<Spool>) -> Self {
        Self { db, spool }
    }
}

impl AuditSink for DbAuditSink {
    fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<(), String>> {
        let (db, spool) = (self.db.clone(), self.spool.clone());
        Box::pin(async move {
            // A database that hangs (rather than refuses) must not hold the writer: past the
            // deadline the batch goes to the spool (a late commit is harmless: inserts are
            // idempotent on the row id).
            if spool.held() == 0 {
                match tokio::time::timeout(WRITE_DEADLINE, insert_batch(&db, &rows)).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => {
                        tracing::error!(rows = rows.len(), error = %e, "audit insert failed; spooling the batch")
                    }
                    Err(_) => tracing::error!(rows = rows.len(), "audit insert timed out; spooling the batch"),
                }
            }
            spool.append(&rows).await?;
            let _ = tokio::time::timeout(WRITE_DEADLINE, spool.replay(&db)).await;
            Ok(())
        })
    }
}

/// Walk every hash chain: report rows whose content changed, rows missing (gaps in `seq`),
/// and rows inserted or reordered (a `prev_hash` that does not match).
/// Chains whose oldest rows retention removed resume at their checkpoint.
pub async fn verify(db: &Db) -> Result<(usize, usize, Vec<String>), DbError> {
    let checkpoints: std::collections::HashMap<String, (i64, String)> = with_conn!(db, |conn| {
        audit_checkpoints::table
            .select((audit_checkpoints::chain_id, audit_checkpoints::seq, audit_checkpoints::row_hash))
            .load::<(String, i64, String)>(conn)
            .await
            .map_err(DbError::from_display)
    })?
    .into_iter()
    .map(|(chain, seq, hash)| (chain, (seq, hash)))
    .collect();
    let (mut chains, mut rows, mut problems) = (0usize, 0usize, Vec::new());
    // Every row the gateway writes belongs to a chain: one without is foreign.
    let unchained: i64 = with_conn!(db, |conn| {
        audit_logs::table
            .filter(audit_logs::chain_id.eq(""))
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    if unchained > 0 {
        problems.push(format!("{unchained} row(s) belong to no chain (inserted outside the gateway)"));
    }
    let heads: Vec<(String, i64, String)> = with_conn!(db, |conn| {
        audit_chain_heads::table
            .select((audit_chain_heads::chain_id, audit_chain_heads::seq, audit_chain_heads::row_hash))
            .load::<(String, i64, String)>(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    // Where each chain's rows end, as walked.
    let mut ends: std::collections::HashMap<String, (i64, String)> = std::collections::HashMap::new();
    let (mut chain, mut seq) = (String::new(), 0i64);
    let mut prev = String::new();
    loop {
        let (c, s) = (chain.clone(), seq);
        let page: Vec<AuditRow> = with_conn!(db, |conn| {
            audit_logs::table
                .filter(audit_logs::chain_id.ne(""))
                .filter(audit_logs::chain_id.gt(&c).or(audit_logs::chain_id.eq(&c).and(audit_logs::seq.gt(s))))
                .order((audit_logs::chain_id, audit_logs::seq))
                .limit(10_000)
                .select(AuditRow::as_select())
                .load::<AuditRow>(conn)
                .await
                .map_err(DbError::from_display)
        })?;
        if page.is_empty() {
            problems.extend(check_heads(&heads, &ends, &checkpoints));
            return Ok((chains, rows, problems));
        }
        for row in &page {
            if row.chain_id != chain {
                chains += 1;
                chain = row.chain_id.clone();
                (seq, prev) = checkpoints.get(&chain).cloned().unwrap_or_default();
            }
            rows += 1;
            if row.seq <= seq {
                problems.push(format!(
                    "row {} (chain {chain}, seq {}): repeats a sequence number (inserted)",
                    row.id, row.seq
                ));
            } else if row.seq != seq + 1 {
                problems.push(format!(
                    "chain {chain}: {} row(s) missing before seq {} (deleted)",
                    row.seq - seq - 1,
                    row.seq
                ));
            } else if row.prev_hash != prev {
                problems.push(format!(
                    "row {} (chain {chain}, seq {}): does not follow the previous row (inserted or reordered)",
                    row.id, row.seq
                ));
            }
            if AuditRecord::from(row).compute_hash() != row.row_hash {
                problems.push(format!("row {} (chain {chain}, seq {}): content altered", row.id, row.seq));
            }
            seq = row.seq;
            prev = row.row_hash.clone();
            ends.insert(chain.clone(), (seq, prev.clone()));
        }
    }
}

/// Compare each chain's walked end with its recorded head (written with the rows, in the same
/// statement): an end short of the head means the newest rows were deleted; a different hash at
/// the head, that the newest row was replaced; rows past the head, that rows were appended by
/// something other than the gateway. Chains from before heads were recorded have none.
fn check_heads(
    heads: &[(String, i64, String)],
    ends: &std::collections::HashMap<String, (i64, String)>,
    checkpoints: &std::collections::HashMap<String, (i64, String)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (chain, head_seq, head_hash) in heads {
        let (end_seq, end_hash) =
            ends.get(chain).or_else(|| checkpoints.get(chain)).cloned().unwrap_or((0, String::new()));
        if end_seq < *head_seq {
            problems.push(format!(
                "chain {chain}: its newest {} row(s), up to seq {head_seq}, are missing (deleted)",
                head_seq - end_seq
            ));
        } else if end_seq > *head_seq {
            problems.push(format!(
                "chain {chain}: {} row(s) after its recorded head (seq {head_seq}) were not written by the gateway (inserted)",
                end_seq - head_seq
            ));
        } else if end_hash != *head_hash {
            problems.push(format!("chain {chain}: its newest row (seq {head_seq}) is not the one recorded (replaced)"));
        }
    }
    problems
}

/// Retention: delete rows older than `cutoff`, chain prefix by chain prefix, recording for
/// each chain where what remains resumes (`audit_checkpoints`) so `verify` still proves the
/// rest intact. A chain's rows after its first recent row are kept even if older (chains are
/// cut only at a prefix). Returns how many rows were deleted.
pub async fn prune(db: &Db, cutoff: NaiveDateTime) -> Result<u64, DbError> {
    let chains: Vec<String> = with_conn!(db, |conn| {
        audit_logs::table
            .filter(audit_logs::created_at.lt(cutoff))
            .select(audit_logs::chain_id)
            .distinct()
            .load::<String>(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    let mut deleted = 0u64;
    for chain in chains {
        deleted += with_conn!(db, |conn| {
            conn.transaction::<u64, diesel::result::Error, _>(async |conn| {
                let first_kept: Option<i64> = audit_logs::table
                    .filter(audit_logs::chain_id.eq(&chain).and(audit_logs::created_at.ge(cutoff)))
                    .select(diesel::dsl::min(audit_logs::seq))
                    .first(conn)
                    .await?;
                let last: Option<(i64, String)> = audit_logs::table
                    .filter(audit_logs::chain_id.eq(&chain))
                    .filter(audit_logs::seq.lt(first_kept.unwrap_or(i64::MAX)))
                    .order(audit_logs::seq.desc())
                    .select((audit_logs::seq, audit_logs::row_hash))
                    .first(conn)
                    .await
                    .optional()?;
                let Some((seq, hash)) = last else { return Ok(0) };
                if !chain.is_empty() {
                    let now = chrono::Utc::now().naive_utc();
                    diesel::insert_into(audit_checkpoints::table)
                        .values((
                            audit_checkpoints::chain_id.eq(&chain),
                            audit_checkpoints::seq.eq(seq),
                            audit_checkpoints::row_hash.eq(&hash),
                            audit_checkpoints::created_at.eq(now),
                        ))
                        .on_conflict(audit_checkpoints::chain_id)
                        .do_update()
                        .set((
                            audit_checkpoints::seq.eq(seq),
                            audit_checkpoints::row_hash.eq(&hash),
                            audit_checkpoints::created_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                }
                let n = diesel::delete(
                    audit_logs::table.filter(audit_logs::chain_id.eq(&chain)).filter(audit_logs::seq.le(seq)),
                )
                .execute(conn)
                .await?;
                Ok(n as u64)
            })
            .await
            .map_err(DbError::from_display)
        })?;
    }
    Ok(deleted)
}

/// Filters of `GET /admin/audit-logs`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only rows of this user.
    pub user: Option<String>,
    /// Only rows for this tool.
    pub tool: Option<String>,
    /// Only rows with this decision.
    pub decision: Option<String>,
    /// Only rows with this status.
    pub status: Option<String>,
    /// Only rows of callers holding this role.
    pub role: Option<String>,
    /// Only rows of this workspace.
    pub workspace: Option<String>,
    /// Only rows of this request id.
    pub request_id: Option<String>,
    /// Only rows at or after this time (UTC).
    pub since: Option<NaiveDateTime>,
    /// Only rows before this time (UTC).
    pub until: Option<NaiveDateTime>,
    /// Only rows older than this row id (the previous page's cursor).
    pub before_id: Option<String>,
    /// Page size.
    pub limit: i64,
}

macro_rules! filtered {
    ($conn:expr, $backend:ty, $f:expr) => {{
        let f = $f;
        let mut q = audit_logs::table.into_boxed::<$backend>();
        if let Some(v) = &f.user {
            q = q.filter(audit_logs::user_id.eq(v));
        }
        if let Some(v) = &f.tool {
            q = q.filter(audit_logs::tool_name.eq(v));
        }
        if let Some(v) = &f.decision {
            q = q.filter(audit_logs::decision.eq(v));
        }
        if let Some(v) = &f.status {
            q = q.filter(audit_logs::status.eq(v));
        }
        if let Some(v) = &f.role {
            // roles is a JSON array of strings: match the quoted element.
            let quoted = serde_json::to_string(v).unwrap_or_default();
            let literal = quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            q = q.filter(audit_logs::roles.like(format!("%{literal}%")).escape('\\'));
        }
        if let Some(v) = &f.workspace {
            q = q.filter(audit_logs::workspace.eq(v));
        }
        if let Some(v) = &f.request_id {
            q = q.filter(audit_logs::request_id.eq(v));
        }
        if let Some(v) = f.since {
            q = q.filter(audit_logs::created_at.ge(v));
        }
        if let Some(v) = f.until {
            q = q.filter(audit_logs::created_at.lt(v));
        }
        if let Some(v) = &f.before_id {
            q = q.filter(audit_logs::id.lt(v));
        }
        q.order(audit_logs::id.desc())
            .limit(f.limit)
            .select(AuditRow::as_select())
            .load::<AuditRow>($conn)
            .await
            .map_err(DbError::from_display)
    }};
}

/// Rows matching `filter`, newest first.
pub async fn query(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditRow>, DbError> {
    match db {
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            filtered!(&mut *conn, diesel::pg::Pg, filter)
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            filtered!(&mut *conn, diesel::sqlite::Sqlite, filter)
        }
    }
}

/// One audit row as a CSV line (RFC 4180 quoting). A text value a spreadsheet would run as a
/// formula (leading `=`, `+`, `-`, `@`, tab or CR) gets a leading `'` (OWASP's CSV-injection
/// advice); numbers are written as they are.
pub fn csv_line(r: &AuditRow) -> String {
    let field = |v: &str| {
        let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_owned() };
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v
        }
    };
    let opt = |v: &Option<String>| field(v.as_deref().unwrap_or(""));
    [
        field(&r.id),
        field(&r.created_at.and_utc().to_rfc3339()),
        field(&r.request_id),
        opt(&r.user_id),
        field(&r.roles),
        opt(&r.workspace),
        opt(&r.tool_name),
        field(&r.decision),
        field(&r.status),
        r.http_status.to_string(),
        r.error_code.map(|c| c.to_string()).unwrap_or_default(),
        r.duration_ms.to_string(),
        opt(&r.client_ip),
        opt(&r.arguments_sha256),
        opt(&r.error_message),
        opt(&r.arguments_logged),
        field(&r.transport),
        field(&r.chain_id),
        r.seq.to_string(),
        field(&r.prev_hash),
        field(&r.row_hash),
    ]
    .join(",")
}

/// The CSV header matching [`csv_line`].
pub const CSV_HEADER: &str = "id,created_at,request_id,user_id,roles,workspace,tool_name,decision,status,http_status,error_code,duration_ms,client_ip,arguments_sha256,error_message,arguments_logged,transport,chain_id,seq,prev_hash,row_hash";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        let now = chrono::Utc::now().naive_utc();
        let row = AuditRow {
            id: "i".into(),
            created_at: now,
            request_id: "r".into(),
            user_id: Some("=HYPERLINK(\"http://evil\")".into()),
            roles: "[\"a\"]".into(),
            workspace: Some("@ws".into()),
            tool_name: Some("t,x".into()),
            decision: "denied".into(),
            status: "denied".into(),
            http_status: 403,
            error_code: Some(-32002),
            duration_ms: 1.5,
            client_ip: None,
            arguments_sha256: None,
            error_message: Some("-1+1".into()),
            arguments_logged: None,
            transport: "rest".into(),
            chain_id: "c".into(),
            seq: 1,
            prev_hash: "p".into(),
            row_hash: "h".into(),
        };
        let line = csv_line(&row);
        assert!(line.contains(",\"'=HYPERLINK(\"\"http://evil\"\")\","), "{line}");
        assert!(line.contains(",'@ws,\"t,x\",") && line.contains(",-32002,") && line.contains(",'-1+1,"), "{line}");
        assert_eq!(line.split(',').count(), CSV_HEADER.split(',').count() + 1, "one comma is inside \"t,x\": {line}");
    }

    #[test]
    fn a_torn_spool_write_is_cut_off_and_the_whole_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.spool");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"torn\":").unwrap();
        let rows = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let spool = Spool::open(path.clone(), rows.clone());
        assert_eq!(spool.held(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    }
}
