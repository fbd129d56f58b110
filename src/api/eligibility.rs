//! `POST /v1/eligibility` and `POST /v1/eligibility/batch`.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{forbidden, Caller, UnchargedCaller};
use super::body::{
    json_object, only_known, optional_bool, optional_string, read_limited, required_string,
};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, Reply};
use super::error::{ApiError, ClientError, ErrorBody};
use super::AppState;
use crate::audit::DisclosureKind;
use crate::domain::PartyId;
use crate::domain::{parse_date, BranchNumber, InsuredNumber, InsuredSymbol, InsurerNumber};
use crate::eligibility::{self, Answer, Query, Shown, Validity};

pub(super) const QUERY_FIELDS: [&str; 8] = [
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "birth_date",
    "date_of_care",
    "limit_certificate_consent",
    "specific_disease_consent",
];
/// One query by insured-person number (the schema of what [`parse_query`] reads).
///
/// An empty string or `null` counts as absent for the optional members.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what parse_query reads")]
pub(super) struct EligibilityQuery {
    /// 保険者番号: 8 digits, or 6 for 国民健康保険; the last is a check digit.
    #[schema(pattern = "^([0-9]{6}|[0-9]{8})$")]
    insurer_number: String,
    /// 記号, as printed (full-width allowed; at most 38 bytes in Shift_JIS).
    #[schema(max_length = 38)]
    symbol: Option<String>,
    /// 番号, as printed.
    #[schema(min_length = 1, max_length = 38)]
    number: String,
    /// 枝番: two digits.
    #[schema(pattern = "^([0-9]{2})?$")]
    branch: Option<String>,
    /// YYYY-MM-DD.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    birth_date: String,
    /// YYYY-MM-DD; today in Japan when absent.
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    date_of_care: Option<String>,
    /// The patient consented to show the 限度額適用認定証 (the real system's consent flag);
    /// without it, or a consent in force from a card check at this facility, the answer lists
    /// the certificate under `withheld`.
    limit_certificate_consent: Option<bool>,
    /// The same for the 特定疾病療養受療証.
    specific_disease_consent: Option<bool>,
}

/// A batch of 1 to 10,000 queries.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what batch_items reads")]
struct BatchRequest {
    #[schema(min_items = 1, max_items = 10000)]
    queries: Vec<EligibilityQuery>,
}

const SINGLE_BODY_MAX: usize = 16 * 1024;
const BATCH_BODY_MAX: usize = 8 * 1024 * 1024;
pub const BATCH_MAX: usize = 10_000;

/// One eligibility check by insured-person number.
pub async fn check_one(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let body = read_limited(payload, SINGLE_BODY_MAX).await?;
    let query = parse_query(
        &serde_json::Value::Object(json_object(&body)?),
        eligibility::today_in_japan(),
    )?;
    let answer = check_single(&state, party, &query).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// One check by number, audited, counted by the enumeration watch: what every single-query
/// edge (JSON, FHIR) answers from.
pub(super) async fn check_single(
    state: &AppState,
    party: &crate::parties::Party,
    query: &Query,
) -> Result<Answer, ApiError> {
    let answer = state
        .checks
        .check(party, DisclosureKind::EligibilityByNumber, query)
        .await?;
    note_misses(state, party.id, &[query], std::slice::from_ref(&answer)).await;
    Ok(answer)
}

/// One entry of a batch's answer: the query's answer, or why the query was refused.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum BatchItem {
    Answer(Box<Answer>),
    Error { error: ErrorBody },
}

/// A batch's answer: one entry per query, in order.
#[derive(Serialize, ToSchema)]
struct BatchAnswer {
    results: Vec<BatchItem>,
}

