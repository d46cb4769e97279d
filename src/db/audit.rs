//! The audit table: the database side of `AuditWriterActor` and the queries behind
//! `GET /admin/audit-logs`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gateway_actors::AuditRecord;
use serde::Serialize;

use super::schema::{audit_chain_heads, audit_checkpoints, audit_logs};
use super::{Db, DbError};
use crate::with_conn;

use super::audit_evidence::Position;
pub use super::audit_evidence::{AuditKey, Evidence};
pub use super::audit_sink::{DbAuditSink, Spool};

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

/// Insert `rows` in one transaction, as multi-row INSERTs, moving each chain's head with them
/// (signed when `evidence` holds a key). A chain not yet in the ledger is registered first. A
/// row already stored (same id: a replayed batch) is skipped, so replays never duplicate.
pub async fn insert_batch(db: &Db, rows: &[AuditRecord], evidence: &Evidence) -> Result<(), DbError> {
    let rows: Vec<AuditRow> = rows.iter().map(AuditRow::from).collect();
    let heads = chain_heads(&rows, evidence);
    for head in &heads {
        evidence.register(db, &head.0).await?;
    }
    match db {
        // One statement per batch whatever its size: each column travels as one array
        // parameter and `unnest` turns them back into rows (21 binds, not 21 per row).
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            pg_unnest_insert(&rows, &heads).execute(&mut *conn).await.map(|_| ()).map_err(DbError::from_display)
        }
        // diesel's multi-row INSERT for SQLite lives in its synchronous API.
        Db::Sqlite(pool) => {
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
fn chain_heads(rows: &[AuditRow], evidence: &Evidence) -> Vec<Head> {
    let mut heads: std::collections::BTreeMap<&str, (i64, &str)> = std::collections::BTreeMap::new();
    for r in rows.iter().filter(|r| !r.chain_id.is_empty()) {
        let head = heads.entry(&r.chain_id).or_insert((r.seq, &r.row_hash));
        if r.seq > head.0 {
            *head = (r.seq, &r.row_hash);
        }
    }
    heads.into_iter().map(|(c, (s, h))| (c.to_owned(), s, h.to_owned(), evidence.head_mac(c, s, h))).collect()
}

fn pg_unnest_insert(
    rows: &[AuditRow],
    heads: &[Head],
) -> impl diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send + use<> {
    use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamp};
    let col = |f: &dyn Fn(&AuditRow) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let opt = |f: &dyn Fn(&AuditRow) -> Option<String>| rows.iter().map(f).collect::<Vec<Option<String>>>();
    // The rows and their chains' heads in one statement: a head never runs ahead of its rows.
    diesel::sql_query(
        "WITH stored AS (INSERT INTO audit_logs (id, created_at, request_id, user_id, roles, workspace, tool_name, \
         decision, status, http_status, error_code, duration_ms, client_ip, arguments_sha256, error_message, \
         transport, chain_id, seq, prev_hash, row_hash, arguments_logged) \
         SELECT * FROM unnest($1::text[], $2::timestamp[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::int4[], $11::int4[], $12::float8[], $13::text[], $14::text[], \
         $15::text[], $16::text[], $17::text[], $18::int8[], $19::text[], $20::text[], $21::text[]) \
         ON CONFLICT DO NOTHING) \
         INSERT INTO audit_chain_heads (chain_id, seq, row_hash, updated_at, mac) \
         SELECT c, s, h, now() AT TIME ZONE 'UTC', m FROM unnest($22::text[], $23::int8[], $24::text[], $25::text[]) \
         AS t(c, s, h, m) ON CONFLICT (chain_id) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash, \
         updated_at = EXCLUDED.updated_at, mac = EXCLUDED.mac WHERE audit_chain_heads.seq < EXCLUDED.seq",
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
    .bind::<Array<Nullable<Text>>, _>(heads.iter().map(|h| h.3.clone()).collect::<Vec<_>>())
}

/// What `audit verify` found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Chains walked.
    pub chains: usize,
    /// Rows walked (stored and set aside).
    pub rows: usize,
    /// Evidence of tampering, one line each.
    pub problems: Vec<String>,
    /// What the check could not prove (no key given, chains older than the ledger).
    pub notes: Vec<String>,
    /// The ledger's newest entry, `ordinal:link`: keep it outside the database and pass it back
    /// with `--expect-ledger` to prove the ledger was not cut short since.
    pub ledger_end: Option<String>,
}

/// What `audit verify` checks against.
#[derive(Debug, Clone, Copy)]
pub struct VerifyWith<'a> {
    /// `AUDIT_HMAC_KEY`: check every MAC, and require signatures.
    pub key: Option<&'a AuditKey>,
    /// A ledger end (`ORDINAL:LINK`) recorded earlier, outside the database.
    pub expect_ledger: Option<&'a str>,
    /// With the key: the ledger entry from which on everything was written with it (1 unless
    /// the key was introduced on a database that already had chains).
    pub signed_since: i64,
}

