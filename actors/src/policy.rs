//! `PolicyActor`: decides whether a caller may call a tool.
//!
//! Rules come from `policy.yaml` in the original gateway's format: a default action, tools
//! allowed (or denied) per role, per-workspace allow and deny lists, and a risk tier per tool
//! that a role may cap. Deny always wins; roles the policy does not name grant nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult, Supervised};
use serde::Deserialize;

use crate::health::{ActorStats, GetHealth};
use serde_json::Value;

use crate::arguments::{ArgRules, CompiledRules};
use crate::model::{Caller, Tool};
use crate::ratelimit::{Limit, Quota};

/// What happens when no rule grants access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Nothing is allowed unless a role grants it (the safe default).
    #[default]
    Deny,
    /// Everything not denied is allowed (for trusted development set-ups only).
    Allow,
}

/// Risk tiers, ordered from least to most dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskTier {
    /// Read-only, side-effect free.
    Low,
    /// Limited side effects.
    Medium,
    /// Significant side effects.
    High,
    /// Irreversible or security-sensitive.
    Critical,
}

impl RiskTier {
    /// Parse a tier name as used in `tools.yaml` (`risk_level`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// Rules for one role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    /// Tools the role may call: names, `"*"` for all, or a `prefix*` pattern.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// Tools the role may never call, whatever else grants them.
    #[serde(default)]
    pub denied_tools: Vec<String>,
    /// The riskiest tier the role may call (no cap when absent).
    #[serde(default)]
    pub max_risk_tier: Option<RiskTier>,
}

/// Rules for one workspace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRule {
    /// When present, only these tools may be called from the workspace.
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
    /// Tools never callable from the workspace.
    #[serde(default)]
    pub denied_tools: Vec<String>,
}

/// Argument rules scoped to a role or a workspace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedArguments {
    /// Rules by dotted argument path.
    #[serde(default)]
    pub arguments: ArgRules,
}

/// Per-tool policy settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// Overrides the tool's `risk_level` from `tools.yaml`.
    #[serde(default)]
    pub risk_tier: Option<RiskTier>,
    /// Rules on the arguments of every call.
    #[serde(default)]
    pub arguments: ArgRules,
    /// More rules for callers with a role.
    #[serde(default)]
    pub roles: BTreeMap<String, ScopedArguments>,
    /// More rules for callers in a workspace.
    #[serde(default)]
    pub workspaces: BTreeMap<String, ScopedArguments>,
    /// Top-level argument names whose values the audit row keeps (masked where they look
    /// secret); `["*"]` keeps every argument. Empty (the default): only the arguments' SHA-256.
    #[serde(default)]
    pub audit_arguments: Vec<String>,
    /// More argument names (at any depth) whose values are always stored as `[REDACTED]`,
    /// beyond the built-in secret names and patterns.
    #[serde(default)]
    pub audit_mask: Vec<String>,
}

/// `rate_limits` in `policy.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Default for every user (all tools together).
    #[serde(default)]
    pub per_user: Option<Quota>,
    /// Replaces `per_user` for users with these roles (the most generous of theirs applies).
    #[serde(default)]
    pub roles: BTreeMap<String, Quota>,
    /// All users together, per tool.
    #[serde(default)]
    pub per_tool: BTreeMap<String, Quota>,
    /// One user on one tool.
    #[serde(default)]
    pub per_user_tool: Option<Quota>,
}

/// `policy.yaml` as written by operators.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Applies when no role rule matches.
    #[serde(default)]
    pub default_action: DefaultAction,
    /// Rules by role name.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleRule>,
    /// Rules by workspace name.
    #[serde(default)]
    pub workspaces: BTreeMap<String, WorkspaceRule>,
    /// Settings by tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolRule>,
    /// Rate limits (none when absent).
    #[serde(default)]
    pub rate_limits: RateLimits,
}

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

