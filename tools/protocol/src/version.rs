//! The MCP revisions spoken, and how the one a session uses is chosen.

/// The stateless revision: no `initialize`, no session; each request names it in `_meta`.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// Revisions negotiated by `initialize`, newest first.
pub const SESSION_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Whether `version` is one the gateway speaks.
pub fn supported(version: &str) -> bool {
    version == STATELESS_VERSION || SESSION_VERSIONS.contains(&version)
}

/// The revision `initialize` answers with, among `offered` (newest first): the client's if
/// offered, else the newest.
pub fn negotiate_among(offered: &'static [&'static str], requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| offered.iter().find(|v| **v == r))
        .copied()
        .or_else(|| offered.first().copied())
        .unwrap_or("")
}

/// The revision the gateway's `initialize` answers with.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    negotiate_among(SESSION_VERSIONS, requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_revision_when_spoken_else_the_newest() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("1999-01-01")), "2025-11-25");
        assert_eq!(negotiate(None), "2025-11-25");
        // The stateless revision is not negotiated by initialize.
        assert_eq!(negotiate(Some(STATELESS_VERSION)), "2025-11-25");
        assert!(supported("2026-07-28") && !supported("1999-01-01"));
    }
}
