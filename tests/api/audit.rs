//! The keyed audit chain: what an insider with the application role's rights, or the owner's,
//! can do to it, and that `verify` catches each. Witness tamperings are in `audit/witness.rs`,
//! the roles' rights in `audit/roles.rs`, the key sources in `audit/keys.rs`.

mod keys;
mod roles;
mod witness;

use onshi::audit::chain::{self, ChainKey, GENESIS};
use onshi::audit::verify::{Problem, Report};
use onshi::parties::Role;
use serde_json::json;

use crate::helpers::{spawn_app, Csv, TestApp, INSURER, TEST_AUDIT_KEY};

/// A server with one person and six answered checks (six audit records).
pub(crate) async fn app_with_checks() -> (TestApp, String) {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let token = app.party(Role::Facility, &[]).await;
    check(&app, &token, 6).await;
    (app, token)
}

/// Answers `n` eligibility checks (each one audit record).
pub(crate) async fn check(app: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        let birth = if i % 3 == 1 {
            "1980-04-02"
        } else {
            "1980-04-01"
        };
        let q = json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
                       "birth_date": birth});
        assert_eq!(
            app.post_json("/v1/eligibility", token, &q).await.status(),
            200
        );
    }
}

pub(crate) fn audit_key() -> onshi::audit::key::AuditKey {
    onshi::audit::key::AuditKey::from_bytes(zeroize::Zeroizing::new(
        hex::decode(TEST_AUDIT_KEY).unwrap(),
    ))
    .unwrap()
}

/// `onshi audit verify` as an investigator runs it: the audit key, the witness, reading as the
/// owner.
pub(crate) async fn verify(app: &TestApp) -> Report {
    let witness = onshi::audit::witness::DirWitness::open(&app.witness_dir).unwrap();
    onshi::audit::verify::verify(&app.db().await, &audit_key(), Some(&witness))
        .await
        .unwrap()
}

pub(crate) async fn nth_id(db: &tokio_postgres::Client, n: i64) -> i64 {
    db.query_one(
        "select id from disclosures order by id offset $1 limit 1",
        &[&n],
    )
    .await
    .unwrap()
    .get(0)
}

fn broken_at(report: &Report) -> Option<(i16, i64, &'static str)> {
    match report.problems.as_slice() {
        [Problem::Broken { lane, id, reason }] => Some((*lane, *id, reason)),
        _ => None,
    }
}

#[tokio::test]
async fn an_untouched_chain_verifies_keyed() {
    let (app, _) = app_with_checks().await;
    let report = verify(&app).await;
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.records, report.unkeyed), (6, 0));
    let epochs: i64 = app
        .db()
        .await
        .query_one(
            "select count(*) from disclosures where key_epoch is null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(epochs, 0, "every new record carries its key epoch");
    // Under another audit key nothing verifies.
    let other =
        onshi::audit::key::AuditKey::from_bytes(zeroize::Zeroizing::new(vec![1; 32])).unwrap();
    let report = onshi::audit::verify::verify(&app.db().await, &other, None)
        .await
        .unwrap();
    assert!(!report.intact());
}

#[tokio::test]
async fn a_changed_record_is_caught() {
    let (app, _) = app_with_checks().await;
    let db = app.db().await;
    let id = nth_id(&db, 2).await;
    db.execute("update disclosures set validity = 4 where id = $1", &[&id])
        .await
        .unwrap();
    let report = verify(&app).await;
    assert!(
        matches!(broken_at(&report), Some((_, broken, _)) if broken == id),
        "{report:?}"
    );
}

/// The owner changes a record and recomputes every link after it, with the old unkeyed scheme
/// and with a guessed key: neither is accepted.
#[tokio::test]
async fn a_chain_recomputed_with_a_guessed_key_is_not_accepted() {
    let (app, _) = app_with_checks().await;
    let db = app.db().await;
    let lane: i16 = db
        .query_one("select lane from disclosures order by id limit 1", &[])
        .await
        .unwrap()
        .get(0);
    let first = nth_id(&db, 0).await;
    for guess in [
        None,
        Some(ChainKey::new(&[0; 32])),
        Some(ChainKey::new(b"onshi")),
    ] {
        let rows = db
            .query(
                "select id, at, party_id, person_id, coverage_id, kind, check_id, validity
                 from disclosures where lane = $1 order by id",
                &[&lane],
            )
            .await
            .unwrap();
        let mut prev = GENESIS;
        for row in rows {
            let id: i64 = row.get(0);
            let at: chrono::DateTime<chrono::Utc> = row.get(1);
            let kind: String = row.get(5);
            let check: uuid::Uuid = row.get(6);
            let validity: i16 = if id == first { 4 } else { row.get(7) };
            let fields = chain::ChainFields {
                at_micros: at.timestamp_micros(),
                party_id: row.get(2),
                person_id: row.get(3),
                coverage_id: row.get(4),
                kind: &kind,
                check_id: *check.as_bytes(),
                validity,
            };
            let hash = match &guess {
                Some(key) => chain::link(key, &prev, &fields),
                None => chain::link_unkeyed(&prev, &fields),
            };
            db.execute(
                "update disclosures set validity = $2, prev_hash = $3, hash = $4 where id = $1",
                &[&id, &validity, &prev.to_vec(), &hash.to_vec()],
            )
            .await
            .unwrap();
            prev = hash;
        }
        let report = verify(&app).await;
        assert_eq!(
            broken_at(&report),
            Some((lane, first, "its content does not match its MAC")),
            "{report:?}"
        );
    }
}

