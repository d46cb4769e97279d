//! Argument rules: constraints a policy puts on a call's arguments (`one_of`, `not_one_of`,
//! `min`, `max`, `max_length`, `pattern`, `required`, `forbidden`), addressed by dotted paths
//! (`params.precision`). A violation names the rule, never the argument's value.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The checks on one argument.
#[derive(Debug, Clone, Default, Deserialize)]
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

impl CompiledRules {
    /// Compile `rules`; a bad or oversized pattern is a configuration error naming its path.
    pub fn compile(rules: &ArgRules) -> Result<Self, String> {
        let mut compiled = Vec::new();
        for (path, check) in rules {
            let pattern = match &check.pattern {
                Some(p) => Some(
                    regex::RegexBuilder::new(&format!("^(?:{p})$"))
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| format!("{path}.pattern: {e}"))?,
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
    let number = value.as_f64().or_else(|| value.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
    if let (Some(min), Some(n)) = (check.min, number) {
        if n < min {
            return Some("min");
        }
    }
    if let (Some(max), Some(n)) = (check.max, number) {
        if n > max {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
