//! Where SQLite's blocking statements run: threads of the process's own.
//!
//! diesel-async's SQLite connection runs each statement with `spawn_blocking` on the tokio
//! runtime that was current when the connection was opened, and keeps that runtime's handle.
//! A pooled connection is opened wherever it is first needed: an HTTP worker's event loop, a
//! job, the audit writer. When that event loop stops (a worker stopping, a test's system
//! ending), every later statement on the connection fails with "task was cancelled" while
//! the database itself is fine. Running the statements on one runtime that lives as long as
//! the process removes that dependency: a connection works from any event loop, for as long
//! as the pool keeps it.

use std::error::Error;
use std::sync::OnceLock;

use diesel_async::sync_connection_wrapper::SpawnBlocking;
use futures_util::future::BoxFuture;

/// Most threads running SQLite statements at once (the pool holds at most 4 connections per
/// database; a process may open several databases).
const MAX_THREADS: usize = 32;

/// Runs SQLite statements on the process's blocking threads (see the module docs).
pub struct ProcessThreads;

/// The process's runtime for SQLite's statements; `None` if the OS refused its threads.
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            // Only its blocking pool is used: those threads run without anyone driving it.
            tokio::runtime::Builder::new_current_thread()
                .thread_name("sqlite")
                .max_blocking_threads(MAX_THREADS)
                .build()
                .inspect_err(|e| tracing::error!(error = %e, "no SQLite thread pool; statements use the caller's"))
                .ok()
        })
        .as_ref()
}

impl SpawnBlocking for ProcessThreads {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        // Dropping the handle does not stop the statement: it finishes on its thread, holding
        // the connection until then (the next statement waits for it), and never blocks the
        // caller's event loop the way diesel-async's own wrapper does when dropped mid-flight.
        let handle = match runtime() {
            Some(runtime) => runtime.spawn_blocking(task),
            None => tokio::task::spawn_blocking(task),
        };
        Box::pin(async move { handle.await.map_err(|e| Box::new(e) as Box<dyn Error + Send + Sync>) })
    }

    fn get_runtime() -> Self {
        ProcessThreads
    }
}