#[tokio::test]
async fn a_deleted_record_is_caught() {
    let (app, _) = app_with_checks().await;
    let db = app.db().await;
    // Delete a record that has a successor in its lane, so the gap is visible in the chain.
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
    let report = verify(&app).await;
    assert!(
        matches!(broken_at(&report), Some((_, id, _)) if id == next),
        "{report:?}"
    );
}

#[tokio::test]
async fn reordered_records_are_caught() {
    let (app, _) = app_with_checks().await;
    let db = app.db().await;
    // Swap the stored content (links included) of two records of one lane.
    let row = db
        .query_one(
            "select a.id, b.id from disclosures a join disclosures b on b.lane = a.lane and b.id > a.id
             order by a.id, b.id limit 1",
            &[],
        )
        .await
        .unwrap();
    let (a, b): (i64, i64) = (row.get(0), row.get(1));
    db.batch_execute(&format!(
        "begin;
         create temp table saved as select * from disclosures where id in ({a}, {b});
         delete from disclosures where id in ({a}, {b});
         insert into disclosures overriding system value
             select case id when {a} then {b} else {a} end, lane, at, party_id, person_id,
                    coverage_id, kind, check_id, validity, prev_hash, hash, key_epoch
             from saved;
         commit;"
    ))
    .await
    .unwrap();
    let report = verify(&app).await;
    assert!(
        matches!(broken_at(&report), Some((_, id, _)) if id == a),
        "{report:?}"
    );
}

fn record(party_id: i64, n: usize) -> Vec<onshi::audit::Disclosure> {
    (0..n)
        .map(|_| onshi::audit::Disclosure {
            at: chrono::Utc::now(),
            actor: onshi::domain::Actor::from_stored(party_id),
            person_id: None,
            coverage_id: None,
            kind: onshi::audit::DisclosureKind::EligibilityByNumber,
            check_id: uuid::Uuid::now_v7(),
            validity: 4,
        })
        .collect()
}

/// An audit log of another server sharing the test server's database, key and witness.
pub(crate) fn another_server(app: &TestApp, writers: usize) -> onshi::audit::AuditLog {
    let witness = onshi::audit::witness::DirWitness::open(&app.witness_dir).unwrap();
    onshi::audit::AuditLog::start(
        &onshi::store::Connector::for_server(&app.app_database_url).unwrap(),
        std::num::NonZeroUsize::new(writers).expect("at least one writer"),
        std::num::NonZeroUsize::new(64).unwrap(),
        onshi::audit::Chain {
            key: std::sync::Arc::new(audit_key()),
            witness: Some(std::sync::Arc::new(witness)),
            checkpoint_interval: std::time::Duration::from_secs(3600),
        },
    )
    .unwrap()
}

/// Two servers sharing one database (here two audit logs beside the app's own) each claim lanes
/// of their own; when the database ends every writer session, the writers claim their lanes
/// again under a new key epoch, read the tails back and the chains go on unbroken.
#[tokio::test]
async fn writers_of_several_servers_keep_separate_unbroken_chains() {
    let (app, _) = app_with_checks().await;
    let first = another_server(&app, 2);
    let second = another_server(&app, 2);
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
    for log in [&first, &second] {
        log.checkpoint().await.unwrap();
    }
    let report = verify(&app).await;
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.records, 6 + 120 + written);
    assert!(report.checkpoints >= 2);
}

/// A writer claiming a lane reads the lane's record count from its last record's place in the
/// lane (`lane_seq`) rather than counting the lane; a lane whose records predate that column is
/// counted once. Either way the numbering goes on unbroken after the claim, and the chain and
/// its checkpoints verify.
#[tokio::test]
async fn a_reclaimed_lane_numbers_its_records_on_from_its_count() {
    let (app, facility) = app_with_checks().await;
    let db = app.db().await;
    // Half the lanes as if written before lane_seq existed.
    db.batch_execute("update disclosures set lane_seq = null where lane % 2 = 0")
        .await
        .unwrap();
    let end_sessions = "select count(pg_terminate_backend(pid)) from pg_locks
         where locktype = 'advisory' and pid <> pg_backend_pid()
           and database = (select oid from pg_database where datname = current_database())";
    db.query_one(end_sessions, &[]).await.unwrap();
    // Writes go on (a few may be answered 503 while the writers notice their sessions are gone).
    for _ in 0..20 {
        let _ = app
            .post_json(
                "/v1/eligibility",
                &facility,
                &serde_json::json!({"insurer_number": crate::helpers::INSURER, "symbol": "12",
                                    "number": "3456", "branch": "01", "birth_date": "1980-04-01"}),
            )
            .await;
    }
    app.audit.checkpoint().await.unwrap();
    let misnumbered: i64 = db
        .query_one(
            "select count(*) from (
                 select lane_seq, row_number() over (partition by lane order by id) as place
                 from disclosures) r
             where r.lane_seq is not null and r.lane_seq <> r.place",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        misnumbered, 0,
        "every record numbered by its place in its lane"
    );
    let numbered: i64 = db
        .query_one(
            "select count(*) from disclosures where lane_seq is not null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(numbered > 0);
    let report = verify(&app).await;
    assert!(report.intact(), "{:?}", report.problems);
}
