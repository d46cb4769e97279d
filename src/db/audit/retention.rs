//! Retention: old rows deleted chain prefix by chain prefix, each cut recorded as a checkpoint
//! in the ledger so what remains still verifies.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::schema::{audit_checkpoints, audit_logs};
use crate::db::{Db, DbError};
use crate::with_conn;

use super::evidence::{AuditKey, Position};

/// Retention: delete rows older than `cutoff`, chain prefix by chain prefix, recording for
/// each chain where what remains resumes (`audit_checkpoints`) so `verify` still proves the
/// rest intact. The checkpoint is recorded in the audit ledger in the same transaction (and
/// signed when `key` is set): `verify` believes no other. A chain's rows after its first recent
/// row are kept even if older (chains are cut only at a prefix). Returns how many rows were
/// deleted.
pub async fn prune(db: &Db, cutoff: NaiveDateTime, key: Option<&AuditKey>) -> Result<u64, DbError> {
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
        // Another writer may take the ledger's next ordinal first: try again from its new end.
        let mut attempt = 0u64;
        deleted += loop {
            attempt += 1;
            match prune_chain(db, &chain, cutoff, key).await {
                Ok(n) => break n,
                Err(e) if attempt >= 8 => return Err(e),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await,
            }
        };
    }
    Ok(deleted)
}

/// Cut one chain's prefix older than `cutoff` (see [`prune`]).
async fn prune_chain(db: &Db, chain: &str, cutoff: NaiveDateTime, key: Option<&AuditKey>) -> Result<u64, DbError> {
    let chain = chain.to_owned();
    {
        with_conn!(db, |conn| {
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
                    let mac = key.map(|k| k.position_mac(Position::Checkpoint, &chain, seq, &hash));
                    diesel::insert_into(audit_checkpoints::table)
                        .values((
                            audit_checkpoints::chain_id.eq(&chain),
                            audit_checkpoints::seq.eq(seq),
                            audit_checkpoints::row_hash.eq(&hash),
                            audit_checkpoints::created_at.eq(now),
                            audit_checkpoints::mac.eq(&mac),
                        ))
                        .on_conflict(audit_checkpoints::chain_id)
                        .do_update()
                        .set((
                            audit_checkpoints::seq.eq(seq),
                            audit_checkpoints::row_hash.eq(&hash),
                            audit_checkpoints::created_at.eq(now),
                            audit_checkpoints::mac.eq(&mac),
                        ))
                        .execute(conn)
                        .await?;
                    crate::append_ledger_entry!(
                        conn,
                        key,
                        super::evidence::Kind::Checkpoint,
                        chain.as_str(),
                        seq,
                        hash.as_str()
                    )?;
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
        })
    }
}
