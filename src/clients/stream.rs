//! The channel behind every stream the gateway writes to a client (`GET /mcp`, legacy `/sse`,
//! a call answered as SSE): in order, and bounded in bytes. A client that reads slower than
//! messages arrive is not allowed to grow the gateway's memory: once more than
//! [`STREAM_BUFFER_BYTES`] wait unread, the stream ends (the client reconnects as its transport
//! allows) instead of buffering more.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// Most bytes that may wait unread on one client stream (a single larger message is still
/// delivered when nothing else waits).
pub const STREAM_BUFFER_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicUsize,
    ended: AtomicBool,
}

/// The sending half: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct StreamTx {
    tx: mpsc::UnboundedSender<Bytes>,
    backlog: Arc<Backlog>,
}

/// The receiving half, read by the HTTP response.
#[derive(Debug)]
pub struct StreamRx {
    rx: mpsc::UnboundedReceiver<Bytes>,
    backlog: Arc<Backlog>,
}

/// A new stream channel.
pub fn channel() -> (StreamTx, StreamRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    (StreamTx { tx, backlog: backlog.clone() }, StreamRx { rx, backlog })
}

impl StreamTx {
    /// Queue `bytes` for the client; `false` when the stream is gone or has fallen too far
    /// behind (it then ends).
    pub fn send(&self, bytes: Bytes) -> bool {
        if self.backlog.ended.load(Ordering::Relaxed) {
            return false;
        }
        let len = bytes.len();
        let before = self.backlog.bytes.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > STREAM_BUFFER_BYTES {
            self.backlog.bytes.fetch_sub(len, Ordering::Relaxed);
            self.backlog.ended.store(true, Ordering::Relaxed);
            tracing::warn!(waiting_bytes = before, "a client stream fell too far behind; it is closed");
            return false;
        }
        if self.tx.send(bytes).is_err() {
            self.backlog.bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether both ends belong to the same stream.
    pub fn same_channel(&self, other: &StreamTx) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// End the stream (its session ended): the reader stops at its next poll, which this
    /// wakes.
    pub fn close(&self) {
        self.backlog.ended.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Bytes::new());
    }

    /// Whether the reading side is gone or the stream was ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.backlog.ended.load(Ordering::Relaxed)
    }
}

impl StreamRx {
    /// The next message; `Ready(None)` once every sender is gone or the stream ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.backlog.ended.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => {
                self.backlog.bytes.fetch_sub(bytes.len(), Ordering::Relaxed);
                Poll::Ready(Some(bytes))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_falls_behind_ends_its_stream_instead_of_growing_memory() {
        let (tx, mut rx) = channel();
        let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
        for _ in 0..STREAM_BUFFER_BYTES / chunk.len() {
            assert!(tx.send(chunk.clone()));
        }
        assert!(!tx.send(chunk.clone()), "past the bound the message is refused");
        assert!(!tx.send(Bytes::from_static(b"small")), "and the stream stays closed");
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None), "the reader sees the end");
    }

    #[test]
    fn one_large_message_passes_when_nothing_waits_and_reading_frees_room() {
        let (tx, mut rx) = channel();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let big = Bytes::from(vec![b'y'; STREAM_BUFFER_BYTES + 1]);
        assert!(tx.send(big.clone()));
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Some(b)) if b.len() == big.len()));
        assert!(tx.send(big), "the backlog is empty again");
        drop(tx);
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }
}
