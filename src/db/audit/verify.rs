//! `audit verify`: every chain walked from its checkpoint, every row's hash and link checked,
//! every head and ledger entry matched, signed entries checked with the key.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gateway_actors::AuditRecord;

use crate::db::schema::{audit_chain_heads, audit_checkpoints, audit_logs};
use crate::db::{Db, DbError};
use crate::with_conn;

use super::evidence::{AuditKey, Position};
use super::row::AuditRow;

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

/// How a stored row shows it was rewritten outside the gateway.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum Rewritten {
    /// `roles` does not parse.
    #[error("roles is not a JSON array of strings")]
    RolesNotJson,
    /// `roles` parses but is not written the way the gateway writes it.
    #[error("roles is not written as the gateway writes it")]
    RolesNotCanonical,
}

/// A stored row as the gateway wrote it, or why it cannot be: every field must parse exactly
/// as written (`roles` is the canonical JSON array of strings), or a rewrite that its hash
/// cannot see — `[]` rewritten to text that does not parse — would pass.
fn strict_record(row: &AuditRow) -> Result<AuditRecord, Rewritten> {
    let roles: Vec<String> = serde_json::from_str(&row.roles).map_err(|_| Rewritten::RolesNotJson)?;
    if serde_json::to_string(&roles).ok().as_deref() != Some(row.roles.as_str()) {
        return Err(Rewritten::RolesNotCanonical);
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
///
/// A live trail is written while it is read, and reads taken one after another can meet a
/// batch half-way (its rows visible to one read, not yet to the one before). So a walk that
/// finds problems walks again (up to three more times, 300 ms apart), and only problems found
/// by every walk are reported: tampering stays put; a write in flight does not.
pub async fn verify(db: &Db, with: &VerifyWith<'_>) -> Result<Verification, DbError> {
    let mut found = verify_once(db, with).await?;
    let mut passing = 0usize;
    for _ in 0..3 {
        if found.problems.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let again = verify_once(db, with).await?;
        let stable: Vec<String> = again.problems.iter().filter(|p| found.problems.contains(p)).cloned().collect();
        passing += found.problems.len() - stable.len();
        found = Verification { problems: stable, ..again };
    }
    if passing > 0 {
        found.notes.push(format!(
            "{passing} problem(s) seen while rows were being written did not persist on a second walk (writes in flight), and are not reported"
        ));
    }
    Ok(found)
}

/// One walk of [`verify`].
async fn verify_once(db: &Db, with: &VerifyWith<'_>) -> Result<Verification, DbError> {
    let VerifyWith { key, expect_ledger, signed_since } = *with;
    let mut out = Verification::default();
    let problems = &mut out.problems;
    let ledger = super::evidence::walk(db, key, signed_since, problems).await?;
    check_checkpoints(db, &ledger, key, problems).await?;
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
    let set_aside = super::sink::set_aside_rows(db).await?;
    let walk = Walk { ledger: &ledger, set_aside: &set_aside, key };
    // The trail may be written while it is walked (a live gateway): rows first, heads after.
    // A batch's rows and its chain's head are committed together, and its chain is registered
    // before either, so every row walked has its head by the time heads are read, and every
    // head has its ledger entry. Rows committed after their chain was walked are walked on.
    let mut ends = Ends::new();
    let (chains, rows) = walk_rows(db, &walk, None, &mut ends, problems).await?;
    let heads = load_heads(db).await?;
    let mut rows = rows;
    for (chain, head_seq, ..) in &heads {
        if ends.get(chain).is_none_or(|(end, _)| end < head_seq) {
            rows += walk_rows(db, &walk, Some(chain), &mut ends, problems).await?.1;
        }
    }
    let headed: std::collections::HashSet<&str> = heads.iter().map(|h| h.0.as_str()).collect();
    let mut headless: Vec<&String> = ends.keys().filter(|c| !headed.contains(c.as_str())).collect();
    headless.sort();
    for chain in headless {
        problems.push(format!("chain {chain}: has rows but no head (inserted outside the gateway)"));
    }
    for (chain, end) in ends.iter_mut() {
        rows += walk_set_aside(&set_aside, chain, end, problems);
    }
    problems.extend(check_heads(&heads, &ends, &ledger.checkpoints));
    // Chains registered since the ledger was read (their first rows came while walking): their
    // entries, from the ledger as it is now.
    let mut ledger = ledger;
    if heads.iter().any(|h| !ledger.chains.contains_key(&h.0)) {
        let later = super::evidence::walk(db, key, signed_since, &mut Vec::new()).await?;
        for (chain, ..) in &heads {
            if let Some(entry) = later.chains.get(chain) {
                ledger.chains.entry(chain.clone()).or_insert(*entry);
            }
        }
    }
    let unkeyed = check_head_keys(&ledger, &heads, key, problems);
    (out.chains, out.rows) = (chains.max(ends.len()), rows);
    out.ledger_end = ledger.end.clone();
    if let Some(expected) = expect_ledger {
        check_ledger_end(&ledger, expected, problems);
    }
    check_set_aside(&set_aside, &ledger, key, &mut out);
    out.notes.extend(key_notes(&ledger, &heads, key, unkeyed));
    Ok(out)
}

/// A chain resumes where the ledger says retention cut it, never where a bare checkpoint row
/// claims: a checkpoint the ledger does not record is reported and ignored.
async fn check_checkpoints(
    db: &Db,
    ledger: &super::evidence::Ledger,
    key: Option<&AuditKey>,
    problems: &mut Vec<String>,
) -> Result<(), DbError> {
    type CheckpointRow = (String, i64, String, Option<String>);
    let stored: Vec<CheckpointRow> = with_conn!(db, |conn| {
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
    for (chain, seq, hash, mac) in &stored {
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
    Ok(())
}

async fn load_heads(db: &Db) -> Result<Vec<HeadRow>, DbError> {
    with_conn!(db, |conn| {
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
    })
}

/// Every head is registered in the ledger and, when signed, checks with the key; every
/// registered chain still has its head. Returns how many chains were written without the key.
fn check_head_keys(
    ledger: &super::evidence::Ledger,
    heads: &[HeadRow],
    key: Option<&AuditKey>,
    problems: &mut Vec<String>,
) -> usize {
    let mut unkeyed = 0usize;
    for (chain, seq, hash, mac, _) in heads {
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
    unkeyed
}

/// What the row walk checks against.
struct Walk<'a> {
    ledger: &'a super::evidence::Ledger,
    set_aside: &'a super::sink::SetAside,
    key: Option<&'a AuditKey>,
}

/// Where each chain's rows end, as walked: `(seq, row hash)`.
type Ends = std::collections::HashMap<String, (i64, String)>;

/// Walk every chain's rows in order (10,000 at a time), from its checkpoint — or, with `only`,
/// that chain's rows after where `ends` says it was left — checking each row follows the one
/// before and hashes to what it says. Records where each chain ends; returns the chains and
/// rows walked.
async fn walk_rows(
    db: &Db,
    walk: &Walk<'_>,
    only: Option<&str>,
    ends: &mut Ends,
    problems: &mut Vec<String>,
) -> Result<(usize, usize), DbError> {
    let (mut chains, mut rows) = (0usize, 0usize);
    let checkpoints = &walk.ledger.checkpoints;
    let (mut chain, mut seq, mut prev) = match only {
        Some(c) => {
            let (s, p) = ends.get(c).or_else(|| checkpoints.get(c)).cloned().unwrap_or_default();
            (c.to_owned(), s, p)
        }
        None => (String::new(), 0i64, String::new()),
    };
    loop {
        let (c, s) = (chain.clone(), seq);
        let page: Vec<AuditRow> = with_conn!(db, |conn| {
            let rows = audit_logs::table.filter(audit_logs::chain_id.ne("")).into_boxed();
            let rows = match only {
                Some(_) => rows.filter(audit_logs::chain_id.eq(&c).and(audit_logs::seq.gt(s))),
                None => {
                    rows.filter(audit_logs::chain_id.gt(&c).or(audit_logs::chain_id.eq(&c).and(audit_logs::seq.gt(s))))
                }
            };
            // Ties (a forged row repeating a sequence number) in a fixed order: every walk
            // reports them alike.
            rows.order((audit_logs::chain_id, audit_logs::seq, audit_logs::id))
                .limit(10_000)
                .select(AuditRow::as_select())
                .load::<AuditRow>(conn)
                .await
                .map_err(DbError::from_display)
        })?;
        if page.is_empty() {
            return Ok((chains, rows));
        }
        for row in &page {
            if row.chain_id != chain {
                chains += 1;
                chain = row.chain_id.clone();
                (seq, prev) = checkpoints.get(&chain).cloned().unwrap_or_default();
            }
            // Rows the database refused stand in their place, kept in `audit_set_aside`.
            let mut end = (seq, std::mem::take(&mut prev));
            rows += walk_set_aside(walk.set_aside, &chain, &mut end, problems) + 1;
            (seq, prev) = end;
            check_row(row, &chain, seq, &prev, walk, problems);
            seq = row.seq;
            prev = row.row_hash.clone();
            ends.insert(chain.clone(), (seq, prev.clone()));
        }
    }
}

/// One row after `(seq, prev)` in `chain`: in sequence, linked, unaltered.
fn check_row(row: &AuditRow, chain: &str, seq: i64, prev: &str, walk: &Walk<'_>, problems: &mut Vec<String>) {
    if row.seq <= seq {
        problems.push(format!("row {} (chain {chain}, seq {}): repeats a sequence number (inserted)", row.id, row.seq));
    } else if row.seq != seq + 1 {
        problems.push(format!("chain {chain}: {} row(s) missing before seq {} (deleted)", row.seq - seq - 1, row.seq));
    } else if row.prev_hash != prev {
        problems.push(format!(
            "row {} (chain {chain}, seq {}): does not follow the previous row (inserted or reordered)",
            row.id, row.seq
        ));
    }
    // An unsigned CLI chain is one CLI action's row, and nothing else.
    if walk.key.is_some()
        && walk.ledger.chains.get(chain).is_some_and(|c| !c.1 && chain.starts_with("cli-"))
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
}

/// Set-aside rows sit in a chain, decode, and (when signed) check with the key.
fn check_set_aside(
    set_aside: &super::sink::SetAside,
    ledger: &super::evidence::Ledger,
    key: Option<&AuditKey>,
    out: &mut Verification,
) {
    let problems = &mut out.problems;
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
}

/// What the verification proves given the key it had.
fn key_notes(
    ledger: &super::evidence::Ledger,
    heads: &[HeadRow],
    key: Option<&AuditKey>,
    unkeyed: usize,
) -> Option<String> {
    match key {
        None if ledger.unchecked_macs > 0 || heads.iter().any(|h| h.3.is_some()) => Some(
            "signed evidence present but not checked: set AUDIT_HMAC_KEY to prove nobody recomputed the hashes".into(),
        ),
        None => Some(
            "no AUDIT_HMAC_KEY: this proves the trail is consistent, not that someone with write access did not \
             rewrite it and recompute every hash"
                .into(),
        ),
        Some(_) if unkeyed > 0 => Some(format!(
            "{unkeyed} chain(s) were written without AUDIT_HMAC_KEY (CLI actions of someone without it, or from \
             before --signed-since): linked, not signed"
        )),
        Some(_) => None,
    }
}

/// Compare the ledger with an entry recorded earlier (`ordinal:link`): it must still be there,
/// unchanged; a ledger now shorter than it was cut at the end.
fn check_ledger_end(ledger: &super::evidence::Ledger, expected: &str, problems: &mut Vec<String>) {
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
    set_aside: &super::sink::SetAside,
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
