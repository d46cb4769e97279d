//! The compiled policy and its decisions: whether a caller may call a tool (and why, step by
//! step, for `explain`), which limits apply, which arguments are recorded.

use std::collections::BTreeMap;

use serde_json::Value;

use super::document::*;
use crate::arguments::{ArgRules, CompiledRules};
use crate::model::{Caller, Tool};
use crate::ratelimit::Limit;

/// Why a call was denied. The text is safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The compiled policy: an immutable value shared by every `PolicyActor`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    doc: PolicyDocument,
    /// Compiled argument rules by (tool, scope) where scope is `""`, `role:<r>` or `ws:<w>`.
    arguments: BTreeMap<(String, String), CompiledRules>,
    /// Compiled `approval.unless_arguments` by tool name or pattern.
    approval_free: BTreeMap<String, CompiledRules>,
    /// Whether any tool needs approval (most policies: none).
    any_approval: bool,
}

/// Longest a call may wait for approval (`approval.timeout_seconds`): 30 days.
pub const MAX_APPROVAL_WAIT_SECONDS: u64 = 30 * 86_400;

/// A call that must wait for a person: who decides, until when, and why it was held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDemand {
    /// The role that decides.
    pub approver_role: String,
    /// How long the request may wait.
    pub timeout_seconds: u64,
    /// What approvers see of the arguments.
    pub show: ShowArguments,
    /// Why it was held, in words: the rule (`tools.x.approval`) and, when argument rules fired,
    /// each one (naming the rule, never the value).
    pub reasons: Vec<String>,
}

/// One step of a decision, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Which rule (`tools.x.required_roles`, `workspaces.w`, `roles.r`, …).
    pub rule: String,
    /// `allow`, `deny` or `pass` (checked, no effect).
    pub effect: &'static str,
    /// What it found, in words (never an argument's value).
    pub detail: String,
}

/// A decision and the rules that produced it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// Whether the call is allowed.
    pub allowed: bool,
    /// The rules checked, in order; a denial is the last step.
    pub steps: Vec<Step>,
}

fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| p == "*" || p == name || p.strip_suffix('*').is_some_and(|prefix| name.starts_with(prefix)))
}

/// A policy document that cannot be compiled: one of a tool's argument rules is refused.
#[derive(Debug, thiserror::Error)]
#[error("tools.{tool}.arguments.{source}")]
pub struct PolicyError {
    /// The tool whose rules are at fault.
    pub tool: String,
    /// The refused rule.
    pub source: crate::arguments::RuleError,
}

/// A tool's `approval` that cannot be used (its wait out of range, no approver role).
#[derive(Debug, thiserror::Error)]
#[error("tools.{tool}.approval.{field}: {why}")]
pub struct ApprovalError {
    /// The tool.
    pub tool: String,
    /// The field at fault.
    pub field: &'static str,
    /// Why.
    pub why: String,
}

