//! FHIR R4: `POST /fhir/CoverageEligibilityRequest/$submit` and `GET /fhir/metadata`.
//!
//! A hospital's integration engine sends a CoverageEligibilityRequest (purpose `validation`)
//! whose insurance names a contained JP Core `JP_Coverage` (the insurer number as the payor's
//! identifier, symbol, number and branch as JP Core's extensions) and whose patient is a
//! contained Patient with the birth date. The check is the same as `POST /v1/eligibility`: the
//! same credential, roles, limits and audit record. The answer is a CoverageEligibilityResponse
//! (`outcome`, `insurance.inforce`, the coverage with its copay, the check id as an identifier,
//! the validity as an extension); a request that cannot be read is a 400 OperationOutcome naming
//! the element at fault.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::auth::Caller;
use super::body::{json_object, read_limited};
use super::codes::Code;
use super::doc::{Body, Content, Doc, Reply};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::{parse_date, BranchNumber, InsuredNumber, InsuredSymbol, InsurerNumber};
use crate::eligibility::{self, Answer, Query, Shown, Validity};

const BODY_MAX: usize = 64 * 1024;
const FHIR_JSON: &str = "application/fhir+json; fhirVersion=4.0";

const JP_EXTENSION: &str = "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/";
const INSURER_SYSTEM: &str = "http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber";
const MEMBER_SYSTEM: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
const FACILITY_SYSTEM: &str =
    "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
/// onshi's own identifier and extension namespace.
const ONSHI: &str = "https://onshi.jp/fhir";

/// A request that cannot be read: 400 with an OperationOutcome naming the element.
struct Invalid {
    code: String,
    message: String,
    expression: String,
}

fn invalid(code: impl Into<String>, message: impl Into<String>, expression: &str) -> Invalid {
    Invalid {
        code: code.into(),
        message: message.into(),
        expression: expression.into(),
    }
}

fn outcome(bad: &Invalid) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type(FHIR_JSON)
        .json(json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": if bad.code.ends_with(".required") { "required" } else { "invalid" },
                "details": {
                    "coding": [{"system": format!("{ONSHI}/CodeSystem/error"), "code": bad.code}],
                    "text": bad.message,
                },
                "diagnostics": bad.message,
                "expression": [bad.expression],
            }],
        }))
}

/// The contained resource `reference` (`#id`) points at, of `kind`.
fn contained<'a>(request: &'a Value, reference: Option<&str>, kind: &str) -> Option<&'a Value> {
    let id = reference?.strip_prefix('#')?;
    request["contained"]
        .as_array()?
        .iter()
        .find(|r| r["resourceType"] == kind && r["id"] == id)
}

fn extension<'a>(resource: &'a Value, name: &str) -> Option<&'a str> {
    let url = format!("{JP_EXTENSION}{name}");
    resource["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == url.as_str())?["valueString"]
        .as_str()
}

/// The eligibility query a CoverageEligibilityRequest asks.
fn query_of(request: &Value) -> Result<Query, Invalid> {
    if request["resourceType"] != "CoverageEligibilityRequest" {
        return Err(invalid(
            "resource.type",
            "Send a CoverageEligibilityRequest.",
            "resourceType",
        ));
    }
    let purposes = request["purpose"].as_array();
    if !purposes.is_some_and(|p| p.iter().any(|v| v == "validation")) {
        return Err(invalid(
            "purpose.unsupported",
            "onshi answers purpose validation (is the coverage in force).",
            "CoverageEligibilityRequest.purpose",
        ));
    }
    let patient = contained(request, request["patient"]["reference"].as_str(), "Patient")
        .ok_or_else(|| {
            invalid(
                "patient.required",
                "The patient must be a contained Patient with its birth date (patient.reference \"#id\").",
                "CoverageEligibilityRequest.patient",
            )
        })?;
    let birth_date =
        parse_date(patient["birthDate"].as_str().unwrap_or_default()).map_err(|e| {
            invalid(
                format!("birth_date.{}", e.kind),
                e.message,
                "Patient.birthDate",
            )
        })?;
    let coverage = contained(
        request,
        request["insurance"][0]["coverage"]["reference"].as_str(),
        "Coverage",
    )
    .ok_or_else(|| {
        invalid(
            "coverage.required",
            "insurance[0].coverage must reference a contained JP_Coverage (\"#id\").",
            "CoverageEligibilityRequest.insurance[0].coverage",
        )
    })?;
    let insurer = coverage["payor"]
        .as_array()
        .and_then(|payors| {
            payors
                .iter()
                .find(|p| p["identifier"]["system"] == INSURER_SYSTEM)
        })
        .and_then(|p| p["identifier"]["value"].as_str())
        .unwrap_or_default();
    let insurer_number = InsurerNumber::parse(insurer).map_err(|e| {
        invalid(
            format!("insurer_number.{}", e.kind),
            e.message,
            "Coverage.payor.identifier",
        )
    })?;
    let symbol = extension(coverage, "JP_Coverage_InsuredPersonSymbol")
        .map(InsuredSymbol::parse)
        .transpose()
        .map_err(|e| {
            invalid(
                format!("symbol.{}", e.kind),
                e.message,
                "Coverage.extension",
            )
        })?;
    let number = InsuredNumber::parse(
        extension(coverage, "JP_Coverage_InsuredPersonNumber").unwrap_or_default(),
    )
    .map_err(|e| {
        invalid(
            format!("number.{}", e.kind),
            e.message,
            "Coverage.extension",
        )
    })?;
    let branch = extension(coverage, "JP_Coverage_InsuredPersonSubNumber")
        .map(BranchNumber::parse)
        .transpose()
        .map_err(|e| {
            invalid(
                format!("branch.{}", e.kind),
                e.message,
                "Coverage.extension",
            )
        })?;
    let date_of_care = match request["servicedDate"].as_str() {
        Some(d) => parse_date(d).map_err(|e| {
            invalid(
                format!("date_of_care.{}", e.kind),
                e.message,
                "CoverageEligibilityRequest.servicedDate",
            )
        })?,
        None => eligibility::today_in_japan(),
    };
    if birth_date > date_of_care {
        return Err(invalid(
            "birth_date.after_date_of_care",
            "The birth date is after the date of care.",
            "Patient.birthDate",
        ));
    }
    Ok(Query {
        insurer_number,
        symbol,
        number,
        branch,
        birth_date,
        date_of_care,
        stated: Shown::default(),
    })
}

