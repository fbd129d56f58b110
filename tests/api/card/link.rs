//! Linking a card from its own signed data (the 券面事項入力補助AP's records, its internal
//! authentication and the JPKI signature over one challenge), unlinking it (holder, admin), and
//! every way a link is refused: no typed number from anyone, tampered or foreign data, a relayed
//! signature, and one answer for "no coverage to link to".

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::virtual_card::pki::Issued;
use card_reader::virtual_card::surface::{SurfaceProfile, Tamper};
use onshi::card::binding::{self, Purpose};
use onshi::parties::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{challenge, origin, pki, setup, sign_check, sign_digest, sign_for};
use crate::access_log::self_challenge;
use crate::helpers::{my_number, Csv, TestApp, INSURER};

const PIN: [u8; 4] = *b"1234";

/// The input-assistance application of a card of the person with My Number `n`.
fn surface_of(n: u64) -> SurfaceProfile {
    pki()
        .pki
        .surface_profile(&my_number(n), PIN, Tamper::None)
        .unwrap()
}

/// The body an honest reader sends: both keys sign the link challenge bound to `app`.
fn link_body(
    app: &TestApp,
    person: &Issued,
    surface: &SurfaceProfile,
    id: &str,
    nonce: &[u8],
) -> Value {
    let digest = binding::digest(Purpose::Link, &origin(app), nonce, None);
    json!({
        "certificate": B64.encode(&person.cert_der),
        "challenge_id": id,
        "signature": B64.encode(sign_digest(&person.key, &digest)),
        "card_surface": {
            "my_number": B64.encode(&surface.my_number),
            "basic_facts": B64.encode(&surface.basic_facts),
            "signature": B64.encode(&surface.signature),
            "issuer_certificate": B64.encode(&surface.issuer_certificate),
            "auth_key": B64.encode(&surface.auth_public),
            "internal_authentication": B64.encode(sign_digest(&surface.auth_key, &digest)),
        },
    })
}

/// Links `person`'s card, whose input-assistance data names My Number `n`, at `facility`.
pub async fn link_at_reader(
    app: &TestApp,
    facility: &str,
    person: &Issued,
    n: u64,
) -> (u16, Value) {
    let (id, nonce) = challenge(app, facility).await;
    app.call(
        "/v1/card-links",
        facility,
        &link_body(app, person, &surface_of(n), &id, &nonce),
    )
    .await
}

async fn check(app: &TestApp, facility: &str, person: &Issued) -> (u16, Value) {
    let (id, nonce) = challenge(app, facility).await;
    let body = json!({"certificate": B64.encode(&person.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign_check(app, person, &nonce))});
    app.call("/v1/eligibility/card", facility, &body).await
}

async fn post_without_token(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .send(app.http.post(format!("{}{path}", app.address)).json(body))
        .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The holder's own log, newest first: (kind, party name or null) of each entry.
async fn own_log(app: &TestApp, person: &Issued) -> Vec<(String, Value)> {
    let (id, nonce) = self_challenge(app).await;
    let body = json!({"certificate": B64.encode(&person.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign_for(app, person, Purpose::SelfView, &nonce, None))});
    let (status, page) = post_without_token(app, "/v1/self/access-log", &body).await;
    assert_eq!(status, 200, "{page:#}");
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["party"]["name"].clone(),
            )
        })
        .collect()
}

async fn holder_unlink(app: &TestApp, person: &Issued, purpose: Purpose) -> (u16, Value) {
    let (id, nonce) = self_challenge(app).await;
    let body = json!({"certificate": B64.encode(&person.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign_for(app, person, purpose, &nonce, None))});
    post_without_token(app, "/v1/self/card-unlink", &body).await
}

