//! `policy.yaml` as written: the document's types, deserialised strictly (unknown keys refused).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::arguments::ArgRules;
use crate::ratelimit::Quota;

/// What happens when no rule grants access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Nothing is allowed unless a role grants it (the safe default).
    #[default]
    Deny,
    /// Everything not denied is allowed (for trusted development set-ups only).
    Allow,
}

/// Risk tiers, ordered from least to most dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedArguments {
    /// Rules by dotted argument path.
    #[serde(default)]
    pub arguments: ArgRules,
}

/// Per-tool policy settings.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
    /// Calls wait for a person's approval (four eyes). The key may also be a `prefix*` pattern
    /// (`payments.*`, a whole upstream server): an exact name's rule wins over a pattern's.
    #[serde(default)]
    pub approval: Option<ApprovalRule>,
}

/// How approvers see a pending call's arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShowArguments {
    /// Secret-looking values masked, as in the audit row (the default).
    #[default]
    Masked,
    /// Everything, as the caller sent it.
    Full,
}

/// `tools.<name>.approval`: which calls wait for whom, and for how long.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// The role that decides (never the requester, whatever roles they hold).
    pub approver_role: String,
    /// Only callers holding one of these roles need approval (empty: every caller).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Only callers in one of these workspaces need approval (empty: any workspace).
    #[serde(default)]
    pub workspaces: Vec<String>,
    /// How long a request may wait; then it is denied.
    #[serde(default = "default_approval_timeout")]
    pub timeout_seconds: u64,
    /// What approvers see of the arguments.
    #[serde(default)]
    pub arguments: ShowArguments,
    /// Calls whose arguments keep every one of these rules need no approval; a call breaking
    /// one does, and the approver sees which (e.g. `amount: { max: 1000 }`).
    #[serde(default)]
    pub unless_arguments: ArgRules,
}

fn default_approval_timeout() -> u64 {
    900
}

/// `rate_limits` in `policy.yaml`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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
