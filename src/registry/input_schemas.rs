//! Argument validation against each tool's JSON Schema (2020-12 and earlier drafts), compiled
//! once per schema: from `tools.yaml`'s `input_schema`, or from the backend's own `tools/list`.
//! Invalid arguments never reach the backend.

use std::sync::Arc;

use dashmap::DashMap;
use serde_json::Value;

/// Compiled validators by tool name.
#[derive(Default)]
pub struct Schemas {
    validators: DashMap<String, Arc<jsonschema::Validator>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").field("tools", &self.validators.len()).finish()
    }
}

impl Schemas {
    /// Compile `schema` for `tool` (an invalid schema is logged and not enforced).
    pub fn set(&self, tool: &str, schema: &Value) {
        match jsonschema::validator_for(schema) {
            Ok(v) => {
                self.validators.insert(tool.to_owned(), Arc::new(v));
            }
            Err(e) => tracing::warn!(tool, error = %e, "input schema does not compile; not enforced"),
        }
    }

    /// Stop enforcing `tool`'s schema (taken out of `tools.yaml` on reload).
    pub fn remove(&self, tool: &str) {
        self.validators.remove(tool);
    }

    /// Whether `tool` has a schema.
    pub fn has(&self, tool: &str) -> bool {
        self.validators.contains_key(tool)
    }

    /// Check `arguments`; the error lists up to three problems with their JSON paths. Values are
    /// masked ("the value is longer than …"): the message reaches the audit table and the logs,
    /// where a document body or a secret must never appear.
    pub fn check(&self, tool: &str, arguments: &Value) -> Result<(), SchemaMismatch> {
        let Some(validator) = self.validators.get(tool).map(|v| v.clone()) else { return Ok(()) };
        let problems: Vec<String> = validator
            .iter_errors(arguments)
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!(
                    "{}: {}",
                    if at.is_empty() { "arguments".to_owned() } else { format!("arguments{at}") },
                    e.masked_with("the value")
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SchemaMismatch { problems })
        }
    }
}

/// Arguments that do not match a tool's input schema: up to three problems, each with its
/// JSON path and a masked description (never the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the arguments do not match the tool's input schema — {}", problems.join("; "))]
pub struct SchemaMismatch {
    /// `arguments/path: what is wrong`, at most three.
    pub problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let schemas = Schemas::default();
        schemas.set(
            "t",
            &json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "maximum": 5}}}),
        );
        assert!(schemas.check("t", &json!({"n": 3})).is_ok());
        let err = schemas.check("t", &json!({"n": 9})).unwrap_err().to_string();
        assert!(err.contains("arguments/n"), "{err}");
        assert!(schemas.check("t", &json!({})).unwrap_err().to_string().contains("required"));
        assert!(schemas.check("other", &json!({"anything": 1})).is_ok());
    }

    #[test]
    fn error_messages_never_carry_the_value() {
        let schemas = Schemas::default();
        schemas.set(
            "t",
            &json!({"type": "object", "properties": {
                "body": {"type": "string", "maxLength": 5},
                "password": {"type": "string", "pattern": "^[0-9]+$"},
                "n": {"type": "integer"}}}),
        );
        let err = schemas
            .check("t", &json!({"body": "a very long secret document", "password": "hunter2-secret", "n": "s3cr3t"}))
            .unwrap_err()
            .to_string();
        for secret in ["secret document", "hunter2", "s3cr3t"] {
            assert!(!err.contains(secret), "{secret} leaked: {err}");
        }
        assert!(err.contains("arguments/body") && err.contains("the value"), "{err}");
    }
}
