//! Tamperings only a checkpoint outside the database reveals, each done with the owner's rights
//! (the application role may not delete), and the records written since the last checkpoint.

use onshi::audit::verify::Problem;

use super::{app_with_checks, check, verify};

/// The lane holding the most records, and its records' ids in order.
async fn busiest_lane(db: &tokio_postgres::Client) -> (i16, Vec<i64>) {
    let lane: i16 = db
        .query_one(
            "select lane from disclosures group by lane order by count(*) desc, lane limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let ids = db
        .query(
            "select id from disclosures where lane = $1 order by id",
            &[&lane],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (lane, ids)
}

#[tokio::test]
async fn records_after_the_latest_checkpoint_are_reported_not_yet_witnessed() {
    let (app, token) = app_with_checks().await;
    let report = verify(&app).await;
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.checkpoints, report.not_yet_witnessed), (0, 6));
    assert!(app.audit.checkpoint().await.unwrap().is_some());
    assert!(
        app.audit.checkpoint().await.unwrap().is_none(),
        "nothing moved, nothing to sign"
    );
    check(&app, &token, 2).await;
    let report = verify(&app).await;
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.checkpoints, report.not_yet_witnessed), (1, 2));
    let files = std::fs::read_dir(&app.witness_dir).unwrap().count();
    assert_eq!(
        files, 1,
        "one file per checkpoint, nothing else left behind"
    );
}

#[tokio::test]
async fn a_deleted_tail_is_caught() {
    let (app, _) = app_with_checks().await;
    app.audit.checkpoint().await.unwrap();
    let db = app.db().await;
    let (lane, ids) = busiest_lane(&db).await;
    let newest = *ids.last().unwrap();
    db.execute("delete from disclosures where id = $1", &[&newest])
        .await
        .unwrap();
    let report = verify(&app).await;
    assert_eq!(
        report.problems,
        vec![Problem::DeletedTail {
            lane,
            after_id: ids.get(ids.len().wrapping_sub(2)).copied(),
            first_missing_id: newest,
            witnessed_last_id: newest,
            missing: 1,
        }]
    );
}

#[tokio::test]
async fn a_deleted_lane_is_caught() {
    let (app, _) = app_with_checks().await;
    app.audit.checkpoint().await.unwrap();
    let db = app.db().await;
    let (lane, ids) = busiest_lane(&db).await;
    db.execute("delete from disclosures where lane = $1", &[&lane])
        .await
        .unwrap();
    let report = verify(&app).await;
    assert_eq!(
        report.problems,
        vec![Problem::DeletedLane {
            lane,
            first_id: ids[0],
            witnessed_last_id: *ids.last().unwrap(),
            records: ids.len() as u64,
        }]
    );
}

/// Someone holding the audit key rewrites a witnessed record and recomputes the chain after it
/// correctly: the chain verifies, the checkpoint does not.
#[tokio::test]
async fn a_witnessed_record_rewritten_with_the_key_is_caught() {
    let (app, _) = app_with_checks().await;
    app.audit.checkpoint().await.unwrap();
    let db = app.db().await;
    let (lane, ids) = busiest_lane(&db).await;
    let rows = db
        .query(
            "select id, at, party_id, person_id, coverage_id, kind, check_id, validity, key_epoch
             from disclosures where lane = $1 order by id",
            &[&lane],
        )
        .await
        .unwrap();
    let key = super::audit_key();
    let mut prev = onshi::audit::chain::GENESIS;
    for row in rows {
        let id: i64 = row.get(0);
        let at: chrono::DateTime<chrono::Utc> = row.get(1);
        let kind: String = row.get(5);
        let check: uuid::Uuid = row.get(6);
        let validity: i16 = if id == ids[0] { 4 } else { row.get(7) };
        let epoch: i64 = row.get(8);
        let fields = onshi::audit::chain::ChainFields {
            at_micros: at.timestamp_micros(),
            party_id: row.get(2),
            person_id: row.get(3),
            coverage_id: row.get(4),
            kind: &kind,
            check_id: *check.as_bytes(),
            validity,
        };
        let hash = onshi::audit::chain::link(&key.lane_key(lane, epoch).unwrap(), &prev, &fields);
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
        report.problems,
        vec![Problem::Rewritten {
            lane,
            id: *ids.last().unwrap()
        }]
    );
}