impl Policy {
    /// Compile a parsed document (argument patterns compiled once).
    pub fn compile(doc: PolicyDocument) -> Result<Self, String> {
        let mut arguments = BTreeMap::new();
        for (tool, rule) in &doc.tools {
            let mut add = |scope: String, rules: &ArgRules| -> Result<(), String> {
                if !rules.is_empty() {
                    let compiled = CompiledRules::compile(rules).map_err(|e| format!("tools.{tool}.arguments.{e}"))?;
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
        Ok(Self { doc, arguments })
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

/// The policy in force, replaced whole on reload: readers take a snapshot without a lock, and
/// each decision sees one policy, old or new, never a mix.
pub type PolicyCell = Arc<arc_swap::ArcSwap<Policy>>;

/// Owns a view of the policy and answers access checks.
pub struct PolicyActor {
    policy: PolicyCell,
    stats: Arc<ActorStats>,
}

impl PolicyActor {
    /// An actor enforcing the policy in `policy` (whatever it holds at each message),
    /// counting into `stats`.
    pub fn new(policy: PolicyCell, stats: Arc<ActorStats>) -> Self {
        Self { policy, stats }
    }
}

impl Actor for PolicyActor {
    type Context = Context<Self>;
}

impl Supervised for PolicyActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.stats.restarted();
    }
}

/// The decision and its chain of rules, without calling anything.
#[derive(Debug, Message)]
#[rtype(result = "Explanation")]
pub struct Explain {
    /// The subject.
    pub caller: Arc<Caller>,
    /// The tool.
    pub tool: Arc<Tool>,
    /// The arguments.
    pub arguments: Option<Value>,
}

impl Handler<Explain> for PolicyActor {
    type Result = MessageResult<Explain>;

    fn handle(&mut self, msg: Explain, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.policy.load().explain(&msg.caller, &msg.tool, msg.arguments.as_ref()))
    }
}

/// The rate limits that apply to a call (computed on the worker's thread; no IO).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Limit>")]
pub struct GetLimits {
    /// The authenticated caller.
    pub caller: Arc<Caller>,
    /// The tool's name.
    pub tool: String,
}

impl Handler<GetLimits> for PolicyActor {
    type Result = MessageResult<GetLimits>;

    fn handle(&mut self, msg: GetLimits, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.policy.load().limits_for(&msg.caller, &msg.tool))
    }
}

/// Keep only the tools the caller may call (for listings).
#[derive(Debug, Message)]
#[rtype(result = "Vec<Arc<Tool>>")]
pub struct FilterTools {
    /// The authenticated caller.
    pub caller: Arc<Caller>,
    /// Candidate tools.
    pub tools: Vec<Arc<Tool>>,
}

/// The whole policy side of one tool call in one message: may this caller make this call,
/// and, if so, under which rate limits. One mailbox round trip instead of two on every call.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Limit>, Denied>")]
pub struct AuthorizeCall {
    /// The authenticated caller.
    pub caller: Arc<Caller>,
    /// The tool asked for.
    pub tool: Arc<Tool>,
    /// The call's arguments (checked against argument rules).
    pub arguments: Arc<Value>,
}

impl Handler<AuthorizeCall> for PolicyActor {
    type Result = Result<Vec<Limit>, Denied>;

    fn handle(&mut self, msg: AuthorizeCall, _: &mut Context<Self>) -> Self::Result {
        let policy = self.policy.load();
        policy.check_call(&msg.caller, &msg.tool, &msg.arguments)?;
        Ok(policy.limits_for(&msg.caller, &msg.tool.name))
    }
}

impl Handler<FilterTools> for PolicyActor {
    type Result = MessageResult<FilterTools>;

    fn handle(&mut self, msg: FilterTools, _: &mut Context<Self>) -> Self::Result {
        let mut tools = msg.tools;
        let policy = self.policy.load();
        tools.retain(|t| policy.check(&msg.caller, t).is_ok());
        MessageResult(tools)
    }
}

impl Handler<GetHealth> for PolicyActor {
    type Result = MessageResult<GetHealth>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.report("policy", true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml_like: PolicyDocument) -> Policy {
        Policy::compile(yaml_like).unwrap()
    }

    fn doc() -> PolicyDocument {
        let mut d = PolicyDocument::default();
        d.roles.insert(
            "developer".into(),
            RoleRule { allowed_tools: vec!["calc".into(), "git_*".into()], ..Default::default() },
        );
        d.roles.insert("admin".into(), RoleRule { allowed_tools: vec!["*".into()], ..Default::default() });
        d.roles.insert(
            "viewer".into(),
            RoleRule { allowed_tools: vec!["*".into()], max_risk_tier: Some(RiskTier::Low), ..Default::default() },
        );
        d.workspaces.insert("locked".into(), WorkspaceRule { allowed_tools: None, denied_tools: vec!["calc".into()] });
        d.workspaces.insert(
            "narrow".into(),
            WorkspaceRule { allowed_tools: Some(vec!["git_log".into()]), denied_tools: vec![] },
        );
        d
    }

