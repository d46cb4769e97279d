//! Cost of one rate-limit check (three limits: user, tool, user × tool), in-process and through
//! Redis: `cargo bench --bench ratelimit` (Redis at `REDIS_URL`, default 127.0.0.1:6379).

use std::sync::Arc;
use std::time::Instant;

use gateway_actors::ratelimit::SystemClock;
use gateway_actors::{Limit, LocalStore, Quota, RateStore};

fn limits(user: usize) -> Vec<Limit> {
    let q = Quota { requests_per_minute: 6_000_000, burst: 1_000_000 };
    vec![
        Limit { key: format!("u:user{user}"), quota: q, name: "per_user".into() },
        Limit { key: "t:search".into(), quota: q, name: "per_tool".into() },
        Limit { key: format!("ut:user{user}:search"), quota: q, name: "per_user_tool".into() },
    ]
}

fn main() -> std::io::Result<()> {
    let store = LocalStore::new(Arc::new(SystemClock::default()));
    let batches: Vec<Vec<Limit>> = (0..10_000).map(limits).collect();
    let n = 1_000_000;
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(store.check_now(&batches[i % batches.len()]));
    }
    let local = started.elapsed().as_nanos() as f64 / n as f64;
    println!("local (in-process GCRA, 3 limits, 10,000 users): {local:.0} ns per check");

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let Ok(redis) = mcp_gateway::ratelimit::RedisStore::new(&url) else {
            println!("redis: cannot parse {url}");
            return;
        };
        if redis.check(limits(0)).await.is_err() {
            println!("redis: not reachable at {url}; skipped");
            return;
        }
        let n = 20_000;
        let started = Instant::now();
        for i in 0..n {
            let _ = redis.check(batches[i % batches.len()].clone()).await;
        }
        let sequential = started.elapsed().as_micros() as f64 / n as f64;
        let started = Instant::now();
        let futures: Vec<_> = (0..n).map(|i| redis.check(batches[i % batches.len()].clone())).collect();
        futures_util::future::join_all(futures).await;
        let pipelined = started.elapsed().as_micros() as f64 / n as f64;
        println!("redis (one Lua round trip, 3 limits): {sequential:.1} µs per check one at a time, {pipelined:.1} µs per check with {n} in flight");
    });
    Ok(())
}
