//! What the application role may do to the audit, and what verify makes of it.

use onshi::audit::chain::{self, ChainFields, ChainKey, GENESIS};
use onshi::audit::verify::Problem;
use tokio_postgres::error::SqlState;

use super::{app_with_checks, verify};

#[tokio::test]
async fn the_application_role_may_not_change_or_remove_audit_records() {
    let (app, _) = app_with_checks().await;
    let db = app.app_db().await;
    let count: i64 = db
        .query_one("select count(*) from disclosures", &[])
        .await
        .expect("the application role reads the audit")
        .get(0);
    assert_eq!(count, 6);
    for statement in [
        "update disclosures set validity = 4",
        "delete from disclosures",
        "truncate disclosures",
        "delete from coverage_versions",
        "truncate parties cascade",
        "alter table disclosures disable trigger all",
        "drop table disclosures",
        "update schema_migrations set version = 0",
        "delete from audit_unkeyed_heads",
    ] {
        let error = db.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {error}"
        );
    }
    assert_eq!(app.count("disclosures").await, 6);
    let user: String = db
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "onshi_app");
}

/// The application role may append, so an insider with its credentials may add records; a
/// guessed key or an unkeyed record at the end of a lane is caught.
#[tokio::test]
async fn records_appended_by_the_application_role_with_a_guessed_key_are_caught() {
    let (app, _) = app_with_checks().await;
    let db = app.app_db().await;
    let tail = db
        .query_one(
            "select lane, hash, key_epoch, party_id from disclosures order by id desc limit 1",
            &[],
        )
        .await
        .unwrap();
    let (lane, prev, epoch, party): (i16, Vec<u8>, i64, i64) =
        (tail.get(0), tail.get(1), tail.get(2), tail.get(3));
    let prev: [u8; 32] = prev.try_into().unwrap();
    let check = uuid::Uuid::new_v4();
    let at = chrono::Utc::now();
    let fields = ChainFields {
        at_micros: at.timestamp_micros(),
        party_id: party,
        person_id: Some(1),
        coverage_id: Some(1),
        kind: "eligibility.number",
        check_id: *check.as_bytes(),
        validity: 1,
    };
    let insert = "insert into disclosures (lane, key_epoch, at, party_id, person_id, coverage_id,
                      kind, check_id, validity, prev_hash, hash)
                  values ($1, $2, $3, $4, 1, 1, 'eligibility.number', $5, 1, $6, $7) returning id";
    let forged = chain::link(&ChainKey::new(&[0; 32]), &prev, &fields);
    let id: i64 = db
        .query_one(
            insert,
            &[
                &lane,
                &Some(epoch),
                &at,
                &party,
                &check,
                &prev.to_vec(),
                &forged.to_vec(),
            ],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        verify(&app).await.problems,
        vec![Problem::Broken {
            lane,
            id,
            reason: "its content does not match its MAC"
        }]
    );

    // A whole new lane of unkeyed (plain SHA-256) records, as before keyed chains.
    let check = uuid::Uuid::new_v4();
    let fields = ChainFields {
        check_id: *check.as_bytes(),
        ..fields
    };
    let unkeyed = chain::link_unkeyed(&GENESIS, &fields);
    let id: i64 = db
        .query_one(
            insert,
            &[
                &999i16,
                &None::<i64>,
                &at,
                &party,
                &check,
                &GENESIS.to_vec(),
                &unkeyed.to_vec(),
            ],
        )
        .await
        .unwrap()
        .get(0);
    assert!(verify(&app).await.problems.contains(&Problem::Broken {
        lane: 999,
        id,
        reason: "its key epoch does not fit its place in the lane"
    }));
}

/// Records written before keyed chains verify under the unkeyed scheme up to the head migration
/// 0008 froze, and no further.
#[tokio::test]
async fn unkeyed_records_verify_up_to_the_frozen_head_only() {
    let (app, _) = app_with_checks().await;
    let db = app.db().await;
    let lane = 77i16;
    let mut prev = GENESIS;
    let mut last = 0i64;
    for _ in 0..3 {
        let check = uuid::Uuid::new_v4();
        let at = chrono::Utc::now();
        let fields = ChainFields {
            at_micros: at.timestamp_micros(),
            party_id: 1,
            person_id: None,
            coverage_id: None,
            kind: "eligibility.number",
            check_id: *check.as_bytes(),
            validity: 4,
        };
        let hash = chain::link_unkeyed(&prev, &fields);
        last = db
            .query_one(
                "insert into disclosures (lane, at, party_id, kind, check_id, validity,
                     prev_hash, hash)
                 values ($1, $2, 1, 'eligibility.number', $3, 4, $4, $5) returning id",
                &[&lane, &at, &check, &prev.to_vec(), &hash.to_vec()],
            )
            .await
            .unwrap()
            .get(0);
        prev = hash;
    }
    db.execute(
        "insert into audit_unkeyed_heads (lane, last_id, hash, records) values ($1, $2, $3, 3)",
        &[&lane, &last, &prev.to_vec()],
    )
    .await
    .unwrap();
    let report = verify(&app).await;
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.unkeyed, 3);
    // A frozen head that is not what the lane holds (here its count) is a break at that head.
    db.execute(
        "update audit_unkeyed_heads set records = 2 where lane = $1",
        &[&lane],
    )
    .await
    .unwrap();
    assert!(matches!(
        verify(&app).await.problems.as_slice(),
        [Problem::Broken { lane: 77, id, .. }] if *id == last
    ));
}

/// A database error's DETAIL (which repeats the row's values) never reaches the log line.
#[tokio::test]
async fn database_errors_are_logged_without_their_detail() {
    let (app, _) = app_with_checks().await;
    let db = app.db().await;
    let check: uuid::Uuid = db
        .query_one("select check_id from disclosures limit 1", &[])
        .await
        .unwrap()
        .get(0);
    let error = db
        .execute(
            "insert into disclosures (lane, at, party_id, kind, check_id, validity, prev_hash, hash)
             values (0, now(), 1, 'x', $1, 1, '', '')",
            &[&check],
        )
        .await
        .unwrap_err();
    let full = format!("{:#}", anyhow::Error::new(error).context("writing"));
    assert!(
        full.contains(&check.to_string()),
        "the driver's text has the value: {full}"
    );
    let error = db
        .execute(
            "insert into disclosures (lane, at, party_id, kind, check_id, validity, prev_hash, hash)
             values (0, now(), 1, 'x', $1, 1, '', '')",
            &[&check],
        )
        .await
        .unwrap_err();
    let logged = onshi::store::errors::describe(&anyhow::Error::new(error).context("writing"));
    assert!(
        logged.starts_with("writing: database error 23505"),
        "{logged}"
    );
    assert!(logged.contains("constraint disclosures_check"), "{logged}");
    assert!(logged.contains("table disclosures"), "{logged}");
    assert!(!logged.contains(&check.to_string()), "{logged}");
    assert!(
        !logged.contains("DETAIL") && !logged.contains("Key ("),
        "{logged}"
    );
}
