//! Faults under load: sessions cut by the database (as a restart, a failover or
//! `pg_terminate_backend` would), a PostgreSQL stopped and started, and one gone for 30 s. The
//! service answers 200 or 503 (with `Retry-After`), never hangs, never answers 200 without the
//! answer's durable audit record, and serves again by itself while the load goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use onshi::parties::Role;
use serde_json::json;

use crate::helpers::{spawn_app_with, Csv, TestApp, INSURER};
use crate::own_server::OwnServer;

/// What one request of the load got, and when.
struct Outcome {
    at: Duration,
    status: Option<u16>,
    check_id: Option<String>,
}

/// Sends single checks from `clients` loops until `stop`, recording every outcome. A request
/// that takes more than 10 s is a hang (recorded with no status).
fn load(
    address: String,
    token: String,
    clients: usize,
    started: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    (0..clients)
        .map(|_| {
            let (address, token, stop) = (address.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let query = json!({"insurer_number": INSURER, "symbol": "12", "number": "3456",
                                   "branch": "01", "birth_date": "1980-04-01"});
                let mut outcomes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let sent = http
                        .post(format!("{address}/v1/eligibility"))
                        .bearer_auth(&token)
                        .json(&query)
                        .send()
                        .await;
                    let at = started.elapsed();
                    let (status, check_id) = match sent {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            if status == 503 {
                                assert!(response.headers().contains_key("Retry-After"));
                            }
                            let body: serde_json::Value = response.json().await.unwrap_or_default();
                            (Some(status), body["check_id"].as_str().map(str::to_owned))
                        }
                        Err(error) if error.is_timeout() => (None, None),
                        // The server is up throughout: any other transport error is a bug.
                        Err(error) => panic!("transport error: {error}"),
                    };
                    if status != Some(200) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    outcomes.push(Outcome {
                        at,
                        status,
                        check_id,
                    });
                }
                outcomes
            })
        })
        .collect()
}

async fn app_with_one_coverage(configure: impl FnOnce(&mut onshi::config::Settings)) -> TestApp {
    let app = spawn_app_with(|s| {
        s.rate_per_second = 0;
        s.enumeration_misses = 0;
        configure(s);
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    app
}

/// Ends every session of the app's database but the caller's.
async fn cut_sessions(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Checks what the load got: 200 or 503 only, no hang, every 200 audited, and 200s again after
/// each fault; returns the longest time from a fault to the next 200.
async fn judge(app: &TestApp, outcomes: &[Outcome], faults: &[Duration]) -> Duration {
    assert!(
        outcomes.iter().all(|o| o.status.is_some()),
        "a request hung"
    );
    let statuses: std::collections::BTreeSet<u16> =
        outcomes.iter().filter_map(|o| o.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    let db = app.db().await;
    let answered: Vec<uuid::Uuid> = outcomes
        .iter()
        .filter(|o| o.status == Some(200))
        .map(|o| o.check_id.as_deref().unwrap().parse().unwrap())
        .collect();
    let recorded: i64 = db
        .query_one(
            "select count(*) from disclosures where check_id = any($1)",
            &[&answered],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        recorded as usize,
        answered.len(),
        "every 200 has its audit record"
    );
    let mut worst = Duration::ZERO;
    for fault in faults {
        let next = outcomes
            .iter()
            .filter(|o| o.status == Some(200) && o.at > *fault)
            .map(|o| o.at)
            .min()
            .unwrap_or_else(|| panic!("no 200 after the fault at {fault:?}"));
        worst = worst.max(next - *fault);
    }
    worst
}

/// For each fault, how long after it the last 503 came before the next fault (zero when none
/// came): the time until the service answered steadily again.
fn steady_again(outcomes: &[Outcome], faults: &[Duration]) -> Vec<Duration> {
    faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let until = faults.get(i + 1).copied().unwrap_or(Duration::MAX);
            outcomes
                .iter()
                .filter(|o| o.status == Some(503) && o.at > *fault && o.at < until)
                .map(|o| o.at - *fault)
                .max()
                .unwrap_or_default()
        })
        .collect()
}

async fn collect(handles: Vec<tokio::task::JoinHandle<Vec<Outcome>>>) -> Vec<Outcome> {
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

/// Cutting every session three times while 16 clients keep asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_sessions_under_load_again_and_again_loses_no_audit_and_recovers() {
    let app = app_with_one_coverage(|_| {}).await;
    let desk = app.party(Role::Facility, &[]).await;
    let db = app.db().await;
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles = load(app.address.clone(), desk, 16, started, stop.clone());
    let mut faults = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        faults.push(started.elapsed());
        assert!(cut_sessions(&db).await > 0);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let outcomes = collect(handles).await;
    let worst = judge(&app, &outcomes, &faults).await;
    let steady = steady_again(&outcomes, &faults);
    eprintln!(
        "faults: {} requests, {} answered 503, first 200 after a cut within {worst:?}, \
         last 503 after each cut at {steady:?}",
        outcomes.len(),
        outcomes.iter().filter(|o| o.status == Some(503)).count()
    );
    // The bound: serving steadily again within 2 s of each cut, while load goes on.
    assert!(
        steady.iter().all(|d| *d < Duration::from_secs(2)),
        "{steady:?}"
    );
    let report = crate::audit::verify(&app).await;
    assert!(report.problems.is_empty(), "{report:?}");
}

/// A PostgreSQL of the test's own, stopped and started under load (a restart), then stopped for
/// 30 s (an outage): 503s meanwhile, and service again by itself once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_and_a_long_gone_postgresql_are_ridden_out() {
    let Some(server) = OwnServer::create().await else {
        panic!("the PostgreSQL server binaries (initdb, pg_ctl) are needed: run ops/test");
    };
    let app = app_with_one_coverage_on(&server.url).await;
    let desk = app.party(Role::Facility, &[]).await;
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles = load(app.address.clone(), desk, 8, started, stop.clone());
    let mut faults = Vec::new();

    tokio::time::sleep(Duration::from_secs(1)).await;
    server.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    faults.push(started.elapsed());
    server.start();

    tokio::time::sleep(Duration::from_secs(2)).await;
    server.stop();
    let gone = started.elapsed();
    tokio::time::sleep(Duration::from_secs(30)).await;
    faults.push(started.elapsed());
    server.start();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let outcomes = collect(handles).await;
    let during: Vec<_> = outcomes
        .iter()
        .filter(|o| o.at > gone + Duration::from_secs(1) && o.at < gone + Duration::from_secs(29))
        .collect();
    assert!(
        !during.is_empty(),
        "requests were answered during the outage"
    );
    assert!(
        during.iter().all(|o| o.status == Some(503)),
        "only 503 while the database is gone"
    );
    let worst = judge(&app, &outcomes, &faults).await;
    eprintln!(
        "restart and outage: {} requests, {} during the outage, longest recovery after start {worst:?}",
        outcomes.len(),
        during.len()
    );
}

async fn app_with_one_coverage_on(server_url: &str) -> TestApp {
    let app = crate::helpers::spawn_app_on(server_url, |s| {
        s.rate_per_second = 0;
        s.enumeration_misses = 0;
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    app
}

/// An insurer upload whose session is cut in the middle of the file is answered (503, nothing
/// applied), not left waiting with its body unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_session_is_cut_mid_file_is_answered() {
    let app = app_with_one_coverage(|_| {}).await;
    let insurer = app.party(Role::Insurer, &[INSURER]).await;
    let mut csv = Csv::new();
    for n in 0..20_000u64 {
        csv = csv.acquire(
            n + 10,
            (INSURER, "34", &format!("{}", 100_000 + n), "01"),
            "1980-04-01",
            "2020-04-01",
        );
    }
    let body = csv.build().into_bytes();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv().await.map(|item| (item, r))
    });
    let upload = app.upload(&insurer, "cut-mid-file", reqwest::Body::wrap_stream(stream));
    let feeder = async {
        let db = app.db().await;
        for (i, piece) in body.chunks(64 * 1024).enumerate() {
            if sender.send(Ok(piece.to_vec())).await.is_err() {
                break;
            }
            if i == 4 {
                // Give the server time to be inside COPY, then cut its sessions.
                tokio::time::sleep(Duration::from_millis(300)).await;
                cut_sessions(&db).await;
            }
        }
        // The rest of the body never comes: the server must answer without it.
        std::future::pending::<()>().await;
    };
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            response = upload => response,
            () = feeder => unreachable!(),
        }
    })
    .await
    .expect("the upload was answered");
    assert_eq!(answered.status(), 503);
    let db = app.db().await;
    let stored: i64 = db
        .query_one("select count(*) from coverages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "nothing of the cut batch was applied");
    // And the same file goes through afterwards, under the same Idempotency-Key.
    let response = app.upload(&insurer, "cut-mid-file", body).await;
    assert_eq!(response.status(), 200);
}

