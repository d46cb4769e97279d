//! The console's trends: calls per second, error rate and latency percentiles per tool over
//! the last 5 and 60 minutes on this replica. The [`TrendsActor`] owns a ring of samples of the
//! cumulative counters in [`Metrics`] taken every [`SAMPLE_EVERY`]; a window is the difference
//! between the newest sample and the one at its start, so the tool-call path pays nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult};
use serde::Serialize;

use super::metrics::{Metrics, ToolTotals, BUCKETS};

/// How often the counters are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How much history is kept (the longest window).
const KEPT: Duration = Duration::from_secs(3600);
/// Most tools reported per window (the busiest first); the rest are summed as `(others)`.
const MAX_TOOLS: usize = 50;

struct Sample {
    at: Instant,
    tools: BTreeMap<String, ToolTotals>,
}

/// Owns the samples; answers [`GetTrends`].
pub struct TrendsActor {
    metrics: Arc<Metrics>,
    samples: VecDeque<Sample>,
}

impl TrendsActor {
    /// Trends of `metrics`, from a first sample taken now.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let mut actor = Self { metrics, samples: VecDeque::new() };
        actor.sample();
        actor
    }

    fn sample(&mut self) {
        let now = Instant::now();
        self.samples.push_back(Sample { at: now, tools: self.metrics.tool_totals() });
        while self.samples.len() > 2 && self.samples.get(1).is_some_and(|s| now.duration_since(s.at) >= KEPT) {
            self.samples.pop_front();
        }
    }

    /// The oldest sample no older than `window` (the start of the window).
    fn start_of(&self, now: Instant, window: Duration) -> Option<&Sample> {
        self.samples.iter().find(|s| now.duration_since(s.at) <= window + SAMPLE_EVERY / 2)
    }

    fn trends(&self) -> Trends {
        let now = Instant::now();
        let current = Sample { at: now, tools: self.metrics.tool_totals() };
        let windows = [5u64, 60]
            .into_iter()
            .map(|minutes| {
                let start = self.start_of(now, Duration::from_secs(minutes * 60));
                window(minutes, start, &current)
            })
            .collect();
        // One point per minute over the last hour, oldest first, for the charts.
        let mut points = Vec::new();
        let mut later = &current;
        for minute in 1..=60u64 {
            let Some(earlier) = self.start_of(now, Duration::from_secs(minute * 60)) else { break };
            if earlier.at >= later.at {
                break;
            }
            let d = delta_all(earlier, later);
            let seconds = later.at.duration_since(earlier.at).as_secs_f64();
            points.push(Point {
                minutes_ago: minute - 1,
                calls_per_second: d.calls as f64 / seconds,
                error_rate: ratio(d.errors, d.calls),
                p99_ms: percentile(&d.latency, 0.99),
            });
            later = earlier;
        }
        points.reverse();
        Trends { sample_seconds: SAMPLE_EVERY.as_secs(), windows, points }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn delta(before: Option<&ToolTotals>, after: &ToolTotals) -> ToolTotals {
    let zero = ToolTotals::default();
    let before = before.unwrap_or(&zero);
    let mut latency = [0; BUCKETS.len() + 1];
    for (i, l) in latency.iter_mut().enumerate() {
        *l = after.latency[i].saturating_sub(before.latency[i]);
    }
    ToolTotals {
        calls: after.calls.saturating_sub(before.calls),
        errors: after.errors.saturating_sub(before.errors),
        latency,
    }
}

fn add(into: &mut ToolTotals, d: &ToolTotals) {
    into.calls += d.calls;
    into.errors += d.errors;
    for (a, b) in into.latency.iter_mut().zip(d.latency) {
        *a += b;
    }
}

fn delta_all(earlier: &Sample, later: &Sample) -> ToolTotals {
    let mut all = ToolTotals::default();
    for (tool, after) in &later.tools {
        add(&mut all, &delta(earlier.tools.get(tool), after));
    }
    all
}

/// The `q` quantile in milliseconds, interpolated inside its bucket (as Prometheus's
/// `histogram_quantile`); `None` without observations. Above the last bound: the last bound.
fn percentile(buckets: &[u64; BUCKETS.len() + 1], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0.0;
    for (i, n) in buckets.iter().enumerate() {
        let next = seen + *n as f64;
        if next >= rank && *n > 0 {
            let Some(upper) = BUCKETS.get(i) else { return BUCKETS.last().map(|b| b * 1000.0) };
            let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            return Some((lower + (upper - lower) * ((rank - seen) / *n as f64)) * 1000.0);
        }
        seen = next;
    }
    BUCKETS.last().map(|b| b * 1000.0)
}

fn window(minutes: u64, start: Option<&Sample>, current: &Sample) -> Window {
    let Some(start) = start else {
        return Window { minutes, covered_seconds: 0.0, tools: Vec::new() };
    };
    let seconds = current.at.duration_since(start.at).as_secs_f64().max(1.0);
    let mut deltas: Vec<(String, ToolTotals)> = current
        .tools
        .iter()
        .map(|(tool, after)| (tool.clone(), delta(start.tools.get(tool), after)))
        .filter(|(_, d)| d.calls > 0)
        .collect();
    deltas.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then_with(|| a.0.cmp(&b.0)));
    if deltas.len() > MAX_TOOLS {
        let mut others = ToolTotals::default();
        for (_, d) in deltas.drain(MAX_TOOLS..) {
            add(&mut others, &d);
        }
        deltas.push(("(others)".into(), others));
    }
    let tools = deltas
        .into_iter()
        .map(|(tool, d)| ToolTrend {
            tool,
            calls: d.calls,
            calls_per_second: d.calls as f64 / seconds,
            error_rate: ratio(d.errors, d.calls),
            p50_ms: percentile(&d.latency, 0.5),
            p99_ms: percentile(&d.latency, 0.99),
        })
        .collect();
    Window { minutes, covered_seconds: seconds, tools }
}