    fn tool(name: &str, risk: &str, required: &[&str]) -> Tool {
        Tool {
            name: name.into(),
            description: String::new(),
            backend_url: "http://127.0.0.1:1/mcp".into(),
            risk_level: risk.into(),
            required_roles: required.iter().map(|s| s.to_string()).collect(),
            is_active: true,
            timeout_seconds: None,
            input_schema: None,
            max_concurrency: None,
            queue_timeout_ms: 0,
            idempotent: false,
            job_timeout_seconds: None,
            task_support: Default::default(),
        }
    }

    fn caller(roles: &[&str], ws: Option<&str>) -> Caller {
        Caller {
            user_id: "u".into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            workspace: ws.map(String::from),
        }
    }

    #[test]
    fn role_grants_named_and_prefixed_tools_only() {
        let p = policy(doc());
        assert!(p.check(&caller(&["developer"], None), &tool("calc", "low", &[])).is_ok());
        assert!(p.check(&caller(&["developer"], None), &tool("git_log", "low", &[])).is_ok());
        assert!(p.check(&caller(&["developer"], None), &tool("docs", "low", &[])).is_err());
    }

    #[test]
    fn unknown_roles_get_nothing() {
        assert!(policy(doc()).check(&caller(&["stranger"], None), &tool("calc", "low", &[])).is_err());
    }

    #[test]
    fn workspace_deny_beats_role_allow() {
        let p = policy(doc());
        assert!(p.check(&caller(&["admin"], Some("locked")), &tool("calc", "low", &[])).is_err());
        assert!(p.check(&caller(&["admin"], Some("narrow")), &tool("calc", "low", &[])).is_err());
        assert!(p.check(&caller(&["admin"], Some("narrow")), &tool("git_log", "low", &[])).is_ok());
    }

    #[test]
    fn undefined_workspace_is_denied_under_default_deny() {
        assert!(policy(doc()).check(&caller(&["admin"], Some("nowhere")), &tool("calc", "low", &[])).is_err());
    }

    #[test]
    fn required_roles_and_risk_caps_apply() {
        let p = policy(doc());
        assert!(p.check(&caller(&["developer"], None), &tool("calc", "low", &["admin"])).is_err());
        assert!(p.check(&caller(&["viewer"], None), &tool("calc", "high", &[])).is_err());
        assert!(p.check(&caller(&["viewer"], None), &tool("calc", "low", &[])).is_ok());
        // An unknown risk level fails closed.
        assert!(p.check(&caller(&["viewer"], None), &tool("calc", "weird", &[])).is_err());
    }

    #[test]
    fn limits_apply_per_user_role_tool_and_user_tool() {
        let mut d = doc();
        let q = |rpm, burst| Quota { requests_per_minute: rpm, burst };
        d.rate_limits.per_user = Some(q(600, 100));
        d.rate_limits.roles.insert("viewer".into(), q(60, 10));
        d.rate_limits.per_tool.insert("calc".into(), q(300, 50));
        d.rate_limits.per_user_tool = Some(q(120, 20));
        let p = policy(d);
        let names = |c: &Caller, t: &str| p.limits_for(c, t).into_iter().map(|l| (l.name, l.key)).collect::<Vec<_>>();
        assert_eq!(
            names(&caller(&["developer"], None), "calc"),
            vec![
                ("per_user".to_string(), "u:u".to_string()),
                ("per_tool".to_string(), "t:calc".to_string()),
                ("per_user_tool".to_string(), "ut:u:calc".to_string()),
            ]
        );
        let viewer = p.limits_for(&caller(&["viewer"], None), "other");
        assert_eq!((viewer[0].name.as_str(), viewer[0].quota.requests_per_minute), ("role:viewer", 60));
        assert_eq!(viewer.len(), 2, "no per_tool limit for an unconfigured tool");
    }

    #[test]
    fn role_deny_beats_other_role_allow_and_default_allow() {
        let mut d = doc();
        d.default_action = DefaultAction::Allow;
        d.roles.insert("restricted".into(), RoleRule { denied_tools: vec!["calc".into()], ..Default::default() });
        let p = policy(d);
        assert!(p.check(&caller(&["admin", "restricted"], None), &tool("calc", "low", &[])).is_err());
        assert!(p.check(&caller(&[], None), &tool("other", "low", &[])).is_ok());
    }
}
