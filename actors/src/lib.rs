//! The gateway's actors and their typed messages.
//!
//! Handlers in the HTTP layer never touch shared state directly: they send a typed message to
//! the actor that owns it. Every IO dependency sits behind a small trait so each actor can be
//! tested without a database or a network.
//!
//! | module | owns |
//! |---|---|
//! | [`arguments`] | argument rules of the policy (`one_of`, `max`, `pattern`, …) |
//! | [`model`] | the values that travel in messages: tools, callers, audit rows |
//! | [`registry`] | `RegistryActor`: the tool catalog loaded from `tools.yaml` |
//! | [`policy`] | `PolicyActor`: role and workspace rules from `policy.yaml` |
//! | [`ratelimit`] | `RateLimiterActor`: GCRA limits per user, tool and user × tool |
//! | [`audit`] | `AuditWriterActor`: batches audit rows into an [`audit::AuditSink`] |
//! | [`storable`] | making an audit row storable in any database (escapes, caps) |
//! | [`job`] | `JobActor`: one running asynchronous job |
//! | [`failure`] | the failure of an IO dependency, its source kept |
//! | [`health`] | per-actor counters read by `/health/actors` |
//! | [`mailbox`] | sending to an actor, counted in pairs |

pub mod arguments;
pub mod audit;
pub mod failure;
pub mod health;
pub mod job;
pub mod mailbox;
pub mod model;
pub mod policy;
pub mod ratelimit;
pub mod redact;
pub mod registry;
pub mod storable;

pub use audit::{AuditSink, AuditWriterActor, BatchConfig, Flush, Record, RecordBatch, Stored};
pub use failure::IoFailure;
pub use health::{ActorReport, ActorStats, GetHealth, HealthBoard};
pub use mailbox::Mailbox;
pub use model::{AuditRecord, Caller, Tool};
pub use policy::{
    AuthorizeCall, Denied, Explain, Explanation, FilterTools, GetLimits, Policy, PolicyActor, PolicyDocument,
};
pub use ratelimit::{
    Acquire, Acquired, FailureMode, Limit, LocalStore, Quota, RateLimiterActor, RateStore, Usage, Verdict,
};
pub use registry::{Catalog, GetTool, ListTools, RegistryActor};
