//! Who may call what. [`ENDPOINTS`] is the one list of every route the server declares, with
//! the roles each admits and the handler's own answer to them. Every endpoint is called by every
//! role and with every kind of bad credential; a route declared in `src/api` without a row here
//! fails `declared::the_table_lists_every_declared_route`, so a new endpoint cannot ship unlisted.

use std::collections::HashMap;

use onshi::parties::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Csv, TestApp, INSURER};

mod declared;

/// The callers the table distinguishes. Facilities differ by the 点数表 digit of their code;
/// that digit does not tell a hospital from a clinic (both are 1, 医科), and onshi registers
/// nothing else that does, so `Medical` stands for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Medical,
    Dental,
    Pharmacy,
    HomeNursing,
    Claims,
    Insurer,
    Payer,
    Admin,
}

const EVERYONE: [Who; 8] = [
    Who::Medical,
    Who::Dental,
    Who::Pharmacy,
    Who::HomeNursing,
    Who::Claims,
    Who::Insurer,
    Who::Payer,
    Who::Admin,
];

impl Who {
    fn role(self) -> Role {
        match self {
            Who::Medical | Who::Dental | Who::Pharmacy | Who::HomeNursing => Role::Facility,
            Who::Claims => Role::Claims,
            Who::Insurer => Role::Insurer,
            Who::Payer => Role::Payer,
            Who::Admin => Role::Admin,
        }
    }

    /// The role and, for a facility, a checksum-valid facility code of its kind.
    fn registration(self) -> Value {
        let facility = |code: &str| json!({"role": "facility", "facility_code": code});
        match self {
            Who::Medical => facility("0110113719"),
            Who::Dental => facility("0130113715"),
            Who::Pharmacy => facility("0140113713"),
            Who::HomeNursing => facility("0160113718"),
            Who::Claims => json!({"role": "claims"}),
            Who::Insurer => json!({"role": "insurer", "insurer_numbers": [INSURER]}),
            Who::Payer => json!({"role": "payer", "payer_numbers": [crate::bad_input::PAYER]}),
            Who::Admin => json!({"role": "admin"}),
        }
    }
}

