//! Bad input everywhere: one table ([`cases::all`]) of malformed, mistyped, missing, overlong,
//! mixed-width and hostile values for every endpoint that reads input, and a 100 MB body on
//! every POST endpoint. Each answers its 4xx code naming the field at fault, never repeats what
//! was sent, and changes nothing.

mod cases;
mod csv_cases;
mod huge;
mod json;

use std::collections::BTreeMap;

use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Csv, TestApp, INSURER};
use huge::{post_huge, BAD_LINES, FILLER, HUNDRED_MB};

/// Which registered caller sends a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Facility,
    Claims,
    Insurer,
    Payer,
    Admin,
}

pub struct Case {
    pub name: String,
    pub who: Who,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    pub code: String,
    pub field: Option<String>,
    /// Part of the value sent, which the answer must not repeat.
    pub sent: String,
    /// For an enrolment file: the line its first error must name.
    pub line: Option<u64>,
}

/// Sent in bodies throughout; no answer may ever contain them.
const NEVER_ECHOED: [&str; 4] = ["drop table", "983205673214", "架空", "\\u0000"];

/// What the setup made: tokens, the purpose's registered facility and an issued health ID.
pub struct World {
    tokens: BTreeMap<&'static str, String>,
    pub facility_id: i64,
    pub health_id: String,
}

impl World {
    fn token(&self, who: Who) -> &str {
        &self.tokens[format!("{who:?}").as_str()]
    }
}

pub const PURPOSE: &str = "bad-input";
/// The payer of the setup: 医療扶助 (法別 12), checksum-valid.
pub const PAYER: &str = "12136016";
pub const QUERY_KEY: (&str, &str, &str, &str) = (INSURER, "12", "3456", "01");

async fn setup(app: &TestApp) -> World {
    let mut tokens = BTreeMap::new();
    tokens.insert("Facility", app.party(Role::Facility, &[]).await);
    tokens.insert("Claims", app.party(Role::Claims, &[]).await);
    tokens.insert("Insurer", app.party(Role::Insurer, &[INSURER]).await);
    tokens.insert("Admin", app.party(Role::Admin, &[]).await);
    tokens.insert("Payer", app.party(Role::Payer, &[PAYER]).await);
    let csv = Csv::new()
        .acquire(1, QUERY_KEY, "1980-04-01", "2020-04-01")
        .build();
    let loaded = app.upload(&tokens["Insurer"], "bad-input-setup", csv).await;
    assert_eq!(loaded.status(), 200);
    let facility_id: i64 = app
        .db()
        .await
        .query_one("select min(id) from parties where role = 'facility'", &[])
        .await
        .unwrap()
        .get(0);
    let purpose = json!({"name": PURPOSE, "parties": [facility_id]});
    let response = app
        .post_json("/v1/purposes", &tokens["Admin"], &purpose)
        .await;
    assert_eq!(response.status(), 201);
    let issue = json!({"purpose": PURPOSE, "insurer_number": INSURER, "symbol": "12",
                       "number": "3456", "branch": "01", "birth_date": "1980-04-01"});
    let response = app
        .post_json("/v1/health-ids", &tokens["Facility"], &issue)
        .await;
    let issued: Value = response.json().await.unwrap();
    let health_id = issued["health_id"]["health_id"]
        .as_str()
        .unwrap()
        .to_owned();
    World {
        tokens,
        facility_id,
        health_id,
    }
}

