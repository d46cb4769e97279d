//! The gateway's counters and latency histograms, written on the hot path with atomics only
//! (no lock held across an await); `GET /metrics` renders them.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

/// Upper bounds (seconds) of the latency histograms' buckets: sub-millisecond gateway work up
/// to slow backends.
pub const BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus histogram with fixed buckets, updated with atomics only.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Observations per bucket (the last one: above every bound), not cumulative.
    pub fn counts(&self) -> [u64; BUCKETS.len() + 1] {
        let mut out = [0; BUCKETS.len() + 1];
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
        let below: u64 = out.iter().sum();
        out[BUCKETS.len()] = self.count.load(Ordering::Relaxed).saturating_sub(below);
        out
    }

    /// Count one observation of `seconds`.
    pub fn observe(&self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` lines of metric `name` with `labels` (`a="b",…`).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            out.push_str(&format!("{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}\n"));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}\n"));
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        out.push_str(&format!("{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}\n"));
    }
}

/// One tool's cumulative counters at one moment (see [`Metrics::tool_totals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolTotals {
    /// Calls finished.
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
    /// Latency observations per bucket of [`BUCKETS`] (last: above every bound).
    pub latency: [u64; BUCKETS.len() + 1],
}

/// Counters by label set.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: DashMap<(String, &'static str, String), AtomicU64>,
    call_latency: DashMap<(String, &'static str), Histogram>,
    backend_latency: DashMap<String, Histogram>,
    backend_errors: DashMap<(String, &'static str), AtomicU64>,
    requests: DashMap<(String, String, u16), AtomicU64>,
    request_latency: DashMap<String, Histogram>,
    rejections: DashMap<String, AtomicU64>,
    store_errors: AtomicU64,
    reloads: [AtomicU64; 2],
}

/// `map[key]`, inserting the default on first use (the read path takes no write lock and, for
/// string keys, allocates nothing).
fn slot<'a, K, V, Q>(map: &'a DashMap<K, V>, key: &Q) -> dashmap::mapref::one::Ref<'a, K, V>
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    V: Default,
    Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    if let Some(v) = map.get(key) {
        return v;
    }
    map.entry(key.to_owned()).or_default().downgrade()
}