/// What one caller gets from an endpoint.
#[derive(Clone, Copy, Debug)]
enum Gets {
    /// The handler ran: its own answer, status and error code ("" on success).
    Answer(u16, &'static str),
    /// 403 `auth.forbidden`: the role may not use the endpoint.
    Forbidden,
}

#[derive(Clone, Copy, Debug)]
enum Access {
    Public(Gets),
    Roles([Gets; 8]),
}
use Access::{Public, Roles};

const NO: Gets = Gets::Forbidden;
const OK: Gets = Gets::Answer(200, "");
const NEW: Gets = Gets::Answer(201, "");
const UNISSUED: Gets = Gets::Answer(404, "challenge.unknown");
const ACCEPTED: Gets = Gets::Answer(202, "");
const NO_JOB: Gets = Gets::Answer(404, "bulk.not_found");

struct Endpoint {
    method: &'static str,
    /// As declared in `src/api`, with its scope.
    route: &'static str,
    /// What is requested; `{party_id}` and `{health_id}` are filled in from the setup.
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// A minimal valid body; `{party_id}` and `{health_id}` are filled in.
    body: &'static str,
    /// `Public(answer)`: no credential needed (any sent is ignored), the same answer for all.
    /// `Roles`: what each caller gets, in the order of [`EVERYONE`]: Medical, Dental, Pharmacy,
    /// HomeNursing, Claims, Insurer, Payer, Admin.
    gets: Access,
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];
const CSV: &[(&str, &str)] = &[
    ("Content-Type", "text/csv"),
    ("Idempotency-Key", "roles-table-upload"),
];
const QUERY: &str = r#"{"insurer_number": "33120015", "symbol": "12", "number": "3456", "branch": "01", "birth_date": "1980-04-01", "date_of_care": "2026-11-24"}"#;
/// The purpose the setup registers with every caller as a member.
const PURPOSE: &str = "roles-table";

// Notes on the answers:
// - batch: claims systems before billing, hospitals/clinics and dental clinics for the next
//   day's bookings; pharmacies and home-nursing stations check patients one at a time.
// - card endpoints: the challenge was never issued, so an admitted facility gets 404; only a
//   facility links (from the card's signed data); an administrator unlinks by certificate, and
//   "MA==" is no certificate.
// - revoke: party 0 does not exist. Enrolment reports: only the sender's (another insurer's
//   is 404, tests/api/enrollments.rs).
// - the card holder's own view takes no token (the card is the credential): any sent is
//   ignored, and a challenge never issued is 404. Only an administrator looks a log up.
// - resolve has no role gate: membership of the purpose decides, and the setup makes every
//   caller a member (non-members get 403 `purpose.not_authorized`, tests/api/health_ids.rs).
#[rustfmt::skip]
const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "GET", route: "/healthz", path: "/healthz", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/readyz", path: "/readyz", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/openapi.json", path: "/openapi.json", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/openapi.yaml", path: "/openapi.yaml", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/metrics", path: "/metrics", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/fhir/metadata", path: "/fhir/metadata", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "POST", route: "/fhir/CoverageEligibilityRequest/$submit", path: "/fhir/CoverageEligibilityRequest/$submit", headers: JSON,
        body: r##"{"resourceType": "CoverageEligibilityRequest", "status": "active", "purpose": ["validation"], "patient": {"reference": "#p"}, "created": "2026-11-24", "insurer": {"display": "x"}, "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "1980-04-01"}, {"resourceType": "Coverage", "id": "c", "status": "active", "beneficiary": {"reference": "#p"}, "payor": [{"identifier": {"system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber", "value": "33120015"}}], "extension": [{"url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Coverage_InsuredPersonNumber", "valueString": "3456"}]}], "insurance": [{"coverage": {"reference": "#c"}}]}"##,
        gets: Roles([OK, OK, OK, OK, OK, NO, NO, NO]) },
    Endpoint { method: "GET", route: "/.well-known/jwks.json", path: "/.well-known/jwks.json", headers: &[], body: "", gets: Public(OK) },
    // Followed to the page.
    Endpoint { method: "GET", route: "/desk", path: "/desk", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/desk/", path: "/desk/", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/desk/desk.js", path: "/desk/desk.js", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "GET", route: "/desk/desk.css", path: "/desk/desk.css", headers: &[], body: "", gets: Public(OK) },
    Endpoint { method: "POST", route: "/v1/self/challenges", path: "/v1/self/challenges", headers: &[],
        body: "", gets: Public(NEW) },
    Endpoint { method: "POST", route: "/v1/self/access-log", path: "/v1/self/access-log", headers: JSON,
        body: r#"{"certificate": "MA==", "signature": "MA==", "challenge_id": "00000000-0000-4000-8000-000000000000"}"#,
        gets: Public(UNISSUED) },
    Endpoint { method: "POST", route: "/v1/access-log/lookup", path: "/v1/access-log/lookup", headers: JSON,
        body: QUERY,
        gets: Roles([NO, NO, NO, NO, NO, NO, NO, OK]) },
    Endpoint { method: "POST", route: "/v1/eligibility", path: "/v1/eligibility", headers: JSON,
        body: QUERY,
        //         Medical Dental Pharmacy HomeNursing Claims Insurer Payer Admin
        gets: Roles([OK, OK, OK, OK, OK, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/eligibility/batch", path: "/v1/eligibility/batch", headers: JSON,
        body: r#"{"queries": [{"insurer_number": "33120015", "number": "3456", "birth_date": "1980-04-01"}]}"#,
        gets: Roles([OK, OK, NO, NO, OK, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/eligibility/bulk", path: "/v1/eligibility/bulk", headers: JSON,
        body: r#"{"queries": [{"insurer_number": "33120015", "number": "3456", "birth_date": "1980-04-01"}]}"#,
        gets: Roles([ACCEPTED, ACCEPTED, NO, NO, ACCEPTED, NO, NO, NO]) },
    // No job has this number: a checker is told so, as it would be of another party's job.
    Endpoint { method: "GET", route: "/v1/eligibility/bulk/{reception_number}", path: "/v1/eligibility/bulk/00000000000000000000000000000000", headers: &[],
        body: "",
        gets: Roles([NO_JOB, NO_JOB, NO_JOB, NO_JOB, NO_JOB, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/eligibility/card", path: "/v1/eligibility/card", headers: JSON,
        body: r#"{"certificate": "MA==", "signature": "MA==", "challenge_id": "00000000-0000-4000-8000-000000000000"}"#,
        gets: Roles([UNISSUED, UNISSUED, UNISSUED, UNISSUED, NO, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/challenges", path: "/v1/challenges", headers: &[],
        body: "",
        gets: Roles([NEW, NEW, NEW, NEW, NO, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/card-links", path: "/v1/card-links", headers: JSON,
        body: r#"{"certificate": "MA==", "signature": "MA==", "challenge_id": "00000000-0000-4000-8000-000000000000", "card_surface": {"my_number": "MA==", "basic_facts": "MA==", "signature": "MA==", "issuer_certificate": "MA==", "auth_key": "MA==", "internal_authentication": "MA=="}}"#,
        gets: Roles([UNISSUED, UNISSUED, UNISSUED, UNISSUED, NO, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/card-links/unlink", path: "/v1/card-links/unlink", headers: JSON,
        body: r#"{"certificate": "MA=="}"#,
        gets: Roles([NO, NO, NO, NO, NO, NO, NO, Gets::Answer(422, "certificate.malformed")]) },
    Endpoint { method: "POST", route: "/v1/self/card-unlink", path: "/v1/self/card-unlink", headers: JSON,
        body: r#"{"certificate": "MA==", "signature": "MA==", "challenge_id": "00000000-0000-4000-8000-000000000000"}"#,
        gets: Public(UNISSUED) },
    Endpoint { method: "POST", route: "/v1/self/consents/withdraw", path: "/v1/self/consents/withdraw", headers: JSON,
        body: r#"{"certificate": "MA==", "signature": "MA==", "challenge_id": "00000000-0000-4000-8000-000000000000"}"#,
        gets: Public(UNISSUED) },
    Endpoint { method: "POST", route: "/v1/eligibility/assistance", path: "/v1/eligibility/assistance", headers: JSON,
        body: r#"{"payer_number": "12136016", "recipient_number": "1234566", "birth_date": "1980-04-01"}"#,
        gets: Roles([OK, OK, OK, OK, OK, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/public-expenses", path: "/v1/public-expenses", headers: CSV,
        body: "change,payer_number,recipient_number,individual_number,birth_date,valid_from\n\
               grant,12136016,1234566,983205673214,1985-05-05,2026-04-01\n",
        gets: Roles([NO, NO, NO, NO, NO, NO, OK, NO]) },
    Endpoint { method: "POST", route: "/v1/reference-numbers", path: "/v1/reference-numbers", headers: JSON,
        body: r#"{"entries": [{"insurer_number": "33120015", "number": "3456", "reference_number": "P-1"}]}"#,
        gets: Roles([OK, OK, OK, OK, OK, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/parties", path: "/v1/parties", headers: JSON,
        body: r#"{"role": "claims", "name": "registered by the roles table"}"#,
        gets: Roles([NO, NO, NO, NO, NO, NO, NO, NEW]) },
    Endpoint { method: "POST", route: "/v1/parties/{id}/revoke", path: "/v1/parties/0/revoke", headers: &[],
        body: "",
        gets: Roles([NO, NO, NO, NO, NO, NO, NO, Gets::Answer(404, "party.not_found")]) },
    Endpoint { method: "POST", route: "/v1/enrollments", path: "/v1/enrollments", headers: CSV,
        body: "change,individual_number,insurer_number,symbol,number,branch,card_classification,relationship,insured_name,name,name_kana,sex,birth_date,acquired_on,copay_ratio\n\
               acquire,983205673214,33120015,12,7777,01,01,1,架空 花子,架空 花子,カクウ ハナコ,2,1985-05-05,2020-04-01,030\n",
        gets: Roles([NO, NO, NO, NO, NO, OK, NO, NO]) },
    Endpoint { method: "GET", route: "/v1/enrollments/{batch_id}", path: "/v1/enrollments/roles-table-setup", headers: &[],
        body: "",
        gets: Roles([NO, NO, NO, NO, NO, OK, NO, OK]) },
    Endpoint { method: "POST", route: "/v1/purposes", path: "/v1/purposes", headers: JSON,
        body: r#"{"name": "roles-table-added", "parties": [{party_id}]}"#,
        gets: Roles([NO, NO, NO, NO, NO, NO, NO, NEW]) },
    Endpoint { method: "POST", route: "/v1/health-ids", path: "/v1/health-ids", headers: JSON,
        body: r#"{"purpose": "roles-table", "insurer_number": "33120015", "symbol": "12", "number": "3456", "branch": "01", "birth_date": "1980-04-01"}"#,
        gets: Roles([OK, OK, OK, OK, NO, NO, NO, NO]) },
    Endpoint { method: "POST", route: "/v1/health-ids/resolve", path: "/v1/health-ids/resolve", headers: JSON,
        body: r#"{"purpose": "roles-table", "health_id": "{health_id}"}"#,
        gets: Roles([OK, OK, OK, OK, OK, OK, OK, OK]) },
    Endpoint { method: "POST", route: "/v1/health-ids/reissue", path: "/v1/health-ids/reissue", headers: JSON,
        body: r#"{"purpose": "roles-table", "health_id": "{health_id}"}"#,
        gets: Roles([NO, NO, NO, NO, NO, NO, NO, OK]) },
];

/// Every POST endpoint's path and a role it admits: other tests reach every endpoint this way.
pub fn posts() -> Vec<(&'static str, Role)> {
    ENDPOINTS
        .iter()
        .filter(|e| e.method == "POST")
        .map(|e| {
            let first = match e.gets {
                // Any credential will do: it is ignored.
                Public(_) => 0,
                Roles(gets) => gets
                    .iter()
                    .position(|g| matches!(g, Gets::Answer(..)))
                    .expect("some role may use each endpoint"),
            };
            (e.path, EVERYONE[first].role())
        })
        .collect()
}

/// The tokens of one caller of each kind, active, expired and revoked, and what the table's
/// placeholders stand for.
struct World {
    active: HashMap<Who, String>,
    expired: HashMap<Who, String>,
    revoked: HashMap<Who, String>,
    party_id: i64,
    health_id: String,
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = app.post_json(path, token, &body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body:#}");
    body
}

/// Registers one party of each kind three times through the admin endpoint, expires one set by
/// SQL and revokes another through the API; loads one person, registers the purpose with every
/// active party and issues that person's ID.
async fn setup(app: &TestApp) -> World {
    let root = app.party(Role::Admin, &[]).await;
    let mut world = World {
        active: HashMap::new(),
        expired: HashMap::new(),
        revoked: HashMap::new(),
        party_id: 0,
        health_id: String::new(),
    };
    let mut member_ids = Vec::new();
    for who in EVERYONE {
        let register = || async {
            let body = post(app, &root, "/v1/parties", who.registration()).await;
            (
                body["id"].as_i64().unwrap(),
                body["token"].as_str().unwrap().to_owned(),
            )
        };
        let (id, token) = register().await;
        member_ids.push(id);
        world.active.insert(who, token);
        let (id, token) = register().await;
        app.db()
            .await
            .execute(
                "update parties set expires_at = now() - interval '1 day' where id = $1",
                &[&id],
            )
            .await
            .unwrap();
        world.expired.insert(who, token);
        let (id, token) = register().await;
        post(app, &root, &format!("/v1/parties/{id}/revoke"), json!({})).await;
        world.revoked.insert(who, token);
    }
    world.party_id = member_ids[0];

    let csv = Csv::new()
        .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
        .build();
    let response = app
        .upload(&world.active[&Who::Insurer], "roles-table-setup", csv)
        .await;
    assert_eq!(response.status(), 200);
    post(
        app,
        &root,
        "/v1/purposes",
        json!({"name": PURPOSE, "parties": member_ids}),
    )
    .await;
    let query: Value = serde_json::from_str(QUERY).unwrap();
    let mut issue = query.as_object().unwrap().clone();
    issue.insert("purpose".into(), PURPOSE.into());
    let issued = post(
        app,
        &world.active[&Who::Medical],
        "/v1/health-ids",
        Value::Object(issue),
    )
    .await;
    world.health_id = issued["health_id"]["health_id"]
        .as_str()
        .unwrap()
        .to_owned();
    world
}

/// The status and code an answer stands for.
fn expected(gets: Gets) -> (u16, &'static str) {
    match gets {
        Gets::Answer(status, code) => (status, code),
        Gets::Forbidden => (403, "auth.forbidden"),
    }
}

/// Sends the row's request with this Authorization header value; answers status and code
/// ("" when the body carries no error).
async fn call(
    app: &TestApp,
    world: &World,
    row: &Endpoint,
    method: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    let fill = |s: &str| {
        s.replace("{party_id}", &world.party_id.to_string())
            .replace("{health_id}", &world.health_id)
    };
    let mut request = app.http.request(
        Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{}", app.address, fill(row.path)),
    );
    for (name, value) in row.headers {
        request = request.header(*name, *value);
    }
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.body(fill(row.body)).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    (status, code)
}

#[tokio::test]
async fn every_endpoint_admits_exactly_the_roles_in_the_table_and_no_bad_credential() {
    let trust_dir =
        std::env::temp_dir().join(format!("onshi-roles-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&trust_dir).unwrap();
    let hid_key = trust_dir.with_extension("hid");
    std::fs::write(&hid_key, "42".repeat(32)).unwrap();
    let app = spawn_app_with(|s| {
        // Hundreds of requests from a few parties, some finding nothing: not abuse here.
        s.rate_per_second = 0;
        s.enumeration_misses = 0;
        // An empty trust store: card endpoints run and refuse the card, not "not configured".
        s.jpki_trust_dir = Some(trust_dir.clone());
        s.health_id.key_file = Some(hid_key.clone());
    })
    .await;
    let world = setup(&app).await;
    let mut wrong = Vec::new();
    let mut check = |what: String, got: (u16, String), want: (u16, &str)| {
        if (got.0, got.1.as_str()) != want {
            wrong.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };

    for row in ENDPOINTS {
        let name = format!("{} {}", row.method, row.route);
        let bearer = |token: &str| format!("Bearer {token}");
        for (i, who) in EVERYONE.into_iter().enumerate() {
            let got = call(
                &app,
                &world,
                row,
                row.method,
                Some(&bearer(&world.active[&who])),
            )
            .await;
            let want = match row.gets {
                Public(gets) => expected(gets),
                Roles(gets) => expected(gets[i]),
            };
            check(format!("{name} as {who:?}"), got, want);
        }

        let unauthorized = |code| match row.gets {
            Roles(_) => (401, code),
            Public(gets) => expected(gets),
        };
        let fake = format!("onshi_{}", "0".repeat(64));
        let mut credentials = vec![
            (
                "no credential".to_owned(),
                None,
                unauthorized("auth.missing"),
            ),
            (
                "the Basic scheme".to_owned(),
                Some("Basic YWRtaW46YWRtaW4=".to_owned()),
                unauthorized("auth.malformed"),
            ),
            (
                "an unknown token".to_owned(),
                Some(bearer(&fake)),
                unauthorized("auth.invalid"),
            ),
        ];
        for who in EVERYONE {
            for (state, tokens) in [("expired", &world.expired), ("revoked", &world.revoked)] {
                credentials.push((
                    format!("a {state} {who:?} token"),
                    Some(bearer(&tokens[&who])),
                    unauthorized("auth.invalid"),
                ));
            }
        }
        for (what, authorization, want) in credentials {
            let got = call(&app, &world, row, row.method, authorization.as_deref()).await;
            check(format!("{name} with {what}"), got, want);
        }

        // The other method on the same path is 405 (the path is known), unless the table lists it.
        let other = if row.method == "GET" { "POST" } else { "GET" };
        if !ENDPOINTS
            .iter()
            .any(|e| e.method == other && e.route == row.route)
        {
            let got = call(
                &app,
                &world,
                row,
                other,
                Some(&bearer(&world.active[&Who::Admin])),
            )
            .await;
            check(
                format!("{other} {} (not declared)", row.route),
                got,
                (405, "route.method_not_allowed"),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&trust_dir);
    let _ = std::fs::remove_file(&hid_key);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
