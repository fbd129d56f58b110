use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Csv, INSURER, OTHER_INSURER};

const KEY: (&str, &str, &str, &str) = (INSURER, "12", "3456", "01");

fn query(birth: &str, care: &str) -> Value {
    json!({"insurer_number": INSURER, "symbol": "１２", "number": "3456", "branch": "01",
           "birth_date": birth, "date_of_care": care})
}

async fn ask(app: &crate::helpers::TestApp, token: &str, body: Value) -> (u16, Value) {
    app.call("/v1/eligibility", token, &body).await
}

#[tokio::test]
async fn a_covered_person_is_valid_with_the_coverage_fields_and_an_audit_record() {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(1, KEY, "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let token = app.party(Role::Facility, &[]).await;

    let (status, body) = ask(&app, &token, query("1980-04-01", "2026-11-24")).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["validity"], 1);
    let c = &body["coverage"];
    assert_eq!(c["insurer_number"], INSURER);
    assert_eq!(c["insurer_name"], "架空健康保険組合");
    assert_eq!(c["symbol"], "12");
    assert_eq!(c["branch"], "01");
    assert_eq!(c["name_kana"], "カクウ タロウ");
    assert_eq!(c["copay_ratio"], "030");
    assert_eq!(c["acquired_on"], "2020-04-01");
    assert_eq!(c["preschool"], false);
    assert!(c.get("individual_number").is_none());

    let check_id: uuid::Uuid = body["check_id"].as_str().unwrap().parse().unwrap();
    let db = app.db().await;
    let row = db
        .query_one(
            "select validity, person_id is not null from disclosures where check_id = $1",
            &[&check_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), 1);
    assert!(row.get::<_, bool>(1));
}

#[tokio::test]
async fn a_wrong_birth_date_is_no_coverage_and_discloses_nothing() {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(1, KEY, "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let token = app.party(Role::Facility, &[]).await;
    let (status, body) = ask(&app, &token, query("1980-04-02", "2026-11-24")).await;
    assert_eq!(status, 200);
    assert_eq!(body["validity"], 4);
    assert!(body.get("coverage").is_none(), "{body:#}");
    assert!(body["check_id"].is_string());
}

#[tokio::test]
async fn the_answer_follows_the_date_of_care() {
    let app = spawn_app().await;
    let new_key = (OTHER_INSURER, "", "77", "01");
    let csv = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .lose(KEY, "2025-04-01", "03")
        .acquire(1, new_key, "1980-04-01", "2025-04-01")
        .acquire(2, (INSURER, "12", "999", "01"), "1990-01-01", "2020-04-01")
        .lose((INSURER, "12", "999", "01"), "2024-01-01", "99");
    app.load(&csv.build()).await;
    let token = app.party(Role::Claims, &[]).await;

    let validity = |birth: &'static str, care: &'static str, number: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            let mut q = query(birth, care);
            q["number"] = json!(number);
            ask(app, token, q).await.1["validity"].clone()
        }
    };
    assert_eq!(
        validity("1980-04-01", "2020-03-31", "3456").await,
        4,
        "before acquisition"
    );
    assert_eq!(
        validity("1980-04-01", "2025-03-31", "3456").await,
        1,
        "last covered day"
    );
    assert_eq!(
        validity("1980-04-01", "2025-04-01", "3456").await,
        3,
        "lost, newer coverage"
    );
    assert_eq!(
        validity("1990-01-01", "2024-06-01", "999").await,
        2,
        "lost, nothing newer"
    );
}

#[tokio::test]
async fn several_matches_without_a_branch_are_5() {
    let app = spawn_app().await;
    let csv = Csv::new()
        .acquire(1, (INSURER, "12", "3456", "02"), "2015-05-05", "2020-04-01")
        .acquire(2, (INSURER, "12", "3456", "03"), "2015-05-05", "2020-04-01");
    app.load(&csv.build()).await;
    let token = app.party(Role::Facility, &[]).await;
    let mut q = query("2015-05-05", "2026-11-24");
    q.as_object_mut().unwrap().remove("branch");
    let (_, body) = ask(&app, &token, q.clone()).await;
    assert_eq!(body["validity"], 5, "{body:#}");
    q["branch"] = json!("03");
    let (_, body) = ask(&app, &token, q).await;
    assert_eq!(body["validity"], 1);
    assert_eq!(body["coverage"]["branch"], "03");
}

