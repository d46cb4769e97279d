//! `PolicyActor`: decides whether a caller may call a tool.
//!
//! Rules come from `policy.yaml` in the original gateway's format: a default action, tools
//! allowed (or denied) per role, per-workspace allow and deny lists, and a risk tier per tool
//! that a role may cap. Deny always wins; roles the policy does not name grant nothing.

//!
//! | module | holds |
//! |---|---|
//! | [`document`] | `policy.yaml` as written |
//! | [`decision`] | the compiled policy and its decisions |
//! | this module | `PolicyActor` and its messages, reading the published snapshot |

pub mod decision;
pub mod document;

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult, Supervised};
use serde_json::Value;

pub use decision::*;
pub use document::*;

use crate::health::{ActorStats, GetHealth};
use crate::model::{Caller, Tool};
use crate::ratelimit::Limit;

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
    use crate::ratelimit::Quota;

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
            required_scopes: vec![],
            is_active: true,
            timeout_seconds: None,
            input_schema: None,
            max_concurrency: None,
            queue_timeout_ms: 0,
            idempotent: false,
            job_timeout_seconds: None,
            task_support: Default::default(),
            upstream: None,
        }
    }

    fn caller(roles: &[&str], ws: Option<&str>) -> Caller {
        Caller {
            user_id: "u".into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            workspace: ws.map(String::from),
            scopes: vec![],
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

    #[test]
    fn approval_follows_roles_workspaces_patterns_and_argument_rules() {
        let mut d = doc();
        let rule: ApprovalRule = serde_json::from_value(serde_json::json!({
            "approver_role": "treasurer", "roles": ["developer"],
            "unless_arguments": { "amount": { "max": 1000, "required": true } }
        }))
        .unwrap();
        d.tools.insert("pay.transfer".into(), ToolRule { approval: Some(rule), ..Default::default() });
        let pattern: ApprovalRule =
            serde_json::from_value(serde_json::json!({ "approver_role": "ops", "workspaces": ["prod"] })).unwrap();
        d.tools.insert("deploy.*".into(), ToolRule { approval: Some(pattern), ..Default::default() });
        let p = policy(d);
        let dev = caller(&["developer"], None);
        let small = serde_json::json!({ "amount": 10 });
        assert_eq!(p.approval(&dev, "pay.transfer", &small), None, "within the rule");
        let big = p.approval(&dev, "pay.transfer", &serde_json::json!({ "amount": "1000.01" })).unwrap();
        assert_eq!(big.approver_role, "treasurer");
        assert!(big.reasons[1].contains("amount: max") && big.reasons[1].contains("1000"), "{:?}", big.reasons);
        assert!(p.approval(&dev, "pay.transfer", &serde_json::json!({})).is_some(), "a missing amount is held");
        assert!(p.approval(&dev, "pay.transfer", &serde_json::json!({ "amount": "lots" })).is_some());
        assert_eq!(p.approval(&caller(&["admin"], None), "pay.transfer", &serde_json::json!({ "amount": 5000 })), None);
        assert!(p.approval(&caller(&["x"], Some("prod")), "deploy.api", &small).is_some(), "a pattern");
        assert_eq!(p.approval(&caller(&["x"], Some("dev")), "deploy.api", &small), None, "another workspace");
        assert_eq!(p.approver_roles(), vec!["ops", "treasurer"]);
    }
}
