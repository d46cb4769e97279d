//! The one way to send an actor a message and count it.
//!
//! `/health/actors` shows each actor kind's backlog (messages sent and not yet answered). When
//! callers counted by hand (`enqueued` before `send`, `handled` in each handler), a sender that
//! forgot the first half drove the backlog negative and a report clamped it to 0, hiding the
//! drift. A [`Mailbox`] counts both halves itself, in pairs, whatever happens to the message:
//! answered, refused by a dead actor, or abandoned because the request that awaited it went away.

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message};

use crate::health::{ActorReport, ActorStats, GetHealth};

/// An actor's address and the counters of its kind.
pub struct Mailbox<A: Actor> {
    addr: Addr<A>,
    stats: Arc<ActorStats>,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Self { addr: self.addr.clone(), stats: self.stats.clone() }
    }
}

/// Counts a message handled when dropped: after its answer, or when the awaiting future is
/// dropped first.
struct Pair<'a>(&'a ActorStats);

impl Drop for Pair<'_> {
    fn drop(&mut self) {
        self.0.handled(1);
    }
}

impl<A: Actor> Mailbox<A> {
    /// Send through `addr`, counted in `stats` (shared by every actor of the kind).
    pub fn new(addr: Addr<A>, stats: Arc<ActorStats>) -> Self {
        Self { addr, stats }
    }

    /// Send `message` and wait for the answer; counted enqueued now and handled when the answer
    /// arrives or the wait ends any other way.
    pub async fn ask<M>(&self, message: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.stats.enqueued(1);
        let _pair = Pair(&self.stats);
        self.addr.send(message).await
    }

    /// Ask the actor for its health report. A probe is not traffic: it is not counted, so the
    /// report does not include itself.
    pub async fn probe(&self) -> Result<ActorReport, MailboxError>
    where
        A: Handler<GetHealth>,
        A::Context: ToEnvelope<A, GetHealth>,
    {
        self.addr.send(GetHealth).await
    }

    /// The counters of the actor kind (for a report when the actor does not answer).
    pub fn stats(&self) -> &ActorStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use actix::{Actor, Context, Handler, Message};

    use super::*;

    struct Slow;
    impl Actor for Slow {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Work(u64);

    impl Handler<Work> for Slow {
        type Result = actix::ResponseFuture<u32>;
        fn handle(&mut self, msg: Work, _: &mut Context<Self>) -> Self::Result {
            Box::pin(async move {
                actix::clock::sleep(std::time::Duration::from_millis(msg.0)).await;
                1
            })
        }
    }

    #[actix::test]
    async fn answered_abandoned_and_undeliverable_messages_all_leave_the_backlog() {
        let stats = Arc::new(ActorStats::default());
        let mailbox = Mailbox::new(Slow.start(), stats.clone());
        assert_eq!(mailbox.ask(Work(0)).await.ok(), Some(1));
        // Abandoned: the caller stops waiting before the answer.
        let abandoned = actix::clock::timeout(std::time::Duration::from_millis(5), mailbox.ask(Work(200))).await;
        assert!(abandoned.is_err());
        assert_eq!(stats.backlog(), 0);
        assert_eq!(stats.report("slow", true).handled, 2);
    }
}