#[tokio::test]
async fn an_update_changes_the_answer_only_from_its_effective_date() {
    let app = spawn_app().await;
    let csv = Csv::new()
        .acquire(1, KEY, "1980-04-01", "2020-04-01")
        .row(&[
            ("change", "update"),
            ("insurer_number", INSURER),
            ("symbol", "12"),
            ("number", "3456"),
            ("branch", "01"),
            ("effective_on", "2026-01-01"),
            ("copay_ratio", "020"),
            ("limit_classification", "01"),
            ("limit_category", "A03"),
        ]);
    app.load(&csv.build()).await;
    let token = app.party(Role::Facility, &[]).await;
    // The facility states the patient's consent to show the limit certificate.
    let consented = |mut q: serde_json::Value| {
        q["limit_certificate_consent"] = true.into();
        q
    };
    let (_, before) = ask(&app, &token, consented(query("1980-04-01", "2025-12-31"))).await;
    let (_, after) = ask(&app, &token, consented(query("1980-04-01", "2026-01-01"))).await;
    assert_eq!(before["coverage"]["copay_ratio"], "030");
    assert!(before["coverage"]["limit_certificate"].is_null());
    assert_eq!(after["coverage"]["copay_ratio"], "020");
    assert_eq!(after["coverage"]["limit_certificate"]["category"], "A03");
    assert_eq!(
        after["coverage"]["name"], "架空 太郎",
        "unchanged columns carry over"
    );
}

#[tokio::test]
async fn malformed_queries_get_a_code_and_field() {
    let app = spawn_app().await;
    let token = app.party(Role::Facility, &[]).await;
    let good = query("1980-04-01", "2026-11-24");
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({"insurer_number": "33120016", "number": "1", "birth_date": "1980-04-01"}),
            "insurer_number.check_digit",
            Some("insurer_number"),
        ),
        (
            json!({"insurer_number": "3312", "number": "1", "birth_date": "1980-04-01"}),
            "insurer_number.format",
            Some("insurer_number"),
        ),
        (
            json!({"insurer_number": INSURER, "birth_date": "1980-04-01"}),
            "number.required",
            Some("number"),
        ),
        (
            json!({"insurer_number": INSURER, "number": 1, "birth_date": "1980-04-01"}),
            "number.type",
            Some("number"),
        ),
        (
            json!({"insurer_number": INSURER, "number": "1", "birth_date": "01/04/1980"}),
            "birth_date.format",
            Some("birth_date"),
        ),
        (
            json!({"insurer_number": INSURER, "number": "1", "birth_date": "1980-04-01", "branch": "1"}),
            "branch.format",
            Some("branch"),
        ),
        (
            json!({"insurer_number": INSURER, "number": "12ア", "birth_date": "1980-04-01"}),
            "number.mixed_width",
            Some("number"),
        ),
        (
            json!({"insurer_number": INSURER, "number": "1' or '1'='1", "birth_date": "1980-04-01"}),
            "number.format",
            Some("number"),
        ),
        (
            json!({"insurer_number": INSURER, "number": "1".repeat(39), "birth_date": "1980-04-01"}),
            "number.too_long",
            Some("number"),
        ),
        (
            json!({"insurer_number": INSURER, "number": "1", "birth_date": "1980-04-01", "x": 1}),
            "body.unknown_field",
            Some("x"),
        ),
        (json!([good]), "body.not_object", None),
    ];
    for (body, code, field) in cases {
        let (status, answer) = ask(&app, &token, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{body}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let response = app
        .http
        .post(format!("{}/v1/eligibility", app.address))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body.invalid_json");
    assert_eq!(
        app.count("disclosures").await,
        0,
        "bad input changes nothing"
    );
}

#[tokio::test]
async fn credentials_are_required_and_roles_enforced() {
    let app = spawn_app().await;
    let body = query("1980-04-01", "2026-11-24");
    let no_token = app
        .http
        .post(format!("{}/v1/eligibility", app.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let v: Value = no_token.json().await.unwrap();
    assert_eq!(v["error"]["code"], "auth.missing");
    let (status, v) = ask(&app, "onshi_not-a-token", body.clone()).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("auth.invalid"))
    );
    let insurer = app.party(Role::Insurer, &[INSURER]).await;
    let (status, v) = ask(&app, &insurer, body).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("auth.forbidden"))
    );
}

