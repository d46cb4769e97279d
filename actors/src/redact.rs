//! Masking of secrets in values an audit row keeps. An audit table is read by many people
//! and kept for years; a password or token that reaches it has leaked, so anything that
//! looks like one is replaced before the row is written.

use serde_json::Value;

/// What a masked value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Key names (compared lower-case, without `_` or `-`) whose values are always masked.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "cookie",
    "session",
    "bearer",
    "clientsecret",
    "signature",
];

fn secret_name(name: &str) -> bool {
    let key: String = name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    SECRET_NAMES.iter().any(|s| key == *s || key.ends_with(s))
}

/// Strings that look like credentials whatever their key: bearer headers, JWTs, PEM keys and
/// well-known token prefixes.
fn secret_value(s: &str) -> bool {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("bearer ") || lower.starts_with("basic ") || t.contains("-----BEGIN") {
        return true;
    }
    // A JWT: three base64url parts, the first a JSON header (`eyJ`).
    if t.starts_with("eyJ") && t.split('.').count() == 3 && !t.contains(' ') {
        return true;
    }
    ["sk-", "ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-", "AKIA", "glpat-"]
        .iter()
        .any(|p| t.starts_with(p) && t.len() >= 16 && !t.contains(' '))
}

/// `value` (found under `name`) with every secret inside it masked, recursively.
pub fn mask(name: &str, value: &Value) -> Value {
    mask_with(name, value, &[])
}

/// [`mask`], also masking the values of keys named in `extra` (a policy's `audit_mask`).
pub fn mask_with(name: &str, value: &Value, extra: &[String]) -> Value {
    if (secret_name(name) || extra.iter().any(|e| e.eq_ignore_ascii_case(name))) && !value.is_null() {
        return Value::String(REDACTED.into());
    }
    match value {
        Value::String(s) if secret_value(s) => Value::String(REDACTED.into()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), mask_with(k, v, extra))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(|v| mask_with("", v, extra)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_and_values_are_masked_plain_values_kept() {
        let input = json!({
            "expression": "2+2",
            "api_key": "abc",
            "nested": {"clientSecret": "x", "Password": 1, "note": "Bearer abc.def", "ok": [1, "two"]},
            "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig",
            "list": ["ghp_0123456789abcdefghij", "plain text"],
            "pem": "-----BEGIN PRIVATE KEY-----\nMII...",
            "tokens_used": null
        });
        let out = mask("", &input);
        assert_eq!(
            out,
            json!({
                "expression": "2+2",
                "api_key": REDACTED,
                "nested": {"clientSecret": REDACTED, "Password": REDACTED, "note": REDACTED, "ok": [1, "two"]},
                "jwt": REDACTED,
                "list": [REDACTED, "plain text"],
                "pem": REDACTED,
                "tokens_used": null
            })
        );
        let named = mask_with("", &json!({"repo": "internal", "path": "a/b", "n": {"path": 1}}), &["path".into()]);
        assert_eq!(named, json!({"repo": "internal", "path": REDACTED, "n": {"path": REDACTED}}));
    }
}
