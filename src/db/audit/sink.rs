//! The audit writer's way into the database: [`DbAuditSink`] stores batches, sets aside a row
//! the database refuses (alone: the batch is split to find it) and spools batches to local disk
//! while the database is away; [`Spool`] replays them, always making progress past a bad row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use futures_util::future::LocalBoxFuture;
use gateway_actors::{AuditRecord, AuditSink, IoFailure, Stored};

use super::evidence::Evidence;
use super::spool::Spool;
use super::store::insert_batch;
use diesel::{ExpressionMethods, QueryDsl};

use crate::db::schema::audit_set_aside;
use crate::db::{Db, DbError};

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
    fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<Stored, IoFailure>> {
        let (db, spool) = (self.db.clone(), self.spool.clone());
        Box::pin(async move {
            // A database that hangs (rather than refuses) must not hold the writer: past the
            // deadline the batch goes to the spool (a late commit is harmless: inserts are
            // idempotent on the row id).
            // (`Db::within`: on SQLite the late write finishes as a task of its own.)
            if spool.held() == 0 {
                let (write_db, write_rows, write_spool) = (db.clone(), rows.clone(), spool.clone());
                let write = async move {
                    store_or_set_aside(&write_db, &write_rows, &write_spool.set_aside, &write_spool.evidence).await
                };
                match db.within(WRITE_DEADLINE, write).await {
                    Some(Ok(())) => return Ok(Stored::Database),
                    Some(Err(e)) => {
                        tracing::error!(rows = rows.len(), error = %e, "audit insert failed; spooling the batch")
                    }
                    None => tracing::error!(rows = rows.len(), "audit insert timed out; spooling the batch"),
                }
            }
            spool.append(&rows).await.map_err(IoFailure::new)?;
            let (replay_db, replay_spool) = (db.clone(), spool.clone());
            let _ = db.within(WRITE_DEADLINE, async move { replay_spool.replay(&replay_db).await }).await;
            Ok(if spool.held() == 0 { Stored::Database } else { Stored::Spooled })
        })
    }
}

