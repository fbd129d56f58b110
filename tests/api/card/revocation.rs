//! Revocation fails closed: a CA of the chain without a current, verified CRL makes its cards'
//! checks answer 503 `card.revocation_unavailable`, and `/readyz` names the CA. Each fault has
//! its own trust directory.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::virtual_card::pki::Issued;
use serde_json::{json, Value};

use super::{challenge, linked_before, pki, sign_check, spawn_card_app_with, trust_dir};
use crate::helpers::{Csv, TestApp, INSURER};
use onshi::parties::Role;

/// The test PKI's trust directory with `change` applied to a fresh copy of it.
fn trust_with(change: impl FnOnce(&std::path::Path)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "onshi-revocation-{}",
        uuid::Uuid::new_v4().simple()
    ));
    trust_dir(&pki().pki, &dir);
    change(&dir);
    dir
}

async fn app_with(dir: &std::path::Path, grace_seconds: u64) -> (TestApp, String) {
    let app = spawn_card_app_with(dir, |s| {
        s.crl_grace_seconds = std::time::Duration::from_secs(grace_seconds)
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let facility = app.party(Role::Facility, &[]).await;
    (app, facility)
}

async fn check(app: &TestApp, facility: &str, person: &Issued) -> (u16, Value) {
    let (id, nonce) = challenge(app, facility).await;
    let body = json!({"certificate": B64.encode(&person.cert_der), "challenge_id": id,
                      "signature": B64.encode(sign_check(app, person, &nonce))});
    app.call("/v1/eligibility/card", facility, &body).await
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app.get("/readyz").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The user-authentication CA's subject as `/readyz` prints it (RFC 4514, last RDN first).
const USER_CA: &str =
    "OU=Japan Agency for Local Authority Information Systems,OU=JPKI for user authentication,O=JPKI,C=JP";

#[tokio::test]
async fn each_revocation_fault_fails_closed_and_readyz_names_the_ca() {
    let p = &pki().pki;
    let mut bad_signature = p.crl_der.clone();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    let faults: [(&str, PathBuf, &str); 4] = [
        (
            "no CRL",
            trust_with(|d| std::fs::remove_file(d.join("user-auth-ca.crl")).unwrap()),
            "missing",
        ),
        (
            "a CRL whose signature does not verify",
            trust_with(|d| std::fs::write(d.join("user-auth-ca.crl"), &bad_signature).unwrap()),
            "not_verified",
        ),
        (
            "a CRL past its nextUpdate",
            trust_with(|d| std::fs::write(d.join("user-auth-ca.crl"), &p.stale_crl_der).unwrap()),
            "stale",
        ),
        // The root's list covers the user-authentication CA itself: it is needed too.
        (
            "no CRL of the root",
            trust_with(|d| std::fs::remove_file(d.join("root.crl")).unwrap()),
            "missing",
        ),
    ];
    for (what, dir, problem) in faults {
        let (app, facility) = app_with(&dir, 0).await;
        linked_before(&app, &p.person_valid, 1).await;
        let (status, body) = check(&app, &facility, &p.person_valid).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("card.revocation_unavailable")),
            "{what}: {body:#}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains("CRL"),
            "a remedy: {body:#}"
        );
        // A revoked card: without its CA's current list, "revoked" is unknown too (with the
        // CA's list current and only the root's missing, the card's revocation is known).
        let (status, body) = check(&app, &facility, &p.person_revoked).await;
        let want = if what.contains("root") { 422 } else { 503 };
        assert_eq!(status, want, "{what}: {body:#}");
        let (status, ready) = readyz(&app).await;
        assert_eq!(
            (status, ready["status"].as_str()),
            (200, Some("degraded")),
            "{what}: {ready:#}"
        );
        let listed = ready["card_revocation"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{what}: {ready:#}");
        assert_eq!(listed[0]["problem"], problem, "{what}: {ready:#}");
        let named = listed[0]["ca"].as_str().unwrap();
        if what.contains("root") {
            assert!(named.contains("Synthetic JPKI root CA"), "{named}");
        } else {
            assert_eq!(named, USER_CA);
        }
        if problem == "stale" {
            assert!(listed[0]["next_update"].is_string(), "{ready:#}");
        }
        assert_eq!(
            app.count("disclosures").await,
            0,
            "{what}: nothing disclosed"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn a_current_list_answers_and_revokes_and_the_grace_is_configurable() {
    let p = &pki().pki;
    let (app, facility) = app_with(&pki().dir, 0).await;
    linked_before(&app, &p.person_valid, 1).await;
    assert_eq!(check(&app, &facility, &p.person_valid).await.0, 200);
    let (status, body) = check(&app, &facility, &p.person_revoked).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("certificate.revoked"))
    );
    assert_eq!(readyz(&app).await.1, json!({"status": "ready"}));

    // A list one day past its nextUpdate, with two days of grace configured, is still current.
    let dir = trust_with(|d| std::fs::write(d.join("user-auth-ca.crl"), &p.stale_crl_der).unwrap());
    let (app, facility) = app_with(&dir, 2 * 24 * 3600).await;
    linked_before(&app, &p.person_valid, 1).await;
    assert_eq!(check(&app, &facility, &p.person_valid).await.0, 200);
    assert_eq!(
        check(&app, &facility, &p.person_revoked).await.1["error"]["code"],
        "certificate.revoked"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_ca_renewed_under_the_same_name_needs_its_own_list() {
    let p = &pki().pki;
    let dir = trust_with(|d| std::fs::remove_file(d.join("user-auth-ca-renewed.crl")).unwrap());
    let (app, facility) = app_with(&dir, 0).await;
    // The old key's list is current: its cards answer.
    linked_before(&app, &p.person_valid, 1).await;
    assert_eq!(check(&app, &facility, &p.person_valid).await.0, 200);
    // The renewed key (same name) has none: its cards do not, though the old key's list exists.
    let (status, body) = check(&app, &facility, &p.person_renewed).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("card.revocation_unavailable")),
        "{body:#}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
