//! The gateway's side of [`mcp_protocol::numbers`]: a request body holding a number literal that
//! its JSON reader would turn into 0 (`1e-400`) is refused before it is read, on every
//! transport, instead of forwarding a zero the caller never sent.

use crate::error::GatewayError;

/// Refuse a body holding a literal a float reads as zero as a parse error (-32700) that says
/// where and what to do.
pub fn check(body: &[u8]) -> Result<(), GatewayError> {
    match mcp_protocol::numbers::first_underflow(body) {
        None => Ok(()),
        Some(at) => Err(GatewayError::Parse(mcp_protocol::BodyError::Underflow(at).to_string())),
    }
}