/// Row counts of every table, and enrolment batches by status.
async fn snapshot(app: &TestApp) -> BTreeMap<String, i64> {
    let db = app.db().await;
    let tables = db
        .query(
            "select table_name::text from information_schema.tables
             where table_schema = 'public' and table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for row in tables {
        let table: String = row.get(0);
        counts.insert(table.clone(), app.count(&table).await);
    }
    for row in db
        .query(
            "select status, count(*) from enrollment_batches group by status",
            &[],
        )
        .await
        .unwrap()
    {
        counts.insert(
            format!("enrollment_batches {}", row.get::<_, String>(0)),
            row.get(1),
        );
    }
    counts
}

/// The code and field of an answer: its error, an enrolment report's first line error, or a
/// batch's first result's error.
fn code_and_field(body: &Value) -> (String, Option<String>) {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    if let Some(first) = body["errors"].get(0) {
        assert_eq!(body["error"]["code"], "enrollment.rejected", "{body}");
        return (
            text(&first["code"]).unwrap_or_default(),
            text(&first["column"]),
        );
    }
    let error = match body["results"].get(0) {
        Some(result) => &result["error"],
        None => &body["error"],
    };
    (
        text(&error["code"]).unwrap_or_default(),
        text(&error["field"]),
    )
}

async fn run(app: &TestApp, world: &World, case: &Case) -> Result<(), String> {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = app
        .http
        .request(method, format!("{}{}", app.address, case.path))
        .bearer_auth(world.token(case.who));
    for (name, value) in &case.headers {
        request = request.header(*name, value.as_bytes());
    }
    let response = match request.body(case.body.clone()).send().await {
        Ok(response) => response,
        Err(error) => return Err(format!("{}: no answer: {error}", case.name)),
    };
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let (code, field) = code_and_field(&body);
    let mut wrong = Vec::new();
    if let Some(line) = case.line {
        if body["errors"][0]["line"] != line {
            wrong.push(format!("want the error on line {line}: {body}"));
        }
    }
    if (status, &code, &field) != (case.status, &case.code, &case.field) {
        wrong.push(format!(
            "got {status} {code} {field:?}, want {} {} {:?}",
            case.status, case.code, case.field
        ));
    }
    for sent in NEVER_ECHOED.iter().copied().chain([case.sent.as_str()]) {
        if !sent.is_empty() && text.contains(sent) {
            wrong.push(format!("the answer repeats {sent:?}: {text}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", case.name, wrong.join("; ")))
    }
}

#[tokio::test]
async fn every_bad_input_gets_its_4xx_and_changes_nothing() {
    let trust_dir =
        std::env::temp_dir().join(format!("onshi-bad-input-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&trust_dir).unwrap();
    let hid_key = trust_dir.with_extension("hid");
    std::fs::write(&hid_key, "42".repeat(32)).unwrap();
    let app = spawn_app_with(|s| {
        s.rate_per_second = 0;
        s.enumeration_misses = 0;
        s.jpki_trust_dir = Some(trust_dir.clone());
        s.health_id.key_file = Some(hid_key.clone());
    })
    .await;
    let world = setup(&app).await;
    let mut before = snapshot(&app).await;

    let cases: Vec<Case> = cases::all(&world)
        .into_iter()
        .chain(csv_cases::all())
        .collect();
    // Every refused file is recorded for its Idempotency-Key: the table's and two 100 MB ones.
    let rejected_batches = cases.iter().filter(|c| c.status == 422).count() + 2;
    let mut wrong = Vec::new();
    for case in &cases {
        if let Err(e) = run(&app, &world, case).await {
            wrong.push(e);
        }
    }

    for (path, who) in crate::roles::posts() {
        let who = match who {
            Role::Facility => Who::Facility,
            Role::Claims => Who::Claims,
            Role::Insurer => Who::Insurer,
            Role::Payer => Who::Payer,
            Role::Admin => Who::Admin,
        };
        let token = world.token(who);
        let mut huge = vec![(
            "application/json",
            b"{\"number\": \"".as_slice(),
            FILLER.as_slice(),
            (413, "body.too_large"),
        )];
        if path == "/v1/enrollments" {
            let header = b"change,insurer_number,number\n";
            huge = vec![
                ("text/csv", header, FILLER.as_slice(), (422, "row.too_long")),
                ("text/csv", header, BAD_LINES, (422, "file.too_many_errors")),
            ];
        }
        if path == "/v1/public-expenses" {
            // A payer's file is read whole, up to its 64 MiB.
            let header = b"change,payer_number,recipient_number\n";
            huge = vec![(
                "text/csv",
                header,
                FILLER.as_slice(),
                (413, "body.too_large"),
            )];
        }
        for (content_type, head, filler, want) in huge {
            let (status, body) =
                post_huge(&app, path, token, content_type, head, filler, HUNDRED_MB).await;
            let code = match body["errors"].as_array() {
                Some(errors) => &errors[errors.len() - 1]["code"],
                None => &body["error"]["code"],
            };
            if (status, code.as_str().unwrap_or_default()) != want {
                wrong.push(format!(
                    "100 MB to {path}: got {status} {body}, want {want:?}"
                ));
            }
        }
    }

    let mut after = snapshot(&app).await;
    let key = "enrollment_batches rejected";
    let added = after.remove(key).unwrap_or(0) - before.remove(key).unwrap_or(0);
    assert_eq!(
        added as usize, rejected_batches,
        "each rejected file is recorded, for its Idempotency-Key"
    );
    *after.get_mut("enrollment_batches").unwrap() -= added;
    let _ = std::fs::remove_dir_all(&trust_dir);
    let _ = std::fs::remove_file(&hid_key);
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert_eq!(after, before, "bad input changed nothing");

    let response = app
        .post_json(
            "/v1/eligibility",
            world.token(Who::Facility),
            &json!({"insurer_number": INSURER, "symbol": "12", "number": "3456",
                    "branch": "01", "birth_date": "1980-04-01"}),
        )
        .await;
    assert_eq!(response.status(), 200, "the server still answers");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["validity"], 1);
}

/// What looks hostile but is valid: quotes, semicolons, percent signs and backslashes in free
/// text are stored and answered as sent (bound as parameters and escaped for COPY, never
/// spliced); a CRLF file loads like an LF one; a file with only its header changes nothing.
#[tokio::test]
async fn hostile_looking_valid_input_is_stored_verbatim() {
    let app = spawn_app_with(|_| {}).await;
    let insurer = app.party(Role::Insurer, &[INSURER]).await;
    let name = r"O'Brien; drop table parties; -- 100% \N \\ _";
    let csv = Csv::new()
        .row(&[
            ("change", "acquire"),
            ("individual_number", &crate::helpers::my_number(7)),
            ("insurer_number", INSURER),
            ("number", "3456"),
            ("card_classification", "01"),
            ("relationship", "1"),
            ("insured_name", name),
            ("name", name),
            ("name_kana", "カクウ タロウ"),
            ("sex", "1"),
            ("birth_date", "1980-04-01"),
            ("address", name),
            ("acquired_on", "2020-04-01"),
            ("copay_ratio", "030"),
        ])
        .build()
        .replace('\n', "\r\n");
    let response = app.upload(&insurer, "crlf", csv).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let header_only = format!("{}\n", crate::helpers::HEADER);
    let response = app.upload(&insurer, "header-only", header_only).await;
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (report["status"].as_str(), report["rows"].as_u64()),
        (Some("applied"), Some(0))
    );
    assert_eq!(app.count("coverages").await, 1);

    let facility = app.party(Role::Facility, &[]).await;
    let query = json!({"insurer_number": INSURER, "number": "3456", "birth_date": "1980-04-01"});
    let answer: Value = app
        .post_json("/v1/eligibility", &facility, &query)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["validity"], 1, "{answer:#}");
    assert_eq!(answer["coverage"]["name"], name);
    assert_eq!(answer["coverage"]["address"], name);

    let admin = app.party(Role::Admin, &[]).await;
    let party = json!({"role": "claims", "name": name});
    let response = app.post_json("/v1/parties", &admin, &party).await;
    assert_eq!(response.status(), 201);
    let stored: String = app
        .db()
        .await
        .query_one("select name from parties where role = 'claims'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, name);
}
