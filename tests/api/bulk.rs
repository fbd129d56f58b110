//! The asynchronous bulk inquiry: received at once, answered in the background by any server's
//! worker, read page by page by its sender only, carried on across a server's crash with
//! exactly one audit record per query, and deleted after its retention.

use std::time::Duration;

use onshi::config::Settings;
use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, status_and_json, Csv, TestApp, INSURER};

const BULK: &str = "/v1/eligibility/bulk";

/// An app whose own worker is off (so a job stays `processing` until another server's worker
/// takes it), with `coverages` coverages of numbers 1000, 1001, ...
async fn app_with_coverages(coverages: u64) -> TestApp {
    let app = spawn_app_with(|s| s.bulk.worker = false).await;
    let mut csv = Csv::new();
    for i in 0..coverages {
        csv = csv.acquire(
            i + 1,
            (INSURER, "12", &(1000 + i).to_string(), "01"),
            "1970-01-01",
            "2020-04-01",
        );
    }
    app.load(&csv.build()).await;
    app
}

/// A worker that looks for work often and answers `chunk` queries at a time.
fn eager_worker(chunk: usize) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.bulk.worker = true;
        s.bulk.chunk_size = chunk;
        s.bulk.poll_millis = 20;
    }
}

fn query(number: u64) -> Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": number.to_string(),
           "branch": "01", "birth_date": "1970-01-01", "date_of_care": "2026-11-24"})
}

/// Submits `queries` as JSON; the reception number.
async fn submit(app: &TestApp, token: &str, queries: &[Value]) -> String {
    let (status, body) = app.call(BULK, token, &json!({ "queries": queries })).await;
    assert_eq!(status, 202, "{body:#}");
    let number = body["reception_number"].as_str().unwrap().to_owned();
    assert_eq!(body["status_url"], format!("{BULK}/{number}"));
    number
}

async fn submit_csv(app: &TestApp, token: &str, content_type: &str, csv: &str) -> (u16, Value) {
    let request = app
        .http
        .post(format!("{}{BULK}", app.address))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(csv.to_owned());
    status_and_json(app.send(request).await).await
}

/// `GET` of the job at `address` (any server), with `query` appended.
async fn read(
    app: &TestApp,
    address: &str,
    token: &str,
    number: &str,
    query: &str,
) -> (u16, Value) {
    let request = app
        .http
        .get(format!("{address}{BULK}/{number}{query}"))
        .bearer_auth(token);
    status_and_json(app.send(request).await).await
}

/// Reads the job until it is done (at most 60 s); its last answer.
async fn wait_done(app: &TestApp, address: &str, token: &str, number: &str) -> Value {
    for _ in 0..3000 {
        let (status, body) = read(app, address, token, number, "?limit=1").await;
        assert_eq!(status, 200, "{body:#}");
        if body["status"] == "done" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the bulk job was not done within a minute");
}

/// Every result of the job, following `next` with pages of `limit`.
async fn all_results(app: &TestApp, token: &str, number: &str, limit: usize) -> Vec<Value> {
    let mut results = Vec::new();
    let mut query = format!("?limit={limit}");
    loop {
        let (status, body) = read(app, &app.address, token, number, &query).await;
        assert_eq!(status, 200, "{body:#}");
        let page = body["results"].as_array().unwrap();
        assert!(page.len() <= limit);
        results.extend(page.iter().cloned());
        match body["next"].as_i64() {
            Some(next) => query = format!("?limit={limit}&after={next}"),
            None => return results,
        }
    }
}

async fn bulk_disclosures(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one(
            "select count(*) from disclosures where kind = 'eligibility.bulk'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_json_inquiry_is_received_at_once_then_answered_in_order_with_its_own_errors() {
    let app = app_with_coverages(20).await;
    let token = app.party(Role::Facility, &[]).await;
    let mut queries: Vec<Value> = (1000..1020).map(query).collect();
    queries.insert(
        3,
        json!({"insurer_number": "33120016", "number": "1", "birth_date": "1970-01-01"}),
    );
    queries.insert(
        7,
        json!({"insurer_number": INSURER, "number": "424242", "birth_date": "1970-01-01"}),
    );
    queries.insert(11, json!("not an object"));
    let number = submit(&app, &token, &queries).await;
    assert_eq!(number.len(), 32);

    // No worker yet: processing, and only the refusals before the first waiting query show.
    let (status, body) = read(&app, &app.address, &token, &number, "").await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["status"], "processing");
    assert_eq!(
        body["counts"],
        json!({"total": 23, "answered": 0, "rejected": 2, "waiting": 21})
    );
    assert_eq!(body["results"], json!([]));
    assert_eq!(
        bulk_disclosures(&app).await,
        0,
        "nothing answered, nothing disclosed"
    );

    let worker = app.another_server(eager_worker(4)).await;
    let done = wait_done(&app, &worker, &token, &number).await;
    assert_eq!(
        done["counts"],
        json!({"total": 23, "answered": 21, "rejected": 2, "waiting": 0})
    );
    let results = all_results(&app, &token, &number, 5).await;
    assert_eq!(results.len(), 23);
    let mut expected = 1000;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i as i64);
        assert_eq!(result["query"], queries[i], "the query is echoed as sent");
        match i {
            3 => {
                assert_eq!(result["status"], "rejected");
                assert_eq!(result["error"]["code"], "insurer_number.check_digit");
            }
            11 => assert_eq!(result["error"]["code"], "query.not_object"),
            7 => assert_eq!(result["answer"]["validity"], 4),
            _ => {
                assert_eq!(result["status"], "answered");
                assert_eq!(result["answer"]["validity"], 1, "{result}");
                assert_eq!(result["answer"]["coverage"]["number"], expected.to_string());
                assert!(result["answer"]["proof"]
                    .as_str()
                    .is_some_and(|p| !p.is_empty()));
                expected += 1;
            }
        }
    }
    assert_eq!(
        bulk_disclosures(&app).await,
        21,
        "one record per answered query"
    );
}

