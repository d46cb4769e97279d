//! Masking of secrets in values an audit row keeps. An audit table is read by many people
//! and kept for years; a password or token that reaches it has leaked, so anything that
//! looks like one is replaced before the row is written.

use serde_json::Value;

/// What a masked value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Key names (compared lower-case, without `_` or `-`) whose values are always masked: a name
/// holding one of [`SECRET_WORDS`] anywhere (`secret_key`, `db_password_hash`), or ending in
/// whose last word is one of [`SECRET_SUFFIXES`] (`x-auth`, `githubPat`; not `compat`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "authorization",
    "credential",
    "cookie",
    "bearer",
    "signature",
    "dsn",
    "connectionstring",
];

const SECRET_SUFFIXES: &[&str] = &["pwd", "auth", "session", "pat", "otp", "pin"];

fn secret_name(name: &str) -> bool {
    let key: String = name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    // The last word of the name: after the last separator or lower-to-upper case change.
    let mut last = name.len();
    let bytes = name.as_bytes();
    while last > 0 {
        let (prev, here) = (bytes[last - 1], bytes.get(last).copied().unwrap_or(b'a'));
        if !prev.is_ascii_alphanumeric()
            || (prev.is_ascii_lowercase() && here.is_ascii_uppercase() && last < name.len())
        {
            break;
        }
        last -= 1;
    }
    let word = name[last..].to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w)) || SECRET_SUFFIXES.contains(&word.as_str())
}

/// Credential shapes, whatever key they sit under and wherever they sit in a text: the token
/// formats the issuing services document (prefixes and lengths), as secret scanners such as
/// gitleaks and GitHub secret scanning match them. A value holding any of them is masked whole.
const SECRET_SHAPES: &[(&str, &str)] = &[
    ("private key (PEM)", r"-----BEGIN[ A-Z0-9]*PRIVATE KEY"),
    ("JSON Web Token", r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    ("HTTP Authorization value", r"(?i)\b(bearer|basic|digest)\s+[A-Za-z0-9._~+/=-]{6,}"),
    ("Stripe key", r"\b[rsp]k_(live|test)_[0-9A-Za-z]{10,}"),
    ("OpenAI / Anthropic key", r"\bsk-(proj-|ant-|svcacct-)?[A-Za-z0-9_-]{16,}"),
    ("GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})"),
    ("GitLab token", r"\bgl(pat|dt|ptt|rt)-[A-Za-z0-9_-]{16,}"),
    ("Google API key", r"\bAIza[0-9A-Za-z_-]{30,}"),
    ("Google OAuth token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("Slack token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
    ("Slack webhook", r"hooks\.slack\.com/(services|workflows)/[A-Za-z0-9/_-]{16,}"),
    ("AWS access key id", r"\b(AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[0-9A-Z]{16}\b"),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("PyPI token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
    ("SendGrid key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
    ("Twilio key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("Shopify token", r"\bshp(at|ss|ca|pa)_[a-fA-F0-9]{32}\b"),
    ("DigitalOcean token", r"\bdo[por]_v1_[a-f0-9]{64}\b"),
    ("Azure storage key", r"(?i)AccountKey=[A-Za-z0-9+/=]{40,}"),
    ("URL with a password", r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@"),
    (
        "assignment of a secret",
        r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|access[_-]?key|secret[_-]?key|client[_-]?secret|token)\s*[=:]\s*\S{4,}",
    ),
];

fn shapes() -> &'static regex::RegexSet {
    static SET: std::sync::OnceLock<regex::RegexSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        // The patterns are constants tested below; an empty set would only mask less.
        regex::RegexSet::new(SECRET_SHAPES.iter().map(|(_, p)| *p)).unwrap_or_else(|_| regex::RegexSet::empty())
    })
}

/// Strings that hold something shaped like a credential ([`SECRET_SHAPES`]).
fn secret_value(s: &str) -> bool {
    shapes().is_match(s)
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
    fn every_shape_compiles() {
        for (name, pattern) in SECRET_SHAPES {
            assert!(regex::Regex::new(pattern).is_ok(), "{name}");
        }
        assert_eq!(shapes().len(), SECRET_SHAPES.len());
    }

    /// Real-looking secrets (made up, in each service's documented format) are found by key
    /// name or by shape; ordinary values are not.
    #[test]
    fn a_corpus_of_real_looking_secrets_is_masked() {
        let secrets = [
            ("secret_key", "hunter2"),
            ("DB_PASSWORD", "correct horse"),
            ("x-api-key", "abc"),
            ("githubPat", "x"),
            ("note", "sk_live_51HqLyjWDarjtT1zdp7dcXYZabc"),
            ("note", "rk_test_4eC39HqLyjWDarjtT1zdp7dc"),
            ("note", "use ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 please"),
            ("note", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
            ("note", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
            ("note", "the header was eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U here"),
            ("url", "postgres://app:s3cr3t-pw@db.internal:5432/prod"),
            ("note", "AKIAIOSFODNN7EXAMPLE"),
            ("note", "xoxb-1234567890-abcdefghijkl"),
            ("note", "sk-proj-abcdefghijklmnopqrstuvwx"),
            ("note", "sk-ant-api03-abcdefghijklmnopqrstuvwx"),
            ("note", "glpat-abcdefghij1234567890"),
            ("note", "npm_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("note", "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
            ("note", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"),
            ("config", "password = swordfish"),
            ("config", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH=="),
            ("pem", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl"),
        ];
        for (key, value) in secrets {
            assert_eq!(mask(key, &json!(value)), json!(REDACTED), "{key}: {value}");
        }
        let plain = [
            ("expression", "2+2"),
            ("path", "src/main.rs"),
            ("query", "tokens per second"),
            ("url", "https://example.com/a:b"),
            ("repo", "mcp-gateway"),
            ("sha", "9fceb02d0ae598e95dc970b74767f19372d61af8"),
            ("message", "the secret of success is to start"),
            ("keyboard", "qwerty"),
            ("monkey", "banana"),
            ("compat", "yes"),
            ("cache_key", "users:42"),
        ];
        for (key, value) in plain {
            assert_eq!(mask(key, &json!(value)), json!(value), "{key}: {value}");
        }
    }

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
