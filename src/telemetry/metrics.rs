//! The gateway's counters and latency histograms. Each worker thread counts into a shard of its
//! own, so no two cores write the same memory on the hot path and a call allocates nothing to
//! be counted; `GET /metrics` adds the shards up when it renders.
//!
//! Before, every call looked its labels up in shared maps with keys built from owned strings
//! (five allocations a call) and incremented atomics every worker shared: on many cores each
//! increment moves a cache line between them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Upper bounds (seconds) of the latency histograms' buckets: sub-millisecond gateway work up
/// to slow backends.
const BUCKETS: [f64; 15] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Default, Clone, Copy)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_micros: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_micros += (seconds * 1e6) as u64;
    }

    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_micros += other.sum_micros;
    }

    /// The `_bucket`, `_sum` and `_count` lines of metric `name` with `labels` (`a="b",…`).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n;
            out.push_str(&format!("{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}\n"));
        }
        let count = self.count;
        out.push_str(&format!("{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}\n"));
        let sum = self.sum_micros as f64 / 1e6;
        out.push_str(&format!("{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}\n"));
    }
}

/// One thread's counts, keyed by label values (the first label owned, the rest static).
#[derive(Debug, Default)]
struct Counts {
    calls: HashMap<String, HashMap<(&'static str, &'static str), u64>>,
    call_latency: HashMap<String, HashMap<&'static str, Histogram>>,
    backend_latency: HashMap<String, Histogram>,
    backend_errors: HashMap<String, HashMap<&'static str, u64>>,
    requests: HashMap<String, HashMap<(&'static str, u16), u64>>,
    request_latency: HashMap<String, Histogram>,
    rejections: HashMap<String, u64>,
}

/// `map[key]`, inserting the default the first time (no allocation once the key is there).
fn at<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    match map.get_mut(key) {
        Some(value) => value,
        None => unreachable!("inserted above"),
    }
}

/// A thread's shard of one [`Metrics`].
type Shard = Arc<Mutex<Counts>>;

thread_local! {
    /// This thread's shard of each `Metrics` it counted into (by the metrics' id; a process
    /// holds several only in tests).
    static SHARDS: std::cell::RefCell<Vec<(u64, Shard)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Counters by label set, sharded per thread.
#[derive(Debug)]
pub struct Metrics {
    id: u64,
    shards: Mutex<Vec<Shard>>,
    store_errors: AtomicU64,
    reloads: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::default(),
            store_errors: AtomicU64::default(),
            reloads: Default::default(),
        }
    }
}

