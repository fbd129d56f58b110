//! What an answer says beyond the coverage: the specific-disease certificate an insurer enrols,
//! the limit and specific-disease details shown only with the patient's consent (stated in a
//! query by number, or given at a card reader for 24 hours and withdrawable with the card), and
//! each facility's own reference numbers (照会番号).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use onshi::card::binding::Purpose;
use onshi::parties::Role;
use onshi::store::card::ConsentChoices;
use serde_json::{json, Value};

use crate::card::{challenge, linked_before, pki, sign_for, spawn_card_app_with};
use crate::helpers::{Csv, TestApp, INSURER};

const KEY: (&str, &str, &str, &str) = (INSURER, "12", "3456", "01");

/// Person 1 with a limit certificate and a specific-disease certificate (dialysis).
fn enrolment() -> String {
    Csv::new()
        .acquire(1, KEY, "1960-04-01", "2020-04-01")
        .row(&[
            ("change", "update"),
            ("insurer_number", INSURER),
            ("symbol", "12"),
            ("number", "3456"),
            ("branch", "01"),
            ("effective_on", "2021-04-01"),
            ("limit_classification", "01"),
            ("limit_category", "A03"),
            ("specific_disease", "1"),
            ("specific_disease_valid_from", "2021-04-01"),
            ("specific_disease_self_pay", "10000"),
        ])
        .build()
}

fn query() -> Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
           "birth_date": "1960-04-01", "date_of_care": "2026-11-24"})
}

async fn ask(app: &TestApp, token: &str, query: Value) -> Value {
    let (status, answer) = app.call("/v1/eligibility", token, &query).await;
    assert_eq!(status, 200, "{answer:#}");
    answer
}

