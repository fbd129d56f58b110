use onshi::parties::Role;
use onshi::store::audit::{verify, Verdict};
use serde_json::json;

use crate::helpers::{spawn_app, Csv, INSURER};

async fn app_with_checks() -> crate::helpers::TestApp {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let token = app.party(Role::Facility, &[]).await;
    for birth in [
        "1980-04-01",
        "1980-04-02",
        "1980-04-01",
        "1980-04-03",
        "1980-04-01",
        "1980-04-01",
    ] {
        let q = json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
                       "birth_date": birth});
        assert_eq!(
            app.post_json("/v1/eligibility", &token, &q).await.status(),
            200
        );
    }
    app
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let app = app_with_checks().await;
    assert_eq!(
        verify(&app.db().await).await.unwrap(),
        Verdict::Intact { records: 6 }
    );
}

#[tokio::test]
async fn a_changed_record_is_caught() {
    let app = app_with_checks().await;
    let db = app.db().await;
    let id: i64 = db
        .query_one(
            "select id from disclosures order by id offset 2 limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    db.execute("update disclosures set validity = 4 where id = $1", &[&id])
        .await
        .unwrap();
    assert!(
        matches!(verify(&db).await.unwrap(), Verdict::BrokenAt { id: broken, .. } if broken == id)
    );
}

#[tokio::test]
async fn a_deleted_record_is_caught() {
    let app = app_with_checks().await;
    let db = app.db().await;
    // Delete a record that has a successor in its lane, so the gap is visible.
    let row = db
        .query_one(
            "select a.id, b.id from disclosures a join disclosures b on b.lane = a.lane and b.id > a.id
             order by a.id, b.id limit 1",
            &[],
        )
        .await
        .unwrap();
    let (deleted, next): (i64, i64) = (row.get(0), row.get(1));
    db.execute("delete from disclosures where id = $1", &[&deleted])
        .await
        .unwrap();
    assert!(matches!(verify(&db).await.unwrap(), Verdict::BrokenAt { id, .. } if id == next));
}

#[tokio::test]
async fn reordered_records_are_caught() {
    let app = app_with_checks().await;
    let db = app.db().await;
    let rows = db
        .query("select id, party_id, person_id, validity, check_id from disclosures order by id limit 2", &[])
        .await
        .unwrap();
    let (a, b) = (&rows[0], &rows[1]);
    let swap = "update disclosures set person_id = $2, validity = $3, check_id = $4 where id = $1";
    let tmp = uuid::Uuid::new_v4();
    db.execute(
        swap,
        &[
            &a.get::<_, i64>(0),
            &b.get::<_, Option<i64>>(2),
            &b.get::<_, i16>(3),
            &tmp,
        ],
    )
    .await
    .unwrap();
    db.execute(
        swap,
        &[
            &b.get::<_, i64>(0),
            &a.get::<_, Option<i64>>(2),
            &a.get::<_, i16>(3),
            &a.get::<_, uuid::Uuid>(4),
        ],
    )
    .await
    .unwrap();
    db.execute(
        "update disclosures set check_id = $2 where id = $1",
        &[&a.get::<_, i64>(0), &b.get::<_, uuid::Uuid>(4)],
    )
    .await
    .unwrap();
    assert!(matches!(
        verify(&db).await.unwrap(),
        Verdict::BrokenAt { .. }
    ));
}

fn record(party_id: i64, n: usize) -> Vec<onshi::audit::Disclosure> {
    (0..n)
        .map(|_| onshi::audit::Disclosure {
            at: chrono::Utc::now(),
            party_id,
            person_id: None,
            coverage_id: None,
            kind: onshi::audit::DisclosureKind::EligibilityByNumber,
            check_id: uuid::Uuid::now_v7(),
            validity: 4,
        })
        .collect()
}

/// Two servers sharing one database (here two audit logs beside the app's own) each claim lanes
/// of their own; when the database ends every writer session, the writers claim their lanes
/// again, read the tails back and the chains go on unbroken.
#[tokio::test]
async fn writers_of_several_servers_keep_separate_unbroken_chains() {
    let app = app_with_checks().await;
    let first = onshi::audit::AuditLog::start(&app.database_url, 2, 64).unwrap();
    let second = onshi::audit::AuditLog::start(&app.database_url, 2, 64).unwrap();
    let writes = (0..40).map(|i| {
        let log = if i % 2 == 0 { &first } else { &second };
        log.record(record(i, 3))
    });
    for outcome in futures_util::future::join_all(writes).await {
        outcome.unwrap();
    }
    let db = app.db().await;
    let killed: i64 = db
        .query_one(
            "select count(pg_terminate_backend(pid)) from pg_locks
             where locktype = 'advisory' and pid <> pg_backend_pid()
               and database = (select oid from pg_database where datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 2, "the audit writers hold their lanes: {killed}");
    // A write may fail while a writer notices its session is gone (answered 503); it must then
    // succeed once the writer has claimed a lane again.
    let mut written = 0;
    for attempt in 0..100 {
        let log = if attempt % 2 == 0 { &first } else { &second };
        if log.record(record(attempt, 2)).await.is_ok() {
            written += 2;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if written >= 20 {
            break;
        }
    }
    assert!(written >= 20, "the writers recovered");
    let lanes: i64 = db
        .query_one("select count(distinct lane) from disclosures", &[])
        .await
        .unwrap()
        .get(0);
    assert!(lanes >= 2, "several lanes were written: {lanes}");
    assert_eq!(
        verify(&db).await.unwrap(),
        Verdict::Intact {
            records: 6 + 120 + written
        }
    );
}
