//! Per-purpose health IDs over HTTP: issuance, resolution, re-issuance, authorization, forced
//! collisions, key rotation resumed after an interruption, and the PKCS#11 (SoftHSM2) key path.

use onshi::health_id::keys::{KeySettings, KeySource, MasterKey};
use onshi::parties::{Role, Token};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Csv, TestApp, INSURER};

/// The in-process master key of these tests (synthetic).
const MASTER_HEX: &str = "6b6579206f6620746865206f6e736869206865616c74682d494420746573747321";

/// Like `spawn_app`, with a health-ID key source (the in-process test key unless PKCS#11).
async fn spawn_with(
    mut health_id: KeySettings,
    configure: impl FnOnce(&mut onshi::config::Settings),
) -> TestApp {
    let hid_key_file =
        std::env::temp_dir().join(format!("onshi-test-{}.hid", uuid::Uuid::new_v4().simple()));
    if health_id.pkcs11_module.is_none() {
        std::fs::write(&hid_key_file, MASTER_HEX).unwrap();
        health_id.key_file = Some(hid_key_file.clone());
    }
    let app = spawn_app_with(|settings| {
        settings.health_id = health_id;
        configure(settings);
    })
    .await;
    // The key is read at start; the file need not outlive it.
    let _ = std::fs::remove_file(&hid_key_file);
    app
}

async fn spawn() -> TestApp {
    spawn_with(KeySettings::default(), |_| {}).await
}

fn in_process_keys() -> KeySource {
    KeySource::InProcess(MasterKey::from_bytes(hex::decode(MASTER_HEX).unwrap()).unwrap())
}

fn key(n: &str) -> (&str, &str, &str, &str) {
    (INSURER, "12", n, "01")
}

/// Loads persons 1..=n, person i under number "i", all born 1980-04-01.
async fn load_persons(app: &TestApp, n: u64) {
    let numbers: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let mut csv = Csv::new();
    for (i, number) in numbers.iter().enumerate() {
        csv = csv.acquire(i as u64 + 1, key(number), "1980-04-01", "2020-04-01");
    }
    app.load(&csv.build()).await;
}

async fn party_id(app: &TestApp, token: &str) -> i64 {
    let hash = Token::from_header(token).hash();
    app.db()
        .await
        .query_one(
            "select id from parties where token_hash = $1",
            &[&hash.as_slice()],
        )
        .await
        .unwrap()
        .get(0)
}

/// Registers a purpose for the parties (by token) through the admin endpoint.
async fn purpose(app: &TestApp, admin: &str, name: &str, parties: &[&str]) {
    let mut ids = Vec::new();
    for token in parties {
        ids.push(party_id(app, token).await);
    }
    let (status, body) = app
        .call(
            "/v1/purposes",
            admin,
            &json!({"name": name, "parties": ids}),
        )
        .await;
    assert_eq!(status, 201, "{body:#}");
}

/// Loads persons 1..=n and registers an administrator and a facility, the facility a party of
/// the purpose "regional-care"; returns their tokens (admin, facility).
async fn care_world(app: &TestApp, persons: u64) -> (String, String) {
    load_persons(app, persons).await;
    let admin = app.party(Role::Admin, &[]).await;
    let facility = app.party(Role::Facility, &[]).await;
    purpose(app, &admin, "regional-care", &[&facility]).await;
    (admin, facility)
}

async fn issue(app: &TestApp, token: &str, purpose: &str, number: &str) -> (u16, Value) {
    let body = json!({"purpose": purpose, "insurer_number": INSURER, "symbol": "12",
                      "number": number, "branch": "01", "birth_date": "1980-04-01"});
    app.call("/v1/health-ids", token, &body).await
}

async fn issued_id(app: &TestApp, token: &str, purpose: &str, number: &str) -> String {
    let (status, body) = issue(app, token, purpose, number).await;
    assert_eq!(status, 200, "{body:#}");
    body["health_id"]["health_id"].as_str().unwrap().to_owned()
}

async fn resolve(app: &TestApp, token: &str, purpose: &str, id: &str) -> (u16, Value) {
    let body = json!({"purpose": purpose, "health_id": id});
    app.call("/v1/health-ids/resolve", token, &body).await
}

