//! 公費 and 医療扶助: a payer's file (all or nothing, once per Idempotency-Key, only its own
//! payer numbers), the public expenses in eligibility answers, and the check of 医療扶助 by its
//! numbers with validity 1-4 and 6.

use onshi::parties::Role;
use serde_json::{json, Value};

use crate::bad_input::PAYER;
use crate::helpers::{my_number, Csv, TestApp, INSURER};

/// 21 精神通院 of the same prefecture, checksum-valid.
const MENTAL_PAYER: &str = "21136015";
const RECIPIENT: &str = "1234566";
const OTHER_RECIPIENT: &str = "7654320";
const HEADER: &str =
    "change,payer_number,recipient_number,individual_number,birth_date,valid_from,valid_to,self_pay_cap,month,facility_code,ticket";

fn file(lines: &[&str]) -> String {
    let mut out = format!("{HEADER}\n");
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

async fn send(app: &TestApp, token: &str, batch: &str, csv: String) -> (u16, Value) {
    let response = app
        .send(
            app.http
                .post(format!("{}/v1/public-expenses", app.address))
                .bearer_auth(token)
                .header("Content-Type", "text/csv")
                .header("Idempotency-Key", batch)
                .body(csv),
        )
        .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn assistance(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, answer) = app.call("/v1/eligibility/assistance", token, &body).await;
    assert_eq!(status, 200, "{answer:#}");
    answer
}

fn ask(recipient: &str, birth: &str, care: &str) -> Value {
    json!({"payer_number": PAYER, "recipient_number": recipient, "birth_date": birth,
           "date_of_care": care})
}

/// The facility of the tests' tokens (tests/api/helpers.rs).
const FACILITY: &str = crate::helpers::FACILITY_CODE;

#[tokio::test]
async fn medical_assistance_answers_1_to_4_and_6_by_its_numbers() {
    let app = crate::helpers::spawn_app().await;
    let payer = app.party(Role::Payer, &[PAYER]).await;
    let facility = app.party(Role::Facility, &[]).await;
    let person = my_number(7);
    let (status, report) = send(
        &app,
        &payer,
        "pe-1",
        file(&[
            &format!("grant,{PAYER},{RECIPIENT},{person},1950-01-02,2026-04-01,,,,,"),
            &format!("ticket,{PAYER},{RECIPIENT},,,,,,2026-11,{FACILITY},medical"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{report:#}");
    assert_eq!(
        (report["granted"].as_u64(), report["tickets"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        !report.to_string().contains(&person),
        "the My Number is never echoed"
    );

    let valid = assistance(&app, &facility, ask(RECIPIENT, "1950-01-02", "2026-11-24")).await;
    assert_eq!(valid["validity"], 1, "{valid:#}");
    assert_eq!(valid["tickets"], json!(["medical"]));
    assert_eq!(valid["public_expense"]["houbetsu"], "12");

    // No ticket for December yet: valid, not registered.
    let unregistered =
        assistance(&app, &facility, ask(RECIPIENT, "1950-01-02", "2026-12-01")).await;
    assert_eq!(unregistered["validity"], 6);
    assert_eq!(unregistered["tickets"], json!([]));

    // Another birth date is no such recipient, and discloses nothing.
    let wrong = assistance(&app, &facility, ask(RECIPIENT, "1950-01-03", "2026-11-24")).await;
    assert_eq!(wrong["validity"], 4);
    assert!(wrong.get("public_expense").is_none());

    // Ended: 2; ended with assistance under other numbers (another welfare office): 3.
    let (status, _) = send(
        &app,
        &payer,
        "pe-2",
        file(&[
            &format!("end,{PAYER},{RECIPIENT},,,,2026-12-31,,,,"),
            &format!("grant,{PAYER},{OTHER_RECIPIENT},{person},1950-01-02,2027-01-01,,,,,"),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let moved = assistance(&app, &facility, ask(RECIPIENT, "1950-01-02", "2027-01-05")).await;
    assert_eq!(moved["validity"], 3);
    let (status, _) = send(
        &app,
        &payer,
        "pe-3",
        file(&[&format!("end,{PAYER},{OTHER_RECIPIENT},,,,2027-01-31,,,,")]),
    )
    .await;
    assert_eq!(status, 200);
    let ended = assistance(
        &app,
        &facility,
        ask(OTHER_RECIPIENT, "1950-01-02", "2027-02-01"),
    )
    .await;
    assert_eq!(ended["validity"], 2);

    // Each check is a disclosure on record.
    assert_eq!(
        app.db()
            .await
            .query_one(
                "select count(*) from disclosures where kind = 'eligibility.assistance'",
                &[]
            )
            .await
            .unwrap()
            .get::<_, i64>(0),
        5
    );

    // Only 医療扶助 is checked this way.
    let (status, body) = app
        .call(
            "/v1/eligibility/assistance",
            &facility,
            &json!({"payer_number": MENTAL_PAYER, "recipient_number": RECIPIENT,
                    "birth_date": "1950-01-02"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("payer_number.unknown_code"))
    );
}

#[tokio::test]
async fn eligibility_answers_list_the_public_expenses_in_force() {
    let app = crate::helpers::spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(3, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let payer = app.party(Role::Payer, &[MENTAL_PAYER]).await;
    let facility = app.party(Role::Facility, &[]).await;
    let (status, report) = send(
        &app,
        &payer,
        "pe-mental",
        file(&[&format!(
            "grant,{MENTAL_PAYER},{RECIPIENT},{},1980-04-01,2026-04-01,2027-03-31,5000,,,",
            my_number(3)
        )]),
    )
    .await;
    assert_eq!(status, 200, "{report:#}");
    let query = |care: &str| {
        json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
               "birth_date": "1980-04-01", "date_of_care": care})
    };
    let (_, answer) = app
        .call("/v1/eligibility", &facility, &query("2026-11-24"))
        .await;
    assert_eq!(
        answer["public_expenses"],
        json!([{"payer_number": MENTAL_PAYER, "recipient_number": RECIPIENT, "houbetsu": "21",
                "valid_from": "2026-04-01", "valid_to": "2027-03-31", "self_pay_cap": 5000}])
    );
    let (_, before) = app
        .call("/v1/eligibility", &facility, &query("2026-03-31"))
        .await;
    assert!(before.get("public_expenses").is_none(), "{before:#}");
}

#[tokio::test]
async fn a_payer_file_is_all_or_nothing_for_its_own_numbers_once_per_key() {
    let app = crate::helpers::spawn_app().await;
    let payer = app.party(Role::Payer, &[PAYER]).await;
    let person = my_number(9);
    let good = format!("grant,{PAYER},{RECIPIENT},{person},1950-01-02,2026-04-01,,,,,");
    for (lines, column, code) in [
        (
            vec![
                good.clone(),
                format!("grant,{MENTAL_PAYER},{RECIPIENT},{person},1950-01-02,2026-04-01,,,,,"),
            ],
            "payer_number",
            "payer_number.not_owned",
        ),
        (
            vec![
                good.clone(),
                format!("grant,{PAYER},1234567,{person},1950-01-02,2026-04-01,,,,,"),
            ],
            "recipient_number",
            "recipient_number.check_digit",
        ),
        (
            vec![
                good.clone(),
                format!("ticket,{PAYER},{RECIPIENT},,,,,,2026-13,{FACILITY},medical"),
            ],
            "month",
            "month.format",
        ),
        (
            vec![
                good.clone(),
                format!("end,{PAYER},{OTHER_RECIPIENT},,,,2026-12-31,,,,"),
            ],
            "recipient_number",
            "public_expense.not_open",
        ),
    ] {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (status, report) = send(
            &app,
            &payer,
            &uuid::Uuid::new_v4().to_string(),
            file(&lines),
        )
        .await;
        assert_eq!(status, 422, "{report:#}");
        assert_eq!(report["error"]["code"], "enrollment.rejected");
        let errors = report["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["column"] == column && e["code"] == code && e["line"] == 3),
            "{code}: {report:#}"
        );
        assert!(!report.to_string().contains(&person));
    }
    assert_eq!(app.count("public_expenses").await, 0, "nothing applied");

    let (status, first) = send(&app, &payer, "pe-once", file(&[&good])).await;
    assert_eq!(status, 200);
    let (status, again) = send(&app, &payer, "pe-once", file(&[&good])).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "the same key answers the first report"
    );
    assert_eq!(app.count("public_expenses").await, 1);
    let other = app.party(Role::Payer, &["12137014"]).await;
    let (status, body) = send(&app, &other, "pe-once", file(&[&good])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("idempotency_key.taken"))
    );
}
