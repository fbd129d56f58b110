//! Abuse limits over HTTP: per-party rates and the enumeration watch.

use onshi::parties::Role;
use serde_json::json;

use crate::helpers::{spawn_app_with, Csv, INSURER};

fn query(number: &str) -> serde_json::Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": number, "branch": "01",
           "birth_date": "1980-04-01"})
}

async fn refusal(response: reqwest::Response) -> (u16, String, Option<u64>) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body: serde_json::Value = response.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, retry_after)
}

#[tokio::test]
async fn a_party_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = spawn_app_with(|s| {
        s.rate_per_second = 1;
        s.rate_burst = 3;
    })
    .await;
    let noisy = app.party(Role::Facility, &[]).await;
    let quiet = app.party(Role::Facility, &[]).await;
    for _ in 0..3 {
        let response = app.post_json("/v1/eligibility", &noisy, &query("1")).await;
        assert_eq!(response.status(), 200);
    }
    let disclosures = app.count("disclosures").await;
    let (status, code, retry_after) =
        refusal(app.post_json("/v1/eligibility", &noisy, &query("1")).await).await;
    assert_eq!((status, code.as_str()), (429, "rate.limited"));
    assert_eq!(retry_after, Some(1));
    assert_eq!(
        app.count("disclosures").await,
        disclosures,
        "a refused request discloses nothing"
    );
    let response = app.post_json("/v1/eligibility", &quiet, &query("1")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_party_whose_checks_mostly_find_nothing_is_paused() {
    let app = spawn_app_with(|s| {
        s.enumeration_misses = 5;
        s.enumeration_cooloff_seconds = 600;
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let prober = app.party(Role::Facility, &[]).await;
    let desk = app.party(Role::Facility, &[]).await;
    // Steady work with a few misses among many hits is never flagged.
    let mut queries = vec![query("3456"); 40];
    queries.extend((0..6).map(|n| query(&format!("9{n}"))));
    let response = app
        .post_json(
            "/v1/eligibility/batch",
            &desk,
            &json!({ "queries": queries }),
        )
        .await;
    assert_eq!(response.status(), 200);
    for n in 0..5 {
        let response = app
            .post_json("/v1/eligibility", &prober, &query(&format!("7{n}")))
            .await;
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["validity"], 4);
    }
    let (status, code, retry_after) = refusal(
        app.post_json("/v1/eligibility", &prober, &query("3456"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (429, "rate.enumeration_suspected"));
    assert!(
        retry_after.is_some_and(|s| s > 590 && s <= 600),
        "{retry_after:?}"
    );
    let response = app
        .post_json("/v1/eligibility", &desk, &query("3456"))
        .await;
    assert_eq!(response.status(), 200, "the desk is not paused");
}
