//! Evidence that the audit trail is whole, beyond each chain's own hashes.
//!
//! A chain's hashes prove its rows are unchanged and in order, but not that a whole chain was
//! not removed, nor that a retention checkpoint is genuine. Two things close that:
//!
//! - **The ledger** (`audit_ledger`): an append-only hash chain of its own, in which every audit
//!   chain is registered before its first row is stored and every retention checkpoint is
//!   recorded. A chain deleted with its head leaves its entry behind; an entry deleted breaks the
//!   ledger's links; a checkpoint the ledger does not hold is not believed.
//! - **The key** (`AUDIT_HMAC_KEY`, [`AuditKey`]): when set, ledger entries, chain heads and
//!   checkpoints carry an HMAC-SHA256 that someone who holds only the database cannot compute,
//!   so rewriting history and recomputing every hash no longer goes unnoticed.

use std::collections::HashSet;
use std::sync::Mutex;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sha2::{Digest, Sha256};

use crate::db::schema::audit_ledger;
use crate::db::{Db, DbError};

/// The key that authenticates the audit trail's heads, checkpoints and ledger. It lives in the
/// gateway's environment (or a secret store), never in the database, so someone who can only
/// write the database cannot forge what it signs. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// Why a configured audit key was refused (the key itself is never in the message).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not hexadecimal. The decoder's error is not kept: it quotes a character of the key.
    #[error("AUDIT_HMAC_KEY must be hex (e.g. `openssl rand -hex 32`)")]
    NotHex,
    /// Fewer than 32 bytes.
    #[error("AUDIT_HMAC_KEY holds {0} bytes; at least 32 are needed")]
    TooShort(usize),
}

