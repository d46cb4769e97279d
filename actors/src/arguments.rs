//! Argument rules: constraints a policy puts on a call's arguments (`one_of`, `not_one_of`,
//! `min`, `max`, `max_length`, `pattern`, `required`, `forbidden`), addressed by dotted paths
//! (`params.precision`). A violation names the rule, never the argument's value.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The checks on one argument.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCheck {
    /// The value must be one of these.
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// The value must not be one of these.
    #[serde(default)]
    pub not_one_of: Option<Vec<Value>>,
    /// Numbers: at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// Numbers: at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// Strings (characters) and arrays (items): at most this long.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Strings must match this regex (linear-time engine, size-capped).
    #[serde(default)]
    pub pattern: Option<String>,
    /// The argument must be present.
    #[serde(default)]
    pub required: bool,
    /// The argument must be absent.
    #[serde(default)]
    pub forbidden: bool,
}

/// Argument rules by dotted path.
pub type ArgRules = BTreeMap<String, ArgCheck>;

/// A compiled rule set (patterns compiled once, when the policy loads).
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    rules: Vec<(String, ArgCheck, Option<regex::Regex>)>,
}

/// An argument rule that cannot be compiled: its pattern is not a regular expression the
/// gateway accepts (or compiles too large). Names the argument's path for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{path}.pattern: {source}")]
pub struct RuleError {
    /// The argument's dotted path in the rules.
    pub path: String,
    /// Why the pattern was refused.
    pub source: regex::Error,
}

impl CompiledRules {
    /// Compile `rules`; a bad or oversized pattern is a configuration error naming its path.
    pub fn compile(rules: &ArgRules) -> Result<Self, RuleError> {
        let mut compiled = Vec::new();
        for (path, check) in rules {
            let pattern = match &check.pattern {
                Some(p) => Some(
                    regex::RegexBuilder::new(&format!("^(?:{p})$"))
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|source| RuleError { path: path.clone(), source })?,
                ),
                None => None,
            };
            compiled.push((path.clone(), check.clone(), pattern));
        }
        Ok(Self { rules: compiled })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first violated rule as `path: check`, if any.
    pub fn violation(&self, arguments: &Value) -> Option<String> {
        self.rules.iter().find_map(|(path, check, pattern)| {
            violated(lookup(arguments, path), check, pattern.as_ref()).map(|c| format!("{path}: {c}"))
        })
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn violated(value: Option<&Value>, check: &ArgCheck, pattern: Option<&regex::Regex>) -> Option<&'static str> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return check.required.then_some("required");
    };
    if check.forbidden {
        return Some("forbidden");
    }
    if check.one_of.as_ref().is_some_and(|set| !set.contains(value)) {
        return Some("one_of");
    }
    if check.not_one_of.as_ref().is_some_and(|set| set.contains(value)) {
        return Some("not_one_of");
    }
    // Numbers, or strings holding a finite decimal number ("NaN" and "inf" are not numbers).
    let text = value.as_str().map(str::trim);
    let number = value.as_f64().or_else(|| text.and_then(|s| s.parse::<f64>().ok())).filter(|n| n.is_finite());
    if let (Some(min), Some(n)) = (check.min, number) {
        if below(n, text, min) {
            return Some("min");
        }
    }
    if let (Some(max), Some(n)) = (check.max, number) {
        if below(max, None, n) || (n == max && text.is_some_and(|t| decimal_cmp(t, &max.to_string()) == Some(Greater)))
        {
            return Some("max");
        }
    }
    if (check.min.is_some() || check.max.is_some()) && number.is_none() {
        return Some("not a number");
    }
    if let Some(limit) = check.max_length {
        let len = match value {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.len(),
            other => other.to_string().len(),
        };
        if len > limit {
            return Some("max_length");
        }
    }
    if let Some(re) = pattern {
        if !value.as_str().is_some_and(|s| re.is_match(s)) {
            return Some("pattern");
        }
    }
    None
}

use std::cmp::Ordering::{self, Greater, Less};

/// Whether `n` (the float of `text`, when the value was a string) is below `bound`. Rounding to
/// a float is monotonic, so only a tie can hide a difference; a tie is settled on the exact
/// decimal text, so `"100.00000000000000001"` is above a `max: 100`.
fn below(n: f64, text: Option<&str>, bound: f64) -> bool {
    n < bound || (n == bound && text.is_some_and(|t| decimal_cmp(t, &bound.to_string()) == Some(Less)))
}