fn withheld(answer: &Value) -> Vec<&str> {
    answer["withheld"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn consent_bound_details_are_withheld_unless_the_query_states_consent() {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    app.load(&enrolment()).await;
    let facility = app.party(Role::Facility, &[]).await;

    let bare = ask(&app, &facility, query()).await;
    assert_eq!(bare["validity"], 1);
    assert!(bare["coverage"]["limit_certificate"].is_null());
    assert_eq!(bare["coverage"]["specific_disease_certificates"], json!([]));
    assert_eq!(
        withheld(&bare),
        ["limit_certificate", "specific_disease_certificates"]
    );

    let mut consented = query();
    consented["limit_certificate_consent"] = true.into();
    consented["specific_disease_consent"] = true.into();
    let shown = ask(&app, &facility, consented).await;
    assert!(withheld(&shown).is_empty(), "{shown:#}");
    assert_eq!(shown["coverage"]["limit_certificate"]["category"], "A03");
    assert_eq!(
        shown["coverage"]["specific_disease_certificates"],
        json!([{"category": "1", "valid_from": "2021-04-01", "valid_to": null,
                "self_pay_cap": 10000}])
    );

    // One consent without the other shows only its own detail.
    let mut one = query();
    one["specific_disease_consent"] = true.into();
    let partly = ask(&app, &facility, one).await;
    assert_eq!(withheld(&partly), ["limit_certificate"]);
    assert_eq!(
        partly["coverage"]["specific_disease_certificates"][0]["category"],
        "1"
    );

    // A consent flag that is not a boolean is refused.
    let mut wrong = query();
    wrong["limit_certificate_consent"] = "yes".into();
    let (status, body) = app.call("/v1/eligibility", &facility, &wrong).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "limit_certificate_consent.type");
}

#[tokio::test]
async fn a_specific_disease_certificate_needs_its_category_and_a_plausible_cap() {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    let insurer = app.party(Role::Insurer, &[INSURER]).await;
    for (cells, column, code) in [
        (
            vec![("specific_disease_self_pay", "10000")],
            "specific_disease",
            "specific_disease.required",
        ),
        (
            vec![("specific_disease", "4")],
            "specific_disease",
            "specific_disease.unknown_code",
        ),
        (
            vec![
                ("specific_disease", "1"),
                ("specific_disease_self_pay", "1万"),
            ],
            "specific_disease_self_pay",
            "specific_disease_self_pay.format",
        ),
    ] {
        let csv = Csv::new()
            .acquire_with(1, KEY, "1960-04-01", "2020-04-01", &cells)
            .build();
        let response = app
            .upload(&insurer, &uuid::Uuid::new_v4().to_string(), csv)
            .await;
        assert_eq!(response.status(), 422);
        let report: Value = response.json().await.unwrap();
        let errors = report["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["column"] == column && e["code"] == code),
            "{report:#}"
        );
    }
    assert_eq!(
        app.count("coverages").await,
        0,
        "a rejected file applies nothing"
    );
}

/// A card check of person 1's linked card with `consents`, on `app`'s clock.
async fn card_check(app: &TestApp, facility: &str, consents: ConsentChoices) -> Value {
    let person = &pki().pki.person_valid;
    let (id, nonce) = challenge(app, facility).await;
    let signature = sign_for(app, person, Purpose::Check, &nonce, Some(consents));
    let body = json!({
        "certificate": B64.encode(&person.cert_der),
        "challenge_id": id,
        "signature": B64.encode(signature),
        "date_of_care": "2026-11-24",
        "consents": serde_json::to_value(consents).unwrap(),
    });
    let (status, answer) = app.call("/v1/eligibility/card", facility, &body).await;
    assert_eq!(status, 200, "{answer:#}");
    answer
}

async fn withdraw(app: &TestApp) -> Value {
    let person = &pki().pki.person_valid;
    let response = app
        .send(app.http.post(format!("{}/v1/self/challenges", app.address)))
        .await;
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.unwrap();
    let nonce = B64.decode(issued["nonce"].as_str().unwrap()).unwrap();
    let signature = sign_for(app, person, Purpose::WithdrawConsents, &nonce, None);
    let body = json!({
        "certificate": B64.encode(&person.cert_der),
        "challenge_id": issued["challenge_id"],
        "signature": B64.encode(signature),
    });
    let response = app
        .send(
            app.http
                .post(format!("{}/v1/self/consents/withdraw", app.address))
                .json(&body),
        )
        .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer:#}");
    answer
}

#[tokio::test]
async fn consents_given_at_the_reader_show_the_details_for_24_hours_until_withdrawn() {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    app.load(&enrolment()).await;
    linked_before(&app, &pki().pki.person_valid, 1).await;
    let facility = app.party(Role::Facility, &[]).await;
    let elsewhere = app.party(Role::Facility, &[]).await;

    let answer = card_check(
        &app,
        &facility,
        ConsentChoices {
            medication: true,
            limit_certificate: true,
            ..ConsentChoices::default()
        },
    )
    .await;
    assert_eq!(answer["coverage"]["limit_certificate"]["category"], "A03");
    assert_eq!(withheld(&answer), ["specific_disease_certificates"]);
    let consents = answer["consents"].as_array().unwrap();
    let kinds: Vec<&str> = consents
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["medication", "limit_certificate"]);
    let given =
        chrono::DateTime::parse_from_rfc3339(consents[0]["given_at"].as_str().unwrap()).unwrap();
    let lapses =
        chrono::DateTime::parse_from_rfc3339(consents[0]["lapses_at"].as_str().unwrap()).unwrap();
    assert_eq!(lapses - given, chrono::Duration::hours(24));

    // The same facility's checks by number show it while the consent is in force; another
    // facility's do not.
    let by_number = ask(&app, &facility, query()).await;
    assert_eq!(
        by_number["coverage"]["limit_certificate"]["category"],
        "A03"
    );
    assert_eq!(withheld(&by_number), ["specific_disease_certificates"]);
    let other = ask(&app, &elsewhere, query()).await;
    assert_eq!(
        withheld(&other),
        ["limit_certificate", "specific_disease_certificates"]
    );

    // A later check at the reader without that consent keeps the earlier one in force.
    let again = card_check(&app, &facility, ConsentChoices::default()).await;
    assert_eq!(again["coverage"]["limit_certificate"]["category"], "A03");

    // After 24 hours the consent has lapsed.
    app.clock.advance(chrono::Duration::hours(25));
    let lapsed = ask(&app, &facility, query()).await;
    assert_eq!(
        withheld(&lapsed),
        ["limit_certificate", "specific_disease_certificates"]
    );
}

