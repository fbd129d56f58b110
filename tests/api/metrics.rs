//! `GET /metrics`: the Prometheus text format, read back with an independent parser
//! (`prometheus-parse`), served only to the configured address ranges.

use onshi::parties::Role;
use prometheus_parse::{Scrape, Value};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, INSURER};

fn sample<'a>(
    scrape: &'a Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(k).is_some_and(|have| have == *v))
    })
}

#[tokio::test]
async fn requests_the_audit_queue_and_the_pool_are_exported() {
    let app = spawn_app().await;
    let facility = app.party(Role::Facility, &[]).await;
    let query = json!({"insurer_number": INSURER, "number": "1", "birth_date": "1980-04-01"});
    for _ in 0..3 {
        let (status, _) = app.call("/v1/eligibility", &facility, &query).await;
        assert_eq!(status, 200);
    }
    let (status, _) = app.call("/v1/eligibility", &facility, &json!({})).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call(
            "/v1/eligibility/bulk",
            &facility,
            &json!({"queries": [query]}),
        )
        .await;
    assert_eq!(status, 202);

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("an independent parser reads the exposition");

    let ok = sample(
        &scrape,
        "onshi_http_requests_total",
        &[
            ("route", "/v1/eligibility"),
            ("status", "200"),
            ("method", "POST"),
        ],
    )
    .expect("the checks are counted under their route pattern");
    assert!(
        matches!(ok.value, Value::Counter(n) if n >= 3.0),
        "{:?}",
        ok.value
    );
    assert!(sample(
        &scrape,
        "onshi_http_requests_total",
        &[("route", "/v1/eligibility"), ("status", "400")]
    )
    .is_some());
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "onshi_http_request_duration_seconds"
                && matches!(s.value, Value::Histogram(_))),
        "the latency is a histogram"
    );
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "onshi_audit_commit_duration_seconds"));
    for gauge in ["onshi_audit_queue_depth", "onshi_db_pool_waiting"] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == gauge),
            "{gauge}: {text}"
        );
    }
    assert!(sample(&scrape, "onshi_db_pool_connections", &[("state", "in_use")]).is_some());
    // The test's own database holds the one bulk inquiry, in whatever state the worker has it.
    let jobs: f64 = ["queued", "working", "done"]
        .iter()
        .map(|state| {
            match sample(&scrape, "onshi_bulk_jobs", &[("state", state)])
                .unwrap_or_else(|| panic!("bulk jobs {state}: {text}"))
                .value
            {
                Value::Gauge(n) => n,
                ref other => panic!("{other:?}"),
            }
        })
        .sum();
    assert_eq!(jobs, 1.0);
    let groups = scrape
        .samples
        .iter()
        .find(|s| s.metric == "onshi_check_group_size")
        .expect("the single checks' groups are a histogram");
    assert!(
        matches!(&groups.value, Value::Histogram(buckets) if buckets.iter().any(|b| b.count >= 3.0)),
        "{:?}",
        groups.value
    );
    // No path with an id, no token, no person's data in the labels.
    assert!(!text.contains(&facility));
}

#[tokio::test]
async fn other_addresses_are_refused() {
    let app = spawn_app_with(|s| {
        s.metrics_allow = onshi::api::limits::TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    })
    .await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "auth.forbidden");
}
