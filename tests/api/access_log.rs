//! A person's access log: read by the person with their card (no token) or by an administrator,
//! never by anyone else; each read is itself recorded.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::virtual_card::pki::Issued;
use onshi::domain::FacilityCode;
use onshi::parties::{NewParty, Role, Token};
use serde_json::{json, Value};

use crate::card::{challenge, link_by_admin, pki, sign};
use crate::helpers::{spawn_app_with_pki, Csv, TestApp, INSURER};

const CLINIC_A: &str = "1312345612";
const PHARMACY_B: &str = "1341234522";
const CLINIC_C: &str = "1319999932";

/// P (My Number 1) and Q (My Number 2), each with a linked card.
fn p_key() -> Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
           "birth_date": "1980-04-01"})
}

fn q_key() -> Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": "7777", "branch": "01",
           "birth_date": "1990-01-01"})
}

struct World {
    app: TestApp,
    a: String,
    b: String,
    c: String,
    admin: String,
    /// The check ids answered about P (A by number, then B by card) and about Q (C).
    p_checks: Vec<String>,
    q_checks: Vec<String>,
}

async fn facility(app: &TestApp, name: &str, code: &str) -> String {
    let party = NewParty {
        role: Role::Facility,
        name: Some(name.to_owned()),
        facility_code: Some(FacilityCode::parse(code).unwrap()),
        insurer_numbers: Vec::new(),
        expires_at: None,
    };
    let token = Token::generate();
    onshi::store::parties::insert(&mut app.db().await, &party, &token.hash())
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
                      "signature": B64.encode(sign(person, &nonce))});
    let response = app.post_json("/v1/eligibility/card", token, &body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A and B check P (by number, by card), C checks Q; A also asks with a wrong birth date, which
/// discloses nobody and so is in nobody's log.
async fn world() -> World {
    let app = spawn_app_with_pki(&pki().dir).await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .acquire(2, (INSURER, "12", "7777", "01"), "1990-01-01", "2020-04-01")
            .build(),
    )
    .await;
    let p = &pki().pki;
    assert_eq!(link_by_admin(&app, &p.person_valid, 1).await.0, 201);
    assert_eq!(link_by_admin(&app, &p.person_valid_2, 2).await.0, 201);
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
async fn self_challenge(app: &TestApp) -> (String, Vec<u8>) {
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

async fn self_view_with(
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
                      "signature": B64.encode(sign(person, nonce))}),
        )
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The person's own read: a fresh self challenge signed by the card.
async fn self_view(app: &TestApp, person: &Issued, query: &str) -> (u16, Value) {
    let (id, nonce) = self_challenge(app).await;
    self_view_with(app, person, &id, &nonce, query).await
}

async fn lookup(app: &TestApp, token: &str, key: &Value, query: &str) -> (u16, Value) {
    let response = app
        .post_json(&format!("/v1/access-log/lookup{query}"), token, key)
        .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

fn field<'a>(entries: &'a Value, name: &str) -> Vec<&'a str> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[name].as_str().unwrap_or("-"))
        .collect()
}

fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test]
async fn each_person_sees_exactly_who_checked_them() {
    let w = world().await;
    let p = &pki().pki;

    let (status, page) = self_view(&w.app, &p.person_valid, "").await;
    assert_eq!(status, 200, "{page:#}");
    let entries = &page["entries"];
    // Newest first: B's card check, then A's check by number; Q's check and the wrong birth
    // date are not P's.
    assert_eq!(
        field(entries, "check_id"),
        [w.p_checks[1].as_str(), w.p_checks[0].as_str()]
    );
    assert_eq!(
        field(entries, "kind"),
        ["eligibility.card", "eligibility.number"]
    );
    assert_eq!(entries[0]["validity"], 1);
    assert_eq!(
        entries[0]["party"],
        json!({"name": "架空薬局B", "role": "facility", "facility_code": PHARMACY_B})
    );
    assert_eq!(
        entries[1]["party"],
        json!({"name": "架空クリニックA", "role": "facility", "facility_code": CLINIC_A})
    );
    // The times are those the checks were recorded at.
    let db = w.app.db().await;
    for entry in entries.as_array().unwrap() {
        let check_id: uuid::Uuid = entry["check_id"].as_str().unwrap().parse().unwrap();
        let at: chrono::DateTime<chrono::Utc> = db
            .query_one(
                "select at from disclosures where check_id = $1",
                &[&check_id],
            )
            .await
            .unwrap()
            .get(0);
        let shown: chrono::DateTime<chrono::Utc> = entry["at"].as_str().unwrap().parse().unwrap();
        assert_eq!(shown, at);
    }
    assert!(page.get("next").is_none(), "one page holds everything");
    assert!(page["check_id"].is_string());

    let (status, page) = self_view(&w.app, &p.person_valid_2, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        field(&page["entries"], "check_id"),
        [w.q_checks[0].as_str()]
    );
    assert_eq!(page["entries"][0]["party"]["name"], "架空医院C");
}