#[tokio::test]
async fn an_issued_id_is_stable_and_resolves_to_the_eligibility_answer() {
    let app = spawn().await;
    let (_, facility) = care_world(&app, 1).await;

    let id = issued_id(&app, &facility, "regional-care", "1").await;
    assert_eq!(id.len(), 33);
    assert_eq!(issued_id(&app, &facility, "regional-care", "1").await, id);

    let (status, body) = resolve(&app, &facility, "regional-care", &id).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["eligibility"]["validity"], 1);
    assert_eq!(body["eligibility"]["coverage"]["number"], "1");
    let lower = id.to_ascii_lowercase();
    assert_eq!(
        resolve(&app, &facility, "regional-care", &lower).await.0,
        200
    );

    let (status, body) = app
        .call(
            "/v1/health-ids",
            &facility,
            &json!({"purpose": "regional-care", "insurer_number": INSURER, "symbol": "12",
                    "number": "1", "branch": "01", "birth_date": "1980-04-02"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["eligibility"]["validity"], 4);
    assert!(body.get("health_id").is_none(), "{body:#}");

    let kinds = app.disclosure_kinds().await;
    assert_eq!(
        kinds,
        [
            "health_id.issue",
            "health_id.issue",
            "health_id.resolve",
            "health_id.resolve",
            "health_id.issue"
        ]
    );
}

#[tokio::test]
async fn only_parties_of_a_purpose_receive_and_resolve_its_ids() {
    let app = spawn().await;
    load_persons(&app, 1).await;
    let admin = app.party(Role::Admin, &[]).await;
    let care = app.party(Role::Facility, &[]).await;
    let research = app.party(Role::Facility, &[]).await;
    purpose(&app, &admin, "regional-care", &[&care]).await;
    purpose(&app, &admin, "research-db", &[&research]).await;

    let (status, body) = issue(&app, &research, "regional-care", "1").await;
    assert_eq!(status, 403, "{body:#}");
    assert_eq!(body["error"]["code"], "purpose.not_authorized");
    let care_id = issued_id(&app, &care, "regional-care", "1").await;
    let research_id = issued_id(&app, &research, "research-db", "1").await;
    assert_ne!(care_id, research_id);

    let (status, body) = resolve(&app, &research, "regional-care", &care_id).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("purpose.not_authorized"))
    );
    // Another purpose's ID and a random well-formed one answer exactly alike.
    let (status, other) = resolve(&app, &research, "research-db", &care_id).await;
    assert_eq!(status, 404);
    let random = onshi::health_id::derive::HealthId::from_mac(&[0x5a; 32]);
    let (status, random) = resolve(&app, &research, "research-db", random.as_str()).await;
    assert_eq!(status, 404);
    assert_eq!(other, random);
    assert_eq!(other["error"]["code"], "health_id.not_found");

    let mut altered = care_id.clone().into_bytes();
    altered[0] = if altered[0] == b'7' { b'8' } else { b'7' };
    let altered = String::from_utf8(altered).unwrap();
    let (status, body) = resolve(&app, &care, "regional-care", &altered).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("health_id.check_symbol"))
    );
    let (status, body) = resolve(&app, &care, "nowhere", &care_id).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("purpose.unknown"))
    );
    let (status, _) = app
        .call("/v1/purposes", &care, &json!({"name": "x", "parties": [1]}))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_reissued_id_replaces_the_old_one_which_answers_revoked() {
    let app = spawn().await;
    let (admin, facility) = care_world(&app, 1).await;
    let old = issued_id(&app, &facility, "regional-care", "1").await;

    let body = json!({"purpose": "regional-care", "health_id": old});
    let (status, _) = app.call("/v1/health-ids/reissue", &facility, &body).await;
    assert_eq!(status, 403);
    let (status, new) = app.call("/v1/health-ids/reissue", &admin, &body).await;
    assert_eq!(status, 200, "{new:#}");
    assert_eq!(new["epoch"], 1);
    let new = new["health_id"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let (status, revoked) = resolve(&app, &facility, "regional-care", &old).await;
    assert_eq!(status, 200);
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    assert!(revoked.get("eligibility").is_none(), "{revoked:#}");
    assert_eq!(
        resolve(&app, &facility, "regional-care", &new).await.1["status"],
        "active"
    );
    assert_eq!(issued_id(&app, &facility, "regional-care", "1").await, new);
    let (status, body) = app.call("/v1/health-ids/reissue", &admin, &body).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("health_id.revoked"))
    );
}

#[tokio::test]
async fn a_collision_is_recorded_and_re_derived_with_the_next_counter() {
    let app = spawn().await;
    let (_, facility) = care_world(&app, 2).await;
    let first = issued_id(&app, &facility, "regional-care", "1").await;
    // Forces the collision: person 2 gets person 1's base, so its counter-0 ID is person 1's.
    let db = app.db().await;
    db.execute(
        "insert into person_bases (person_id, base)
         select c2.person_id, b.base from coverages c1
         join person_bases b on b.person_id = c1.person_id
         join coverages c2 on c2.number = '2' where c1.number = '1'",
        &[],
    )
    .await
    .unwrap();
    let second = issued_id(&app, &facility, "regional-care", "2").await;
    assert_ne!(first, second);
    let counters: Vec<i32> = app
        .column("select counter from health_ids order by id")
        .await;
    assert_eq!(counters, [0, 1]);
}

