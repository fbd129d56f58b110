//! The person's own reads: exactly their own entries, only with a fresh self challenge and a
//! card that proves itself.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::{
    error_code, field, self_challenge, self_view, self_view_with, world, CLINIC_A, PHARMACY_B,
};
use crate::card::{challenge, pki, sign_check, sign_self};

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
                    "signature": B64.encode(sign_check(&w.app, &p.person_valid, &nonce))}),
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
                      "signature": B64.encode(sign_self(&w.app, &p.person_valid_2, &nonce))}),
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
