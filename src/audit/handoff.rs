//! Hands audit rows to the `AuditWriterActor` one event-loop turn at a time.
//!
//! Every tool call produces one row on a worker thread; the writer lives on the system thread.
//! Sent one by one, each row is a cross-thread message and, when the writer sleeps, a wake-up
//! (an eventfd write and a context switch) — on a busy gateway the largest single cost of a
//! call after the sockets themselves. Instead the first row of a turn schedules a hand-off
//! task on the worker's own event loop; rows added before it runs ride along, and the task
//! sends them all as one [`RecordBatch`]. The task yields once, so it runs after the turn's
//! other ready work: no timer, no added latency for the caller, never more than one turn of
//! delay for the row. Rows left behind when a thread ends are sent from the buffer's `Drop`.

use std::cell::RefCell;

use actix::Addr;
use gateway_actors::{AuditRecord, AuditWriterActor, Record, RecordBatch};

/// Rows waiting for the end of this turn, and the writer they go to.
#[derive(Default)]
struct Pending {
    rows: Vec<AuditRecord>,
    to: Option<Addr<AuditWriterActor>>,
}

impl Pending {
    fn send(&mut self) {
        if let Some(to) = &self.to {
            match self.rows.len() {
                0 => {}
                1 => to.do_send(Record(self.rows.remove(0))),
                _ => to.do_send(RecordBatch(std::mem::take(&mut self.rows))),
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.send();
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// A turn never holds more rows than this; a fuller buffer is sent at once.
const MAX_PER_TURN: usize = 512;

/// Hand `row` to `audit`, now or at the end of this event-loop turn (never blocks, never waits).
pub fn hand_over(audit: &Addr<AuditWriterActor>, row: AuditRecord) {
    if actix::Arbiter::try_current().is_none() {
        // Not on an actix event loop: there is no turn to wait for.
        audit.do_send(Record(row));
        return;
    }
    let schedule = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        if pending.to.as_ref() != Some(audit) {
            pending.send(); // rows held for another writer (another gateway in this process)
            pending.to = Some(audit.clone());
        }
        pending.rows.push(row);
        if pending.rows.len() >= MAX_PER_TURN {
            pending.send();
            return false;
        }
        pending.rows.len() == 1
    });
    if schedule {
        actix_web::rt::spawn(async {
            tokio::task::yield_now().await;
            PENDING.with(|pending| pending.borrow_mut().send());
        });
    }
}