#[tokio::test]
async fn a_csv_inquiry_is_answered_like_the_json_one() {
    let app = app_with_coverages(3).await;
    let token = app.party(Role::Claims, &[]).await;
    let csv = format!(
        "number,insurer_number,symbol,branch,birth_date,date_of_care\n\
         1000,{INSURER},12,01,1970-01-01,2026-11-24\n\
         1001,{INSURER},12,01,1970-01-01,\n\
         1002,{INSURER},12,01,1970/01/01,2026-11-24\n"
    );
    let (status, body) = submit_csv(&app, &token, "text/csv; charset=utf-8", &csv).await;
    assert_eq!(status, 202, "{body:#}");
    let number = body["reception_number"].as_str().unwrap().to_owned();
    let worker = app.another_server(eager_worker(500)).await;
    wait_done(&app, &worker, &token, &number).await;
    let results = all_results(&app, &token, &number, 1000).await;
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0]["query"],
        json!({"number": "1000", "insurer_number": INSURER, "symbol": "12", "branch": "01",
               "birth_date": "1970-01-01", "date_of_care": "2026-11-24"})
    );
    assert_eq!(results[0]["answer"]["validity"], 1);
    // An empty cell is an absent member: the date of care is the day of receipt.
    assert_eq!(results[1]["query"]["date_of_care"], "");
    assert_eq!(results[1]["answer"]["validity"], 1);
    assert_eq!(results[2]["error"]["code"], "birth_date.format");
    assert_eq!(bulk_disclosures(&app).await, 2);
}

#[tokio::test]
async fn only_the_sender_reads_a_job_and_others_get_the_unknown_answer() {
    let app = app_with_coverages(1).await;
    let sender = app.party(Role::Facility, &[]).await;
    let other = app.party(Role::Claims, &[]).await;
    let number = submit(&app, &sender, &[query(1000)]).await;
    let (status, mine) = read(&app, &app.address, &sender, &number, "").await;
    assert_eq!(status, 200, "{mine:#}");
    let (status, theirs) = read(&app, &app.address, &other, &number, "").await;
    assert_eq!(status, 404);
    let unknown = "0123456789abcdef0123456789abcdef";
    let (_, never) = read(&app, &app.address, &other, unknown, "").await;
    assert_eq!(
        theirs["error"], never["error"],
        "another's job is as unknown as none"
    );
    assert_eq!(theirs["error"]["code"], "bulk.not_found");
    let (status, _) = read(&app, &app.address, &sender, "1", "").await;
    assert_eq!(status, 404);
    let (status, body) = read(&app, &app.address, &sender, &number, "?limit=0").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("limit.range"))
    );
    let (status, body) = read(&app, &app.address, &sender, &number, "?page=2").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("query.unknown_parameter"))
    );
    // A second upload gets another, unrelated number.
    let again = submit(&app, &sender, &[query(1000)]).await;
    assert_ne!(again, number);
}

