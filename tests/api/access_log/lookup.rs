//! The administrator's look-up by number, the roles that may not use it, and paging.

use onshi::parties::Role;
use serde_json::json;

use super::{error_code, field, lookup, p_key, q_key, self_view, world};
use crate::card::pki;
use crate::helpers::{Csv, INSURER};

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

    // Twins on one insured number: without the branch the number names two persons.
    w.app
        .load(
            &Csv::new()
                .acquire(4, (INSURER, "12", "5555", "02"), "2010-05-05", "2020-04-01")
                .acquire(5, (INSURER, "12", "5555", "03"), "2010-05-05", "2020-04-01")
                .build(),
        )
        .await;
    let twins = json!({"insurer_number": INSURER, "symbol": "12", "number": "5555",
                       "birth_date": "2010-05-05"});
    let (status, body) = lookup(&w.app, &w.admin, &twins, "").await;
    assert_eq!((status, error_code(&body)), (409, Some("person.ambiguous")));
    let mut second = twins.clone();
    second["branch"] = json!("03");
    let (status, page) = lookup(&w.app, &w.admin, &second, "").await;
    assert_eq!((status, &page["entries"]), (200, &json!([])));

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
    assert_eq!(admin_reads, 6);
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
