//! What an operator watches, in the Prometheus text format (`GET /metrics`, served only to the
//! address ranges of `metrics_allow`): requests by route and status, their latency, the audit
//! queue and its commit latency, the database pool, the limiters' refusals, the size of the
//! groups single checks are looked up in, the bulk inquiries by state.
//!
//! The counters are the process's (one registry, whatever the number of servers it runs); the
//! gauges of the pool and the audit queue are read from the server asked when it is scraped.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric onshi exports.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub audit_commit_seconds: HistogramVec,
    pub audit_queue_depth: IntGauge,
    pub pool_connections: IntGaugeVec,
    pub pool_waiting: IntGauge,
    pub refusals: IntCounterVec,
    pub check_group_size: Histogram,
    pub bulk_jobs: IntGaugeVec,
}

/// Latency buckets from half a millisecond to ten seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("onshi".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route and status.",
            ),
            &["method", "route", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to answer a request.")
                .buckets(BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let audit_commit_seconds = HistogramVec::new(
            HistogramOpts::new(
                "audit_commit_duration_seconds",
                "Time to commit one group of audit records, by outcome.",
            )
            .buckets(BUCKETS.to_vec()),
            &["outcome"],
        )?;
        let audit_queue_depth = IntGauge::new(
            "audit_queue_depth",
            "Requests waiting for their audit records to be written.",
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database connections of the pool, by state.",
            ),
            &["state"],
        )?;
        let pool_waiting = IntGauge::new(
            "db_pool_waiting",
            "Requests waiting for a database connection.",
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "limit_refusals_total",
                "Requests refused by a limiter, by reason.",
            ),
            &["reason"],
        )?;
        let check_group_size = Histogram::with_opts(
            HistogramOpts::new(
                "check_group_size",
                "Single checks answered by one database look-up (checks arriving together).",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
            ]),
        )?;
        let bulk_jobs = IntGaugeVec::new(
            Opts::new(
                "bulk_jobs",
                "Bulk inquiries kept, by state: queued (nothing answered yet), working, done.",
            ),
            &["state"],
        )?;
        registry.register(Box::new(check_group_size.clone()))?;
        registry.register(Box::new(bulk_jobs.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(audit_commit_seconds.clone()))?;
        registry.register(Box::new(audit_queue_depth.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_waiting.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            request_seconds,
            audit_commit_seconds,
            audit_queue_depth,
            pool_connections,
            pool_waiting,
            refusals,
            check_group_size,
            bulk_jobs,
        })
    }

    /// One answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.request_seconds
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for metrics this registry made.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new().expect("the metric definitions are valid"))
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_under_its_route_and_status() {
        let m = metrics();
        m.observe_request("POST", "/v1/unit-test", 200, Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains(
                "onshi_http_requests_total{method=\"POST\",route=\"/v1/unit-test\",status=\"200\"}"
            ),
            "{text}"
        );
        assert!(text.contains("onshi_http_request_duration_seconds_bucket"));
    }
}