/// The CoverageEligibilityResponse of `answer` to `request`.
fn response(request: &Value, query: &Query, answer: &Answer) -> Value {
    let insurer_value = answer
        .coverage
        .as_ref()
        .map_or(query.insurer_number.as_str(), |c| c.insurer_number.as_str());
    let mut coverage = json!({
        "resourceType": "Coverage",
        "id": "coverage",
        "status": if answer.validity == Validity::Valid { "active" } else { "cancelled" },
        "beneficiary": {"reference": "#patient"},
        "payor": [{"identifier": {"system": INSURER_SYSTEM, "value": insurer_value}}],
    });
    let mut patient = json!({"resourceType": "Patient", "id": "patient",
                             "birthDate": query.birth_date.to_string()});
    if let Some(c) = &answer.coverage {
        let mut extensions = Vec::new();
        if let Some(symbol) = &c.symbol {
            extensions.push(json!({"url": format!("{JP_EXTENSION}JP_Coverage_InsuredPersonSymbol"), "valueString": symbol}));
        }
        extensions.push(json!({"url": format!("{JP_EXTENSION}JP_Coverage_InsuredPersonNumber"), "valueString": c.number}));
        if let Some(branch) = &c.branch {
            extensions.push(json!({"url": format!("{JP_EXTENSION}JP_Coverage_InsuredPersonSubNumber"), "valueString": branch}));
        }
        coverage["extension"] = Value::Array(extensions);
        coverage["identifier"] = json!([{
            "system": MEMBER_SYSTEM,
            "value": format!(
                "{}:{}:{}:{}",
                c.insurer_number,
                c.symbol.as_deref().unwrap_or_default(),
                c.number,
                c.branch.as_deref().unwrap_or_default()
            ),
        }]);
        coverage["relationship"] = json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
            "code": if c.relationship == "1" { "self" } else { "other" },
        }]});
        let mut period = serde_json::Map::new();
        period.insert("start".into(), c.acquired_on.to_string().into());
        if let Some(lost) = c.lost_on {
            period.insert("end".into(), lost.to_string().into());
        }
        coverage["period"] = Value::Object(period);
        let ratio: f64 = c.copay_ratio.parse::<f64>().unwrap_or_default() / 10.0;
        coverage["costToBeneficiary"] = json!([{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-copay-type", "code": "copaypct"}]},
            "valueQuantity": {"value": ratio, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        }]);
        patient["name"] = json!([{"text": c.name}]);
        patient["gender"] = json!(match c.sex.as_str() {
            "1" => "male",
            "2" => "female",
            _ => "unknown",
        });
    }
    let mut identifiers =
        vec![json!({"system": format!("{ONSHI}/check-id"), "value": answer.check_id.to_string()})];
    identifiers.push(json!({"system": format!("{ONSHI}/proof"), "value": answer.proof}));
    if let Some(reference) = &answer.reference_number {
        identifiers
            .push(json!({"system": format!("{ONSHI}/reference-number"), "value": reference}));
    }
    let request_reference = match request["identifier"][0]["value"].as_str() {
        Some(id) => {
            json!({"identifier": {"system": request["identifier"][0]["system"], "value": id}})
        }
        None => json!({"display": "the submitted CoverageEligibilityRequest"}),
    };
    json!({
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": ["validation"],
        "patient": {"reference": "#patient"},
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "servicedDate": query.date_of_care.to_string(),
        "request": request_reference,
        "outcome": "complete",
        "disposition": disposition(answer.validity),
        "insurer": {"identifier": {"system": INSURER_SYSTEM, "value": insurer_value}},
        "identifier": identifiers,
        "extension": [{"url": format!("{ONSHI}/StructureDefinition/validity"), "valueInteger": answer.validity.code()}],
        "contained": [patient, coverage],
        "insurance": [{"coverage": {"reference": "#coverage"}, "inforce": answer.validity == Validity::Valid}],
    })
}

