//! A person's access log: read by the person with their card (no token) or by an administrator,
//! never by anyone else; each read is itself recorded. The shared world and request helpers are
//! here; the person's reads in [`self_view`], the administrator's and paging in [`lookup`].

mod lookup;
mod self_view;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::virtual_card::pki::Issued;
use onshi::domain::FacilityCode;
use onshi::parties::{NewParty, Role, Token};
use serde_json::{json, Value};

use crate::card::{challenge, linked_before, pki, sign_check, sign_self};
use crate::helpers::{spawn_app_with_pki, status_and_json, Csv, TestApp, INSURER};

pub const CLINIC_A: &str = "1312345612";
pub const PHARMACY_B: &str = "1341234522";
const CLINIC_C: &str = "1319999932";

/// P (My Number 1) and Q (My Number 2), each with a linked card.
pub fn p_key() -> Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
           "birth_date": "1980-04-01"})
}

pub fn q_key() -> Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": "7777", "branch": "01",
           "birth_date": "1990-01-01"})
}

pub struct World {
    pub app: TestApp,
    pub a: String,
    pub b: String,
    pub c: String,
    pub admin: String,
    /// The check ids answered about P (A by number, then B by card) and about Q (C).
    pub p_checks: Vec<String>,
    pub q_checks: Vec<String>,
}

async fn facility(app: &TestApp, name: &str, code: &str) -> String {
    let party = NewParty {
        role: Role::Facility,
        name: Some(name.to_owned()),
        facility_code: Some(FacilityCode::parse(code).unwrap()),
        insurer_numbers: Vec::new(),
        payer_numbers: Vec::new(),
        expires_at: None,
        client_certificates: Vec::new(),
    };
    let token = Token::generate();
    onshi::parties::register(&mut app.db().await, &party, &token)
        .await
        .unwrap();
    token.reveal().to_owned()
}

async fn check_by_number(app: &TestApp, token: &str, key: &Value) -> Value {
    let response = app.post_json("/v1/eligibility", token, key).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn check_by_card(app: &TestApp, token: &str, person: &Issued) -> Value {
    let (id, nonce) = challenge(app, token).await;
    let body = json!({"certificate": B64.encode(&person.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign_check(app, person, &nonce))});
    let response = app.post_json("/v1/eligibility/card", token, &body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A and B check P (by number, by card), C checks Q; A also asks with a wrong birth date, which
/// discloses nobody and so is in nobody's log.
pub async fn world() -> World {
    let app = spawn_app_with_pki(&pki().dir).await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .acquire(2, (INSURER, "12", "7777", "01"), "1990-01-01", "2020-04-01")
            .build(),
    )
    .await;
    let p = &pki().pki;
    linked_before(&app, &p.person_valid, 1).await;
    linked_before(&app, &p.person_valid_2, 2).await;
    let a = facility(&app, "架空クリニックA", CLINIC_A).await;
    let b = facility(&app, "架空薬局B", PHARMACY_B).await;
    let c = facility(&app, "架空医院C", CLINIC_C).await;
    let admin = app.party(Role::Admin, &[]).await;

    let by_a = check_by_number(&app, &a, &p_key()).await;
    let mut wrong_birth = p_key();
    wrong_birth["birth_date"] = json!("1980-04-02");
    assert_eq!(check_by_number(&app, &a, &wrong_birth).await["validity"], 4);
    let by_b = check_by_card(&app, &b, &p.person_valid).await;
    let by_c = check_by_number(&app, &c, &q_key()).await;
    let id = |answer: &Value| answer["check_id"].as_str().unwrap().to_owned();
    World {
        p_checks: vec![id(&by_a), id(&by_b)],
        q_checks: vec![id(&by_c)],
        app,
        a,
        b,
        c,
        admin,
    }
}

/// A self challenge, with no token at all.
pub async fn self_challenge(app: &TestApp) -> (String, Vec<u8>) {
    let response = app
        .http
        .post(format!("{}/v1/self/challenges", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let nonce = B64.decode(body["nonce"].as_str().unwrap()).unwrap();
    (body["challenge_id"].as_str().unwrap().to_owned(), nonce)
}

pub async fn self_view_with(
    app: &TestApp,
    person: &Issued,
    id: &str,
    nonce: &[u8],
    query: &str,
) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/v1/self/access-log{query}", app.address))
        .json(
            &json!({"certificate": B64.encode(&person.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign_self(app, person, nonce))}),
        )
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// The person's own read: a fresh self challenge signed by the card.
pub async fn self_view(app: &TestApp, person: &Issued, query: &str) -> (u16, Value) {
    let (id, nonce) = self_challenge(app).await;
    self_view_with(app, person, &id, &nonce, query).await
}

pub async fn lookup(app: &TestApp, token: &str, key: &Value, query: &str) -> (u16, Value) {
    app.call(&format!("/v1/access-log/lookup{query}"), token, key)
        .await
}

pub fn field<'a>(entries: &'a Value, name: &str) -> Vec<&'a str> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[name].as_str().unwrap_or("-"))
        .collect()
}

pub fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}
