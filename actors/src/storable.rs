//! Making an audit row storable in every database, whatever bytes a caller put into it.
//!
//! A caller chooses much of a row's text: the tool name, the request id, the token's subject
//! and roles, words that end up in the error message. PostgreSQL refuses a `text` value holding
//! NUL; a terminal or log viewer reading the table obeys escape sequences and bidi overrides;
//! an unbounded value bloats the table for free. Every text field therefore passes through
//! [`storable`] before the row is chained and hashed: control characters become visible
//! escapes (`\u{0}`), each field has a cap and a marker saying how much was cut. The hash
//! covers what is stored, so `audit verify` checks exactly the bytes in the table.

use std::borrow::Cow;

use crate::model::AuditRecord;

/// Longest stored request id, user id, workspace, tool name, role (bytes, before the marker).
pub const MAX_NAME: usize = 256;
/// Most roles stored for one row.
pub const MAX_ROLES: usize = 64;
/// Longest stored error message.
pub const MAX_MESSAGE: usize = 2048;
/// Longest stored masked arguments (JSON text).
pub const MAX_ARGUMENTS: usize = 16 * 1024;

/// Whether `c` must not reach the table as it is: C0/C1 controls and DEL (NUL above all), and
/// the Unicode format characters that reorder or hide text (bidi overrides, line separators).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `value` as it may be stored: unsafe characters escaped as `\u{XX}`, then cut to `max` bytes
/// (at a character boundary) with a marker `…[+N bytes]` naming what was cut. Borrowed when
/// nothing needed changing (the common case costs one scan).
pub fn storable(value: &str, max: usize) -> Cow<'_, str> {
    // Printable ASCII needs no decoding (a byte scan the compiler vectorises); the audit writer
    // runs this over every text field of every row on one thread.
    let printable_ascii = || value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if value.len() <= max && (printable_ascii() || !value.chars().any(unsafe_char)) {
        return Cow::Borrowed(value);
    }
    // The marker saying how much was cut fits inside `max`: a stored value is never longer
    // than its cap, and making it storable again changes nothing (found by fuzzing).
    let budget = max.saturating_sub(MARKER_RESERVE);
    let mut escaped = String::with_capacity(value.len().min(max) + 16);
    let (mut consumed, mut cut) = (0usize, None);
    for c in value.chars() {
        let before = escaped.len();
        if unsafe_char(c) {
            escaped.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            escaped.push(c);
        }
        if cut.is_none() && escaped.len() > budget {
            cut = Some((before, consumed));
        }
        if escaped.len() > max {
            break;
        }
        consumed += c.len_utf8();
    }
    if consumed < value.len() {
        let (keep, used) = cut.unwrap_or((0, 0));
        escaped.truncate(keep);
        escaped.push_str(&format!("…[+{} bytes]", value.len() - used));
    }
    Cow::Owned(escaped)
}

/// Room kept for the `…[+N bytes]` marker (3 + 3 + 20 digits + 6 bytes at most).
const MARKER_RESERVE: usize = 32;

fn fix(value: &mut String, max: usize) {
    if let Cow::Owned(s) = storable(value, max) {
        *value = s;
    }
}

fn fix_opt(value: &mut Option<String>, max: usize) {
    if let Some(v) = value {
        fix(v, max);
    }
}