#[tokio::test]
async fn a_lane_rolled_back_to_an_old_checkpoint_is_caught() {
    let (app, token) = app_with_checks().await;
    app.audit.checkpoint().await.unwrap();
    let db = app.db().await;
    let before: std::collections::HashMap<i16, i64> = db
        .query("select lane, max(id) from disclosures group by lane", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    check(&app, &token, 6).await;
    app.audit.checkpoint().await.unwrap();
    // A lane that both checkpoints saw and that grew between them.
    let (lane, ids) = busiest_lane(&db).await;
    let old_head = before[&lane];
    let newer: Vec<i64> = ids.iter().copied().filter(|id| *id > old_head).collect();
    assert!(
        !newer.is_empty(),
        "the lane grew after the first checkpoint"
    );
    db.execute(
        "delete from disclosures where lane = $1 and id > $2",
        &[&lane, &old_head],
    )
    .await
    .unwrap();
    let report = verify(&app).await;
    assert!(
        matches!(
            report.problems.as_slice(),
            [Problem::RolledBack { lane: l, after_id, first_missing_id, witnessed_last_id, .. }]
                if *l == lane && *after_id == old_head && *first_missing_id == *newer.last().unwrap()
                    && *witnessed_last_id == *newer.last().unwrap()
        ),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_checkpoint_signed_with_another_key_is_reported() {
    let (app, _) = app_with_checks().await;
    app.audit.checkpoint().await.unwrap();
    let name = std::fs::read_dir(&app.witness_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&name).unwrap();
    let (payload, _) = text.split_once('\n').unwrap();
    let other = onshi::audit::key::AuditKey::from_bytes(zeroize::Zeroizing::new(vec![9; 32]))
        .unwrap()
        .checkpoint_signer()
        .unwrap();
    let forged = format!(
        "{payload}\n{}\n",
        hex::encode(other.sign(payload.as_bytes()).unwrap())
    );
    std::fs::write(app.witness_dir.join("forged.checkpoint"), forged).unwrap();
    let report = verify(&app).await;
    assert_eq!(
        report.problems,
        vec![Problem::BadCheckpoint {
            name: "forged".into()
        }]
    );
    assert_eq!(report.checkpoints, 1);
}

/// `onshi audit verify` as an operator runs it, with the application role's rights: exit 0 and
/// the totals while intact, exit 1 naming the lane and first record once the tail is deleted.
#[tokio::test]
async fn the_verify_command_names_the_lane_and_exits_1() {
    let (app, _) = app_with_checks().await;
    app.audit.checkpoint().await.unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_onshi"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", &app.app_database_url)
            .env("ONSHI_AUDIT_KEY_FILE", &app.audit_key_file)
            .env("ONSHI_AUDIT_WITNESS_DIR", &app.witness_dir)
            .env_remove("ONSHI_CONFIG")
            .output()
            .unwrap()
    };
    let intact = run();
    let text = String::from_utf8_lossy(&intact.stdout);
    assert_eq!(intact.status.code(), Some(0), "{text}");
    assert!(text.contains("audit intact: 6 records"), "{text}");
    assert!(text.contains("not yet witnessed: 0 records"), "{text}");
    let db = app.db().await;
    let (lane, ids) = busiest_lane(&db).await;
    db.execute(
        "delete from disclosures where id = $1",
        &[ids.last().unwrap()],
    )
    .await
    .unwrap();
    let tampered = run();
    let text = String::from_utf8_lossy(&tampered.stdout);
    assert_eq!(tampered.status.code(), Some(1), "{text}");
    let expected = format!(
        "lane {lane}: 1 newest records deleted, from record {}",
        ids.last().unwrap()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(text.contains("audit NOT intact"), "{text}");
}

/// A server stopped with SIGTERM signs a last checkpoint once its in-flight answers (and their
/// records) are done: nothing it wrote is left unwitnessed.
#[tokio::test]
async fn a_stopping_server_witnesses_its_last_records() {
    let app = crate::helpers::spawn_app().await;
    app.load(
        &crate::helpers::Csv::new()
            .acquire(
                1,
                (crate::helpers::INSURER, "12", "3456", "01"),
                "1980-04-01",
                "2020-04-01",
            )
            .build(),
    )
    .await;
    let token = app.party(onshi::parties::Role::Facility, &[]).await;
    let witness = app.witness_dir.with_extension("serve");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_onshi"))
        .arg("serve")
        .env("ONSHI_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &app.app_database_url)
        .env("ONSHI_MIGRATION_DATABASE_URL", &app.database_url)
        .env("ONSHI_LINK_KEY_FILE", &app.link_key_file)
        .env("ONSHI_AUDIT_KEY_FILE", &app.audit_key_file)
        .env("ONSHI_AUDIT_WITNESS_DIR", &witness)
        .env("ONSHI_PROOF_KEY_FILE", &app.proof_key_file)
        .env("ONSHI_AUDIT_CHECKPOINT_SECONDS", "3600")
        .env_remove("ONSHI_CONFIG")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = app.http.get(format!("{address}/readyz")).send().await {
            ready = r.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "onshi serve became ready");
    let q = serde_json::json!({"insurer_number": crate::helpers::INSURER, "symbol": "12",
                               "number": "3456", "branch": "01", "birth_date": "1980-04-01"});
    let answer = app
        .http
        .post(format!("{address}/v1/eligibility"))
        .bearer_auth(&token)
        .json(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        std::fs::read_dir(&witness).unwrap().next().is_none(),
        "no checkpoint yet"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(server.wait().unwrap().success());
    let dir = onshi::audit::witness::DirWitness::open(&witness).unwrap();
    let report = onshi::audit::verify::verify(&app.db().await, &super::audit_key(), Some(&dir))
        .await
        .unwrap();
    std::fs::remove_dir_all(&witness).unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(
        (report.records, report.checkpoints, report.not_yet_witnessed),
        (1, 1, 0)
    );
}
