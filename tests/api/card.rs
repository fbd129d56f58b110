//! The card path over HTTP with a synthetic JPKI: eligibility by card and every way a card is
//! refused (here), linking and unlinking from the card's signed data ([`link`]), revocation that
//! fails closed ([`revocation`]). The whole path through pcscd with the virtual card and the
//! `onshi-reader` binary is in `reader.rs`.

mod link;
mod refusals;
mod revocation;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::virtual_card::pki::Issued;
use card_reader::virtual_card::TestPki;
use onshi::card::binding::{self, Origin, Purpose};
use onshi::parties::Role;
use onshi::store::card::ConsentChoices;
use rsa::Pkcs1v15Sign;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{my_number, spawn_app_with, Csv, TestApp, INSURER};

/// One synthetic PKI per test binary (RSA key generation is slow), its JPKI trust directory and
/// its 券面事項 anchor directory.
pub struct Pki {
    pub pki: TestPki,
    pub dir: PathBuf,
    pub surface_dir: PathBuf,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let pki = TestPki::generate().expect("the synthetic PKI");
        let dir = std::env::temp_dir().join(format!("onshi-test-pki-{}", std::process::id()));
        trust_dir(&pki, &dir);
        let surface_dir = dir.with_extension("surface");
        std::fs::create_dir_all(&surface_dir).unwrap();
        std::fs::write(
            surface_dir.join("surface-root.der"),
            &pki.surface_root.cert_der,
        )
        .unwrap();
        Pki {
            pki,
            dir,
            surface_dir,
        }
    })
}

/// What an operator configures: the JPKI root, the user-authentication CA (and its renewal
/// under the same name), each one's current CRL; and a certificate that is no CA (no
/// basicConstraints, no keyUsage), which the store must refuse as an issuer. No keys, and not
/// the foreign CA.
pub fn trust_dir(pki: &TestPki, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (file, der) in [
        ("root.der", &pki.root.cert_der),
        ("user-auth-ca.der", &pki.user_ca.cert_der),
        ("user-auth-ca-renewed.der", &pki.user_ca_renewed.cert_der),
        ("not-a-ca.der", &pki.not_a_ca.cert_der),
        ("root.crl", &pki.root_crl_der),
        ("user-auth-ca.crl", &pki.crl_der),
        ("user-auth-ca-renewed.crl", &pki.renewed_crl_der),
    ] {
        std::fs::write(dir.join(file), der).unwrap();
    }
}

/// An app trusting the test PKI (`trust` as the JPKI directory) and its 券面事項 anchor.
pub async fn spawn_card_app_with(
    trust: &Path,
    configure: impl FnOnce(&mut onshi::config::Settings),
) -> TestApp {
    let surface = pki().surface_dir.clone();
    spawn_app_with(|s| {
        s.jpki_trust_dir = Some(trust.to_path_buf());
        s.jpki_crl_dir = Some(trust.to_path_buf());
        s.card_surface_trust_dir = Some(surface);
        configure(s);
    })
    .await
}

/// An app with one insured person (My Number 1) and a facility token.
async fn setup() -> (TestApp, String) {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
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

/// The origin a reader of `app` signs into its proofs.
pub fn origin(app: &TestApp) -> Origin {
    Origin::parse(&app.address).unwrap()
}

/// The card's signature (RSASSA-PKCS1-v1_5) over a SHA-256 it was given as a DigestInfo.
pub fn sign_digest(key: &rsa::RsaPrivateKey, digest: &[u8; 32]) -> Vec<u8> {
    key.sign(Pkcs1v15Sign::new::<Sha256>(), digest).unwrap()
}

/// What the card signs for `purpose` at `app`, as an honest reader has it compute.
pub fn sign_for(
    app: &TestApp,
    person: &Issued,
    purpose: Purpose,
    nonce: &[u8],
    consents: Option<ConsentChoices>,
) -> Vec<u8> {
    sign_digest(
        &person.key,
        &binding::digest(purpose, &origin(app), nonce, consents),
    )
}

/// The signature of a check with no consents.
pub fn sign_check(app: &TestApp, person: &Issued, nonce: &[u8]) -> Vec<u8> {
    sign_for(
        app,
        person,
        Purpose::Check,
        nonce,
        Some(ConsentChoices::default()),
    )
}

/// The signature of the holder's own view.
pub fn sign_self(app: &TestApp, person: &Issued, nonce: &[u8]) -> Vec<u8> {
    sign_for(app, person, Purpose::SelfView, nonce, None)
}

/// A fixture: `person`'s card was linked to the person with My Number `n` before the test (a
/// row as a link leaves it, without the request and its record).
pub async fn linked_before(app: &TestApp, person: &Issued, n: u64) {
    use der::{Decode, Encode};
    let key =
        onshi::domain::LinkKey::from_hex(&std::fs::read_to_string(&app.link_key_file).unwrap())
            .unwrap();
    let link = onshi::domain::IndividualNumber::parse(&my_number(n))
        .unwrap()
        .link(&key)
        .unwrap();
    let cert = x509_cert::Certificate::from_der(&person.cert_der).unwrap();
    let issuer = cert.tbs_certificate.issuer.to_der().unwrap();
    let serial = cert.tbs_certificate.serial_number.as_bytes().to_vec();
    let inserted = app
        .db()
        .await
        .execute(
            "insert into card_links (issuer, serial, person_id, not_after)
             select $1, $2, id, now() + interval '1 year' from persons where link = $3",
            &[&issuer, &serial, &link.as_bytes().as_slice()],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1, "person {n} is enrolled");
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

/// The consents `card_check` sends, as the card signs them.
fn sent_consents() -> Option<ConsentChoices> {
    Some(ConsentChoices {
        medication: true,
        checkups: false,
        diagnosis: true,
        surgery: false,
        ..ConsentChoices::default()
    })
}

fn sign_sent(app: &TestApp, person: &Issued, nonce: &[u8]) -> Vec<u8> {
    sign_for(app, person, Purpose::Check, nonce, sent_consents())
}

#[tokio::test]
async fn a_linked_card_answers_like_the_number_and_stores_consents() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    linked_before(&app, person, 1).await;
    let (id, nonce) = challenge(&app, &facility).await;
    let (status, answer) = card_check(
        &app,
        &facility,
        person,
        &id,
        &sign_sent(&app, person, &nonce),
    )
    .await;
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
    let (status, body) = card_check(
        &app,
        &facility,
        person,
        &id,
        &sign_sent(&app, person, &nonce),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("challenge.used"))
    );
}

