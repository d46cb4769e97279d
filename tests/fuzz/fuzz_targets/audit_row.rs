//! Audit row encoding: whatever bytes a caller puts into any field of an audit row, the row made
//! storable holds no control, NUL or bidi character, stays within its caps, is unchanged by a
//! second pass, and hashes the same after every way it is written and read back (the spool's
//! JSON, the database row and its strict re-reading). A row that failed any of these would be
//! refused by PostgreSQL, bloat the table, or fail `audit verify` though nobody touched it.
//! Input: the fields' text separated by U+001E.
#![no_main]

use gateway_actors::storable::{MAX_ARGUMENTS, MAX_MESSAGE, MAX_NAME, MAX_ROLES};
use gateway_actors::AuditRecord;
use libfuzzer_sys::fuzz_target;
use mcp_gateway::db::audit::AuditRow;

/// Characters no stored field may hold: controls (NUL included), and the bidi and line
/// separators that make a value display as something else.
fn unstorable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn check(name: &str, value: &str, cap: usize) {
    assert!(!value.chars().any(unstorable), "{name} holds an unstorable character: {value:?}");
    // The marker saying how much was cut fits inside the cap.
    assert!(value.len() <= cap, "{name} is {} bytes (cap {cap})", value.len());
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\u{1e}').collect();
    let field = |i: usize| parts.get(i).copied().unwrap_or_default().to_owned();
    let opt = |i: usize| Some(field(i)).filter(|s| !s.is_empty());
    let (id, request_id, user_id, roles, workspace, tool_name) = (field(0), field(1), opt(2), field(3), opt(4), opt(5));
    let (decision, status, client_ip, arguments_sha256) = (field(6), field(7), opt(8), opt(9));
    let (error_message, arguments_logged, transport) = (opt(10), opt(11), field(12));
    let micros = data.iter().fold(0i64, |acc, &b| acc.wrapping_mul(31).wrapping_add(i64::from(b)));
    let created_at = chrono::DateTime::from_timestamp_micros(micros.rem_euclid(253_402_300_799_000_000))
        .unwrap_or_default();
    let duration_ms = f64::from_bits(micros as u64);
    let mut row = AuditRecord {
        id,
        created_at,
        request_id,
        user_id,
        roles: roles.split(',').map(str::to_owned).collect(),
        workspace,
        tool_name,
        decision,
        status,
        http_status: (micros % 1000) as i32,
        error_code: Some((micros >> 8) as i32),
        duration_ms,
        client_ip,
        arguments_sha256,
        error_message,
        arguments_logged,
        transport,
        kind: if micros % 2 == 0 { "tools/call".into() } else { "resources/read".into() },
        chain_id: "chain-fuzz".into(),
        seq: 1,
        prev_hash: String::new(),
        row_hash: String::new(),
    };
    row.make_storable();
    for (name, value, cap) in [
        ("id", Some(&row.id), MAX_NAME),
        ("request_id", Some(&row.request_id), MAX_NAME),
        ("user_id", row.user_id.as_ref(), MAX_NAME),
        ("workspace", row.workspace.as_ref(), MAX_NAME),
        ("tool_name", row.tool_name.as_ref(), MAX_NAME),
        ("decision", Some(&row.decision), MAX_NAME),
        ("status", Some(&row.status), MAX_NAME),
        ("client_ip", row.client_ip.as_ref(), MAX_NAME),
        ("arguments_sha256", row.arguments_sha256.as_ref(), MAX_NAME),
        ("error_message", row.error_message.as_ref(), MAX_MESSAGE),
        ("arguments_logged", row.arguments_logged.as_ref(), MAX_ARGUMENTS),
        ("transport", Some(&row.transport), MAX_NAME),
    ] {
        if let Some(v) = value {
            check(name, v, cap);
        }
    }
    assert!(row.roles.len() <= MAX_ROLES, "{} roles", row.roles.len());
    for role in &row.roles {
        check("role", role, MAX_NAME);
    }
    assert!(row.duration_ms.is_finite());
    let mut again = row.clone();
    again.make_storable();
    assert_eq!(again, row, "making a storable row storable changes it");
    row.row_hash = row.compute_hash();

    // The spool's encoding.
    let spooled: AuditRecord = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
    assert_eq!(spooled.compute_hash(), row.row_hash, "a spooled row hashes differently");
    // The database row, read back as `audit verify` reads it (roles must be canonical JSON).
    let stored = AuditRow::from(&row);
    let roles: Vec<String> = serde_json::from_str(&stored.roles).unwrap();
    assert_eq!(serde_json::to_string(&roles).unwrap(), stored.roles);
    assert_eq!(AuditRecord::from(&stored).compute_hash(), row.row_hash, "a stored row hashes differently");
});
