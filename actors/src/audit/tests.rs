use std::cell::RefCell;

use actix::Actor;

use super::*;

/// A sink that stores batches in memory and can be told to fail.
#[derive(Default)]
struct MemorySink {
    batches: Rc<RefCell<Vec<usize>>>,
    rows: Rc<RefCell<Vec<String>>>,
    fail: Rc<RefCell<bool>>,
}

impl AuditSink for MemorySink {
    fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<Stored, IoFailure>> {
        let (batches, stored, fail) = (self.batches.clone(), self.rows.clone(), self.fail.clone());
        Box::pin(async move {
            if *fail.borrow() {
                return Err(IoFailure::new("database down"));
            }
            batches.borrow_mut().push(rows.len());
            stored.borrow_mut().extend(rows.iter().map(|r| r.id.clone()));
            Ok(Stored::Database)
        })
    }
}

fn row(i: usize) -> AuditRecord {
    AuditRecord {
        id: i.to_string(),
        created_at: chrono::Utc::now(),
        request_id: "r".into(),
        user_id: None,
        roles: vec![],
        workspace: None,
        tool_name: None,
        decision: "allowed".into(),
        status: "ok".into(),
        http_status: 200,
        error_code: None,
        duration_ms: 0.0,
        client_ip: None,
        arguments_sha256: None,
        error_message: None,
        arguments_logged: None,
        transport: "rest".into(),
        kind: crate::model::TOOL_CALL_KIND.into(),
        chain_id: String::new(),
        seq: 0,
        prev_hash: String::new(),
        row_hash: String::new(),
    }
}

// The sink is `!Send`; the actor runs on the test's thread, as it runs on one arbiter in production.
fn start(sink: MemorySink, config: BatchConfig) -> (actix::Addr<AuditWriterActor>, Arc<ActorStats>) {
    start_with(Rc::new(sink), config)
}

fn start_with(sink: Rc<dyn AuditSink>, config: BatchConfig) -> (actix::Addr<AuditWriterActor>, Arc<ActorStats>) {
    let stats = Arc::new(ActorStats::default());
    (AuditWriterActor::new(sink, config, stats.clone()).start(), stats)
}

#[actix::test]
async fn audit_batch_flushes_on_size() {
    let sink = MemorySink::default();
    let batches = sink.batches.clone();
    let config = BatchConfig { max_events: 10, timeout: Duration::from_secs(3600), ..Default::default() };
    let (addr, _) = start(sink, config);
    for i in 0..25 {
        addr.do_send(Record(row(i)));
    }
    addr.send(Flush).await.unwrap().unwrap();
    // The first batch goes at 10 rows; the rows that arrive while it is written gather
    // into the next one.
    let batches = batches.borrow();
    assert_eq!((batches[0], batches.iter().sum::<usize>()), (10, 25), "{batches:?}");
}

#[actix::test]
async fn audit_batch_flushes_on_interval() {
    let sink = MemorySink::default();
    let rows = sink.rows.clone();
    let config = BatchConfig { max_events: 1000, timeout: Duration::from_millis(20), ..Default::default() };
    let (addr, _) = start(sink, config);
    addr.do_send(Record(row(1)));
    actix::clock::sleep(Duration::from_millis(100)).await;
    assert_eq!(*rows.borrow(), vec!["1".to_string()]);
}

#[actix::test]
async fn failed_write_keeps_rows_in_order_until_the_sink_recovers() {
    let sink = MemorySink::default();
    let (rows, fail) = (sink.rows.clone(), sink.fail.clone());
    let config = BatchConfig {
        max_events: 2,
        timeout: Duration::from_secs(3600),
        retry_backoff: Duration::from_secs(3600),
        ..Default::default()
    };
    let (addr, stats) = start(sink, config);
    *fail.borrow_mut() = true;
    for i in 0..5 {
        addr.do_send(Record(row(i)));
    }
    assert!(addr.send(Flush).await.unwrap().is_err());
    assert!(stats.report("a", true).last_error.is_some());
    *fail.borrow_mut() = false;
    assert_eq!(addr.send(Flush).await.unwrap(), Ok(5));
    assert_eq!(*rows.borrow(), (0..5).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(stats.report("a", true).last_error.is_none());
}

/// A sink whose writes end only when the test opens their gate, in order.
#[derive(Default)]
struct GatedSink {
    gates: Rc<RefCell<Vec<tokio::sync::oneshot::Sender<bool>>>>,
    started: Rc<RefCell<Vec<Vec<i64>>>>,
    stored: Rc<RefCell<Vec<i64>>>,
}

impl AuditSink for GatedSink {
    fn write_batch(&self, rows: Arc<[AuditRecord]>) -> LocalBoxFuture<'static, Result<Stored, IoFailure>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.gates.borrow_mut().push(tx);
        self.started.borrow_mut().push(rows.iter().map(|r| r.seq).collect());
        let stored = self.stored.clone();
        Box::pin(async move {
            if rx.await.unwrap_or(false) {
                stored.borrow_mut().extend(rows.iter().map(|r| r.seq));
                Ok(Stored::Database)
            } else {
                Err(IoFailure::new("database down"))
            }
        })
    }
}

