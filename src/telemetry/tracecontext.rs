//! W3C Trace Context (`traceparent`) through the gateway: a caller's trace continues into the
//! backend call, so a tool server's logs and traces join the agent's. A request without a valid
//! `traceparent` starts a new trace. The context lives in a task-local for the request's
//! handling, so the backend client reads it without it being passed through every layer.

use std::cell::Cell;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace a request belongs to, and the gateway's own span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits, never all zero.
    pub trace_id: String,
    /// The caller's span (16 hex digits), when the caller sent a trace.
    pub parent_id: Option<String>,
    /// The gateway's span for this request: the parent of its backend calls.
    pub span_id: String,
    /// Trace flags (2 hex digits; `01` = sampled).
    pub flags: String,
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        u64::from_le_bytes(seed) | 1
    });
}

/// A random non-zero 64-bit id (xorshift64*: ids need to be unique, not secret).
fn random_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).max(1)
    })
}

fn hex_ok(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

impl TraceContext {
    /// Parse a `traceparent` header (version 00 layout; later versions read the same prefix).
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        if !hex_ok(trace_id, 32)
            || !hex_ok(parent_id, 16)
            || flags.len() != 2
            || !flags.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(Self {
            trace_id: trace_id.to_owned(),
            parent_id: Some(parent_id.to_owned()),
            span_id: format!("{:016x}", random_u64()),
            flags: flags.to_ascii_lowercase(),
        })
    }

    /// A new trace (sampled).
    pub fn new_root() -> Self {
        Self {
            trace_id: format!("{:016x}{:016x}", random_u64(), random_u64()),
            parent_id: None,
            span_id: format!("{:016x}", random_u64()),
            flags: "01".into(),
        }
    }

    /// The context of a request: its valid `traceparent`, or a new trace.
    pub fn from_header(header: Option<&str>) -> Self {
        header.and_then(Self::parse).unwrap_or_else(Self::new_root)
    }

    /// Run `fut` with this context current.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

/// The `traceparent` for an outgoing call made now: the current trace, with the gateway's span
/// as the parent (a new trace outside any request, e.g. a background job).
pub fn outgoing() -> String {
    let ctx = CURRENT.try_with(Clone::clone).unwrap_or_else(|_| TraceContext::new_root());
    format!("00-{}-{}-{}", ctx.trace_id, ctx.span_id, ctx.flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_headers_parse_and_invalid_ones_start_a_new_trace() {
        let ok = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(ok.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ok.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
        let fresh = TraceContext::from_header(Some("garbage"));
        assert!(hex_ok(&fresh.trace_id, 32) && hex_ok(&fresh.span_id, 16) && fresh.parent_id.is_none());
    }
}
