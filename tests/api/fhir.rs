//! FHIR R4: every request sent and every answer received is validated with an independent FHIR
//! model (Python's `fhir.resources`, run from `ONSHI_FHIR_PYTHON`, which `ops/test` installs)
//! as well as read by these tests.

use std::io::Write;
use std::process::{Command, Stdio};

use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{Csv, TestApp, FACILITY_CODE, INSURER};

const EXT: &str = "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/";

/// Validates `resources` with the independent model; panics with its verdict otherwise.
fn validate(resources: &[&Value]) {
    let python = std::env::var("ONSHI_FHIR_PYTHON").expect(
        "ONSHI_FHIR_PYTHON names a Python with fhir.resources: run the tests with ops/test",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/fhir/validate.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the FHIR validator starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(resources).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn request(birth: &str, number: &str) -> Value {
    json!({
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": ["validation"],
        "identifier": [{"system": "urn:example:his", "value": "req-1"}],
        "patient": {"reference": "#pat"},
        "created": "2026-11-24",
        "servicedDate": "2026-11-24",
        "insurer": {"identifier": {"system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber", "value": INSURER}},
        "provider": {"identifier": {"system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no", "value": FACILITY_CODE}},
        "contained": [
            {"resourceType": "Patient", "id": "pat", "birthDate": birth},
            {"resourceType": "Coverage", "id": "cov", "status": "active",
             "beneficiary": {"reference": "#pat"},
             "payor": [{"identifier": {"system": "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber", "value": INSURER}}],
             "extension": [
                 {"url": format!("{EXT}JP_Coverage_InsuredPersonSymbol"), "valueString": "12"},
                 {"url": format!("{EXT}JP_Coverage_InsuredPersonNumber"), "valueString": number},
                 {"url": format!("{EXT}JP_Coverage_InsuredPersonSubNumber"), "valueString": "01"},
             ]},
        ],
        "insurance": [{"coverage": {"reference": "#cov"}}],
    })
}

async fn submit(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let response = app
        .send(
            app.http
                .post(format!(
                    "{}/fhir/CoverageEligibilityRequest/$submit",
                    app.address
                ))
                .bearer_auth(token)
                .header("Content-Type", "application/fhir+json")
                .body(body.to_string()),
        )
        .await;
    let status = response.status().as_u16();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/"));
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_coverage_eligibility_request_is_answered_in_fhir_r4() {
    let app = crate::helpers::spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let facility = app.party(Role::Facility, &[]).await;

    let asked = request("1980-04-01", "3456");
    let (status, answer) = submit(&app, &facility, &asked).await;
    assert_eq!(status, 200, "{answer:#}");
    validate(&[&asked, &answer]);
    assert_eq!(answer["resourceType"], "CoverageEligibilityResponse");
    assert_eq!(answer["outcome"], "complete");
    assert_eq!(answer["insurance"][0]["inforce"], true);
    assert_eq!(answer["request"]["identifier"]["value"], "req-1");
    let coverage = &answer["contained"][1];
    assert_eq!(coverage["resourceType"], "Coverage");
    assert_eq!(
        coverage["identifier"][0]["value"],
        format!("{INSURER}:12:3456:01")
    );
    assert_eq!(
        coverage["costToBeneficiary"][0]["valueQuantity"]["value"],
        3.0
    );
    let check_id = answer["identifier"][0]["value"].as_str().unwrap();
    let recorded: i64 = app
        .db()
        .await
        .query_one(
            "select count(*) from disclosures where check_id = $1::text::uuid",
            &[&check_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 1, "the check is on the audit record");

    // No such coverage: not in force, still a valid response.
    let none = request("1980-04-02", "3456");
    let (status, answer) = submit(&app, &facility, &none).await;
    assert_eq!(status, 200);
    validate(&[&none, &answer]);
    assert_eq!(answer["insurance"][0]["inforce"], false);
    assert_eq!(answer["extension"][0]["valueInteger"], 4);
}

#[tokio::test]
async fn a_request_that_cannot_be_read_gets_an_operation_outcome() {
    let app = crate::helpers::spawn_app().await;
    let facility = app.party(Role::Facility, &[]).await;
    let mut bad_insurer = request("1980-04-01", "3456");
    bad_insurer["contained"][1]["payor"][0]["identifier"]["value"] = json!("33120016");
    let mut no_patient = request("1980-04-01", "3456");
    no_patient["patient"]["reference"] = json!("#nobody");
    let mut other_purpose = request("1980-04-01", "3456");
    other_purpose["purpose"] = json!(["benefits"]);
    for (body, code) in [
        (bad_insurer, "insurer_number.check_digit"),
        (no_patient, "patient.required"),
        (other_purpose, "purpose.unsupported"),
    ] {
        let (status, outcome) = submit(&app, &facility, &body).await;
        assert_eq!(status, 400, "{outcome:#}");
        validate(&[&outcome]);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["details"]["coding"][0]["code"], code);
    }
    assert_eq!(app.count("disclosures").await, 0, "nothing was checked");

    // Another facility's provider is refused; the same roles as /v1 apply.
    let mut elsewhere = request("1980-04-01", "3456");
    elsewhere["provider"]["identifier"]["value"] = json!("0130113715");
    let (status, _) = submit(&app, &facility, &elsewhere).await;
    assert_eq!(status, 403);
    let insurer = app.party(Role::Insurer, &[INSURER]).await;
    let (status, _) = submit(&app, &insurer, &request("1980-04-01", "3456")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_capability_statement_is_valid_r4() {
    let app = crate::helpers::spawn_app().await;
    let response = app.get("/fhir/metadata").await;
    assert_eq!(response.status(), 200);
    let statement: Value = response.json().await.unwrap();
    validate(&[&statement]);
    assert_eq!(statement["fhirVersion"], "4.0.1");
}