#[tokio::test]
async fn a_card_links_from_its_signed_data_checks_unlinks_and_relinks() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    let (status, body) = link_at_reader(&app, &facility, person, 1).await;
    assert_eq!(status, 201, "{body:#}");
    assert_eq!(body["linked"], true);
    assert!(
        !body.to_string().contains(&my_number(1)),
        "the number is never returned"
    );
    assert_eq!(check(&app, &facility, person).await.0, 200);
    // Linking the same card to the same person again changes nothing.
    assert_eq!(link_at_reader(&app, &facility, person, 1).await.0, 201);

    // The holder unlinks with card and PIN (a signature bound to unlinking): the card is no
    // longer anyone's. A signature made for reading the log does not unlink.
    let (status, body) = holder_unlink(&app, person, Purpose::SelfView).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("signature.invalid"))
    );
    let (status, body) = holder_unlink(&app, person, Purpose::Unlink).await;
    assert_eq!(
        (status, body["unlinked"].as_bool()),
        (200, Some(true)),
        "{body:#}"
    );
    assert_eq!(
        check(&app, &facility, person).await.1["error"]["code"],
        "card.not_linked"
    );
    let (status, body) = holder_unlink(&app, person, Purpose::Unlink).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("card.not_linked"))
    );

    // Relinked at the reader, then unlinked by an administrator.
    assert_eq!(link_at_reader(&app, &facility, person, 1).await.0, 201);
    assert_eq!(check(&app, &facility, person).await.0, 200);
    let admin = app.party(Role::Admin, &[]).await;
    let unlink = json!({"certificate": B64.encode(&person.cert_der)});
    let (status, body) = app.call("/v1/card-links/unlink", &admin, &unlink).await;
    assert_eq!(
        (status, body["unlinked"].as_bool()),
        (200, Some(true)),
        "{body:#}"
    );
    let (status, body) = app.call("/v1/card-links/unlink", &admin, &unlink).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("card.not_linked"))
    );
    let (status, _) = app.call("/v1/card-links/unlink", &facility, &unlink).await;
    assert_eq!(status, 403, "only an administrator unlinks by certificate");

    // Every link and unlink is in the person's own log, with who did it (the holder's own
    // unlink has no party). Linked again to read it.
    assert_eq!(link_at_reader(&app, &facility, person, 1).await.0, 201);
    let log = own_log(&app, person).await;
    let kinds: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "card.link",
            "card.unlink",
            "eligibility.card",
            "card.link",
            "card.unlink",
            "card.link",
            "eligibility.card",
            "card.link"
        ],
        "{log:?}"
    );
    assert_eq!(log[0].1, "test facility");
    assert_eq!(log[4].1, Value::Null, "the holder's own unlink");
    assert_ne!(
        log[1].1,
        Value::Null,
        "the administrator's unlink names the administrator"
    );
}

#[tokio::test]
async fn a_typed_number_is_refused_for_every_role() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    let (id, nonce) = challenge(&app, &facility).await;
    let mut full = link_body(&app, person, &surface_of(1), &id, &nonce);
    full["individual_number"] = json!(my_number(1));
    // The old body: a genuine certificate and someone's number, nothing the card signed.
    let typed =
        json!({"certificate": B64.encode(&person.cert_der), "individual_number": my_number(1)});
    for role in [Role::Facility, Role::Claims, Role::Insurer, Role::Admin] {
        let token = if role == Role::Facility {
            facility.clone()
        } else {
            let numbers: &[&str] = if role == Role::Insurer {
                &[INSURER]
            } else {
                &[]
            };
            app.party(role, numbers).await
        };
        for body in [&typed, &full] {
            let (status, answer) = app.call("/v1/card-links", &token, body).await;
            assert_eq!(
                (
                    status,
                    answer["error"]["code"].as_str(),
                    answer["error"]["field"].as_str()
                ),
                (400, Some("body.invalid"), Some("individual_number")),
                "{role:?}: {answer:#}"
            );
        }
    }
    assert_eq!(app.count("card_links").await, 0);
    assert_eq!(app.count("disclosures").await, 0);
}

#[tokio::test]
async fn no_coverage_to_link_to_is_one_answer() {
    let (app, facility) = setup().await;
    // Person 2 is enrolled, but their only coverage starts next year: nothing to link to today.
    let next_year = (chrono::Utc::now() + chrono::Duration::days(400))
        .format("%Y-%m-%d")
        .to_string();
    app.load(
        &Csv::new()
            .acquire(2, (INSURER, "12", "7777", "01"), "1990-01-01", &next_year)
            .build(),
    )
    .await;
    let p = &pki().pki;
    let unknown = link_at_reader(&app, &facility, &p.person_valid, 42).await;
    let not_today = link_at_reader(&app, &facility, &p.person_valid_2, 2).await;
    assert_eq!(unknown.0, 404, "{:#}", unknown.1);
    assert_eq!(unknown.1["error"]["code"], "card.no_coverage_to_link");
    assert_eq!(
        unknown, not_today,
        "an unknown number and a known one answer alike"
    );
    assert!(!unknown.1.to_string().contains(&my_number(42)));
    assert_eq!(app.count("card_links").await, 0);
}