/// Up to 10,000 checks in one request, answered in order; a bad query fails only itself.
pub async fn check_batch(
    state: web::Data<AppState>,
    caller: UnchargedCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Every query costs what a single check costs, charged at once (a batch larger than the
    // burst is served from a full bucket); a request refused before its queries are known costs
    // one, as any other request.
    let party = &caller.0;
    let items = batch_items(payload, party).await;
    let cost = items.as_ref().map_or(1, |items| items.len().max(1) as u64);
    state.limits.admit(&state.pool, party.id, cost).await?;
    let items = items?;
    let today = eligibility::today_in_japan();
    let parsed: Vec<Result<Query, ClientError>> =
        items.iter().map(|item| parse_query(item, today)).collect();
    let valid: Vec<&Query> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
    let answers = eligibility::check(
        &state.pool,
        &state.audit,
        &state.proofs,
        state.clock.now(),
        &eligibility::Ask::all(party, DisclosureKind::EligibilityBatch, &valid),
    )
    .await?;
    note_misses(&state, party.id, &valid, &answers).await;
    let mut answers = answers.into_iter();
    let results: Vec<BatchItem> = parsed
        .into_iter()
        .map(|p| match p {
            Ok(_) => answers
                .next()
                .map(|a| BatchItem::Answer(Box::new(a)))
                .ok_or_else(|| anyhow::anyhow!("fewer answers than valid queries")),
            Err(e) => Ok(BatchItem::Error { error: e.body }),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(HttpResponse::Ok().json(BatchAnswer { results }))
}

/// The queries of a batch request from a party allowed to send batches.
async fn batch_items(
    payload: web::Payload,
    party: &crate::parties::Party,
) -> Result<Vec<serde_json::Value>, ApiError> {
    if !party.may_batch() {
        return Err(forbidden(
            "Batch checks are for claims systems, hospitals, clinics and dental clinics; check each patient with POST /v1/eligibility.",
        )
        .into());
    }
    let body = read_limited(payload, BATCH_BODY_MAX).await?;
    let mut map = json_object(&body)?;
    only_known(&map, &["queries"])?;
    let Some(serde_json::Value::Array(items)) = map.remove("queries") else {
        return Err(ClientError::new(
            Code::QueriesRequired,
            "Send {\"queries\": [ ... ]} with 1 to 10,000 queries.",
        )
        .with_field("queries")
        .into());
    };
    if items.is_empty() || items.len() > BATCH_MAX {
        return Err(ClientError::new(
            Code::QueriesCount,
            "A batch holds 1 to 10,000 queries; split larger ones.",
        )
        .with_field("queries")
        .into());
    }
    Ok(items)
}

/// Tells the enumeration watch which queries found something.
pub(crate) async fn note_misses(
    state: &AppState,
    party_id: PartyId,
    queries: &[&Query],
    answers: &[Answer],
) {
    let noted = queries
        .iter()
        .zip(answers)
        .map(|(query, answer)| {
            (
                state.limits.key(&query.key()),
                answer.validity != Validity::NoSuchCoverage,
            )
        })
        .collect();
    state
        .limits
        .note_answers(&state.pool, party_id, noted)
        .await;
}

/// Parses one query object into domain types; the first problem found is reported.
pub(crate) fn parse_query(
    value: &serde_json::Value,
    today: NaiveDate,
) -> Result<Query, ClientError> {
    let serde_json::Value::Object(map) = value else {
        return Err(ClientError::new(
            Code::QueryNotObject,
            "Each query must be a JSON object.",
        ));
    };
    only_known(map, &QUERY_FIELDS)?;
    let field = |name: &'static str, invalid| ClientError::invalid(name, invalid);
    let insurer_number = InsurerNumber::parse(required_string(map, "insurer_number")?)
        .map_err(|e| field("insurer_number", e))?;
    let symbol = optional_string(map, "symbol")?
        .map(InsuredSymbol::parse)
        .transpose()
        .map_err(|e| field("symbol", e))?;
    let number =
        InsuredNumber::parse(required_string(map, "number")?).map_err(|e| field("number", e))?;
    let branch = optional_string(map, "branch")?
        .map(BranchNumber::parse)
        .transpose()
        .map_err(|e| field("branch", e))?;
    let birth_date =
        parse_date(required_string(map, "birth_date")?).map_err(|e| field("birth_date", e))?;
    let date_of_care = optional_string(map, "date_of_care")?
        .map(parse_date)
        .transpose()
        .map_err(|e| field("date_of_care", e))?
        .unwrap_or(today);
    if birth_date > date_of_care {
        return Err(ClientError::new(
            Code::BirthDateAfterDateOfCare,
            "The birth date is after the date of care.",
        )
        .with_field("birth_date"));
    }
    let stated = Shown {
        limit_certificate: optional_bool(map, "limit_certificate_consent")?,
        specific_diseases: optional_bool(map, "specific_disease_consent")?,
    };
    Ok(Query {
        insurer_number,
        symbol,
        number,
        branch,
        birth_date,
        date_of_care,
        stated,
    })
}

pub const CHECK_ONE_DOC: Doc = Doc {
    id: "checkEligibility",
    tag: "eligibility",
    summary: "One eligibility check by insured-person number.",
    description: "Answers the 資格有効性 of the coverage matching the card key and birth date on \
        the date of care. A birth date that does not match is validity 4, never a disclosure. \
        Every answer is recorded in the access audit before it is returned (`check_id`). Body \
        at most 16 KiB.",
    body: Body::Json(schema::<EligibilityQuery>),
    replies: &[Reply {
        status: 200,
        description: "The answer.",
        content: Content::Json(schema::<Answer>),
    }],
    codes: &[&[Code::BirthDateAfterDateOfCare]],
    fields: &QUERY_FIELDS,
    params: &[],
};

pub const CHECK_BATCH_DOC: Doc = Doc {
    id: "checkEligibilityBatch",
    tag: "eligibility",
    summary: "1 to 10,000 eligibility checks in one request.",
    description: "Each query is checked as by `POST /v1/eligibility` and answered in the same \
        order; a bad query gets its own `{\"error\": {...}}` entry (with the codes of a single \
        check, or `query.not_object`) and never fails the others. Pharmacies and home-nursing \
        stations check one patient at a time (403). Body at most 8 MiB.",
    body: Body::Json(schema::<BatchRequest>),
    replies: &[Reply {
        status: 200,
        description: "One result per query, in order.",
        content: Content::Json(schema::<BatchAnswer>),
    }],
    codes: &[&[Code::QueriesRequired, Code::QueriesCount]],
    fields: &[],
    params: &[],
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        "2026-11-24".parse().unwrap()
    }

    fn code(value: serde_json::Value) -> String {
        parse_query(&value, today())
            .unwrap_err()
            .body
            .code
            .into_owned()
    }

    #[test]
    fn the_query_schema_lists_the_members_parse_query_reads() {
        let schema =
            serde_json::to_value(<EligibilityQuery as utoipa::PartialSchema>::schema()).unwrap();
        let mut members: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        let mut known = QUERY_FIELDS.to_vec();
        known.sort_unstable();
        assert_eq!(members, known);
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn a_full_query_parses_and_defaults_the_date_of_care() {
        let q = parse_query(
            &json!({"insurer_number": "131011", "symbol": "１２", "number": "３４５６",
                    "branch": "01", "birth_date": "1980-04-01"}),
            today(),
        )
        .unwrap();
        assert_eq!(q.insurer_number.as_str(), "00131011");
        assert_eq!(q.date_of_care, today());
    }

    #[test]
    fn each_problem_has_its_code() {
        let base = json!({"insurer_number": "33120015", "number": "1", "birth_date": "1980-04-01"});
        assert!(parse_query(&base, today()).is_ok());
        let with = |k: &str, v: serde_json::Value| {
            let mut m = base.clone();
            m[k] = v;
            m
        };
        assert_eq!(
            code(with("insurer_number", json!("33120016"))),
            "insurer_number.check_digit"
        );
        assert_eq!(
            code(with("insurer_number", json!(33120015))),
            "insurer_number.type"
        );
        assert_eq!(code(with("branch", json!("1"))), "branch.format");
        assert_eq!(
            code(with("birth_date", json!("1980/04/01"))),
            "birth_date.format"
        );
        assert_eq!(code(with("brnach", json!("01"))), "body.unknown_field");
        assert_eq!(
            code(json!({"number": "1", "birth_date": "1980-04-01"})),
            "insurer_number.required"
        );
        assert_eq!(code(json!([])), "query.not_object");
    }
}