/// Slow uploads wait for their turn without holding connections: checks keep being answered,
/// a further upload is told to come back, and an oversized file is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cannot_starve_checks() {
    let app = app_with_one_coverage(|s| {
        s.pool_size = std::num::NonZeroUsize::new(2).unwrap();
        s.upload_concurrency = std::num::NonZeroUsize::MIN;
        s.upload_wait_seconds = std::time::Duration::from_secs(1);
        s.upload_max_bytes = std::num::NonZeroU64::new(100_000).unwrap();
    })
    .await;
    let desk = app.party(Role::Facility, &[]).await;
    let header = "change,individual_number,insurer_number,symbol,number,branch,card_classification,relationship,insured_name,name,name_kana,sex,birth_date,postcode,address,acquired_on,copay_ratio\n";
    let mut stalls = Vec::new();
    let mut senders = Vec::new();
    for n in 0..3 {
        let insurer = app.party(Role::Insurer, &[INSURER]).await;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        sender.send(Ok(header.as_bytes().to_vec())).await.unwrap();
        let stream = futures_util::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|item| (item, r))
        });
        senders.push(sender);
        let request = app
            .http
            .post(format!("{}/v1/enrollments", app.address))
            .bearer_auth(insurer)
            .header("Content-Type", "text/csv")
            .header("Idempotency-Key", format!("slow-{n}"))
            .body(reqwest::Body::wrap_stream(stream))
            .send();
        stalls.push(tokio::spawn(request));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..10 {
        let (status, _) = app
            .call(
                "/v1/eligibility",
                &desk,
                &json!({"insurer_number": INSURER, "symbol": "12", "number": "3456",
                        "branch": "01", "birth_date": "1980-04-01"}),
            )
            .await;
        assert_eq!(status, 200, "checks are served while uploads stall");
    }
    // Only one upload has its turn; the others are told to come back once their wait is over.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(senders);
    let mut busy = 0;
    for stall in stalls {
        let response = tokio::time::timeout(Duration::from_secs(10), stall)
            .await
            .expect("every upload is answered")
            .unwrap()
            .unwrap();
        if response.status() == 429 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "upload.busy");
            busy += 1;
        }
    }
    assert_eq!(busy, 2);

    let insurer = app.party(Role::Insurer, &[INSURER]).await;
    let big = format!("{header}{}", "x".repeat(200_000));
    let response = app.upload(&insurer, "too-big", big).await;
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body.too_large");
}