/// Exact comparison of two decimal numbers written as text (`-12.5e3`); `None` if either is not one.
fn decimal_cmp(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (Decimal::parse(a)?, Decimal::parse(b)?);
    let magnitude = |d: &Decimal| (d.digits.is_empty(), d.exponent, d.digits.clone());
    Some(match (a.negative && !a.digits.is_empty(), b.negative && !b.digits.is_empty()) {
        (false, true) => Greater,
        (true, false) => Less,
        (negative, _) => {
            let (ma, mb) = (magnitude(&a), magnitude(&b));
            // Zero sorts below every positive magnitude.
            let by_size = match (ma.0, mb.0) {
                (true, true) => Ordering::Equal,
                (true, false) => Less,
                (false, true) => Greater,
                (false, false) => ma.1.cmp(&mb.1).then_with(|| ma.2.cmp(&mb.2)),
            };
            if negative {
                by_size.reverse()
            } else {
                by_size
            }
        }
    })
}

/// `0.digits × 10^exponent`, digits without leading or trailing zeros (none for zero).
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let mut exponent = exp.checked_add(int.len() as i64)?;
        let leading = digits.iter().take_while(|d| **d == b'0').count();
        digits.drain(..leading);
        exponent -= leading as i64;
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        Some(Self { negative, digits, exponent })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn number_bounds_are_exact_and_not_fooled_by_nan() {
        let r = rules(json!({"n": {"min": 0, "max": 100}}));
        for ok in [json!(100), json!("100"), json!("1e2"), json!("99.999999999999999999"), json!("-0"), json!(0)] {
            assert_eq!(r.violation(&json!({ "n": ok })), None, "{ok}");
        }
        for (bad, check) in [
            (json!("100.00000000000000001"), "max"),
            (json!("-0.000000000000000000001"), "min"),
            (json!(101), "max"),
            (json!("NaN"), "not a number"),
            (json!("inf"), "not a number"),
            (json!("-infinity"), "not a number"),
        ] {
            assert_eq!(r.violation(&json!({ "n": bad })), Some(format!("n: {check}")), "{bad}");
        }
        assert_eq!(decimal_cmp("1.50", "15e-1"), Some(Ordering::Equal));
        assert_eq!(decimal_cmp("-2", "-10"), Some(Greater));
        assert_eq!(decimal_cmp("0.0", "-0"), Some(Ordering::Equal));
    }

    fn rules(yaml: Value) -> CompiledRules {
        CompiledRules::compile(&serde_json::from_value(yaml).unwrap()).unwrap()
    }

    #[test]
    fn every_check_allows_and_denies() {
        let r = rules(json!({
            "repo": {"one_of": ["a", "b"], "required": true},
            "action": {"not_one_of": ["blame"]},
            "params.precision": {"max": 100, "min": 1},
            "content": {"max_length": 5},
            "ref": {"pattern": "[a-z]+"},
            "debug": {"forbidden": true}
        }));
        assert_eq!(r.violation(&json!({"repo": "a"})), None);
        assert_eq!(r.violation(&json!({})).as_deref(), Some("repo: required"));
        assert_eq!(r.violation(&json!({"repo": "c"})).as_deref(), Some("repo: one_of"));
        assert_eq!(r.violation(&json!({"repo": "a", "action": "blame"})).as_deref(), Some("action: not_one_of"));
        assert_eq!(
            r.violation(&json!({"repo": "a", "params": {"precision": 500}})).as_deref(),
            Some("params.precision: max")
        );
        assert_eq!(
            r.violation(&json!({"repo": "a", "params": {"precision": 0}})).as_deref(),
            Some("params.precision: min")
        );
        assert_eq!(r.violation(&json!({"repo": "a", "content": "toolong"})).as_deref(), Some("content: max_length"));
        assert_eq!(r.violation(&json!({"repo": "a", "ref": "Main"})).as_deref(), Some("ref: pattern"));
        assert_eq!(r.violation(&json!({"repo": "a", "debug": true})).as_deref(), Some("debug: forbidden"));
        assert!(CompiledRules::compile(&serde_json::from_value(json!({"x": {"pattern": "("}})).unwrap()).is_err());
    }
}