async fn settle_a_while() {
    actix::clock::sleep(Duration::from_millis(20)).await;
}

/// Before: one write at a time of at most `max_events` rows, so one write's latency capped
/// the rows per second. Now several run at once and, while all are busy, rows gather into
/// the next write, which takes them all.
#[actix::test]
async fn writes_run_side_by_side_and_batches_grow_with_the_backlog() {
    let sink = GatedSink::default();
    let (gates, started, stored) = (sink.gates.clone(), sink.started.clone(), sink.stored.clone());
    let config =
        BatchConfig { max_events: 2, timeout: Duration::from_secs(3600), max_in_flight: 2, ..Default::default() };
    let (addr, stats) = start_with(Rc::new(sink), config);
    for i in 0..10 {
        addr.do_send(Record(row(i)));
    }
    settle_a_while().await;
    assert_eq!(*started.borrow(), vec![vec![1, 2], vec![3, 4]], "two writes in flight, no more");
    let first = gates.borrow_mut().remove(0);
    first.send(true).unwrap();
    settle_a_while().await;
    assert_eq!(started.borrow()[2], vec![5, 6, 7, 8, 9, 10], "the next write takes every row that gathered");
    for gate in gates.borrow_mut().drain(..) {
        gate.send(true).unwrap();
    }
    assert_eq!(addr.send(Flush).await.unwrap(), Ok(0));
    let mut all = stored.borrow().clone();
    all.sort_unstable();
    assert_eq!(all, (1..=10).collect::<Vec<_>>());
    assert_eq!(stats.report("a", true).last_error, None);
}

/// A caller waiting for its row is answered by the write that holds that row, not by
/// whichever write ends first.
#[actix::test]
async fn a_durable_row_is_answered_by_its_own_write() {
    let sink = GatedSink::default();
    let (gates, started) = (sink.gates.clone(), sink.started.clone());
    let config =
        BatchConfig { max_events: 2, timeout: Duration::from_secs(3600), max_in_flight: 2, ..Default::default() };
    let (addr, _) = start_with(Rc::new(sink), config);
    addr.do_send(Record(row(0)));
    addr.do_send(Record(row(1)));
    let durable = addr.send(RecordDurable(row(2)));
    let answer = actix::spawn(durable);
    settle_a_while().await;
    assert_eq!(*started.borrow(), vec![vec![1, 2], vec![3]]);
    let (first, second) = {
        let mut g = gates.borrow_mut();
        let first = g.remove(0);
        (first, g.remove(0))
    };
    first.send(false).unwrap(); // the other write fails: not this caller's concern
    settle_a_while().await;
    assert!(!answer.is_finished(), "still waiting for its own write");
    second.send(true).unwrap();
    assert_eq!(answer.await.unwrap().unwrap(), Ok(()));
}

/// `Flush` answers only once the writes already in flight have ended.
#[actix::test]
async fn flush_waits_for_writes_in_flight() {
    let sink = GatedSink::default();
    let (gates, stored) = (sink.gates.clone(), sink.stored.clone());
    let config =
        BatchConfig { max_events: 1, timeout: Duration::from_secs(3600), max_in_flight: 4, ..Default::default() };
    let (addr, _) = start_with(Rc::new(sink), config);
    addr.do_send(Record(row(0)));
    let flush = actix::spawn(addr.send(Flush));
    settle_a_while().await;
    assert!(!flush.is_finished());
    gates.borrow_mut().remove(0).send(true).unwrap();
    assert_eq!(flush.await.unwrap().unwrap(), Ok(0));
    assert_eq!(*stored.borrow(), vec![1]);
}
