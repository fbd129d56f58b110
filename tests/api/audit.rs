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
