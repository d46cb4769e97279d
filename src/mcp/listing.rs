//! `tools/list`: the tools the caller may call, described with their backends' own
//! `tools/list` entries (schemas, annotations), cached for a few minutes, paginated with opaque
//! cursors.

use std::sync::Arc;

use base64::Engine as _;
use gateway_actors::{FilterTools, ListTools, Tool};
use serde_json::{json, Value};

use super::{Ctx, RpcError};
use crate::error::mcp as errors;

/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;

fn cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("tools:{offset}"))
}

fn offset(cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("tools:")?.parse().ok()
}

/// `tools/list` for the caller.
pub async fn list(ctx: &Ctx, params: &Value) -> Result<Value, RpcError> {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => offset(c).ok_or_else(|| errors::invalid_params("invalid cursor"))?,
        Some(_) => return Err(errors::invalid_params("invalid cursor")),
    };
    let internal = |e: actix::MailboxError| errors::internal(e);
    let tools = ctx.worker.registry.ask(ListTools).await.map_err(internal)?;
    let mut allowed =
        ctx.worker.policy.ask(FilterTools { caller: ctx.caller.clone(), tools }).await.map_err(internal)?;
    // A drifted definition in block mode is not shown to agents at all: its new description or
    // schema may be the attack ("rug pull"), and calls to it are refused until approved.
    if ctx.shared.settings.pinning == crate::config::Pinning::Block {
        allowed.retain(|t| !ctx.shared.registry.drifted(&t.name));
    }
    if start > allowed.len() {
        return Err(errors::invalid_params("invalid cursor"));
    }
    let page: Vec<Arc<Tool>> = allowed.iter().skip(start).take(PAGE_SIZE).cloned().collect();
    let entries = ctx.shared.registry.listings().describe(&ctx.worker.backend, &page).await;
    let mut result = json!({ "tools": entries });
    if start + PAGE_SIZE < allowed.len() {
        result["nextCursor"] = json!(cursor(start + PAGE_SIZE));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(offset(&cursor(200)), Some(200));
        assert_eq!(offset("not-a-cursor"), None);
        assert_eq!(offset(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("x:1")), None);
    }
}