#[tokio::test]
async fn a_bad_upload_is_refused_whole_and_stores_nothing() {
    let app = app_with_coverages(0).await;
    let token = app.party(Role::Facility, &[]).await;
    let one = query(1000);
    let (status, body) = app
        .call(
            BULK,
            &token,
            &json!({"queries": vec![one.clone(); 100_001]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bulk.count"))
    );
    let (status, body) = app.call(BULK, &token, &json!({"queries": []})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bulk.count"))
    );
    let (status, body) = app.call(BULK, &token, &json!({"query": [one]})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("body.unknown_field"))
    );
    let header = "insurer_number,number,birth_date\n";
    let cases = [
        (
            "text/csv",
            format!("{header}{INSURER},1000,1970-01-01\n{INSURER},1000\n"),
            400,
            "csv.malformed",
        ),
        (
            "text/csv",
            "insurer_number,number,birth_date,name\n".to_owned(),
            400,
            "csv.header",
        ),
        (
            "text/plain",
            format!("{header}{INSURER},1000,1970-01-01\n"),
            415,
            "content_type.unsupported",
        ),
        ("text/csv", header.to_owned(), 400, "bulk.count"),
    ];
    for (content_type, csv, want_status, want_code) in cases {
        let (status, body) = submit_csv(&app, &token, content_type, &csv).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want_status, Some(want_code)),
            "{content_type} {csv:?}"
        );
    }
    let pharmacy = {
        let admin = app.party(Role::Admin, &[]).await;
        let (status, body) = app
            .call(
                "/v1/parties",
                &admin,
                &json!({"role": "facility", "facility_code": "0140113713"}),
            )
            .await;
        assert_eq!(status, 201, "{body:#}");
        body["token"].as_str().unwrap().to_owned()
    };
    let (status, body) = app.call(BULK, &pharmacy, &json!({"queries": [one]})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("auth.forbidden"))
    );
    assert_eq!(app.count("bulk_jobs").await, 0);
    assert_eq!(app.count("bulk_items").await, 0);
}

