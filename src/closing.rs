//! The signal that the gateway is shutting down: open event streams end, background loops
//! (listeners, definition checks, job dispatch) stop. One value, cloned to whoever waits for it.

/// The gateway is shutting down: open event streams end, background loops stop.
#[derive(Clone)]
pub struct Closing(tokio::sync::watch::Sender<bool>);

impl Closing {
    /// Not closing yet.
    pub fn new() -> Self {
        Self(tokio::sync::watch::channel(false).0)
    }

    /// Shutdown begins.
    pub fn begin(&self) {
        // `send` stores nothing when no receiver is alive (no open stream, no listener): the
        // signal would be lost for everyone who looks later.
        self.0.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_closing(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown begins (at once if it has).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}

impl Default for Closing {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before: `begin` used `send`, which stores nothing while no receiver is alive (no open
    /// client stream, every backend listener gone): shutdown then went unnoticed by all.
    #[actix_web::test]
    async fn the_signal_holds_with_nobody_listening() {
        let closing = Closing::new();
        closing.begin();
        assert!(closing.is_closing());
        tokio::time::timeout(std::time::Duration::from_secs(1), closing.closed()).await.expect("resolves at once");
    }
}