impl AuditRecord {
    /// Make every field storable in PostgreSQL and SQLite alike (see the module header).
    /// Called by the audit writer before the row is chained, so its hash covers the stored bytes.
    pub fn make_storable(&mut self) {
        fix(&mut self.id, MAX_NAME);
        fix(&mut self.request_id, MAX_NAME);
        fix_opt(&mut self.user_id, MAX_NAME);
        if self.roles.len() > MAX_ROLES {
            // The marker takes the last place: never more than MAX_ROLES (found by fuzzing).
            let cut = self.roles.len() - (MAX_ROLES - 1);
            self.roles.truncate(MAX_ROLES - 1);
            self.roles.push(format!("…[+{cut} roles]"));
        }
        for role in &mut self.roles {
            fix(role, MAX_NAME);
        }
        fix_opt(&mut self.workspace, MAX_NAME);
        fix_opt(&mut self.tool_name, MAX_NAME);
        fix(&mut self.decision, MAX_NAME);
        fix(&mut self.status, MAX_NAME);
        fix_opt(&mut self.client_ip, MAX_NAME);
        fix_opt(&mut self.arguments_sha256, MAX_NAME);
        fix_opt(&mut self.error_message, MAX_MESSAGE);
        fix_opt(&mut self.arguments_logged, MAX_ARGUMENTS);
        fix(&mut self.transport, MAX_NAME);
        // SQLite stores NaN as NULL (a NOT NULL violation); neither database needs infinities.
        if !self.duration_ms.is_finite() {
            self.duration_ms = -1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_values_are_borrowed_unchanged() {
        assert!(matches!(storable("exact_compute", 256), Cow::Borrowed("exact_compute")));
        assert!(matches!(storable("ünïcode 😀", 256), Cow::Borrowed(_)));
    }

    #[test]
    fn nul_and_controls_are_escaped_visibly() {
        assert_eq!(storable("a\0b", 256), "a\\u{0}b");
        assert_eq!(storable("line\nforged\x1b[31m", 256), "line\\u{a}forged\\u{1b}[31m");
        assert_eq!(storable("\u{202E}txt.exe", 256), "\\u{202e}txt.exe");
        assert_eq!(storable("\u{85}", 256), "\\u{85}");
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary_with_a_marker() {
        let s = "é".repeat(1000); // 2,000 bytes
        let cut = storable(&s, 101);
        // 101 bytes, the marker included: 34 whole "é" (68 bytes) fit the 69 left for text.
        assert_eq!(cut, format!("{}…[+1932 bytes]", "é".repeat(34)));
        assert!(cut.len() <= 101);
        let nuls = "\0".repeat(100);
        let cut = storable(&nuls, 52);
        assert_eq!(cut, format!("{}…[+96 bytes]", "\\u{0}".repeat(4)));
        // Stored once, it stays as it is: within its cap, nothing left to escape.
        let zeros = "\0".repeat(87);
        for (v, max) in [(storable(&s, 101), 101), (storable(&nuls, 52), 52), (storable(&zeros, 256), 256)] {
            assert!(v.len() <= max && matches!(storable(&v, max), Cow::Borrowed(_)), "{v}");
        }
    }

    #[test]
    fn every_field_of_a_hostile_row_is_made_storable() {
        let mut row = AuditRecord {
            id: "id\0".into(),
            created_at: chrono::Utc::now(),
            request_id: "r\0".into(),
            user_id: Some("u\0".into()),
            roles: vec!["x\0".into(); 100],
            workspace: Some("w\0".into()),
            tool_name: Some("t\0".repeat(10_000)),
            decision: "d\0".into(),
            status: "s\0".into(),
            http_status: 200,
            error_code: None,
            duration_ms: f64::NAN,
            client_ip: Some("c\0".into()),
            arguments_sha256: Some("a\0".into()),
            error_message: Some("e\0".into()),
            arguments_logged: Some("l\0".into()),
            transport: "t\0".into(),
            kind: crate::model::TOOL_CALL_KIND.into(),
            chain_id: String::new(),
            seq: 0,
            prev_hash: String::new(),
            row_hash: String::new(),
        };
        row.make_storable();
        let text = serde_json::to_string(&row).unwrap_or_default();
        assert!(!text.contains("\\u0000"), "{text}");
        assert_eq!(row.roles.len(), MAX_ROLES, "the marker takes the last place");
        assert!(row.tool_name.as_deref().is_some_and(|t| t.len() <= MAX_NAME));
        assert!(row.duration_ms.is_finite());
    }
}