impl Metrics {
    /// Count into this thread's shard (made on the thread's first count).
    fn count(&self, f: impl FnOnce(&mut Counts)) {
        SHARDS.with(|shards| {
            let mut shards = shards.borrow_mut();
            let i = match shards.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    let shard = Shard::default();
                    self.shards.lock().unwrap_or_else(PoisonError::into_inner).push(shard.clone());
                    shards.push((self.id, shard));
                    shards.len() - 1
                }
            };
            // Only this thread and a rendering `/metrics` ever take this lock.
            f(&mut shards[i].1.lock().unwrap_or_else(PoisonError::into_inner));
        });
    }

    /// Every shard's counts added up.
    fn total(&self) -> Counts {
        let shards: Vec<Shard> = self.shards.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut all = Counts::default();
        for shard in shards {
            let c = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (tool, by) in &c.calls {
                for (k, n) in by {
                    *at(&mut all.calls, tool).entry(*k).or_default() += n;
                }
            }
            for (tool, by) in &c.call_latency {
                for (k, h) in by {
                    at(&mut all.call_latency, tool).entry(*k).or_default().add(h);
                }
            }
            for (tool, h) in &c.backend_latency {
                at(&mut all.backend_latency, tool).add(h);
            }
            for (tool, by) in &c.backend_errors {
                for (k, n) in by {
                    *at(&mut all.backend_errors, tool).entry(*k).or_default() += n;
                }
            }
            for (route, by) in &c.requests {
                for (k, n) in by {
                    *at(&mut all.requests, route).entry(*k).or_default() += n;
                }
            }
            for (route, h) in &c.request_latency {
                at(&mut all.request_latency, route).add(h);
            }
            for (limit, n) in &c.rejections {
                *at(&mut all.rejections, limit) += n;
            }
        }
        all
    }

    /// The counters and histograms, in Prometheus text exposition (label order, stable
    /// between scrapes).
    pub fn render(&self, out: &mut String) {
        let all = self.total();
        out.push_str("# HELP mcpgw_tool_calls_total Tool calls by tool, access decision and outcome.\n");
        out.push_str("# TYPE mcpgw_tool_calls_total counter\n");
        for (tool, by) in sorted(&all.calls) {
            for ((decision, status), n) in by.iter().collect::<BTreeMap<_, _>>() {
                out.push_str(&format!(
                    "mcpgw_tool_calls_total{{tool=\"{}\",decision=\"{decision}\",status=\"{}\"}} {n}\n",
                    label(tool),
                    label(status)
                ));
            }
        }
        out.push_str("# HELP mcpgw_tool_call_duration_seconds Time in the gateway per tool call, backend included.\n");
        out.push_str("# TYPE mcpgw_tool_call_duration_seconds histogram\n");
        for (tool, by) in sorted(&all.call_latency) {
            for (decision, h) in by.iter().collect::<BTreeMap<_, _>>() {
                let labels = format!("tool=\"{}\",decision=\"{decision}\"", label(tool));
                h.render(out, "mcpgw_tool_call_duration_seconds", &labels);
            }
        }
        out.push_str("# HELP mcpgw_backend_duration_seconds Backend call latency per tool.\n");
        out.push_str("# TYPE mcpgw_backend_duration_seconds histogram\n");
        for (tool, h) in sorted(&all.backend_latency) {
            h.render(out, "mcpgw_backend_duration_seconds", &format!("tool=\"{}\"", label(tool)));
        }
        out.push_str("# HELP mcpgw_backend_errors_total Failed backend calls per tool and kind.\n");
        out.push_str("# TYPE mcpgw_backend_errors_total counter\n");
        for (tool, by) in sorted(&all.backend_errors) {
            for (kind, n) in by.iter().collect::<BTreeMap<_, _>>() {
                out.push_str(&format!("mcpgw_backend_errors_total{{tool=\"{}\",kind=\"{kind}\"}} {n}\n", label(tool)));
            }
        }
        out.push_str("# HELP mcpgw_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE mcpgw_http_requests_total counter\n");
        for (route, by) in sorted(&all.requests) {
            for ((method, status), n) in by.iter().collect::<BTreeMap<_, _>>() {
                out.push_str(&format!(
                    "mcpgw_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}\n",
                    label(route),
                    label(method)
                ));
            }
        }
        out.push_str("# HELP mcpgw_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE mcpgw_http_request_duration_seconds histogram\n");
        for (route, h) in sorted(&all.request_latency) {
            h.render(out, "mcpgw_http_request_duration_seconds", &format!("route=\"{}\"", label(route)));
        }
        out.push_str("# HELP mcpgw_rate_limit_rejections_total Calls refused by a rate limit, by limit.\n");
        out.push_str("# TYPE mcpgw_rate_limit_rejections_total counter\n");
        for (limit, n) in sorted(&all.rejections) {
            out.push_str(&format!("mcpgw_rate_limit_rejections_total{{limit=\"{}\"}} {n}\n", label(limit)));
        }
        out.push_str("# HELP mcpgw_rate_limit_store_errors_total Failures of the shared rate-limit store (Redis).\n");
        out.push_str("# TYPE mcpgw_rate_limit_store_errors_total counter\n");
        out.push_str(&format!("mcpgw_rate_limit_store_errors_total {}\n", self.store_errors.load(Ordering::Relaxed)));
        out.push_str("# HELP mcpgw_config_reloads_total Policy reloads, applied or refused (bad file).\n");
        out.push_str("# TYPE mcpgw_config_reloads_total counter\n");
        for (result, n) in [("applied", &self.reloads[1]), ("refused", &self.reloads[0])] {
            out.push_str(&format!("mcpgw_config_reloads_total{{result=\"{result}\"}} {}\n", n.load(Ordering::Relaxed)));
        }
    }

    /// One finished tool call (`tool` must be a registered name or `unknown`).
    pub fn call(&self, tool: &str, decision: &'static str, status: &'static str) {
        self.count(|c| *at(&mut c.calls, tool).entry((decision, status)).or_default() += 1);
    }

    /// How long a finished tool call took in the gateway (backend included).
    pub fn call_latency(&self, tool: &str, decision: &'static str, seconds: f64) {
        self.count(|c| at(&mut c.call_latency, tool).entry(decision).or_default().observe(seconds));
    }

    /// One backend call of `tool`: its latency, and its failure kind if it failed.
    pub fn backend(&self, tool: &str, seconds: f64, error: Option<&'static str>) {
        self.count(|c| {
            at(&mut c.backend_latency, tool).observe(seconds);
            if let Some(kind) = error {
                *at(&mut c.backend_errors, tool).entry(kind).or_default() += 1;
            }
        });
    }

    /// One HTTP request answered on `route` (the matched pattern, never the raw path) with a
    /// known `method` (the caller maps any other to `OTHER`).
    pub fn request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        self.count(|c| {
            *at(&mut c.requests, route).entry((method, status)).or_default() += 1;
            at(&mut c.request_latency, route).observe(seconds);
        });
    }

    /// A configuration reload was applied (`true`) or refused (`false`).
    pub fn config_reload(&self, applied: bool) {
        self.reloads[usize::from(applied)].fetch_add(1, Ordering::Relaxed);
    }

    /// A rate-limit refusal by `limit`.
    pub fn rejected(&self, limit: &str) {
        self.count(|c| *at(&mut c.rejections, limit) += 1);
    }

    /// The shared rate-limit store failed (the call passed or failed per the failure mode).
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A map's entries in key order.
fn sorted<V>(map: &HashMap<String, V>) -> Vec<(&String, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

pub(crate) fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts made on several threads (each into its own shard) add up in one exposition, and
    /// a thread that ended keeps its counts.
    #[test]
    fn shards_of_every_thread_add_up() {
        let metrics = Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.call("echo", "allowed", "ok");
                        m.call_latency("echo", "allowed", 0.0007);
                        m.request("/mcp/invoke", "POST", 200, 0.0007);
                    }
                    m.rejected("per_user");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap_or_else(|_| panic!("a counting thread panicked"));
        }
        metrics.call("echo", "denied", "denied");
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(
            out.contains("mcpgw_tool_calls_total{tool=\"echo\",decision=\"allowed\",status=\"ok\"} 4000\n"),
            "{out}"
        );
        assert!(out.contains("mcpgw_tool_calls_total{tool=\"echo\",decision=\"denied\",status=\"denied\"} 1\n"));
        assert!(out.contains(
            "mcpgw_tool_call_duration_seconds_bucket{tool=\"echo\",decision=\"allowed\",le=\"0.001\"} 4000\n"
        ));
        assert!(out.contains("mcpgw_http_requests_total{route=\"/mcp/invoke\",method=\"POST\",status=\"200\"} 4000\n"));
        assert!(out.contains("mcpgw_rate_limit_rejections_total{limit=\"per_user\"} 4\n"));
        let mut again = String::new();
        metrics.render(&mut again);
        assert_eq!(out, again, "stable between scrapes");
    }
}
