use onshi::parties::Role;
use serde_json::Value;

use crate::helpers::{
    my_number, spawn_app, status_and_json, Csv, FOREIGN_INSURER, HEADER, INSURER, OTHER_INSURER,
};

const KEY: (&str, &str, &str, &str) = (INSURER, "12", "3456", "01");

async fn send(
    app: &crate::helpers::TestApp,
    token: &str,
    batch: &str,
    csv: String,
) -> (u16, Value) {
    status_and_json(app.upload(token, batch, csv).await).await
}

#[tokio::test]
async fn a_batch_is_applied_once_and_a_repeat_changes_nothing() {
    let app = spawn_app().await;
    let token = app.party(Role::Insurer, &[INSURER]).await;
    let csv = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .acquire(2, (INSURER, "12", "3456", "02"), "1982-06-01", "2020-04-01")
        .lose((INSURER, "12", "3456", "02"), "2024-01-01", "99")
        .build();
    let (status, report) = send(&app, &token, "batch-1", csv.clone()).await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(report["status"], "applied");
    assert_eq!(
        (
            report["rows"].as_u64(),
            report["acquired"].as_u64(),
            report["lost"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );

    let (status, again) = send(&app, &token, "batch-1", csv).await;
    assert_eq!(status, 200);
    assert_eq!(again, report, "the first answer, unchanged");
    assert_eq!(app.count("coverages").await, 2);
    assert_eq!(app.count("coverage_versions").await, 2);

    let got: Value = app
        .http
        .get(format!("{}/v1/enrollments/batch-1", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, report);
    let other = app.party(Role::Insurer, &[OTHER_INSURER]).await;
    let response = app
        .http
        .get(format!("{}/v1/enrollments/batch-1", app.address))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "another insurer cannot read the report"
    );
}

#[tokio::test]
async fn rejected_lines_are_all_reported_and_nothing_is_applied() {
    let app = spawn_app().await;
    let token = app.party(Role::Insurer, &[INSURER]).await;
    let mut bad_mn = my_number(5);
    bad_mn.replace_range(11..12, if bad_mn.ends_with('0') { "1" } else { "0" });
    let csv = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .row(&[
            ("change", "acquire"),
            ("individual_number", &bad_mn),
            ("insurer_number", INSURER),
            ("number", "1"),
        ])
        .row(&[
            ("change", "update"),
            ("insurer_number", INSURER),
            ("number", "3456"),
            ("copay_ratio", "020"),
        ])
        .row(&[
            ("change", "merge"),
            ("insurer_number", INSURER),
            ("number", "1"),
        ])
        .build();
    let (status, report) = send(&app, &token, "bad-1", csv).await;
    assert_eq!(status, 422, "{report:#}");
    assert_eq!(report["error"]["code"], "enrollment.rejected");
    assert_eq!(report["status"], "rejected");
    assert_eq!(report["rejected_lines"], 3);
    let errors = report["errors"].as_array().unwrap();
    let has = |line: u64, column: &str, code: &str| {
        errors
            .iter()
            .any(|e| e["line"] == line && e["column"] == column && e["code"] == code)
    };
    assert!(
        has(3, "individual_number", "individual_number.check_digit"),
        "{errors:#?}"
    );
    assert!(has(3, "name", "name.required"), "{errors:#?}");
    assert!(
        has(4, "effective_on", "effective_on.required"),
        "{errors:#?}"
    );
    assert!(has(5, "change", "change.unknown_code"), "{errors:#?}");
    assert!(
        !report.to_string().contains(&bad_mn[..11]),
        "the My Number is never echoed"
    );
    assert_eq!(app.count("coverages").await, 0);
    assert_eq!(app.count("persons").await, 0);

    let (status, again) = send(&app, &token, "bad-1", Csv::new().build()).await;
    assert_eq!(
        (status, again["errors"].clone()),
        (422, report["errors"].clone()),
        "repeat answers the same"
    );
}

#[tokio::test]
async fn conflicts_with_stored_coverages_are_line_errors() {
    let app = spawn_app().await;
    let token = app.party(Role::Insurer, &[INSURER]).await;
    let first = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .build();
    assert_eq!(send(&app, &token, "one", first).await.0, 200);
    let csv = Csv::new()
        .acquire(2, KEY, "1990-01-01", "2021-04-01")
        .lose((INSURER, "12", "9999", "01"), "2024-01-01", "99")
        .lose(KEY, "2019-01-01", "99")
        .row(&[
            ("change", "update"),
            ("insurer_number", INSURER),
            ("symbol", "12"),
            ("number", "3456"),
            ("branch", "01"),
            ("effective_on", "2019-01-01"),
            ("copay_ratio", "020"),
        ])
        .build();
    let (status, report) = send(&app, &token, "two", csv).await;
    assert_eq!(status, 422, "{report:#}");
    let codes: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert!(codes.contains(&(2, "coverage.already_active")), "{codes:?}");
    assert!(codes.contains(&(3, "coverage.not_active")), "{codes:?}");
    assert!(
        codes.contains(&(4, "lost_on.before_acquired_on"))
            || codes.contains(&(5, "effective_on.before_latest_change")),
        "{codes:?}"
    );
    assert_eq!(app.count("coverages").await, 1);
    assert_eq!(app.count("coverage_losses").await, 0);
}

#[tokio::test]
async fn a_file_with_one_foreign_row_is_rejected_whole() {
    let app = spawn_app().await;
    let token = app.party(Role::Insurer, &[INSURER]).await;
    let csv = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .acquire(
            2,
            (FOREIGN_INSURER, "1", "2", "01"),
            "1980-04-01",
            "2020-04-01",
        )
        .build();
    let (status, report) = send(&app, &token, "foreign", csv).await;
    assert_eq!(status, 422);
    assert_eq!(report["errors"][0]["code"], "insurer_number.not_owned");
    assert_eq!(report["errors"][0]["line"], 3);
    assert_eq!(app.count("coverages").await, 0);
    assert_eq!(app.count("coverage_versions").await, 0);
    assert_eq!(
        app.count("persons").await,
        0,
        "not even the own row's person"
    );
}

#[tokio::test]
async fn header_encoding_and_request_problems() {
    let app = spawn_app().await;
    let token = app.party(Role::Insurer, &[INSURER]).await;
    let (status, report) = send(&app, &token, "h1", format!("{HEADER},favourite_colour\n")).await;
    assert_eq!(status, 422);
    assert_eq!(report["errors"][0]["code"], "column.unknown");
    assert_eq!(report["errors"][0]["column"], "favourite_colour");

    let mut bytes = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .build()
        .into_bytes();
    let at = bytes.iter().position(|&b| b == 0xE6).unwrap();
    bytes[at] = 0xFF;
    let response = app.upload(&token, "utf8", bytes).await;
    assert_eq!(response.status(), 422);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["errors"][0]["code"], "row.encoding");
    assert_eq!(report["errors"][0]["line"], 2);

    let response = app
        .http
        .post(format!("{}/v1/enrollments", app.address))
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body(Csv::new().build())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key.required");
    assert_eq!(body["error"]["field"], "Idempotency-Key");

    let facility = app.party(Role::Facility, &[]).await;
    assert_eq!(
        app.upload(&facility, "f", Csv::new().build())
            .await
            .status(),
        403
    );
    assert_eq!(app.count("coverages").await, 0);
}

#[tokio::test]
async fn the_my_number_is_stored_nowhere() {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(7, KEY, "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let dump = std::process::Command::new("pg_dump")
        .arg(&app.database_url)
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("3456"), "the dump holds the coverage");
    assert!(
        !text.contains(&my_number(7)),
        "the My Number must not be stored"
    );
    assert_eq!(app.count("persons").await, 1);
}

#[tokio::test]
async fn lines_for_the_same_key_apply_in_file_order() {
    let app = spawn_app().await;
    let csv = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2010-04-01")
        .lose(KEY, "2015-04-01", "03")
        .acquire(2, KEY, "1999-09-09", "2018-04-01")
        .build();
    app.load(&csv).await;
    let db = app.db().await;
    let rows = db
        .query(
            "select person_id, lost_on is null from coverages order by id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(!rows[0].get::<_, bool>(1) && rows[1].get::<_, bool>(1));
    assert_ne!(rows[0].get::<_, i64>(0), rows[1].get::<_, i64>(0));
}

/// An upload that stops mid-file (the sender stalls with the connection open) is refused with
/// 408 after the idle limit, and nothing of it is applied.
#[tokio::test]
async fn a_stalled_upload_is_refused_and_changes_nothing() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.upload_idle_seconds = std::time::Duration::from_secs(1)
    })
    .await;
    let token = app.party(Role::Insurer, &[INSURER]).await;
    let csv = Csv::new()
        .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
        .build();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(1);
    sender.send(Ok(csv)).await.unwrap();
    // The sender stays alive (and silent) until the answer has arrived.
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    });
    let body = reqwest::Body::wrap_stream(stream);
    let response = app.upload(&token, "stalled-upload", body).await;
    drop(sender);
    assert_eq!(response.status(), 408);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body.timeout");
    assert_eq!(app.count("coverages").await, 0);
    assert_eq!(app.count("persons").await, 0);
}