#[tokio::test]
async fn the_queries_count_against_the_daily_quota_all_or_none() {
    let app = spawn_app_with(|s| {
        s.bulk.worker = false;
        s.rate_per_second = 0;
        s.daily_quota = 1000;
    })
    .await;
    let token = app.party(Role::Facility, &[]).await;
    let one = query(1000);
    // The upload request itself counts too, so 1,000 queries can never fit.
    let (status, body) = app
        .call(BULK, &token, &json!({"queries": vec![one.clone(); 1000]}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate.daily_quota"))
    );
    assert_eq!(app.count("bulk_jobs").await, 0);
    submit(&app, &token, &vec![one.clone(); 500]).await;
    let (status, body) = app
        .call(BULK, &token, &json!({"queries": vec![one; 500]}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate.daily_quota"))
    );
    assert_eq!(app.count("bulk_jobs").await, 1);
    assert_eq!(app.count("bulk_items").await, 500);
}

/// A server whose runtime the test can drop at any moment, as a crash would end the process:
/// its worker, its audit writers and its database sessions end where they stand.
struct Crashable {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Crashable {
    fn start(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> Crashable {
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: app.app_database_url.clone(),
            migration_database_url: Some(app.database_url.clone()),
            pool_size: std::num::NonZeroUsize::new(4).unwrap(),
            link_key_file: Some(app.link_key_file.clone()),
            auth_cache_seconds: Duration::ZERO,
            ..Settings::default()
        };
        settings.audit.key_file = Some(app.audit_key_file.clone());
        settings.audit.witness_dir = Some(app.witness_dir.clone());
        settings.proof.key_file = Some(app.proof_key_file.clone());
        configure(&mut settings);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let _app = onshi::startup::Application::build(&settings)
                    .await
                    .expect("the app builds");
                let _ = stopped.await;
            });
            runtime.shutdown_background();
        });
        Crashable {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn crash(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

async fn answered(db: &tokio_postgres::Client) -> i32 {
    db.query_one("select answered from bulk_jobs", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_job_cut_off_by_a_crash_is_finished_elsewhere_with_one_record_per_query() {
    const QUERIES: u64 = 600;
    let app = app_with_coverages(50).await;
    let token = app.party(Role::Facility, &[]).await;
    let queries: Vec<Value> = (0..QUERIES).map(|i| query(1000 + i % 50)).collect();
    let number = submit(&app, &token, &queries).await;

    let first = Crashable::start(&app, eager_worker(3));
    let db = app.db().await;
    let mut waited = 0;
    while answered(&db).await < 30 {
        waited += 1;
        assert!(waited < 3000, "the first worker never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.crash();
    let at_crash = answered(&db).await;
    assert!(
        at_crash < QUERIES as i32,
        "the job was finished before the crash ({at_crash}); make it longer"
    );

    let second = app.another_server(eager_worker(50)).await;
    wait_done(&app, &second, &token, &number).await;
    let results = all_results(&app, &token, &number, 10_000).await;
    assert_eq!(results.len(), QUERIES as usize);
    let mut check_ids = std::collections::HashSet::new();
    for result in &results {
        assert_eq!(result["answer"]["validity"], 1, "{result}");
        assert!(check_ids.insert(result["answer"]["check_id"].as_str().unwrap().to_owned()));
    }
    // Exactly one record per query, and it is the one each shown answer names.
    assert_eq!(bulk_disclosures(&app).await, QUERIES as i64);
    let ids: Vec<uuid::Uuid> = check_ids.iter().map(|id| id.parse().unwrap()).collect();
    let recorded: i64 = db
        .query_one(
            "select count(*) from disclosures where kind = 'eligibility.bulk' and check_id = any($1)",
            &[&ids],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, QUERIES as i64);
}

#[tokio::test]
async fn answers_a_stopped_worker_left_are_kept_if_recorded_and_redone_if_not() {
    let app = app_with_coverages(3).await;
    let token = app.party(Role::Claims, &[]).await;
    let number = submit(&app, &token, &[query(1000), query(1001), query(1002)]).await;
    // What a worker stopped between its two commits leaves: query 0 answered and recorded (the
    // stop came after the audit record), query 1 answered but never recorded.
    let (status, recorded) = app.call("/v1/eligibility", &token, &query(1000)).await;
    assert_eq!(status, 200);
    let recorded_id: uuid::Uuid = recorded["check_id"].as_str().unwrap().parse().unwrap();
    let unrecorded_id = uuid::Uuid::new_v4();
    let db = app.db().await;
    db.execute(
        "update bulk_items set state = 1, check_id = $1, result = $2 where idx = 0",
        &[&recorded_id, &recorded],
    )
    .await
    .unwrap();
    let unrecorded = json!({"validity": 1, "advisories": [], "check_id": unrecorded_id});
    db.execute(
        "update bulk_items set state = 1, check_id = $1, result = $2 where idx = 1",
        &[&unrecorded_id, &unrecorded],
    )
    .await
    .unwrap();

    let worker = app.another_server(eager_worker(10)).await;
    wait_done(&app, &worker, &token, &number).await;
    let results = all_results(&app, &token, &number, 10).await;
    assert_eq!(results[0]["answer"], recorded, "the recorded answer stands");
    let redone = results[1]["answer"]["check_id"].as_str().unwrap();
    assert_ne!(
        redone,
        unrecorded_id.to_string(),
        "the unrecorded one is answered afresh"
    );
    assert_eq!(results[1]["answer"]["coverage"]["number"], "1001");
    assert_eq!(
        bulk_disclosures(&app).await,
        2,
        "only the queries not yet recorded are disclosed"
    );
    let total: i64 = db
        .query_one("select count(*) from disclosures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 3);
}

#[tokio::test]
async fn jobs_past_their_retention_are_deleted() {
    let app = app_with_coverages(1).await;
    let token = app.party(Role::Facility, &[]).await;
    let old = submit(&app, &token, &[query(1000)]).await;
    let young = submit(&app, &token, &[query(1000)]).await;
    // The clock of the old job, moved back past the retention (rather than waiting days).
    let db = app.db().await;
    db.execute(
        "update bulk_jobs set received_at = now() - interval '8 days' where reception_number = $1",
        &[&old],
    )
    .await
    .unwrap();
    let worker = app
        .another_server(|s| {
            eager_worker(10)(s);
            s.bulk.retention_days = 7;
        })
        .await;
    wait_done(&app, &worker, &token, &young).await;
    let mut gone = false;
    for _ in 0..500 {
        let (status, _) = read(&app, &app.address, &token, &old, "").await;
        if status == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the old job was not deleted");
    assert_eq!(app.count("bulk_jobs").await, 1);
    assert_eq!(app.count("bulk_items").await, 1, "its queries went with it");
    let (status, _) = read(&app, &app.address, &token, &young, "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_upload_sent_again_with_its_idempotency_key_is_the_same_job() {
    let app = app_with_coverages(2).await;
    let token = app.party(Role::Facility, &[]).await;
    let other = app.party(Role::Facility, &[]).await;
    let send = |token: &str, key: &str, queries: Vec<Value>| {
        let request = app
            .http
            .post(format!("{}{BULK}", app.address))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "queries": queries }));
        async { status_and_json(app.send(request).await).await }
    };
    let (status, first) = send(&token, "upload-a", vec![query(1000), query(1001)]).await;
    assert_eq!(status, 202, "{first:#}");
    let (status, again) = send(&token, "upload-a", vec![query(1000), query(1001)]).await;
    assert_eq!(status, 202, "{again:#}");
    assert_eq!(again["reception_number"], first["reception_number"]);
    assert_eq!(app.count("bulk_jobs").await, 1);
    assert_eq!(app.count("bulk_items").await, 2);
    // Another key, or the same key from another party, is another job.
    let (_, second) = send(&token, "upload-b", vec![query(1000)]).await;
    let (_, others) = send(&other, "upload-a", vec![query(1000)]).await;
    assert_ne!(second["reception_number"], first["reception_number"]);
    assert_ne!(others["reception_number"], first["reception_number"]);
    assert_eq!(app.count("bulk_jobs").await, 3);
    let (status, body) = send(&token, "no spaces allowed", vec![query(1000)]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("idempotency_key.format"))
    );
}