#[tokio::test]
async fn the_self_view_takes_only_a_fresh_self_challenge_and_a_good_card() {
    let w = world().await;
    let p = &pki().pki;

    let (id, nonce) = self_challenge(&w.app).await;
    assert_eq!(
        self_view_with(&w.app, &p.person_valid, &id, &nonce, "")
            .await
            .0,
        200
    );
    let (status, body) = self_view_with(&w.app, &p.person_valid, &id, &nonce, "").await;
    assert_eq!((status, error_code(&body)), (409, Some("challenge.used")));

    // A facility's challenge cannot open the log, and a self challenge cannot check eligibility.
    let (id, nonce) = challenge(&w.app, &w.a).await;
    let (status, body) = self_view_with(&w.app, &p.person_valid, &id, &nonce, "").await;
    assert_eq!(
        (status, error_code(&body)),
        (403, Some("challenge.wrong_audience"))
    );
    let (id, nonce) = self_challenge(&w.app).await;
    let response = w
        .app
        .post_json(
            "/v1/eligibility/card",
            &w.a,
            &json!({"certificate": B64.encode(&p.person_valid.cert_der), "challenge_id": id,
                    "signature": B64.encode(sign(&p.person_valid, &nonce))}),
        )
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), Some("challenge.wrong_audience"));

    let (status, body) = self_view(&w.app, &p.person_revoked, "").await;
    assert_eq!(
        (status, error_code(&body)),
        (422, Some("certificate.revoked"))
    );
    assert_eq!(body["error"]["field"], "certificate");
    let (status, body) = self_view(&w.app, &p.foreign_person, "").await;
    assert_eq!(
        (status, error_code(&body)),
        (422, Some("certificate.unknown_issuer"))
    );
    // Another card's signature over the right nonce.
    let (id, nonce) = self_challenge(&w.app).await;
    let response = w
        .app
        .http
        .post(format!("{}/v1/self/access-log", w.app.address))
        .json(
            &json!({"certificate": B64.encode(&p.person_valid.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign(&p.person_valid_2, &nonce))}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), Some("signature.invalid"));

    // Only the one successful read was recorded.
    let reads: i64 = w
        .app
        .db()
        .await
        .query_one(
            "select count(*) from disclosures where kind like 'access_log.%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reads, 1);
}