impl Actor for TrendsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SAMPLE_EVERY, |act, _| act.sample());
    }
}

/// Ask for the trends now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Trends")]
pub struct GetTrends;

impl Handler<GetTrends> for TrendsActor {
    type Result = MessageResult<GetTrends>;

    fn handle(&mut self, _: GetTrends, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.trends())
    }
}

/// This replica's trends (`GET /admin/overview`).
#[derive(Debug, Clone, Serialize)]
pub struct Trends {
    /// Seconds between samples (the resolution of every window).
    pub sample_seconds: u64,
    /// The last 5 and the last 60 minutes (or as much as this replica has seen).
    pub windows: Vec<Window>,
    /// One point per minute over the last hour, oldest first.
    pub points: Vec<Point>,
}

/// One window of [`Trends`].
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Its nominal length.
    pub minutes: u64,
    /// How much of it this replica has seen.
    pub covered_seconds: f64,
    /// Tools called in it, the busiest first.
    pub tools: Vec<ToolTrend>,
}

/// One tool in one window.
#[derive(Debug, Clone, Serialize)]
pub struct ToolTrend {
    /// Tool name (`unknown` for calls naming no registered tool).
    pub tool: String,
    /// Calls finished in the window.
    pub calls: u64,
    /// Their rate.
    pub calls_per_second: f64,
    /// Share that failed.
    pub error_rate: f64,
    /// Median time in the gateway, backend included.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// One minute of the chart.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Minutes before now at which this minute ends.
    pub minutes_ago: u64,
    /// Every tool's calls per second.
    pub calls_per_second: f64,
    /// Share that failed.
    pub error_rate: f64,
    /// 99th percentile latency of every call.
    pub p99_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_inside_their_bucket() {
        let mut b = [0u64; BUCKETS.len() + 1];
        assert_eq!(percentile(&b, 0.5), None);
        b[0] = 100; // all at or below 0.5 ms
        let p50 = percentile(&b, 0.5).unwrap_or_default();
        assert!((p50 - 0.25).abs() < 1e-9, "{p50}");
        b[BUCKETS.len()] = 100; // half above 30 s
        assert_eq!(percentile(&b, 0.99), Some(30_000.0));
    }

    #[test]
    fn a_window_is_the_difference_of_two_samples() {
        let metrics = Arc::new(Metrics::default());
        metrics.call("a", "allowed", "ok");
        let mut actor = TrendsActor::new(metrics.clone());
        for _ in 0..3 {
            metrics.call("a", "allowed", "ok");
            metrics.call_latency("a", "allowed", 0.002);
        }
        metrics.call("a", "allowed", "backend_error");
        actor.samples[0].at -= Duration::from_secs(60);
        let t = actor.trends();
        let five = &t.windows[0];
        assert_eq!(five.tools.len(), 1);
        assert_eq!(five.tools[0].calls, 4, "the call before the first sample is not in the window");
        assert!((five.tools[0].error_rate - 0.25).abs() < 1e-9);
        assert!(five.tools[0].p50_ms.is_some_and(|p| p > 1.0 && p <= 2.5));
        assert_eq!(t.points.len(), 1);
    }
}