/// Why a policy document cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// An argument rule.
    #[error(transparent)]
    Rule(#[from] PolicyError),
    /// An approval rule.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

impl Policy {
    /// The document this policy was compiled from (the console shows the policy in force).
    pub fn document(&self) -> &PolicyDocument {
        &self.doc
    }

    /// Compile a parsed document (argument patterns compiled once).
    pub fn compile(doc: PolicyDocument) -> Result<Self, CompileError> {
        let mut arguments = BTreeMap::new();
        for (tool, rule) in &doc.tools {
            let mut add = |scope: String, rules: &ArgRules| -> Result<(), PolicyError> {
                if !rules.is_empty() {
                    let compiled =
                        CompiledRules::compile(rules).map_err(|source| PolicyError { tool: tool.clone(), source })?;
                    arguments.insert((tool.clone(), scope), compiled);
                }
                Ok(())
            };
            add(String::new(), &rule.arguments)?;
            for (role, scoped) in &rule.roles {
                add(format!("role:{role}"), &scoped.arguments)?;
            }
            for (ws, scoped) in &rule.workspaces {
                add(format!("ws:{ws}"), &scoped.arguments)?;
            }
        }
        let mut approval_free = BTreeMap::new();
        for (tool, rule) in &doc.tools {
            if let Some(a) = &rule.approval {
                if !(1..=MAX_APPROVAL_WAIT_SECONDS).contains(&a.timeout_seconds) {
                    let why = format!("must be between 1 and {MAX_APPROVAL_WAIT_SECONDS} (30 days)");
                    return Err(ApprovalError { tool: tool.clone(), field: "timeout_seconds", why }.into());
                }
                if a.approver_role.trim().is_empty() {
                    let why = "must name a role".to_owned();
                    return Err(ApprovalError { tool: tool.clone(), field: "approver_role", why }.into());
                }
            }
            if let Some(approval) = rule.approval.as_ref().filter(|a| !a.unless_arguments.is_empty()) {
                let compiled = CompiledRules::compile(&approval.unless_arguments)
                    .map_err(|source| PolicyError { tool: tool.clone(), source })?;
                approval_free.insert(tool.clone(), compiled);
            }
        }
        let any_approval = doc.tools.values().any(|t| t.approval.is_some());
        Ok(Self { doc, arguments, approval_free, any_approval })
    }

    /// The approval rule for `tool`: its own, else the longest `prefix*` pattern's.
    fn approval_rule(&self, tool: &str) -> Option<(&String, &ApprovalRule)> {
        if let Some((name, rule)) = self.doc.tools.get_key_value(tool) {
            if let Some(a) = &rule.approval {
                return Some((name, a));
            }
        }
        self.doc
            .tools
            .iter()
            .filter_map(|(key, rule)| {
                let prefix = key.strip_suffix('*')?;
                (tool.starts_with(prefix)).then_some((key, rule.approval.as_ref()?))
            })
            .max_by_key(|(key, _)| key.len())
    }

    /// Whether `caller`'s call of `tool` with `arguments` must wait for a person, and for whom.
    /// Asked on every call: without any approval rule it answers at once.
    pub fn approval(&self, caller: &Caller, tool: &str, arguments: &Value) -> Option<ApprovalDemand> {
        if !self.any_approval {
            return None;
        }
        let (key, rule) = self.approval_rule(tool)?;
        if !rule.roles.is_empty() && !rule.roles.iter().any(|r| caller.has_role(r)) {
            return None;
        }
        if !rule.workspaces.is_empty() && !caller.workspace.as_ref().is_some_and(|w| rule.workspaces.contains(w)) {
            return None;
        }
        let mut reasons =
            vec![format!("tools.{key}.approval: calls of {tool} wait for the role '{}'", rule.approver_role)];
        if let Some(free) = self.approval_free.get(key) {
            match free.violation(arguments) {
                None => return None,
                Some(fired) => {
                    // The rule as configured beside what it found (the argument's value is not
                    // repeated here: approvers see the arguments themselves).
                    let path = fired.split(": ").next().unwrap_or_default();
                    let rule = rule.unless_arguments.get(path).and_then(|c| serde_json::to_value(c).ok()).map(|c| {
                        let set: serde_json::Map<String, Value> = c
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter(|(_, v)| !v.is_null() && **v != Value::Bool(false))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        Value::Object(set)
                    });
                    let rule = rule.map(|r| format!(" (the rule: {path} {r})")).unwrap_or_default();
                    reasons.push(format!("tools.{key}.approval.unless_arguments: {fired}{rule}"));
                }
            }
        }
        Some(ApprovalDemand {
            approver_role: rule.approver_role.clone(),
            timeout_seconds: rule.timeout_seconds,
            show: rule.arguments,
            reasons,
        })
    }

    /// Every role that approves something (who may read the approval queue).
    pub fn approver_roles(&self) -> Vec<&str> {
        let mut roles: Vec<&str> =
            self.doc.tools.values().filter_map(|t| t.approval.as_ref()).map(|a| a.approver_role.as_str()).collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    /// The arguments approvers see for `tool` (`show`): as sent, or masked as audit rows mask.
    pub fn arguments_for_approvers(&self, tool: &str, arguments: &Value, show: ShowArguments) -> Value {
        match show {
            ShowArguments::Full => arguments.clone(),
            ShowArguments::Masked => {
                let extra = self.doc.tools.get(tool).map(|t| t.audit_mask.as_slice()).unwrap_or_default();
                match arguments.as_object() {
                    Some(object) => Value::Object(
                        object
                            .iter()
                            .map(|(name, value)| (name.clone(), crate::redact::mask_with(name, value, extra)))
                            .collect(),
                    ),
                    None => arguments.clone(),
                }
            }
        }
    }

    /// The arguments the audit row keeps for a call to `tool`, as compact JSON, or `None` when
    /// the policy keeps none (the default: an audit table is no place for raw tool input).
    /// Values under secret-sounding names, or that look like credentials, become `[REDACTED]`.
    pub fn audit_arguments(&self, tool: &str, arguments: &Value) -> Option<String> {
        let rule = self.doc.tools.get(tool)?;
        let keep = &rule.audit_arguments;
        let object = arguments.as_object()?;
        if keep.is_empty() {
            return None;
        }
        let all = keep.iter().any(|k| k == "*");
        let kept: serde_json::Map<String, Value> = object
            .iter()
            .filter(|(name, _)| all || keep.iter().any(|k| k == *name))
            .map(|(name, value)| (name.clone(), crate::redact::mask_with(name, value, &rule.audit_mask)))
            .collect();
        Some(Value::Object(kept).to_string())
    }

    /// The tool's effective risk tier: the policy's override, else the registry's level.
    fn tier(&self, tool: &Tool) -> RiskTier {
        self.doc
            .tools
            .get(&tool.name)
            .and_then(|t| t.risk_tier)
            .or_else(|| RiskTier::parse(&tool.risk_level))
            // An unknown level is treated as the riskiest: fail closed.
            .unwrap_or(RiskTier::Critical)
    }

    /// Every rate limit that applies to `caller` calling `tool`.
    pub fn limits_for(&self, caller: &Caller, tool: &str) -> Vec<Limit> {
        let rl = &self.doc.rate_limits;
        let mut limits = Vec::new();
        let by_role = caller
            .roles
            .iter()
            .filter_map(|r| rl.roles.get(r).map(|q| (r, q)))
            .max_by_key(|(_, q)| (q.requests_per_minute, q.burst));
        let user = caller.user_id.as_str();
        match (by_role, rl.per_user) {
            (Some((role, q)), _) => {
                limits.push(Limit { key: format!("u:{user}"), quota: *q, name: format!("role:{role}") })
            }
            (None, Some(q)) => limits.push(Limit { key: format!("u:{user}"), quota: q, name: "per_user".into() }),
            (None, None) => {}
        }
        if let Some(q) = rl.per_tool.get(tool) {
            limits.push(Limit { key: format!("t:{tool}"), quota: *q, name: "per_tool".into() });
        }
        if let Some(q) = rl.per_user_tool {
            limits.push(Limit { key: format!("ut:{user}:{tool}"), quota: q, name: "per_user_tool".into() });
        }
        limits
    }

    /// Decide whether `caller` may call `tool` (arguments unchecked: for listings).
    pub fn check(&self, caller: &Caller, tool: &Tool) -> Result<(), Denied> {
        self.verdict(self.explain(caller, tool, None))
    }

    /// Decide a call, its arguments included.
    pub fn check_call(&self, caller: &Caller, tool: &Tool, arguments: &Value) -> Result<(), Denied> {
        self.verdict(self.explain(caller, tool, Some(arguments)))
    }

    fn verdict(&self, e: Explanation) -> Result<(), Denied> {
        if e.allowed {
            Ok(())
        } else {
            Err(Denied(e.steps.last().map(|s| s.detail.clone()).unwrap_or_else(|| "denied".into())))
        }
    }

    /// The decision and every rule that produced it. Deny rules come first and always win.
    pub fn explain(&self, caller: &Caller, tool: &Tool, arguments: Option<&Value>) -> Explanation {
        let name = tool.name.as_str();
        let mut steps = Vec::new();
        let step = |rule: String, effect: &'static str, detail: String| Step { rule, effect, detail };
        let deny = |mut steps: Vec<Step>, rule: String, detail: String| {
            steps.push(Step { rule, effect: "deny", detail });
            Explanation { allowed: false, steps }
        };
        if !tool.required_roles.is_empty() {
            let rule = format!("tools.yaml: {name}.required_roles");
            if !tool.required_roles.iter().any(|r| caller.has_role(r)) {
                return deny(steps, rule, format!("tool '{name}' requires one of the roles {:?}", tool.required_roles));
            }
            steps.push(step(rule, "pass", "the caller holds a required role".into()));
        }
        if let Some(ws) = &caller.workspace {
            let rule = format!("workspaces.{ws}");
            match self.doc.workspaces.get(ws) {
                Some(w) if matches(&w.denied_tools, name) => {
                    return deny(steps, rule, format!("tool '{name}' is denied in workspace '{ws}'"));
                }
                Some(w) if w.allowed_tools.as_deref().is_some_and(|allowed| !matches(allowed, name)) => {
                    return deny(steps, rule, format!("tool '{name}' is not allowed in workspace '{ws}'"));
                }
                Some(_) => steps.push(step(rule, "pass", format!("workspace '{ws}' does not restrict '{name}'"))),
                None if self.doc.default_action == DefaultAction::Deny => {
                    return deny(steps, rule, format!("workspace '{ws}' is not defined in the policy"));
                }
                None => {
                    steps.push(step(rule, "pass", format!("workspace '{ws}' is not defined; default_action is allow")))
                }
            }
        }
        let roles: Vec<(&String, &RoleRule)> =
            caller.roles.iter().filter_map(|r| self.doc.roles.get_key_value(r)).collect();
        if let Some((role, _)) = roles.iter().find(|(_, r)| matches(&r.denied_tools, name)) {
            return deny(
                steps,
                format!("roles.{role}.denied_tools"),
                format!("tool '{name}' is denied for the caller's roles"),
            );
        }
        let tier = self.tier(tool);
        let grant = roles
            .iter()
            .find(|(_, r)| matches(&r.allowed_tools, name) && r.max_risk_tier.is_none_or(|max| tier <= max));
        match grant {
            Some((role, _)) => steps.push(step(
                format!("roles.{role}.allowed_tools"),
                "allow",
                format!("role '{role}' grants '{name}'"),
            )),
            None if self.doc.default_action == DefaultAction::Allow => steps.push(step(
                "default_action".into(),
                "allow",
                "no role grants the tool; default_action is allow".into(),
            )),
            None => return deny(steps, "default_action".into(), format!("no role of the caller grants tool '{name}'")),
        }
        if let Some(arguments) = arguments {
            let mut scopes = vec![String::new()];
            scopes.extend(caller.roles.iter().map(|r| format!("role:{r}")));
            scopes.extend(caller.workspace.iter().map(|w| format!("ws:{w}")));
            for scope in scopes {
                let Some(rules) = self.arguments.get(&(name.to_owned(), scope.clone())) else { continue };
                let rule = match scope.split_once(':') {
                    Some(("role", r)) => format!("tools.{name}.roles.{r}.arguments"),
                    Some((_, w)) => format!("tools.{name}.workspaces.{w}.arguments"),
                    None => format!("tools.{name}.arguments"),
                };
                match rules.violation(arguments) {
                    Some(v) => return deny(steps, rule.clone(), format!("argument rule {rule}.{v}")),
                    None => steps.push(step(rule, "pass", "the arguments satisfy the rules".into())),
                }
            }
        }
        Explanation { allowed: true, steps }
    }
}
