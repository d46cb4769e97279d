//! Telling a running call that nobody waits for its answer any more.
//!
//! A tool call runs on a blocking thread that the HTTP side cannot interrupt. When the time
//! limit passes (or the server drops the request), the server drops a [`GiveUp`]; the call,
//! deep inside its own loops, asks [`requested`] and stops. Without this a storm of timed-out
//! calls would keep every blocking thread busy computing answers nobody reads, and slow everyone
//! else. (actix-web does not tell a handler that an HTTP/1 client went away: such a call runs on
//! until its time limit.)

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

thread_local! {
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Whether the call running on this thread has been given up (always false outside a call).
/// Cheap enough for inner loops: a thread-local read and a relaxed atomic load.
pub fn requested() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|flag| flag.load(Ordering::Relaxed)))
}

/// The flag a call checks, carried to the thread that runs it.
pub struct Watch(Arc<AtomicBool>);

/// Dropping it gives the call up (after its answer is sent, this changes nothing).
pub struct GiveUp(Arc<AtomicBool>);

impl Drop for GiveUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Watch {
    /// A watch and the handle whose drop sets it.
    pub fn new() -> (Self, GiveUp) {
        let flag = Arc::new(AtomicBool::new(false));
        (Self(flag.clone()), GiveUp(flag))
    }

    /// Run `f` on this thread with [`requested`] answering for this call.
    pub fn run<T>(self, f: impl FnOnce() -> T) -> T {
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                CURRENT.with(|c| c.borrow_mut().take());
            }
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(self.0));
        let _leave = Leave;
        f()
    }

    /// Give up without a handle (tests, and callers that run the work themselves).
    pub fn give_up(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_watched_call_sees_its_flag() {
        assert!(!requested());
        let (watch, give_up) = Watch::new();
        let seen = watch.run(|| {
            let before = requested();
            drop(give_up);
            (before, requested())
        });
        assert_eq!(seen, (false, true));
        assert!(!requested(), "the flag leaves with the call");
    }
}