#[tokio::test]
async fn a_signature_over_the_bare_nonce_is_refused() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    linked_before(&app, person, 1).await;
    let elsewhere = Origin::parse("https://other-relying-party.example").unwrap();
    type Signer = fn(&TestApp, &[u8], &Origin) -> Vec<u8>;
    let relayed: [(&str, Signer); 4] = [
        // What a relying party that does not bind has the card sign: the nonce's hash.
        ("the bare nonce", |_, nonce, _| {
            sign_digest(&pki().pki.person_valid.key, &Sha256::digest(nonce).into())
        }),
        ("another origin", |_, nonce, elsewhere| {
            let digest = binding::digest(Purpose::Check, elsewhere, nonce, sent_consents());
            sign_digest(&pki().pki.person_valid.key, &digest)
        }),
        ("another use of the card", |app, nonce, _| {
            sign_for(app, &pki().pki.person_valid, Purpose::SelfView, nonce, None)
        }),
        ("other consents than sent", |app, nonce, _| {
            sign_for(
                app,
                &pki().pki.person_valid,
                Purpose::Check,
                nonce,
                Some(ConsentChoices::default()),
            )
        }),
    ];
    for (what, signature) in relayed {
        let (id, nonce) = challenge(&app, &facility).await;
        let (status, body) = card_check(
            &app,
            &facility,
            person,
            &id,
            &signature(&app, &nonce, &elsewhere),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("signature.invalid")),
            "{what}: {body:#}"
        );
    }
    assert_eq!(app.count("disclosures").await, 0, "nothing was disclosed");
}

#[tokio::test]
async fn challenges_are_bound_to_their_facility_and_expire() {
    let (app, facility) = setup().await;
    let person = &pki().pki.person_valid;
    linked_before(&app, person, 1).await;
    let other = app.party(Role::Facility, &[]).await;
    let (id, nonce) = challenge(&app, &other).await;
    let (status, body) = card_check(
        &app,
        &facility,
        person,
        &id,
        &sign_sent(&app, person, &nonce),
    )
    .await;
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
    let (status, body) = card_check(
        &app,
        &facility,
        person,
        &id,
        &sign_sent(&app, person, &nonce),
    )
    .await;
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

/// The server's and the reader's encodings are two implementations of `src/card/binding.md`:
/// they agree on every use, on origins as URLs are written, and on every consent combination.
#[test]
fn the_reader_and_the_server_bind_alike() {
    use card_reader::binding as reader;
    let uses = [
        (Purpose::Check, reader::Purpose::Check),
        (Purpose::SelfView, reader::Purpose::SelfView),
        (Purpose::Link, reader::Purpose::Link),
        (Purpose::Unlink, reader::Purpose::Unlink),
        (Purpose::WithdrawConsents, reader::Purpose::WithdrawConsents),
    ];
    let urls = [
        "http://127.0.0.1:8080",
        "HTTPS://Onshi.Example.JP:443/v1/",
        "https://[::1]:8443/",
        "http://localhost:80",
    ];
    for url in urls {
        let (server_origin, reader_origin) = (
            Origin::parse(url).unwrap(),
            reader::Origin::of_url(url).unwrap(),
        );
        assert_eq!(server_origin.as_str(), reader_origin.as_str(), "{url}");
        for bits in 0u8..64 {
            let server_consents = ConsentChoices {
                medication: bits & 1 != 0,
                checkups: bits & 2 != 0,
                diagnosis: bits & 4 != 0,
                surgery: bits & 8 != 0,
                limit_certificate: bits & 16 != 0,
                specific_diseases: bits & 32 != 0,
            };
            let reader_consents = card_reader::server::Consents {
                medication: server_consents.medication,
                checkups: server_consents.checkups,
                diagnosis: server_consents.diagnosis,
                surgery: server_consents.surgery,
                limit_certificate: server_consents.limit_certificate,
                specific_diseases: server_consents.specific_diseases,
            };
            let nonce = [bits; 32];
            for (server_use, reader_use) in uses {
                let consents = server_use == Purpose::Check;
                assert_eq!(
                    binding::digest(
                        server_use,
                        &server_origin,
                        &nonce,
                        consents.then_some(server_consents)
                    ),
                    reader::digest(
                        reader_use,
                        &reader_origin,
                        &nonce,
                        consents.then_some(&reader_consents)
                    ),
                    "{url} {server_use:?} {bits}"
                );
            }
        }
    }
}
