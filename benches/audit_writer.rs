//! How many audit rows a second the `AuditWriterActor` stores (hash chain, batching, diesel-async
//! multi-row inserts), against a baseline measured in the same run: the same rows inserted
//! directly with `insert_batch`, 1,000 per statement, with no actor in between.
//!
//! `cargo bench --bench audit_writer` — PostgreSQL at `BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database is created and dropped),
//! then embedded SQLite in a temporary directory. `AUDIT_BENCH_ROWS` rows (default 200,000).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::Actor;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gateway_actors::audit::{AuditWriterActor, BatchConfig, Flush, Record};
use gateway_actors::health::ActorStats;
use gateway_actors::AuditRecord;
use mcp_gateway::db::audit::{insert_batch, DbAuditSink, Spool};
use mcp_gateway::db::Db;

#[path = "support/sample.rs"]
mod sample;
use sample::record;

async fn run(label: &str, url: &str, rows: usize, data: &std::path::Path) -> Result<(), String> {
    mcp_gateway::db::migrate(url).await.map_err(|e| e.to_string())?;
    let db = Db::connect(url, 4).map_err(|e| e.to_string())?;

    // Baseline: the same inserts, straight from this task.
    let batch: Vec<AuditRecord> = (0..rows).map(record).collect();
    let started = Instant::now();
    for chunk in batch.chunks(1000) {
        insert_batch(&db, chunk, &Default::default()).await.map_err(|e| e.to_string())?;
    }
    let direct = rows as f64 / started.elapsed().as_secs_f64();

    // The writer: callers hand rows over with do_send; it chains, batches and inserts them.
    let spooled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let spool = Rc::new(Spool::open(data.join(format!("{label}-spool.jsonl")), spooled.clone()));
    let stats = Arc::new(ActorStats::default());
    let sink = Rc::new(DbAuditSink::new(db.clone(), spool));
    let writer = AuditWriterActor::new(sink, BatchConfig::default(), stats.clone()).start();
    let records: Vec<AuditRecord> = (0..rows).map(record).collect();
    let started = Instant::now();
    for r in records {
        stats.enqueued(1);
        writer.do_send(Record(r));
    }
    let handed = started.elapsed();
    writer.send(Flush).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let through_writer = rows as f64 / elapsed.as_secs_f64();
    println!(
        "{label}: writer {through_writer:.0} rows/s, direct insert_batch {direct:.0} rows/s (ratio {:.2}); \
         hand-over {:.0} ns per row; spooled {}",
        through_writer / direct,
        handed.as_nanos() as f64 / rows as f64,
        std::sync::atomic::AtomicU64::load(&spooled, std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let rows: usize = std::env::var("AUDIT_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let admin =
        std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    actix::System::new().block_on(async {
        let name = format!("mcpgw_bench_{}", uuid::Uuid::new_v4().simple());
        match AsyncPgConnection::establish(&admin).await {
            Ok(mut conn) => {
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let (base, _) = admin.rsplit_once('/').ok_or("BENCH_DATABASE_URL has no database path")?;
                let result = run("postgres", &format!("{base}/{name}"), rows, dir.path()).await;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                result?;
            }
            Err(e) => println!("postgres: not reachable at {admin} ({e}); skipped"),
        }
        let sqlite = format!("sqlite://{}", dir.path().join("audit.db").display());
        run("sqlite", &sqlite, rows, dir.path()).await
    })
}