#[tokio::test]
async fn a_key_rotation_interrupted_after_three_persons_resumes_and_finishes() {
    let app = spawn().await;
    let (_, facility) = care_world(&app, 7).await;
    let mut old = Vec::new();
    for n in 1..=7 {
        old.push(issued_id(&app, &facility, "regional-care", &n.to_string()).await);
    }
    let keys = in_process_keys();
    let pool = onshi::store::pool(&app.database_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    let mut seen = Vec::new();
    let first = onshi::health_id::rotation::rotate(
        &mut client,
        &keys,
        "regional-care",
        2,
        Some(3),
        |done, total| seen.push((done, total)),
    )
    .await
    .unwrap();
    assert_eq!(
        (first.key_version, first.done, first.finished),
        (2, 3, false)
    );
    assert_eq!(seen, [(0, 7), (2, 7), (3, 7)]);
    let db = app.db().await;
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let current_v2 = "select count(*) from health_ids where revoked_at is null and key_version = 2";
    assert_eq!(count(current_v2).await, 3);

    let second =
        onshi::health_id::rotation::rotate(&mut client, &keys, "regional-care", 2, None, |_, _| {})
            .await
            .unwrap();
    assert_eq!(
        (second.key_version, second.done, second.finished),
        (2, 4, true)
    );
    assert_eq!(count(current_v2).await, 7);
    assert_eq!(
        count("select count(*) from health_ids where revoked_at is not null").await,
        7
    );
    assert_eq!(
        count("select count(*) from health_id_rotations where finished_at is not null").await,
        1
    );
    assert_eq!(
        resolve(&app, &facility, "regional-care", &old[0]).await.1["status"],
        "revoked"
    );
    let new = issued_id(&app, &facility, "regional-care", "1").await;
    assert!(!old.contains(&new));
    assert_eq!(
        resolve(&app, &facility, "regional-care", &new).await.1["status"],
        "active"
    );
}

/// The PKCS#11 settings `ops/softhsm` prints; fails loudly when they are missing.
fn pkcs11_settings() -> KeySettings {
    let mut settings = onshi::config::Settings::load_from(None, |name| std::env::var(name).ok())
        .expect("the settings in the environment are valid")
        .health_id;
    assert!(
        settings.pkcs11_module.is_some() && std::env::var_os("SOFTHSM2_CONF").is_some(),
        "the PKCS#11 tests need a SoftHSM2 token: run eval \"$(ops/softhsm)\" (ops/test does)"
    );
    settings.key_file = None;
    settings
}

#[tokio::test]
async fn the_pkcs11_token_computes_the_ids() {
    let settings = pkcs11_settings();
    let keys = settings.open().unwrap().expect("a PKCS#11 key source");
    assert!(matches!(keys, KeySource::Pkcs11(_)));
    let base = [7u8; 32];
    let inputs = |purpose| onshi::health_id::derive::Inputs {
        purpose,
        key_version: 1,
        base: &base,
        epoch: 0,
        counter: 0,
    };
    let derive =
        |purpose| onshi::health_id::derive_id(&keys.keyed(purpose, 1), &inputs(purpose)).unwrap();
    assert_eq!(derive("regional-care"), derive("regional-care"));
    assert_ne!(derive("regional-care"), derive("research-db"));
    assert_eq!(format!("{keys:?}"), "Pkcs11(Pkcs11Key(<in token>))");

    let app = spawn_with(settings, |_| {}).await;
    let (_, facility) = care_world(&app, 1).await;
    let id = issued_id(&app, &facility, "regional-care", "1").await;
    assert_eq!(issued_id(&app, &facility, "regional-care", "1").await, id);
    assert_eq!(
        resolve(&app, &facility, "regional-care", &id).await.1["status"],
        "active"
    );
}

/// Issuance answers an eligibility check and resolution looks a person up: both feed the
/// enumeration watch, so neither is a way around it.
#[tokio::test]
async fn issuing_or_resolving_what_does_not_exist_trips_the_enumeration_watch() {
    let app = spawn_with(KeySettings::default(), |s| s.enumeration_misses = 3).await;
    let (admin, facility) = care_world(&app, 3).await;
    let prober = app.party(Role::Facility, &[]).await;
    purpose(&app, &admin, "research", &[&facility, &prober]).await;
    purpose(&app, &admin, "regional-network", &[&prober]).await;

    // Issuing for numbers nobody holds.
    for n in 0..3 {
        let (status, body) = issue(&app, &facility, "regional-care", &format!("90{n}")).await;
        assert_eq!(
            (status, body["eligibility"]["validity"].clone()),
            (200, json!(4))
        );
    }
    let (status, body) = issue(&app, &facility, "regional-care", "1").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (429, json!("rate.enumeration_suspected"))
    );

    // Resolving IDs of another purpose, which name nobody here.
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(issued_id(&app, &prober, "research", &n.to_string()).await);
    }
    for id in &ids {
        let (status, _) = resolve(&app, &prober, "regional-network", id).await;
        assert_eq!(status, 404);
    }
    let (status, body) = resolve(&app, &prober, "research", &ids[0]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (429, json!("rate.enumeration_suspected"))
    );
}
