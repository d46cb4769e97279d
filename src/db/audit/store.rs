//! Storing rows: batched inserts that extend each chain and its head in one transaction, and the
//! CLI's own rows (an operator's action outside a running gateway).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gateway_actors::AuditRecord;

use crate::db::schema::audit_logs;
use crate::db::{Db, DbError};

use super::evidence::Evidence;
use super::row::AuditRow;

/// Rows per INSERT statement: keeps bind parameters under both backends' limits.
const ROWS_PER_STATEMENT: usize = 1000;

/// Insert `rows` in one transaction, as multi-row INSERTs, moving each chain's head with them
/// (signed when `evidence` holds a key). A chain not yet in the ledger is registered first. A
/// row already stored (same id: a replayed batch) is skipped, so replays never duplicate.
pub async fn insert_batch(db: &Db, rows: &[AuditRecord], evidence: &Evidence) -> Result<(), DbError> {
    let heads = chain_heads(rows, evidence);
    for head in &heads {
        evidence.register(db, &head.0).await?;
    }
    match db {
        // One statement per batch whatever its size: each column travels as one array
        // parameter and `unnest` turns them back into rows (21 binds, not 21 per row).
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            pg_unnest_insert(rows, &heads).execute(&mut *conn).await.map(|_| ()).map_err(DbError::from_display)
        }
        // diesel's multi-row INSERT for SQLite lives in its synchronous API.
        Db::Sqlite(pool) => {
            let rows: Vec<AuditRow> = rows.iter().map(AuditRow::from).collect();
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            conn.spawn_blocking(move |conn| {
                conn.transaction(|conn| {
                    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                        diesel::RunQueryDsl::execute(
                            diesel::insert_into(audit_logs::table).values(chunk).on_conflict_do_nothing(),
                            conn,
                        )?;
                    }
                    for (chain, seq, hash, mac) in &heads {
                        diesel::RunQueryDsl::execute(
                            diesel::sql_query(
                                "INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at, mac) \
                                 VALUES (?, ?, ?, CURRENT_TIMESTAMP, ?) ON CONFLICT (chain_id) DO UPDATE SET \
                                 seq = excluded.seq, row_hash = excluded.row_hash, updated_at = excluded.updated_at, \
                                 mac = excluded.mac WHERE excluded.seq > audit_chain_heads.seq",
                            )
                            .bind::<diesel::sql_types::Text, _>(chain)
                            .bind::<diesel::sql_types::BigInt, _>(seq)
                            .bind::<diesel::sql_types::Text, _>(hash)
                            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(mac),
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

/// A chain's newest row as its head records it: (chain, seq, row hash, MAC when keyed).
type Head = (String, i64, String, Option<String>);

/// Each chain's newest row in `rows`, signed when `evidence` holds a key.
fn chain_heads(rows: &[AuditRecord], evidence: &Evidence) -> Vec<Head> {
    let mut heads: std::collections::BTreeMap<&str, (i64, &str)> = std::collections::BTreeMap::new();
    for r in rows.iter().filter(|r| !r.chain_id.is_empty()) {
        let head = heads.entry(&r.chain_id).or_insert((r.seq, &r.row_hash));
        if r.seq > head.0 {
            *head = (r.seq, &r.row_hash);
        }
    }
    heads.into_iter().map(|(c, (s, h))| (c.to_owned(), s, h.to_owned(), evidence.head_mac(c, s, h))).collect()
}

/// The batch as one statement, its columns copied straight from the records (each text field
/// once: the writer's thread does this for every row).
fn pg_unnest_insert(
    rows: &[AuditRecord],
    heads: &[Head],
) -> impl diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send + use<> {
    use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamp};
    let col = |f: &dyn Fn(&AuditRecord) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let opt = |f: &dyn Fn(&AuditRecord) -> Option<String>| rows.iter().map(f).collect::<Vec<Option<String>>>();
    // The rows and their chains' heads in one statement: a head never runs ahead of its rows.
    // The heads are written last (`done` counts every row stored first): a head's row lock is
    // held from then until commit, so concurrent writes of one chain insert their rows side by
    // side and queue only for the head. Written first (PostgreSQL runs a WITH-insert nobody reads
    // at the end), the lock serialised every write, rows included.
    diesel::sql_query(
        "WITH stored AS (INSERT INTO audit_logs (id, created_at, request_id, user_id, roles, workspace, tool_name, \
         decision, status, http_status, error_code, duration_ms, client_ip, arguments_sha256, error_message, \
         transport, chain_id, seq, prev_hash, row_hash, arguments_logged, kind) \
         SELECT * FROM unnest($1::text[], $2::timestamp[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::int4[], $11::int4[], $12::float8[], $13::text[], $14::text[], \
         $15::text[], $16::text[], $17::text[], $18::int8[], $19::text[], $20::text[], $21::text[], $26::text[]) \
         ON CONFLICT DO NOTHING RETURNING 1) \
         INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at, mac) \
         SELECT c, s, h, now() AT TIME ZONE 'UTC', m FROM unnest($22::text[], $23::int8[], $24::text[], $25::text[]) \
         AS t(c, s, h, m) CROSS JOIN (SELECT count(*) FROM stored) AS done \
         ON CONFLICT (chain_id) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash, \
         updated_at = EXCLUDED.updated_at, mac = EXCLUDED.mac WHERE audit_chain_heads.seq < EXCLUDED.seq",
    )
    .bind::<Array<Text>, _>(col(&|r| r.id.clone()))
    .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.created_at.naive_utc()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(col(&|r| r.request_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(opt(&|r| r.user_id.clone()))
    .bind::<Array<Text>, _>(col(&|r| super::row::roles_json(&r.roles)))
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
    .bind::<Array<Nullable<Text>>, _>(heads.iter().map(|h| h.3.clone()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(col(&|r| r.kind.clone()))
}

/// Record an operator's action taken outside a running gateway (the CLI's pin approvals,
/// exports, verify runs) as an audit row of its own one-row chain, so the trail shows who looked
/// at or changed it. `outcome` is `ok` or the failure's short text.
pub async fn record_admin(
    db: &Db,
    action: &str,
    outcome: Result<(), &str>,
    evidence: &Evidence,
) -> Result<(), DbError> {
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let now = chrono::Utc::now();
    let mut row = AuditRecord {
        id: crate::audit::row_id(),
        created_at: chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now),
        request_id: uuid::Uuid::new_v4().to_string(),
        user_id: Some(format!("cli:{operator}")),
        roles: vec!["operator".into()],
        workspace: None,
        tool_name: Some(action.to_owned()),
        decision: "allowed".into(),
        status: if outcome.is_ok() { "ok".into() } else { "failed".into() },
        http_status: 0,
        error_code: None,
        duration_ms: 0.0,
        client_ip: None,
        arguments_sha256: None,
        error_message: outcome.err().map(str::to_owned),
        arguments_logged: None,
        transport: "cli".into(),
        kind: gateway_actors::model::TOOL_CALL_KIND.into(),
        chain_id: format!("cli-{}", uuid::Uuid::new_v4().simple()),
        seq: 1,
        prev_hash: String::new(),
        row_hash: String::new(),
    };
    row.make_storable();
    row.row_hash = row.compute_hash();
    insert_batch(db, std::slice::from_ref(&row), evidence).await
}