#[tokio::test]
async fn an_administrator_registers_revokes_and_expiry_ends_tokens() {
    let app = spawn_app().await;
    let admin = app.party(Role::Admin, &[]).await;
    let body = json!({"role": "facility", "name": "架空クリニック", "facility_code": "0110113719"});
    let response = app.post_json("/v1/parties", &admin, &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let q = query("1980-04-01", "2026-11-24");
    assert_eq!(
        ask(&app, &token, q.clone()).await.0,
        200,
        "the new token works"
    );

    let bad = app
        .post_json(
            "/v1/parties",
            &admin,
            &json!({"role": "facility", "facility_code": "0110113718"}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let v: Value = bad.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("facility_code.check_digit"), Some("facility_code"))
    );
    let (status, _) = ask(&app, &token, json!({})).await;
    assert_ne!(status, 401);
    assert_eq!(
        app.post_json("/v1/parties", &token, &body).await.status(),
        403,
        "only admins register"
    );

    let revoked = app
        .post_json(&format!("/v1/parties/{id}/revoke"), &admin, &json!({}))
        .await;
    assert_eq!(revoked.status(), 200);
    let not_an_id = app
        .post_json("/v1/parties/abc/revoke", &admin, &json!({}))
        .await;
    assert_eq!(not_an_id.status(), 404);
    let v: Value = not_an_id.json().await.unwrap();
    assert_eq!(v["error"]["code"], "party.not_found", "the error envelope");
    let (status, v) = ask(&app, &token, q.clone()).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("auth.invalid")),
        "revoked"
    );

    let other = app.party(Role::Facility, &[]).await;
    app.db().await.execute("update parties set expires_at = now() - interval '1 second' where role = 'facility' and revoked_at is null", &[]).await.unwrap();
    let (status, _) = ask(&app, &other, q).await;
    assert_eq!(status, 401, "expired");
}

#[tokio::test]
async fn checks_arriving_together_are_each_answered_as_their_own_partys() {
    // One look-up at a time, so that concurrent checks queue and go to the database together.
    let app = crate::helpers::spawn_app_with(|s| {
        s.check_lookups = std::num::NonZeroUsize::new(1).unwrap();
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, KEY, "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let one = app.party(Role::Facility, &[]).await;
    let two = app.party(Role::Facility, &[]).await;
    let claims = app.party(Role::Claims, &[]).await;
    for (token, reference) in [(&one, "ONE-1"), (&two, "TWO-1")] {
        let (status, body) = app
            .call(
                "/v1/reference-numbers",
                token,
                &json!({"entries": [{"insurer_number": INSURER, "symbol": "12", "number": "3456",
                                     "branch": "01", "reference_number": reference}]}),
            )
            .await;
        assert_eq!(status, 200, "{body:#}");
    }

    let asks: Vec<(&str, Option<&str>, bool)> = (0..90)
        .map(|i| {
            let (token, reference) = match i % 3 {
                0 => (one.as_str(), Some("ONE-1")),
                1 => (two.as_str(), Some("TWO-1")),
                _ => (claims.as_str(), None),
            };
            (token, reference, i % 2 == 0)
        })
        .collect();
    let answers = futures_util::future::join_all(asks.iter().map(|(token, _, found)| {
        let birth = if *found { "1980-04-01" } else { "1980-04-02" };
        ask(&app, token, query(birth, "2026-11-24"))
    }))
    .await;

    let db = app.db().await;
    let mut party_of_token = std::collections::HashMap::new();
    for ((token, reference, found), (status, body)) in asks.iter().zip(&answers) {
        assert_eq!(*status, 200, "{body:#}");
        assert_eq!(body["validity"], if *found { 1 } else { 4 }, "{body:#}");
        assert_eq!(body["coverage"].is_object(), *found);
        assert_eq!(body["reference_number"].as_str(), *reference, "{body:#}");
        let check_id: uuid::Uuid = body["check_id"].as_str().unwrap().parse().unwrap();
        let row = db
            .query_one(
                "select party_id, validity, person_id is not null from disclosures
                 where check_id = $1",
                &[&check_id],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i16>(1), if *found { 1 } else { 4 });
        assert_eq!(row.get::<_, bool>(2), *found);
        let party: i64 = row.get(0);
        assert_eq!(
            *party_of_token.entry(*token).or_insert(party),
            party,
            "every check of a token is recorded as its party's"
        );
    }
    let parties: std::collections::HashSet<_> = party_of_token.values().collect();
    assert_eq!(parties.len(), 3, "three parties, three ids");
    assert_eq!(app.count("disclosures").await, 90);
}