#[tokio::test]
async fn an_administrator_looks_up_by_number_and_nobody_else_can() {
    let w = world().await;
    let p = &pki().pki;

    let (status, page) = lookup(&w.app, &w.admin, &p_key(), "").await;
    assert_eq!(status, 200, "{page:#}");
    assert_eq!(
        field(&page["entries"], "check_id"),
        [w.p_checks[1].as_str(), w.p_checks[0].as_str()]
    );
    // Without the branch, the same person.
    let mut no_branch = q_key();
    no_branch.as_object_mut().unwrap().remove("branch");
    let (status, page) = lookup(&w.app, &w.admin, &no_branch, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        field(&page["entries"], "check_id"),
        [w.q_checks[0].as_str()]
    );

    // A wrong birth date and an unknown number answer alike, with no hint.
    let mut wrong_birth = p_key();
    wrong_birth["birth_date"] = json!("1980-04-02");
    let mut unknown = p_key();
    unknown["number"] = json!("9999");
    let mut bodies = Vec::new();
    for key in [&wrong_birth, &unknown] {
        let (status, body) = lookup(&w.app, &w.admin, key, "").await;
        assert_eq!(
            (status, error_code(&body)),
            (404, Some("coverage.not_found"))
        );
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);

    // Bad input is refused at the edge.
    let mut bad = p_key();
    bad["insurer_number"] = json!("33120016");
    let (status, body) = lookup(&w.app, &w.admin, &bad, "").await;
    assert_eq!(
        (status, error_code(&body)),
        (400, Some("insurer_number.check_digit"))
    );

    let claims = w.app.party(Role::Claims, &[]).await;
    let insurer = w.app.party(Role::Insurer, &[INSURER]).await;
    for token in [&w.a, &w.b, &w.c, &claims, &insurer] {
        let (status, body) = lookup(&w.app, token, &p_key(), "").await;
        assert_eq!((status, error_code(&body)), (403, Some("auth.forbidden")));
    }
    let response = w
        .app
        .http
        .post(format!("{}/v1/access-log/lookup", w.app.address))
        .json(&p_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // The person sees the administrator's read (the misses name nobody, so are not P's).
    let (status, page) = self_view(&w.app, &p.person_valid, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        field(&page["entries"], "kind"),
        ["access_log.admin", "eligibility.card", "eligibility.number"]
    );
    assert_eq!(page["entries"][0]["party"]["role"], "admin");
    assert!(page["entries"][0]["party"].get("facility_code").is_none());
    // Every look-up, found or not, is in the audit.
    let admin_reads: i64 = w
        .app
        .db()
        .await
        .query_one(
            "select count(*) from disclosures where kind = 'access_log.admin'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(admin_reads, 4);
}

#[tokio::test]
async fn reads_are_logged_and_pages_follow_the_cursor() {
    let w = world().await;
    let p = &pki().pki;
    let (status, first) = self_view(&w.app, &p.person_valid, "").await;
    assert_eq!(status, 200);
    let (_, admin) = lookup(&w.app, &w.admin, &p_key(), "").await;

    // The log now holds, newest first: the admin's read, the person's read, B, A.
    let (status, page) = lookup(&w.app, &w.admin, &p_key(), "?limit=3").await;
    assert_eq!(status, 200, "{page:#}");
    assert_eq!(
        field(&page["entries"], "check_id"),
        [
            admin["check_id"].as_str().unwrap(),
            first["check_id"].as_str().unwrap(),
            w.p_checks[1].as_str()
        ]
    );
    assert_eq!(
        field(&page["entries"], "kind"),
        ["access_log.admin", "access_log.self", "eligibility.card"]
    );
    // The person's own read names no party.
    assert!(page["entries"][1]["party"].is_null());
    let next = page["next"].as_str().unwrap();
    assert_eq!(next, w.p_checks[1]);

    let (status, rest) =
        self_view(&w.app, &p.person_valid, &format!("?limit=3&before={next}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        field(&rest["entries"], "check_id"),
        [w.p_checks[0].as_str()]
    );
    assert!(rest.get("next").is_none());

    // A time bounds the page too: nothing before the first check.
    let (status, empty) = lookup(&w.app, &w.admin, &p_key(), "?before=2000-01-01T00:00:00Z").await;
    assert_eq!(status, 200);
    assert_eq!(empty["entries"], json!([]));

    // Another person's check id is no cursor here.
    let (status, body) = self_view(
        &w.app,
        &p.person_valid,
        &format!("?before={}", w.q_checks[0]),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, Some("before.unknown")));

    for (query, code) in [
        ("?limit=0", "limit.range"),
        ("?limit=101", "limit.range"),
        ("?limit=ten", "limit.format"),
        ("?before=yesterday", "before.format"),
        ("?page=2", "query.unknown_parameter"),
    ] {
        let (status, body) = lookup(&w.app, &w.admin, &p_key(), query).await;
        assert_eq!((status, error_code(&body)), (400, Some(code)), "{query}");
    }
}