impl Metrics {
    /// The counters and histograms, in Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP mcpgw_tool_calls_total Tool calls by tool, access decision and outcome.\n");
        out.push_str("# TYPE mcpgw_tool_calls_total counter\n");
        let mut calls: Vec<_> =
            self.calls.iter().map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed))).collect();
        calls.sort();
        for ((tool, decision, status), n) in calls {
            out.push_str(&format!(
                "mcpgw_tool_calls_total{{tool=\"{}\",decision=\"{decision}\",status=\"{}\"}} {n}\n",
                label(&tool),
                label(&status)
            ));
        }
        out.push_str("# HELP mcpgw_tool_call_duration_seconds Time in the gateway per tool call, backend included.\n");
        out.push_str("# TYPE mcpgw_tool_call_duration_seconds histogram\n");
        for e in sorted(&self.call_latency) {
            let (tool, decision) = e.0;
            e.1.render(
                out,
                "mcpgw_tool_call_duration_seconds",
                &format!("tool=\"{}\",decision=\"{decision}\"", label(&tool)),
            );
        }
        out.push_str("# HELP mcpgw_backend_duration_seconds Backend call latency per tool.\n");
        out.push_str("# TYPE mcpgw_backend_duration_seconds histogram\n");
        for (tool, h) in sorted(&self.backend_latency) {
            h.render(out, "mcpgw_backend_duration_seconds", &format!("tool=\"{}\"", label(&tool)));
        }
        out.push_str("# HELP mcpgw_backend_errors_total Failed backend calls per tool and kind.\n");
        out.push_str("# TYPE mcpgw_backend_errors_total counter\n");
        for ((tool, kind), n) in sorted(&self.backend_errors) {
            let n = n.load(Ordering::Relaxed);
            out.push_str(&format!("mcpgw_backend_errors_total{{tool=\"{}\",kind=\"{kind}\"}} {n}\n", label(&tool)));
        }
        out.push_str("# HELP mcpgw_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE mcpgw_http_requests_total counter\n");
        for ((route, method, status), n) in sorted(&self.requests) {
            let n = n.load(Ordering::Relaxed);
            out.push_str(&format!(
                "mcpgw_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}\n",
                label(&route),
                label(&method)
            ));
        }
        out.push_str("# HELP mcpgw_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE mcpgw_http_request_duration_seconds histogram\n");
        for (route, h) in sorted(&self.request_latency) {
            h.render(out, "mcpgw_http_request_duration_seconds", &format!("route=\"{}\"", label(&route)));
        }
        out.push_str("# HELP mcpgw_rate_limit_rejections_total Calls refused by a rate limit, by limit.\n");
        out.push_str("# TYPE mcpgw_rate_limit_rejections_total counter\n");
        let mut rejections: Vec<_> =
            self.rejections.iter().map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed))).collect();
        rejections.sort();
        for (limit, n) in rejections {
            out.push_str(&format!("mcpgw_rate_limit_rejections_total{{limit=\"{}\"}} {n}\n", label(&limit)));
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

    /// Per tool: calls so far, of which failed (any outcome but `ok` and `tool_error`), and the
    /// latency bucket counts of every call (for the console's trends; asks nothing of the hot path).
    pub fn tool_totals(&self) -> std::collections::BTreeMap<String, ToolTotals> {
        let mut out: std::collections::BTreeMap<String, ToolTotals> = std::collections::BTreeMap::new();
        for e in self.calls.iter() {
            let (tool, _, status) = e.key();
            let n = e.value().load(Ordering::Relaxed);
            let t = out.entry(tool.clone()).or_default();
            t.calls += n;
            if status != "ok" && status != "tool_error" {
                t.errors += n;
            }
        }
        for e in self.call_latency.iter() {
            let t = out.entry(e.key().0.clone()).or_default();
            for (sum, n) in t.latency.iter_mut().zip(e.value().counts()) {
                *sum += n;
            }
        }
        out
    }

    /// One finished tool call (`tool` must be a registered name or `unknown`).
    pub fn call(&self, tool: &str, decision: &'static str, status: &str) {
        let key = (tool.to_owned(), decision, status.to_owned());
        if let Some(c) = self.calls.get(&key) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.calls.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// How long a finished tool call took in the gateway (backend included).
    pub fn call_latency(&self, tool: &str, decision: &'static str, seconds: f64) {
        slot(&self.call_latency, &(tool.to_owned(), decision)).observe(seconds);
    }

    /// One backend call of `tool`: its latency, and its failure kind if it failed.
    pub fn backend(&self, tool: &str, seconds: f64, error: Option<&'static str>) {
        slot(&self.backend_latency, tool).observe(seconds);
        if let Some(kind) = error {
            slot(&self.backend_errors, &(tool.to_owned(), kind)).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One HTTP request answered on `route` (the matched pattern, never the raw path).
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        slot(&self.requests, &(route.to_owned(), method.to_owned(), status)).fetch_add(1, Ordering::Relaxed);
        slot(&self.request_latency, route).observe(seconds);
    }

    /// A configuration reload was applied (`true`) or refused (`false`).
    pub fn config_reload(&self, applied: bool) {
        self.reloads[usize::from(applied)].fetch_add(1, Ordering::Relaxed);
    }

    /// A rate-limit refusal by `limit`.
    pub fn rejected(&self, limit: &str) {
        self.rejections.entry(limit.to_owned()).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// The shared rate-limit store failed (the call passed or failed per the failure mode).
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A map's entries in label order, so the exposition is stable between scrapes.
fn sorted<K: Ord + Clone + std::hash::Hash + Eq, V>(
    map: &DashMap<K, V>,
) -> Vec<(K, dashmap::mapref::multiple::RefMulti<'_, K, V>)> {
    let mut entries: Vec<_> = map.iter().map(|e| (e.key().clone(), e)).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

pub(crate) fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
