use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_behind_proxy, Csv, INSURER};

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    let response = app.get("/nowhere").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route.not_found");
}

/// A known path asked with a method it does not take is 405 with `Allow`, not 404; the role of
/// the caller does not matter (nothing is authenticated for it).
#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/v1/eligibility", "POST"),
        (reqwest::Method::DELETE, "/v1/parties/7/revoke", "POST"),
        (reqwest::Method::PUT, "/v1/enrollments/some-batch", "GET"),
        (reqwest::Method::POST, "/healthz", "GET"),
    ] {
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response.headers()["allow"].to_str().unwrap(),
            allow,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "route.method_not_allowed");
    }
    let response = app
        .http
        .delete(format!("{}/v1/nothing-here", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_lost_database_answers_503_and_the_service_recovers() {
    let app = spawn_app_behind_proxy().await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let token = app.party(Role::Facility, &[]).await;
    let query = json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
                       "birth_date": "1980-04-01"});
    assert_eq!(
        app.post_json("/v1/eligibility", &token, &query)
            .await
            .status(),
        200
    );
    let before = app.count("disclosures").await;

    let proxy = app.proxy.as_ref().unwrap();
    proxy.cut();
    assert_eq!(app.get("/readyz").await.status(), 503);
    let response = app.post_json("/v1/eligibility", &token, &query).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service.unavailable");
    assert!(
        !body.to_string().contains("postgres"),
        "no internal detail: {body}"
    );
    assert_eq!(
        app.count("disclosures").await,
        before,
        "no answer without its audit record"
    );

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if app
            .post_json("/v1/eligibility", &token, &query)
            .await
            .status()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the service answers again once the database is back"
    );
    assert_eq!(app.get("/readyz").await.status(), 200);
}

/// A statement cut by its timeout means the database did not answer in time: 503 with
/// `Retry-After` (as an unreachable database), not 500.
#[tokio::test]
async fn a_statement_timeout_is_unavailable_not_a_bug() {
    use actix_web::ResponseError;
    let app = spawn_app().await;
    let db = app.db().await;
    let error = db
        .batch_execute("set statement_timeout = '20ms'; select pg_sleep(1)")
        .await
        .unwrap_err();
    let error = anyhow::Error::new(error).context("a slow statement");
    assert!(onshi::store::is_timeout(&error));
    assert!(
        !onshi::store::is_unavailable(&error),
        "not retried as a lost session"
    );
    let response = onshi::api::error::ApiError::from(error).error_response();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}
