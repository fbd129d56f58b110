//! The card path over HTTP with a synthetic JPKI, and one check end to end through pcscd with
//! the virtual card and the `onshi-reader` binary.

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::virtual_card::pki::Issued;
use card_reader::virtual_card::TestPki;
use onshi::parties::Role;
use rsa::Pkcs1v15Sign;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{my_number, spawn_app_with_pki, Csv, TestApp, INSURER};

/// One synthetic PKI per test binary (RSA key generation is slow) and its trust directory.
pub struct Pki {
    pub pki: TestPki,
    pub dir: PathBuf,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let pki = TestPki::generate().expect("the synthetic PKI");
        let dir = std::env::temp_dir().join(format!("onshi-test-pki-{}", std::process::id()));
        trust_dir(&pki, &dir);
        Pki { pki, dir }
    })
}

/// What an operator configures: the JPKI root, the user-authentication CA and its CRL; no keys,
/// and not the foreign CA.
pub fn trust_dir(pki: &TestPki, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("root.der"), &pki.root.cert_der).unwrap();
    std::fs::write(dir.join("user-auth-ca.der"), &pki.user_ca.cert_der).unwrap();
    std::fs::write(dir.join("user-auth-ca.crl"), &pki.crl_der).unwrap();
}

/// An app with one insured person (My Number 1), registered, and a facility token.
async fn setup() -> (TestApp, String) {
    let app = spawn_app_with_pki(&pki().dir).await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let facility = app.party(Role::Facility, &[]).await;
    (app, facility)
}

pub async fn challenge(app: &TestApp, token: &str) -> (String, Vec<u8>) {
    let response = app.post_json("/v1/challenges", token, &json!({})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let nonce = B64.decode(body["nonce"].as_str().unwrap()).unwrap();
    assert_eq!(nonce.len(), 32);
    (body["challenge_id"].as_str().unwrap().to_owned(), nonce)
}

pub fn sign(person: &Issued, nonce: &[u8]) -> Vec<u8> {
    person
        .key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(nonce))
        .unwrap()
}

pub async fn link_by_admin(app: &TestApp, person: &Issued, my_number_of: u64) -> (u16, Value) {
    let admin = app.party(Role::Admin, &[]).await;
    app.call(
        "/v1/card-links",
        &admin,
        &json!({"certificate": B64.encode(&person.cert_der), "individual_number": my_number(my_number_of)}),
    )
    .await
}

async fn card_check(
    app: &TestApp,
    token: &str,
    person: &Issued,
    id: &str,
    signature: &[u8],
) -> (u16, Value) {
    let body = json!({
        "certificate": B64.encode(&person.cert_der),
        "challenge_id": id,
        "signature": B64.encode(signature),
        "date_of_care": "2026-11-24",
        "consents": {"medication": true, "checkups": false, "diagnosis": true, "surgery": false},
    });
    app.call("/v1/eligibility/card", token, &body).await
}

#[tokio::test]
async fn a_linked_card_answers_like_the_number_and_stores_consents() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    assert_eq!(link_by_admin(&app, person, 1).await.0, 201);
    let (id, nonce) = challenge(&app, &facility).await;
    let (status, answer) = card_check(&app, &facility, person, &id, &sign(person, &nonce)).await;
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["validity"], 1);
    assert_eq!(answer["coverage"]["number"], "3456");
    assert_eq!(answer["coverage"]["birth_date"], "1980-04-01");
    let db = app.db().await;
    let row = db
        .query_one(
            "select medication, diagnosis, surgery, expires_at - given_at = interval '24 hours' from consents",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0)
            && row.get::<_, bool>(1)
            && !row.get::<_, bool>(2)
            && row.get::<_, bool>(3)
    );
    let kind: String = db
        .query_one("select kind from disclosures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "eligibility.card");

    // The same challenge again is a replay.
    let (status, body) = card_check(&app, &facility, person, &id, &sign(person, &nonce)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("challenge.used"))
    );
}

