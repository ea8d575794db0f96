//! bulkheadd's metrics in the Prometheus text format, served at `GET /metrics` on the API socket and, with
//! `--metrics-address`, on a loopback TCP listener ([`crate::listen`]).
//!
//! Contract: two kinds of metrics. Those observed as they happen live in
//! [`Metrics`] for the daemon's lifetime: API requests by route and outcome
//! with their latency, and store commit latency (fed by the store's commit
//! observer). Those that describe the host are read at scrape time
//! ([`snapshot`]): objects, the kernel's per-rule counters of every
//! endpoint, the engine's event and reconcile totals. A scrape never
//! changes anything (the kernel's counters are read, not reset) and holds
//! the engine lock only while copying state. Every name is listed in
//! `docs/metrics.md`.

mod routes;
mod snapshot;
mod text;

use std::sync::Arc;
use std::time::Duration;

use bulkhead_engine::Engine;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

pub use routes::{outcome, route};
pub use snapshot::allows;

/// A label set: label name → value.
pub(crate) type Labels = Vec<(&'static str, String)>;

/// Latency buckets from 100µs to ~6.5s: API operations range from a
/// listing (sub-millisecond) to an endpoint create (netlink, nftables,
/// fsync: milliseconds to a second under load).
#[derive(Debug, Clone, Copy)]
struct Latency;

impl MetricConstructor<Histogram> for Latency {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0001, 4.0, 9))
    }
}

/// The metrics observed while the daemon runs.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    api_requests: Family<Labels, Counter>,
    api_duration: Family<Labels, Histogram, Latency>,
    commit_duration: Histogram,
    commit_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bulkhead");
        let api_requests = Family::<Labels, Counter>::default();
        let api_duration = Family::new_with_constructor(Latency);
        let commit_duration = Latency.new_metric();
        let commit_failures = Counter::default();
        registry.register(
            "api_requests",
            "API requests executed, by route (method and path template) and outcome (ok or the error code)",
            api_requests.clone(),
        );
        registry.register_with_unit(
            "api_request_duration",
            "Time to execute an API request, by route",
            Unit::Seconds,
            api_duration.clone(),
        );
        registry.register_with_unit(
            "store_commit_duration",
            "Time to commit a store write transaction, fsync included",
            Unit::Seconds,
            commit_duration.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Store write transactions whose commit failed",
            commit_failures.clone(),
        );
        Self {
            registry,
            api_requests,
            api_duration,
            commit_duration,
            commit_failures,
        }
    }

    /// Counts one API request on `route` that ended with `outcome` (`ok`
    /// or an error code) after `elapsed`.
    pub fn observe_api(&self, route: &'static str, outcome: &str, elapsed: Duration) {
        let labels = vec![("route", route.to_owned())];
        let mut counted = labels.clone();
        counted.push(("outcome", outcome.to_owned()));
        self.api_requests.get_or_create(&counted).inc();
        self.api_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one store commit.
    pub fn observe_commit(&self, elapsed: Duration, ok: bool) {
        self.commit_duration.observe(elapsed.as_secs_f64());
        if !ok {
            self.commit_failures.inc();
        }
    }

    /// The store hook that feeds [`Metrics::observe_commit`].
    pub fn commit_observer(self: &Arc<Self>) -> bulkhead_store::CommitObserver {
        let me = Arc::clone(self);
        bulkhead_store::CommitObserver(Box::new(move |elapsed, ok| me.observe_commit(elapsed, ok)))
    }

    /// The whole exposition in the Prometheus text format (0.0.4, see
    /// [`text`]): what was observed, then what the host holds now (read
    /// from `engine` and the kernel).
    pub fn render(&self, engine: &Engine) -> String {
        text::classic(&self.render_openmetrics(engine))
    }

    /// [`Metrics::render`] as the library writes it: OpenMetrics.
    pub fn render_openmetrics(&self, engine: &Engine) -> String {
        let mut out = String::new();
        let host = snapshot::registry(engine);
        // Writing into a String cannot fail, nor can the library's
        // encoders for the metric types used here.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &host);
        let _ = encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_requests_and_commits_are_exposed_under_prometheus_names() {
        let m = Metrics::new();
        m.observe_api("GET /v1/networks", "ok", Duration::from_millis(2));
        m.observe_api("GET /v1/networks", "ok", Duration::from_millis(3));
        m.observe_api("GET /v1/networks", "not_found", Duration::from_millis(1));
        m.observe_commit(Duration::from_millis(4), true);
        m.observe_commit(Duration::from_millis(5), false);
        let mut out = String::new();
        encode_registry(&mut out, &m.registry).unwrap();
        for line in [
            "bulkhead_api_requests_total{route=\"GET /v1/networks\",outcome=\"ok\"} 2",
            "bulkhead_api_requests_total{route=\"GET /v1/networks\",outcome=\"not_found\"} 1",
            "bulkhead_api_request_duration_seconds_count{route=\"GET /v1/networks\"} 3",
            "bulkhead_store_commit_duration_seconds_count 2",
            "bulkhead_store_commit_failures_total 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in\n{out}");
        }
    }
}