fn disposition(validity: Validity) -> &'static str {
    match validity {
        Validity::Valid => "1 有効: the coverage is in force on the date of care.",
        Validity::Lost => "2 無効: the coverage was lost on or before the date of care.",
        Validity::LostWithNewer => {
            "3 無効（新しい資格あり）: lost, and the person holds a newer coverage."
        }
        Validity::NoSuchCoverage => "4 該当資格なし: no coverage matches the key and birth date.",
        Validity::Several => "5 複数該当: several coverages match; send the branch number.",
    }
}

/// `POST /fhir/CoverageEligibilityRequest/$submit`.
pub async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let request = Value::Object(json_object(&read_limited(payload, BODY_MAX).await?)?);
    let query = match query_of(&request) {
        Ok(query) => query,
        Err(bad) => return Ok(outcome(&bad)),
    };
    if let Some(provider) = request["provider"]["identifier"]["value"].as_str() {
        if request["provider"]["identifier"]["system"] == FACILITY_SYSTEM
            && party.facility_code.as_deref() != Some(provider)
        {
            return Err(ClientError::new(
                Code::AuthForbidden,
                "The provider is another facility than the one this credential belongs to.",
            )
            .into());
        }
    }
    let answer = super::eligibility::check_single(&state, party, &query).await?;
    Ok(HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .json(response(&request, &query, &answer)))
}

/// `GET /fhir/metadata`: the CapabilityStatement.
pub async fn metadata() -> HttpResponse {
    HttpResponse::Ok().content_type(FHIR_JSON).json(json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "kind": "instance",
        "software": {"name": "onshi"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {"description": "Authorization: Bearer <token> of a registered facility or claims system, as for /v1."},
            "resource": [{
                "type": "CoverageEligibilityRequest",
                "operation": [{"name": "submit", "definition": format!("{ONSHI}/OperationDefinition/CoverageEligibilityRequest-submit")}],
            }],
        }],
    }))
}

pub const SUBMIT_DOC: Doc = Doc {
    id: "fhirSubmitCoverageEligibilityRequest",
    tag: "eligibility",
    summary: "FHIR R4: a CoverageEligibilityRequest answered with a CoverageEligibilityResponse.",
    description: "Purpose `validation`; the insurance's coverage a contained JP Core JP_Coverage \
        (payor identifier of system InsurerNumber; symbol, number and branch as the \
        JP_Coverage_InsuredPerson* extensions); the patient a contained Patient with its birth \
        date; `servicedDate` the date of care. The same check, audit and limits as \
        `POST /v1/eligibility`. A request that cannot be read is a 400 OperationOutcome whose \
        issue names onshi's error code and the element. Body at most 64 KiB \
        (application/fhir+json or application/json).",
    body: Body::Json(|_| json!({"type": "object", "description": "A FHIR R4 CoverageEligibilityRequest."})),
    replies: &[
        Reply {
            status: 200,
            description: "A FHIR R4 CoverageEligibilityResponse.",
            content: Content::Fhir(|_| json!({"type": "object", "required": ["resourceType", "outcome", "insurance"]})),
        },
        Reply {
            status: 400,
            description: "A FHIR R4 OperationOutcome naming the element at fault, or onshi's error body for a body that is not a JSON object.",
            content: Content::Fhir(|_| json!({"type": "object", "required": ["resourceType", "issue"]})),
        },
    ],
    codes: &[],
    fields: &[],
    params: &[],
};

pub const METADATA_DOC: Doc = Doc {
    id: "fhirMetadata",
    tag: "service",
    summary: "FHIR R4 CapabilityStatement.",
    description: "What the FHIR endpoint supports; no token.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The CapabilityStatement.",
        content: Content::Fhir(
            |_| json!({"type": "object", "required": ["resourceType", "fhirVersion"]}),
        ),
    }],
    codes: &[],
    fields: &[],
    params: &[],
};
