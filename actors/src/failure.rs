//! What an actor reports when the dependency behind its trait fails (the database behind the
//! audit sink, Redis behind the rate-limit store): the underlying error, kept as the `source()`
//! so logs and callers can walk the chain instead of reading a flattened string.

use std::error::Error;
use std::sync::Arc;

/// A failure of an IO dependency. Cloneable, because one failed write answers every caller
/// that waited for it.
#[derive(Debug, Clone)]
pub struct IoFailure {
    source: Arc<dyn Error + Send + Sync>,
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl Error for IoFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

impl IoFailure {
    /// The failure `source` (kept as the source).
    pub fn new(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self { source: Arc::from(source.into()) }
    }
}

/// Two failures are equal when they say the same (what tests and deduplication compare).
impl PartialEq for IoFailure {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for IoFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_kept_and_the_message_unchanged() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "database down");
        let failure = IoFailure::new(io);
        assert_eq!(failure.to_string(), "database down");
        let source = failure.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("database down"));
        assert!(failure.source().and_then(|s| s.downcast_ref::<std::io::Error>()).is_some());
    }
}