#[tokio::test]
async fn the_holder_withdraws_their_consents_with_the_card() {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    app.load(&enrolment()).await;
    linked_before(&app, &pki().pki.person_valid, 1).await;
    let facility = app.party(Role::Facility, &[]).await;
    let all = ConsentChoices {
        limit_certificate: true,
        specific_diseases: true,
        ..ConsentChoices::default()
    };
    card_check(&app, &facility, all).await;
    assert!(withheld(&ask(&app, &facility, query()).await).is_empty());

    assert_eq!(withdraw(&app).await["withdrawn"], 1);
    assert_eq!(
        withheld(&ask(&app, &facility, query()).await),
        ["limit_certificate", "specific_disease_certificates"]
    );
    assert_eq!(
        withdraw(&app).await["withdrawn"],
        0,
        "nothing left in force"
    );

    // Neither the application role nor anyone with its credentials can revive a withdrawn
    // consent, or change what was consented.
    let db = app.app_db().await;
    let revive = db
        .execute("update consents set withdrawn_at = null", &[])
        .await;
    assert!(revive.is_err(), "a withdrawn consent stays withdrawn");
    let widen = db
        .execute("update consents set medication = true", &[])
        .await;
    assert!(
        widen.is_err(),
        "the application may not change what was consented"
    );

    // A check signature does not withdraw: the audience is bound into what the card signs.
    let person = &pki().pki.person_valid;
    let response = app
        .send(app.http.post(format!("{}/v1/self/challenges", app.address)))
        .await;
    let issued: Value = response.json().await.unwrap();
    let nonce = B64.decode(issued["nonce"].as_str().unwrap()).unwrap();
    let wrong = sign_for(&app, person, Purpose::Unlink, &nonce, None);
    let response = app
        .send(
            app.http
                .post(format!("{}/v1/self/consents/withdraw", app.address))
                .json(&json!({
                    "certificate": B64.encode(&person.cert_der),
                    "challenge_id": issued["challenge_id"],
                    "signature": B64.encode(wrong),
                })),
        )
        .await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn reference_numbers_are_the_registering_facilitys_own() {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    app.load(&enrolment()).await;
    linked_before(&app, &pki().pki.person_valid, 1).await;
    let facility = app.party(Role::Facility, &[]).await;
    let elsewhere = app.party(Role::Facility, &[]).await;

    // Full-width card text is the same key as its half-width form.
    let (status, body) = app
        .call(
            "/v1/reference-numbers",
            &facility,
            &json!({"entries": [
                {"insurer_number": INSURER, "symbol": "１２", "number": "３４５６", "branch": "01",
                 "reference_number": "P-000123"},
                {"insurer_number": INSURER, "number": "999", "reference_number": "P-000124"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["registered"], 2);

    assert_eq!(
        ask(&app, &facility, query()).await["reference_number"],
        "P-000123"
    );
    assert!(ask(&app, &elsewhere, query()).await["reference_number"].is_null());
    let (_, batch) = app
        .call(
            "/v1/eligibility/batch",
            &facility,
            &json!({"queries": [query(),
                {"insurer_number": INSURER, "number": "999", "birth_date": "1990-01-01"}]}),
        )
        .await;
    assert_eq!(batch["results"][0]["reference_number"], "P-000123");
    assert_eq!(
        batch["results"][1]["reference_number"], "P-000124",
        "a key without coverage still carries the facility's own number"
    );
    assert_eq!(batch["results"][1]["validity"], 4);
    let by_card = card_check(&app, &facility, ConsentChoices::default()).await;
    assert_eq!(by_card["reference_number"], "P-000123");

    // Registering again replaces; a bad entry refuses all, naming it, and changes nothing.
    let (status, body) = app
        .call(
            "/v1/reference-numbers",
            &facility,
            &json!({"entries": [
                {"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
                 "reference_number": "P-9"},
                {"insurer_number": "33120016", "number": "1", "reference_number": "P-10"},
            ]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "insurer_number.check_digit");
    assert_eq!(body["error"]["field"], "entries[1].insurer_number");
    assert_eq!(
        ask(&app, &facility, query()).await["reference_number"],
        "P-000123"
    );
    for (entries, code) in [
        (json!([]), "entries.range"),
        (
            json!([{"insurer_number": INSURER, "number": "1", "reference_number": "患者1"}]),
            "reference_number.format",
        ),
    ] {
        let (status, body) = app
            .call(
                "/v1/reference-numbers",
                &facility,
                &json!({ "entries": entries }),
            )
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
    }
    let (status, _) = app
        .call(
            "/v1/reference-numbers",
            &facility,
            &json!({"entries": [{"insurer_number": INSURER, "symbol": "12", "number": "3456",
                                 "branch": "01", "reference_number": "P-9"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ask(&app, &facility, query()).await["reference_number"],
        "P-9"
    );
}