impl AuditKey {
    /// The key from its configured text: at least 32 bytes written as hex (64 hex digits or
    /// more). A short or malformed key is refused rather than silently weakening the evidence.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::NotHex)?;
        if bytes.len() < 32 {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// HMAC-SHA256 (RFC 2104) of `parts` joined by newlines, as hex.
    pub fn mac(&self, parts: &[&str]) -> String {
        hex::encode(hmac_sha256(&self.0, parts.join("\n").as_bytes()))
    }

    /// Whether `mac` is this key's MAC of `parts` (compared in constant time).
    pub fn checks(&self, parts: &[&str], mac: Option<&str>) -> bool {
        let Some(mac) = mac else { return false };
        let want = self.mac(parts);
        want.len() == mac.len() && want.bytes().zip(mac.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// HMAC-SHA256 (RFC 2104) over SHA-256 from `sha2`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// A signed place in a chain: its head, a retention checkpoint, or a row set aside. The MAC
/// covers the kind, the chain, the seq and the row hash ([`AuditKey::position_mac`]).
#[derive(Debug, Clone, Copy)]
pub enum Position {
    /// The chain's newest stored row.
    Head,
    /// Where retention cut the chain.
    Checkpoint,
    /// A row the database refused, kept in `audit_set_aside`.
    SetAside,
}

impl AuditKey {
    /// The MAC of a chain position (one message format for writers and `verify`).
    pub fn position_mac(&self, kind: Position, chain: &str, seq: i64, hash: &str) -> String {
        self.mac(&position_parts(kind, chain, &seq.to_string(), hash))
    }

    /// Whether `mac` is this key's MAC of the position.
    pub fn checks_position(&self, kind: Position, chain: &str, seq: i64, hash: &str, mac: Option<&str>) -> bool {
        self.checks(&position_parts(kind, chain, &seq.to_string(), hash), mac)
    }
}

fn position_parts<'a>(kind: Position, chain: &'a str, seq: &'a str, hash: &'a str) -> [&'a str; 4] {
    let kind = match kind {
        Position::Head => "head",
        Position::Checkpoint => "checkpoint",
        Position::SetAside => "set-aside",
    };
    [kind, chain, seq, hash]
}

/// What the writers need to leave evidence: the key (if configured) and the chains already
/// registered in the ledger by this process (a cache of the database, so a batch costs no
/// extra round trip once its chain is registered).
#[derive(Debug, Default)]
pub struct Evidence {
    key: Option<AuditKey>,
    registered: Mutex<HashSet<String>>,
    /// Held while a chain is registered (see [`Evidence::register`]).
    serial: tokio::sync::Mutex<()>,
}

impl Evidence {
    /// Evidence signed with `key`, or only linked when there is none.
    pub fn new(key: Option<AuditKey>) -> Self {
        Self { key, registered: Mutex::default(), serial: tokio::sync::Mutex::default() }
    }

    /// The key, if one is configured.
    pub fn key(&self) -> Option<&AuditKey> {
        self.key.as_ref()
    }

    /// The MAC of a chain head, when keyed.
    pub fn head_mac(&self, chain: &str, seq: i64, hash: &str) -> Option<String> {
        self.key.as_ref().map(|k| k.position_mac(Position::Head, chain, seq, hash))
    }

    /// Make sure `chain` is in the ledger before any of its rows are stored.
    pub async fn register(&self, db: &Db, chain: &str) -> Result<(), DbError> {
        if chain.is_empty() || self.registered.lock().map(|r| r.contains(chain)).unwrap_or(false) {
            return Ok(());
        }
        // One registration at a time per gateway: two batches flushing together on an empty
        // ledger would both adopt the existing chains, registering them twice (the second time
        // after the first one's signed entry). Under the lock each sees what the other appended.
        let _serial = self.serial.lock().await;
        let exists: Option<i64> = crate::with_conn!(db, |conn| {
            audit_ledger::table
                .filter(audit_ledger::chain_id.eq(chain))
                .filter(audit_ledger::kind.eq("chain"))
                .select(audit_ledger::ordinal)
                .first(conn)
                .await
                .optional()
                .map_err(DbError::from_display)
        })?;
        if exists.is_none() {
            adopt_existing(db, self.key.as_ref()).await?;
            append(db, self.key.as_ref(), Kind::Chain, chain, 0, "").await?;
            tracing::info!(chain, signed = self.key.is_some(), "audit chain registered in the ledger");
        }
        if let Ok(mut r) = self.registered.lock() {
            r.insert(chain.to_owned());
        }
        Ok(())
    }
}

/// On the first write after an upgrade (an empty ledger, chains already stored), register every
/// chain already in the database, so that from then on a chain the ledger does not hold is one
/// the gateway never wrote. Does nothing once the ledger has an entry.
pub async fn adopt_existing(db: &Db, key: Option<&AuditKey>) -> Result<(), DbError> {
    use crate::db::schema::{audit_chain_heads, audit_logs};
    let (any, mut chains): (Option<i64>, Vec<String>) = crate::with_conn!(db, |conn| {
        let any = audit_ledger::table.select(audit_ledger::ordinal).first::<i64>(conn).await.optional();
        let any = any.map_err(DbError::from_display)?;
        if any.is_some() {
            Ok::<_, DbError>((any, Vec::new()))
        } else {
            let mut chains: Vec<String> = audit_chain_heads::table
                .select(audit_chain_heads::chain_id)
                .load(conn)
                .await
                .map_err(DbError::from_display)?;
            let rows: Vec<String> = audit_logs::table
                .filter(audit_logs::chain_id.ne(""))
                .select(audit_logs::chain_id)
                .distinct()
                .load(conn)
                .await
                .map_err(DbError::from_display)?;
            chains.extend(rows);
            Ok((any, chains))
        }
    })?;
    if any.is_some() || chains.is_empty() {
        return Ok(());
    }
    chains.sort();
    chains.dedup();
    tracing::warn!(chains = chains.len(), "registering the audit chains written before the ledger existed");
    // Unsigned, whatever the key now: nothing proves who wrote them (`--signed-since` skips them).
    let _ = key;
    for chain in &chains {
        append(db, None, Kind::Chain, chain, 0, "").await?;
    }
    Ok(())
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A chain was started (registered before its first row).
    Chain,
    /// Retention removed a chain's rows up to `seq` (whose hash was `row_hash`).
    Checkpoint,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chain => "chain",
            Kind::Checkpoint => "checkpoint",
        }
    }
}

/// An entry's link: SHA-256 over the previous entry's link and this entry's fields, including
/// whether it was signed (so a MAC stripped from an entry breaks the links after it).
pub fn link(prev: &str, ordinal: i64, kind: &str, chain: &str, seq: i64, hash: &str, signed: bool) -> String {
    let text = format!("{prev}\n{ordinal}\n{kind}\n{chain}\n{seq}\n{hash}\n{}", u8::from(signed));
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The MAC an entry carries: of its link.
fn entry_parts(link: &str) -> [&str; 2] {
    ["ledger", link]
}

/// Append one entry to the ledger (retried when another writer took the same ordinal).
pub async fn append(
    db: &Db,
    key: Option<&AuditKey>,
    kind: Kind,
    chain: &str,
    seq: i64,
    hash: &str,
) -> Result<(), DbError> {
    let mut last_error = None;
    for attempt in 0..16u64 {
        let result: Result<(), DbError> = crate::with_conn!(db, |conn| {
            crate::append_ledger_entry!(conn, key, kind, chain, seq, hash).map_err(DbError::from_display)
        });
        match result {
            Ok(()) => return Ok(()),
            Err(e) => last_error = Some(e),
        }
        // Another writer appended first (the ordinal is the primary key): read the new end.
        tokio::time::sleep(std::time::Duration::from_millis(2 + attempt * 3)).await;
    }
    Err(last_error.unwrap_or_else(|| DbError::new("audit ledger append failed")))
}

/// Append a ledger entry on `$conn` (inside the caller's transaction, if any): read the end,
/// link to it, insert at the next ordinal. Evaluates to `Result<(), diesel::result::Error>`.
#[macro_export]
#[doc(hidden)]
macro_rules! append_ledger_entry {
    ($conn:expr, $key:expr, $kind:expr, $chain:expr, $seq:expr, $hash:expr) => {{
        use $crate::db::schema::audit_ledger as l;
        async {
            let last: Option<(i64, String)> = l::table
                .order(l::ordinal.desc())
                .select((l::ordinal, l::link))
                .first::<(i64, String)>($conn)
                .await
                .optional()?;
            let (ordinal, prev) = last.map_or((1, String::new()), |(o, link)| (o + 1, link));
            let kind: $crate::db::audit::evidence::Kind = $kind;
            let key: Option<&$crate::db::audit::evidence::AuditKey> = $key;
            let link =
                $crate::db::audit::evidence::link(&prev, ordinal, kind.as_str(), $chain, $seq, $hash, key.is_some());
            let mac = key.map(|k| k.mac(&["ledger", &link]));
            diesel::insert_into(l::table)
                .values((
                    l::ordinal.eq(ordinal),
                    l::kind.eq(kind.as_str()),
                    l::chain_id.eq($chain),
                    l::seq.eq($seq),
                    l::row_hash.eq($hash),
                    l::prev_link.eq(&prev),
                    l::link.eq(&link),
                    l::mac.eq(mac),
                    l::created_at.eq(chrono::Utc::now().naive_utc()),
                ))
                .execute($conn)
                .await
                .map(|_| ())
        }
        .await
    }};
}

/// One ledger entry as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_ledger)]
pub struct LedgerEntry {
    /// Position (1, 2, 3, …).
    pub ordinal: i64,
    /// `chain` or `checkpoint`.
    pub kind: String,
    /// The audit chain it is about.
    pub chain_id: String,
    /// Checkpoint: the last removed seq.
    pub seq: i64,
    /// Checkpoint: that row's hash.
    pub row_hash: String,
    /// The previous entry's link.
    pub prev_link: String,
    /// This entry's link.
    pub link: String,
    /// HMAC of the link, when written with the key.
    pub mac: Option<String>,
    /// When it was written (not covered by the link).
    pub created_at: chrono::NaiveDateTime,
}

/// What the ledger says, once walked.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Registered chains: chain id → (ordinal, written with the key).
    pub chains: std::collections::HashMap<String, (i64, bool)>,
    /// Each chain's newest recorded checkpoint: (seq, row hash).
    pub checkpoints: std::collections::HashMap<String, (i64, String)>,
    /// Entries carrying a MAC that could not be checked (no key given).
    pub unchecked_macs: usize,
    /// CLI actions' chains registered without the key (checked with it).
    pub unsigned_cli: usize,
    /// Entries in all.
    pub entries: usize,
    /// Every entry's link by ordinal (to compare with an end recorded earlier).
    pub links: std::collections::HashMap<i64, String>,
    /// The newest entry as `ordinal:link`.
    pub end: Option<String>,
}

/// Read and walk the ledger: every entry must follow the one before (no gap, no changed
/// field, no entry inserted), and — with the key — every signed entry must check, and every
/// entry from `signed_since` on must be signed but a CLI action's own chain.
pub async fn walk(
    db: &Db,
    key: Option<&AuditKey>,
    signed_since: i64,
    problems: &mut Vec<String>,
) -> Result<Ledger, DbError> {
    let entries: Vec<LedgerEntry> = crate::with_conn!(db, |conn| {
        audit_ledger::table
            .order(audit_ledger::ordinal)
            .select(LedgerEntry::as_select())
            .load(conn)
            .await
            .map_err(DbError::from_display)
    })?;
    let mut ledger = Ledger { entries: entries.len(), ..Ledger::default() };
    let (mut expected, mut prev) = (1i64, String::new());
    for e in &entries {
        if e.ordinal != expected {
            problems.push(format!("audit ledger: entries {expected}..{} are missing (deleted)", e.ordinal - 1));
        } else if e.prev_link != prev {
            problems.push(format!(
                "audit ledger entry {}: does not follow the entry before it (inserted or rewritten)",
                e.ordinal
            ));
        }
        if link(&e.prev_link, e.ordinal, &e.kind, &e.chain_id, e.seq, &e.row_hash, e.mac.is_some()) != e.link {
            problems.push(format!("audit ledger entry {}: content altered", e.ordinal));
        }
        // With the key: a signed entry must check; from `signed_since` on, every checkpoint and
        // every gateway chain must be signed (only a process holding the key writes them). A
        // CLI action's one-row chain may be unsigned (an auditor without the key ran it); its
        // rows are checked to be just that.
        let signed = e.mac.is_some();
        match key {
            Some(k) if signed && !k.checks(&entry_parts(&e.link), e.mac.as_deref()) => problems.push(format!(
                "audit ledger entry {}: its MAC does not check with AUDIT_HMAC_KEY (forged or rewritten)",
                e.ordinal
            )),
            Some(_) if !signed && e.ordinal >= signed_since && !e.chain_id.starts_with("cli-") => {
                problems.push(format!(
                    "audit ledger entry {} ({} {}): not signed, though AUDIT_HMAC_KEY signs everything since entry \
                     {signed_since} (forged, or its MAC stripped)",
                    e.ordinal, e.kind, e.chain_id
                ))
            }
            Some(_) if !signed => ledger.unsigned_cli += 1,
            None if signed => ledger.unchecked_macs += 1,
            _ => {}
        }
        match e.kind.as_str() {
            "chain" => {
                ledger.chains.insert(e.chain_id.clone(), (e.ordinal, e.mac.is_some()));
            }
            "checkpoint" => {
                ledger.checkpoints.insert(e.chain_id.clone(), (e.seq, e.row_hash.clone()));
            }
            other => problems.push(format!("audit ledger entry {}: unknown kind {other:?}", e.ordinal)),
        }
        expected = e.ordinal + 1;
        prev = e.link.clone();
        ledger.links.insert(e.ordinal, e.link.clone());
    }
    ledger.end = entries.last().map(|e| format!("{}:{}", e.ordinal, e.link));
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2 (key "Jefe") and test case 6 (a 131-byte key, hashed first).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn keys_are_long_hex_and_never_shown() {
        assert!(AuditKey::parse("abcd").is_err());
        assert!(AuditKey::parse("not hex at all, but long enough to be 32 bytes......").is_err());
        let key = AuditKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{key:?}"), "AuditKey(…)");
        let mac = key.mac(&["a", "b"]);
        assert!(key.checks(&["a", "b"], Some(&mac)));
        assert!(!key.checks(&["a", "c"], Some(&mac)));
        assert!(!key.checks(&["a", "b"], None));
    }
}