impl Default for VerifyWith<'_> {
    fn default() -> Self {
        Self { key: None, expect_ledger: None, signed_since: 1 }
    }
}

/// A stored row as the gateway wrote it, or why it cannot be: every field must parse exactly
/// as written (`roles` is the canonical JSON array of strings), or a rewrite that its hash
/// cannot see — `[]` rewritten to text that does not parse — would pass.
fn strict_record(row: &AuditRow) -> Result<AuditRecord, String> {
    let roles: Vec<String> =
        serde_json::from_str(&row.roles).map_err(|_| "roles is not a JSON array of strings".to_owned())?;
    if serde_json::to_string(&roles).ok().as_deref() != Some(row.roles.as_str()) {
        return Err("roles is not written as the gateway writes it".into());
    }
    let mut record = AuditRecord::from(row);
    record.roles = roles;
    Ok(record)
}

/// Walk every hash chain and the ledger: report rows whose content changed, rows missing (gaps
/// in `seq`), rows inserted or reordered (a `prev_hash` that does not match), chains deleted
/// whole (registered in the ledger, gone from the tables), chains the gateway never
/// registered, checkpoints the ledger does not record, and — with `key` — heads, checkpoints
/// and ledger entries whose MAC does not check. Chains whose oldest rows retention removed
/// resume at the checkpoint the ledger records. `expect_ledger` (`ordinal:link`, from an
/// earlier run kept elsewhere) proves the ledger still holds that entry.
pub async fn verify(db: &Db, with: &VerifyWith<'_>) -> Result<Verification, DbError> {
    let VerifyWith { key, expect_ledger, signed_since } = *with;
    let mut out = Verification::default();
    let problems = &mut out.problems;
    let ledger = super::audit_evidence::walk(db, key, signed_since, problems).await?;
    type CheckpointRow = (String, i64, String, Option<String>);
    let stored_checkpoints: Vec<CheckpointRow> = with_conn!(db, |conn| {
        audit_checkpoints::table
            .select((
                audit_checkpoints::chain_id,
                audit_checkpoints::seq,
                audit_checkpoints::row_hash,
                audit_checkpoints::mac,
            ))
            .load::<CheckpointRow>(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    // A chain resumes where the ledger says retention cut it, never where a bare checkpoint
    // row claims: a checkpoint the ledger does not record is reported and ignored.
    for (chain, seq, hash, mac) in &stored_checkpoints {
        if ledger.checkpoints.get(chain) != Some(&(*seq, hash.clone())) {
            problems
                .push(format!("chain {chain}: its checkpoint (seq {seq}) is not the one the ledger records (forged)"));
        } else if let Some(k) = key {
            if ledger.chains.get(chain).is_some_and(|c| c.1)
                && !k.checks_position(Position::Checkpoint, chain, *seq, hash, mac.as_deref())
            {
                problems
                    .push(format!("chain {chain}: its checkpoint's MAC does not check with AUDIT_HMAC_KEY (forged)"));
            }
        }
    }
    let checkpoints = &ledger.checkpoints;
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
    let heads: Vec<HeadRow> = with_conn!(db, |conn| {
        audit_chain_heads::table
            .select((
                audit_chain_heads::chain_id,
                audit_chain_heads::seq,
                audit_chain_heads::row_hash,
                audit_chain_heads::mac,
                audit_chain_heads::updated_at,
            ))
            .load::<HeadRow>(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    let mut unkeyed = 0usize;
    for (chain, seq, hash, mac, _) in &heads {
        match ledger.chains.get(chain) {
            None => problems
                .push(format!("chain {chain}: not registered in the audit ledger (inserted outside the gateway)")),
            Some((_, keyed)) => match key {
                Some(k) if *keyed && !k.checks_position(Position::Head, chain, *seq, hash, mac.as_deref()) => {
                    problems.push(format!(
                        "chain {chain}: its head (seq {seq}) does not check with AUDIT_HMAC_KEY (rewritten)"
                    ));
                }
                Some(_) if *keyed => {}
                Some(_) => unkeyed += 1,
                None => {}
            },
        }
    }
    let headed: std::collections::HashSet<&str> = heads.iter().map(|h| h.0.as_str()).collect();
    let mut registered: Vec<(&String, &(i64, bool))> = ledger.chains.iter().collect();
    registered.sort_by_key(|(_, (ordinal, _))| *ordinal);
    for (chain, (ordinal, _)) in registered {
        if !headed.contains(chain.as_str()) {
            problems.push(format!(
                "chain {chain} (audit ledger entry {ordinal}): its rows and head are gone (deleted whole)"
            ));
        }
    }
    let set_aside = super::audit_sink::set_aside_rows(db).await?;
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
            // A chain may end in rows that were set aside.
            for (chain, end) in ends.iter_mut() {
                out.rows += walk_set_aside(&set_aside, chain, end, problems);
            }
            problems.extend(check_heads(&heads, &ends, checkpoints));
            break;
        }
        for row in &page {
            if row.chain_id != chain {
                out.chains += 1;
                chain = row.chain_id.clone();
                (seq, prev) = checkpoints.get(&chain).cloned().unwrap_or_default();
                if !headed.contains(chain.as_str()) {
                    problems.push(format!("chain {chain}: has rows but no head (inserted outside the gateway)"));
                }
            }
            // Rows the database refused stand in their place, kept in `audit_set_aside`.
            let mut end = (seq, std::mem::take(&mut prev));
            out.rows += walk_set_aside(&set_aside, &chain, &mut end, problems);
            (seq, prev) = end;
            out.rows += 1;
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
            // An unsigned CLI chain is one CLI action's row, and nothing else.
            if key.is_some()
                && ledger.chains.get(&chain).is_some_and(|c| !c.1 && chain.starts_with("cli-"))
                && (row.seq != 1 || row.transport != "cli")
            {
                problems.push(format!(
                    "row {} (chain {chain}, seq {}): an unsigned CLI chain holds more than its one CLI row (forged)",
                    row.id, row.seq
                ));
            }
            match strict_record(row) {
                Err(why) => problems.push(format!("row {} (chain {chain}, seq {}): {why} (altered)", row.id, row.seq)),
                Ok(record) if record.compute_hash() != row.row_hash => {
                    problems.push(format!("row {} (chain {chain}, seq {}): content altered", row.id, row.seq))
                }
                Ok(_) => {}
            }
            seq = row.seq;
            prev = row.row_hash.clone();
            ends.insert(chain.clone(), (seq, prev.clone()));
        }
    }
    out.ledger_end = ledger.end.clone();
    if let Some(expected) = expect_ledger {
        check_ledger_end(&ledger, expected, problems);
    }
    let set_aside_count = set_aside.rows.len() + set_aside.undecodable.len();
    for (chain, seq) in set_aside.rows.keys().filter(|k| !set_aside.walked.borrow().contains(*k)) {
        problems.push(format!("set-aside row (chain {chain}, seq {seq}): has no place in its chain (inserted)"));
    }
    for id in &set_aside.undecodable {
        problems.push(format!("set-aside row {id}: does not decode to an audit row (altered)"));
    }
    if let Some(k) = key {
        for ((chain, seq), (row, mac)) in set_aside.macs() {
            if ledger.chains.get(chain).is_some_and(|c| c.1)
                && !k.checks_position(Position::SetAside, chain, *seq, &row.row_hash, mac.as_deref())
            {
                problems.push(format!(
                    "set-aside row {} (chain {chain}, seq {seq}): its MAC does not check (moved there by hand)",
                    row.id
                ));
            }
        }
    }
    if set_aside_count > 0 {
        out.notes.push(format!(
            "{set_aside_count} row(s) are set aside (refused by the database), kept in audit_set_aside, not in audit_logs"
        ));
    }
    match key {
        None if ledger.unchecked_macs > 0 || heads.iter().any(|h| h.3.is_some()) => out.notes.push(
            "signed evidence present but not checked: set AUDIT_HMAC_KEY to prove nobody recomputed the hashes".into(),
        ),
        None => out.notes.push(
            "no AUDIT_HMAC_KEY: this proves the trail is consistent, not that someone with write access did not \
             rewrite it and recompute every hash"
                .into(),
        ),
        Some(_) if unkeyed > 0 => out.notes.push(format!(
            "{unkeyed} chain(s) were written without AUDIT_HMAC_KEY (CLI actions of someone without it, or from \
             before --signed-since): linked, not signed"
        )),
        Some(_) => {}
    }
    Ok(out)
}

/// Compare the ledger with an entry recorded earlier (`ordinal:link`): it must still be there,
/// unchanged; a ledger now shorter than it was cut at the end.
fn check_ledger_end(ledger: &super::audit_evidence::Ledger, expected: &str, problems: &mut Vec<String>) {
    let Some((ordinal, link)) = expected.split_once(':').and_then(|(o, l)| Some((o.parse::<i64>().ok()?, l))) else {
        problems.push(format!("--expect-ledger {expected:?}: expected ORDINAL:LINK as printed by an earlier verify"));
        return;
    };
    match ledger.links.get(&ordinal) {
        Some(found) if found == link => {}
        Some(_) => problems.push(format!("audit ledger entry {ordinal}: not the one recorded earlier (rewritten)")),
        None => problems
            .push(format!("audit ledger: entry {ordinal}, recorded earlier, is gone (the ledger was cut short)")),
    }
}

/// Walk `end` (a chain's last seq and hash) forward through the chain's set-aside rows that
/// follow it, checking each links to the one before and hashes to what it claims. Returns how
/// many it walked.
fn walk_set_aside(
    set_aside: &super::audit_sink::SetAside,
    chain: &str,
    end: &mut (i64, String),
    problems: &mut Vec<String>,
) -> usize {
    let mut walked = 0;
    while let Some(row) = set_aside.take(chain, end.0 + 1) {
        if row.prev_hash != end.1 || row.compute_hash() != row.row_hash {
            problems
                .push(format!("set-aside row {} (chain {chain}, seq {}): altered or out of place", row.id, row.seq));
        }
        *end = (row.seq, row.row_hash.clone());
        walked += 1;
    }
    walked
}

/// Compare each chain's walked end with its recorded head (written with the rows, in the same
/// statement): an end short of the head means the newest rows were deleted; a different hash at
/// the head, that the newest row was replaced; rows past the head, that rows were appended by
/// something other than the gateway. Chains from before heads were recorded have none.
/// A stored chain head: chain, seq, row hash, MAC, when it was written.
type HeadRow = (String, i64, String, Option<String>, NaiveDateTime);

fn check_heads(
    heads: &[HeadRow],
    ends: &std::collections::HashMap<String, (i64, String)>,
    checkpoints: &std::collections::HashMap<String, (i64, String)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (chain, head_seq, head_hash, ..) in heads {
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
                        super::audit_evidence::Kind::Checkpoint,
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
        id: uuid::Uuid::now_v7().to_string(),
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
        chain_id: format!("cli-{}", uuid::Uuid::new_v4().simple()),
        seq: 1,
        prev_hash: String::new(),
        row_hash: String::new(),
    };
    row.make_storable();
    row.row_hash = row.compute_hash();
    insert_batch(db, std::slice::from_ref(&row), evidence).await
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

diesel::define_sql_function! {
    /// SQL `lower()` (ASCII letters alike on PostgreSQL and SQLite).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
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
            // Case-insensitive on both databases alike (`LIKE` is not on PostgreSQL): both
            // sides lower-cased.
            let quoted = serde_json::to_string(&v.to_ascii_lowercase()).unwrap_or_default();
            let literal = quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            q = q.filter(lower(audit_logs::roles).like(format!("%{literal}%")).escape('\\'));
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
        let rows = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let spool = Spool::open(path.clone(), rows.clone());
        assert_eq!(spool.held(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    }
}