#[tokio::test]
async fn challenges_are_bound_to_their_facility_and_expire() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    link_by_admin(&app, person, 1).await;
    let other = app.party(Role::Facility, &[]).await;
    let (id, nonce) = challenge(&app, &other).await;
    let (status, body) = card_check(&app, &facility, person, &id, &sign(person, &nonce)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("challenge.other_party"))
    );

    let (id, nonce) = challenge(&app, &facility).await;
    app.db()
        .await
        .execute(
            "update challenges set expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let (status, body) = card_check(&app, &facility, person, &id, &sign(person, &nonce)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("challenge.expired"))
    );

    let (status, body) = card_check(
        &app,
        &facility,
        person,
        &uuid::Uuid::new_v4().to_string(),
        &[1; 256],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("challenge.unknown"))
    );
    let claims = app.party(Role::Claims, &[]).await;
    assert_eq!(
        app.post_json("/v1/challenges", &claims, &json!({}))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn each_bad_card_has_its_own_code() {
    let (app, facility) = setup().await;
    let p = &pki().pki;
    let mut tampered = p.person_valid.clone();
    // Change one character of the subject's common name (the issuer has none, so the first
    // commonName OID is the subject's): the CA's signature no longer matches.
    let at = tampered
        .cert_der
        .windows(3)
        .position(|w| w == [0x55, 0x04, 0x03])
        .unwrap()
        + 5;
    tampered.cert_der[at] ^= 0x01;
    let cases: [(&Issued, bool, &str); 5] = [
        (&p.person_revoked, true, "certificate.revoked"),
        (&p.person_expired, true, "certificate.expired"),
        (&p.foreign_person, true, "certificate.unknown_issuer"),
        (&tampered, true, "certificate.bad_chain_signature"),
        (&p.person_valid, false, "signature.invalid"),
    ];
    for (person, good_signature, code) in cases {
        let (id, nonce) = challenge(&app, &facility).await;
        let signature = if good_signature {
            sign(person, &nonce)
        } else {
            sign(person, b"another nonce")
        };
        let (status, body) = card_check(&app, &facility, person, &id, &signature).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some(code)),
            "{code}: {body:#}"
        );
    }
    assert_eq!(
        app.count("disclosures").await,
        0,
        "a refused card discloses nothing"
    );
}

#[tokio::test]
async fn unlinked_cards_say_what_to_do_and_links_are_checked() {
    let (app, facility) = setup().await;
    let p = &pki().pki;
    let (id, nonce) = challenge(&app, &facility).await;
    let (status, body) = card_check(
        &app,
        &facility,
        &p.person_valid,
        &id,
        &sign(&p.person_valid, &nonce),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("card.not_linked"))
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("link"));

    // At the reader, linking needs the card's signature.
    let (id, nonce) = challenge(&app, &facility).await;
    let response = app
        .post_json(
            "/v1/card-links",
            &facility,
            &json!({"certificate": B64.encode(&p.person_valid.cert_der), "individual_number": my_number(1),
                    "challenge_id": id, "signature": B64.encode(sign(&p.person_valid, &nonce))}),
        )
        .await;
    assert_eq!(response.status(), 201);
    // A renewed card (a new certificate) links anew to the same person.
    assert_eq!(link_by_admin(&app, &p.person_valid_2, 1).await.0, 201);
    // A number nobody is enrolled with, and a certificate already linked to someone else.
    let (status, body) = link_by_admin(&app, &p.person_revoked, 99).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("certificate.revoked"))
    );
    app.load(
        &Csv::new()
            .acquire(2, (INSURER, "12", "7777", "01"), "1990-01-01", "2020-04-01")
            .build(),
    )
    .await;
    let (status, body) = link_by_admin(&app, &p.person_valid, 2).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("card.linked_to_another_person"))
    );
    let (status, body) = link_by_admin(&app, &p.person_valid_2, 42).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("person.not_found"))
    );
    assert!(!body.to_string().contains(&my_number(42)));
}

#[test]
fn certificates_stay_usable_for_three_months_after_expiry() {
    let p = &pki().pki;
    let snapshot = onshi::card::trust::Snapshot::load(&pki().dir, Some(&pki().dir)).unwrap();
    let cert = x509_not_after(&p.person_valid.cert_der);
    let verify = |days: i64| {
        onshi::card::verify::verify(
            &snapshot,
            &p.person_valid.cert_der,
            None,
            cert + chrono::Duration::days(days),
        )
    };
    assert!(!verify(-1).unwrap().in_grace);
    assert!(verify(80).unwrap().in_grace);
    assert_eq!(
        verify(95).unwrap_err(),
        onshi::card::verify::Rejection::Expired
    );
}

fn x509_not_after(der: &[u8]) -> chrono::DateTime<chrono::Utc> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap()
}
