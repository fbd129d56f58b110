use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Csv, INSURER};

#[tokio::test]
async fn a_batch_answers_in_order_with_per_query_errors() {
    let app = spawn_app().await;
    let mut csv = Csv::new();
    for i in 0..50u64 {
        let number = format!("{}", 1000 + i);
        csv = csv.acquire(
            i + 1,
            (INSURER, "12", &number, "01"),
            "1970-01-01",
            "2020-04-01",
        );
    }
    app.load(&csv.build()).await;
    let token = app.party(Role::Claims, &[]).await;
    let mut queries: Vec<Value> = (0..50)
        .map(|i| {
            json!({"insurer_number": INSURER, "symbol": "12", "number": format!("{}", 1000 + i),
                        "branch": "01", "birth_date": "1970-01-01", "date_of_care": "2026-11-24"})
        })
        .collect();
    queries.insert(
        10,
        json!({"insurer_number": "33120016", "number": "1", "birth_date": "1970-01-01"}),
    );
    queries.insert(
        20,
        json!({"insurer_number": INSURER, "number": "424242", "birth_date": "1970-01-01"}),
    );
    queries.insert(30, json!("not an object"));

    let response = app
        .post_json(
            "/v1/eligibility/batch",
            &token,
            &json!({"queries": queries}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 53);
    assert_eq!(results[10]["error"]["code"], "insurer_number.check_digit");
    assert_eq!(results[10]["error"]["field"], "insurer_number");
    assert_eq!(results[20]["validity"], 4);
    assert_eq!(results[30]["error"]["code"], "query.not_object");
    let mut expected = 1000;
    for (i, r) in results.iter().enumerate() {
        if [10, 20, 30].contains(&i) {
            continue;
        }
        assert_eq!(r["validity"], 1, "result {i}: {r}");
        assert_eq!(
            r["coverage"]["number"],
            expected.to_string(),
            "order kept at {i}"
        );
        expected += 1;
    }
    assert_eq!(
        app.count("disclosures").await,
        51,
        "every answered query is recorded"
    );
}

#[tokio::test]
async fn batch_size_is_bounded() {
    // A batch costs a token per query: lift the rate, which is not what this test is about.
    let app = spawn_app_with(|s| s.rate_per_second = 0).await;
    let token = app.party(Role::Claims, &[]).await;
    let one = json!({"insurer_number": INSURER, "number": "1", "birth_date": "1970-01-01"});
    for count in [0usize, 10_001] {
        let body = json!({"queries": vec![one.clone(); count]});
        let response = app.post_json("/v1/eligibility/batch", &token, &body).await;
        assert_eq!(response.status(), 400, "{count} queries");
        let v: Value = response.json().await.unwrap();
        assert_eq!(v["error"]["code"], "queries.count");
    }
    let response = app
        .post_json(
            "/v1/eligibility/batch",
            &token,
            &json!({"queries": vec![one; 10_000]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 10_000);
}