/// Store `rows`; when the database refuses the batch but still answers (so the fault is in the
/// rows, not an outage), split it in halves until each refused row stands alone, and set that
/// row aside ([`set_aside`]) so it never holds back the rows behind it. `Err` when the
/// database cannot be reached or the failure is not a refusal ([`DbError::is_refusal`]).
pub async fn store_or_set_aside(
    db: &Db,
    rows: &[AuditRecord],
    counter: &AtomicU64,
    evidence: &Evidence,
) -> Result<(), DbError> {
    let error = match insert_batch(db, rows, evidence).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    // Only a refusal is the rows' fault; the ping rules out a refusal that was really the
    // database going away mid-statement.
    if !error.is_refusal() || db.ping().await.is_err() {
        return Err(error);
    }
    if let [row] = rows {
        set_aside(db, row, error.message(), evidence).await?;
        counter.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let (first, second) = rows.split_at(rows.len() / 2);
    Box::pin(store_or_set_aside(db, first, counter, evidence)).await?;
    Box::pin(store_or_set_aside(db, second, counter, evidence)).await
}

/// Keep a row the database refused: whole (base64 of its JSON, which any column stores), with
/// its chain position and the database's words, and advance its chain's head past it so
/// `audit verify` expects it. Logged without the row's content.
async fn set_aside(db: &Db, row: &AuditRecord, error: &str, evidence: &Evidence) -> Result<(), DbError> {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let json = serde_json::to_vec(row).map_err(DbError::from_display)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    let error = gateway_actors::storable::storable(error, gateway_actors::storable::MAX_MESSAGE).into_owned();
    let now = chrono::Utc::now().naive_utc();
    tracing::error!(row = %row.id, chain = %row.chain_id, seq = row.seq, %error, "audit row refused by the database; set aside");
    let values = (
        audit_set_aside::id.eq(row.id.clone()),
        audit_set_aside::chain_id.eq(row.chain_id.clone()),
        audit_set_aside::seq.eq(row.seq),
        audit_set_aside::row_hash.eq(row.row_hash.clone()),
        audit_set_aside::row_b64.eq(b64),
        audit_set_aside::error.eq(error),
        audit_set_aside::created_at.eq(now),
        audit_set_aside::mac.eq(evidence
            .key()
            .map(|k| k.position_mac(super::evidence::Position::SetAside, &row.chain_id, row.seq, &row.row_hash))),
    );
    let head = |p: [&str; 5]| {
        format!(
            "INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at, mac) VALUES ({}, {}, {}, {}, {}) \
             ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq, row_hash = excluded.row_hash, \
             updated_at = excluded.updated_at, mac = excluded.mac WHERE excluded.seq > audit_chain_heads.seq",
            p[0], p[1], p[2], p[3], p[4]
        )
    };
    let head = match db {
        Db::Pg(_) => head(["$1", "$2", "$3", "$4", "$5"]),
        Db::Sqlite(_) => head(["?", "?", "?", "?", "?"]),
    };
    evidence.register(db, &row.chain_id).await?;
    let mac = evidence.head_mac(&row.chain_id, row.seq, &row.row_hash);
    crate::with_conn!(db, |conn| {
        conn.transaction::<(), diesel::result::Error, _>(async |conn| {
            // A copy that reached the table meanwhile (a late write, a spool replay) is the
            // row stored: keeping it aside too would show its place in the chain twice.
            let stored: i64 = crate::db::schema::audit_logs::table
                .filter(crate::db::schema::audit_logs::id.eq(row.id.clone()))
                .count()
                .get_result(conn)
                .await?;
            if stored > 0 {
                return Ok(());
            }
            diesel::insert_into(audit_set_aside::table)
                .values(values.clone())
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if !row.chain_id.is_empty() {
                diesel::sql_query(head.as_str())
                    .bind::<diesel::sql_types::Text, _>(&row.chain_id)
                    .bind::<diesel::sql_types::BigInt, _>(row.seq)
                    .bind::<diesel::sql_types::Text, _>(&row.row_hash)
                    .bind::<diesel::sql_types::Timestamp, _>(now)
                    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(&mac)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(DbError::from_display)
    })
}

/// The rows set aside, as `audit verify` reads them.
#[derive(Debug, Default)]
pub struct SetAside {
    /// Decoded rows by (chain, seq), with their MAC (when written with the key).
    pub rows: std::collections::HashMap<(String, i64), (AuditRecord, Option<String>)>,
    /// Ids of set-aside rows that do not decode to an audit row.
    pub undecodable: Vec<String>,
    /// The (chain, seq) places verify walked through: a row never walked sits in no chain.
    pub walked: std::cell::RefCell<std::collections::HashSet<(String, i64)>>,
}

impl SetAside {
    /// The rows with their MACs.
    pub fn macs(&self) -> &std::collections::HashMap<(String, i64), (AuditRecord, Option<String>)> {
        &self.rows
    }

    /// The row at `chain`'s `seq`, marked as walked.
    pub fn take(&self, chain: &str, seq: i64) -> Option<&AuditRecord> {
        let key = (chain.to_owned(), seq);
        let row = self.rows.get(&key).map(|(r, _)| r)?;
        self.walked.borrow_mut().insert(key);
        Some(row)
    }
}

/// The rows set aside, decoded, by chain and sequence number (for `audit verify`).
pub async fn set_aside_rows(db: &Db) -> Result<SetAside, DbError> {
    use diesel_async::RunQueryDsl;
    type Stored = (String, String, i64, String, Option<String>);
    let stored: Vec<Stored> = crate::with_conn!(db, |conn| {
        audit_set_aside::table
            .select((
                audit_set_aside::id,
                audit_set_aside::chain_id,
                audit_set_aside::seq,
                audit_set_aside::row_b64,
                audit_set_aside::mac,
            ))
            .load(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    let mut out = SetAside::default();
    for (id, chain, seq, b64, mac) in stored {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<AuditRecord>(&bytes).ok())
            .filter(|row| row.chain_id == chain && row.seq == seq);
        match decoded {
            Some(row) => {
                out.rows.insert((chain, seq), (row, mac));
            }
            None => out.undecodable.push(id),
        }
    }
    Ok(out)
}
