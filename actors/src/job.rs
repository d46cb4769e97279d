//! `JobActor`: one per running job. It runs the job's backend call under the job's timeout,
//! beats a heartbeat into the job store (and stops if the job was cancelled elsewhere), and
//! records the terminal state. Cancelling the actor drops the call, which cancels it at the
//! backend. The store and the backend are behind [`JobRunner`], so the actor is testable alone.

use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// The tool answered (possibly with `isError`).
    Succeeded(Value),
    /// The call failed (JSON-RPC code and message).
    Failed {
        /// Error code.
        code: i32,
        /// Error message.
        message: String,
    },
    /// The job's timeout passed.
    TimedOut,
}

/// The job's IO: its backend call and its row in the job store.
pub trait JobRunner: 'static {
    /// The backend call; dropping the future cancels it.
    fn run(&self) -> LocalBoxFuture<'static, JobOutcome>;
    /// Record a sign of life (and progress); answers the job's status in the store.
    fn heartbeat(&self) -> LocalBoxFuture<'static, Result<Option<String>, crate::IoFailure>>;
    /// Record the terminal state.
    fn finish(&self, outcome: JobOutcome) -> LocalBoxFuture<'static, ()>;
}

/// Runs one job.
pub struct JobActor {
    runner: Rc<dyn JobRunner>,
    timeout: Duration,
    heartbeat_every: Duration,
    call: Option<SpawnHandle>,
    on_stop: Option<Box<dyn FnOnce()>>,
}

impl JobActor {
    /// A job actor; `on_stop` runs when it stops (to free its slot).
    pub fn new(
        runner: Rc<dyn JobRunner>,
        timeout: Duration,
        heartbeat_every: Duration,
        on_stop: Box<dyn FnOnce()>,
    ) -> Self {
        Self { runner, timeout, heartbeat_every, call: None, on_stop: Some(on_stop) }
    }
}

impl Actor for JobActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (run, timeout) = (self.runner.run(), self.timeout);
        let call = async move { actix::clock::timeout(timeout, run).await.unwrap_or(JobOutcome::TimedOut) };
        self.call = Some(
            ctx.spawn(
                call.into_actor(self)
                    .then(|outcome, act, _| act.runner.finish(outcome).into_actor(act))
                    .map(|_, _, ctx: &mut Context<Self>| ctx.stop()),
            ),
        );
        ctx.run_interval(self.heartbeat_every, |act, ctx| {
            let beat = act.runner.heartbeat();
            ctx.spawn(beat.into_actor(act).map(|status, act, ctx| {
                // Cancelled (or removed) elsewhere: drop the call, which cancels it at the backend.
                if matches!(&status, Ok(s) if s.as_deref() != Some("running")) {
                    if let Some(call) = act.call.take() {
                        ctx.cancel_future(call);
                    }
                    ctx.stop();
                }
            }));
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(f) = self.on_stop.take() {
            f();
        }
    }
}

/// Stop the job now (it was cancelled on this replica); the store already says `cancelled`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Cancel;

impl Handler<Cancel> for JobActor {
    type Result = ();

    fn handle(&mut self, _: Cancel, ctx: &mut Context<Self>) {
        if let Some(call) = self.call.take() {
            ctx.cancel_future(call);
        }
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    struct Fake {
        delay: Duration,
        status: Rc<RefCell<&'static str>>,
        finished: Rc<RefCell<Option<JobOutcome>>>,
        dropped: Rc<RefCell<bool>>,
    }

    struct DropFlag(Rc<RefCell<bool>>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }

    impl JobRunner for Fake {
        fn run(&self) -> LocalBoxFuture<'static, JobOutcome> {
            let (delay, flag) = (self.delay, DropFlag(self.dropped.clone()));
            Box::pin(async move {
                let _flag = flag;
                tokio::time::sleep(delay).await;
                JobOutcome::Succeeded(serde_json::json!({"ok": true}))
            })
        }
        fn heartbeat(&self) -> LocalBoxFuture<'static, Result<Option<String>, crate::IoFailure>> {
            let status = *self.status.borrow();
            Box::pin(async move { Ok(Some(status.to_owned())) })
        }
        fn finish(&self, outcome: JobOutcome) -> LocalBoxFuture<'static, ()> {
            *self.finished.borrow_mut() = Some(outcome);
            Box::pin(async {})
        }
    }

    fn fake(delay: Duration) -> Rc<Fake> {
        Rc::new(Fake {
            delay,
            status: Rc::new(RefCell::new("running")),
            finished: Rc::default(),
            dropped: Rc::default(),
        })
    }

    #[actix::test]
    async fn a_job_runs_to_completion_and_records_it() {
        let runner = fake(Duration::from_millis(10));
        let finished = runner.finished.clone();
        let stopped = Rc::new(RefCell::new(false));
        let s = stopped.clone();
        JobActor::new(
            runner,
            Duration::from_secs(5),
            Duration::from_millis(5),
            Box::new(move || *s.borrow_mut() = true),
        )
        .start();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*finished.borrow(), Some(JobOutcome::Succeeded(serde_json::json!({"ok": true}))));
        assert!(*stopped.borrow());
    }

    #[actix::test]
    async fn a_slow_job_times_out() {
        let runner = fake(Duration::from_secs(60));
        let (finished, dropped) = (runner.finished.clone(), runner.dropped.clone());
        JobActor::new(runner, Duration::from_millis(20), Duration::from_secs(60), Box::new(|| {})).start();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*finished.borrow(), Some(JobOutcome::TimedOut));
        assert!(*dropped.borrow(), "the call was dropped");
    }

    #[actix::test]
    async fn a_job_cancelled_in_the_store_is_dropped_without_a_result() {
        let runner = fake(Duration::from_secs(60));
        let (finished, dropped, status) = (runner.finished.clone(), runner.dropped.clone(), runner.status.clone());
        JobActor::new(runner, Duration::from_secs(60), Duration::from_millis(10), Box::new(|| {})).start();
        tokio::time::sleep(Duration::from_millis(30)).await;
        *status.borrow_mut() = "cancelled";
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(*dropped.borrow());
        assert!(finished.borrow().is_none());
    }
}