#[tokio::test]
async fn tampered_foreign_or_relayed_card_data_is_refused() {
    let (app, facility) = setup().await;
    let p = &pki().pki;
    let person = &p.person_valid;
    type Alter = fn(&TestApp, &mut Value, &[u8]);
    let cases: [(&str, Alter, &str); 6] = [
        (
            "another number than the issuer signed",
            |_, body, _| {
                let other = pki()
                    .pki
                    .surface_profile(&my_number(1), PIN, Tamper::Number)
                    .unwrap();
                body["card_surface"]["my_number"] = json!(B64.encode(&other.my_number));
            },
            "card_surface.hash_mismatch",
        ),
        (
            "data of an issuer that is no anchor",
            |_, body, _| {
                // Signed by a key of the JPKI test PKI: a genuine-looking issuer, but not configured.
                let foreign = &pki().pki.foreign_person;
                let forged = card_reader::virtual_card::surface::build(
                    &my_number(1),
                    &card_reader::virtual_card::surface::BasicFacts {
                        name: "x".into(),
                        address: "x".into(),
                        birth_date: "19800401".into(),
                        sex: "1".into(),
                    },
                    PIN,
                    &foreign.key,
                    &foreign.cert_der,
                    &pki().pki.surface_card_key,
                    Tamper::None,
                )
                .unwrap();
                for (member, bytes) in [
                    ("my_number", &forged.my_number),
                    ("basic_facts", &forged.basic_facts),
                    ("signature", &forged.signature),
                    ("issuer_certificate", &forged.issuer_certificate),
                    ("auth_key", &forged.auth_public),
                ] {
                    body["card_surface"][member] = json!(B64.encode(bytes));
                }
            },
            "card_surface.unknown_issuer",
        ),
        (
            "a copy replayed without the card (internal authentication by another key)",
            |app, body, nonce| {
                let digest = binding::digest(Purpose::Link, &origin(app), nonce, None);
                body["card_surface"]["internal_authentication"] =
                    json!(B64.encode(sign_digest(&pki().pki.person_valid.key, &digest)));
            },
            "card_surface.internal_authentication_failed",
        ),
        (
            "internal authentication over the bare nonce",
            |_, body, nonce| {
                let bare: [u8; 32] = Sha256::digest(nonce).into();
                body["card_surface"]["internal_authentication"] =
                    json!(B64.encode(sign_digest(&pki().pki.surface_card_key, &bare)));
            },
            "card_surface.internal_authentication_failed",
        ),
        (
            "a JPKI signature over the bare nonce",
            |_, body, nonce| {
                let bare: [u8; 32] = Sha256::digest(nonce).into();
                body["signature"] =
                    json!(B64.encode(sign_digest(&pki().pki.person_valid.key, &bare)));
            },
            "signature.invalid",
        ),
        (
            "a JPKI signature made for a check",
            |app, body, nonce| {
                body["signature"] =
                    json!(B64.encode(sign_check(app, &pki().pki.person_valid, nonce)));
            },
            "signature.invalid",
        ),
    ];
    for (what, alter, code) in cases {
        let (id, nonce) = challenge(&app, &facility).await;
        let mut body = link_body(&app, person, &surface_of(1), &id, &nonce);
        alter(&app, &mut body, &nonce);
        let (status, answer) = app.call("/v1/card-links", &facility, &body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some(code)),
            "{what}: {answer:#}"
        );
    }
    assert_eq!(app.count("card_links").await, 0);
    assert_eq!(app.count("disclosures").await, 0);
}

#[tokio::test]
async fn a_card_linked_to_one_person_is_not_relinked_to_another() {
    let (app, facility) = setup().await;
    app.load(
        &Csv::new()
            .acquire(2, (INSURER, "12", "7777", "01"), "1990-01-01", "2020-04-01")
            .build(),
    )
    .await;
    let p = &pki().pki;
    assert_eq!(
        link_at_reader(&app, &facility, &p.person_valid, 1).await.0,
        201
    );
    // The same certificate with another person's (genuine) data.
    let (status, body) = link_at_reader(&app, &facility, &p.person_valid, 2).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("card.linked_to_another_person"))
    );
    // A renewed card (another certificate) of person 1 links anew; the revoked one does not.
    assert_eq!(
        link_at_reader(&app, &facility, &p.person_renewed, 1)
            .await
            .0,
        201
    );
    let (status, body) = link_at_reader(&app, &facility, &p.person_revoked, 1).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("certificate.revoked"))
    );
}
