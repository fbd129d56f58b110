//! `POST /v1/purposes`, `POST /v1/health-ids`, `POST /v1/health-ids/resolve`,
//! `POST /v1/health-ids/reissue`.
//!
//! Unknown IDs, revoked IDs of another purpose and random well-formed strings all answer the
//! same 404 `health_id.not_found`: a caller learns nothing about other purposes.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::{json_object, only_known, optional_string, read_limited, required_string};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, Reply};
use super::eligibility::parse_query;
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::parse_date;
use crate::domain::Fault;
use crate::health_id::derive::HealthId;
use crate::health_id::keys::KeySource;
use crate::health_id::{self, HealthIdError, PurposeName};
use crate::store::health_id::NewPurpose;

const BODY_MAX: usize = 16 * 1024;

impl From<HealthIdError> for ApiError {
    fn from(error: HealthIdError) -> Self {
        let (code, message) = match error {
            HealthIdError::UnknownPurpose => (
                Code::PurposeUnknown,
                "No purpose has this name; ask the operator which purposes you are registered for.",
            ),
            HealthIdError::NotAuthorized => (
                Code::PurposeNotAuthorized,
                "Your credential is not registered for this purpose.",
            ),
            HealthIdError::NotFound => {
                (Code::HealthIdNotFound, "No such health ID in this purpose.")
            }
            HealthIdError::AlreadyRevoked => (
                Code::HealthIdRevoked,
                "This health ID was revoked already; re-issue the current one.",
            ),
            HealthIdError::Unexpected(e) => return e.into(),
        };
        ClientError::new(code, message).into()
    }
}

fn keys(state: &AppState) -> Result<&KeySource, ApiError> {
    state.health_ids.as_deref().ok_or_else(|| {
        ClientError::new(
            Code::HealthIdUnconfigured,
            "Health IDs are not enabled on this server (no key is configured).",
        )
        .into()
    })
}

fn purpose_field(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<PurposeName, ClientError> {
    PurposeName::parse(required_string(map, field)?).map_err(|e| ClientError::invalid(field, e))
}

fn health_id_field(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<HealthId, ClientError> {
    HealthId::parse(required_string(map, "health_id")?)
        .map_err(|e| ClientError::invalid("health_id", e))
}

/// A purpose registered.
#[derive(Serialize, ToSchema)]
struct PurposeView {
    id: i64,
    name: String,
    key_version: u32,
    #[schema(value_type = Vec<i64>)]
    parties: Vec<crate::domain::PartyId>,
}

/// Registers a purpose with the parties that may receive and resolve its IDs (administrators).
pub async fn add_purpose(
    state: web::Data<AppState>,
    _admin: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let map = json_object(&read_limited(payload, BODY_MAX).await?)?;
    only_known(&map, &["name", "parties", "key_version"])?;
    let name = purpose_field(&map, "name")?;
    let bad = |field: &'static str, message: &'static str| {
        ClientError::fault(field, Fault::Type, message).with_field(field)
    };
    let parties: Vec<crate::domain::PartyId> = match map.get("parties") {
        Some(serde_json::Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_i64().map(crate::domain::PartyId::new))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("parties", "List the party ids as numbers."))?,
        _ => {
            return Err(bad(
                "parties",
                "List one or more party ids: \"parties\": [12, 13].",
            )
            .into())
        }
    };
    let key_version = match map.get("key_version") {
        None | Some(serde_json::Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| (1..=i32::MAX as u32).contains(&v))
            .ok_or_else(|| bad("key_version", "The key version is a positive number."))?,
    };
    let mut client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let created =
        crate::health_id::register_purpose(&mut client, &name, key_version, &parties).await?;
    match created {
        NewPurpose::Created(p) => Ok(HttpResponse::Created().json(PurposeView {
            id: p.id,
            name: p.name,
            key_version: p.key_version,
            parties,
        })),
        NewPurpose::NameTaken => Err(ClientError::new(
            Code::PurposeExists,
            "A purpose with this name exists already.",
        )
        .with_field("name")
        .into()),
        NewPurpose::UnknownParty => Err(ClientError::new(
            Code::PartiesUnknown,
            "One of the party ids is not a registered party.",
        )
        .with_field("parties")
        .into()),
    }
}

/// Issues the person's ID for the purpose, after an eligibility check by card key (facilities
/// registered for the purpose).
pub async fn issue(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let keys = keys(&state)?;
    let mut map = json_object(&read_limited(payload, BODY_MAX).await?)?;
    let purpose = purpose_field(&map, "purpose")?;
    map.remove("purpose");
    let query = parse_query(
        &serde_json::Value::Object(map),
        crate::eligibility::today_in_japan(),
    )?;
    let issued = health_id::issue(
        &state.pool,
        &state.audit,
        &state.proofs,
        keys,
        party,
        purpose.as_str(),
        &query,
    )
    .await?;
    // Issuance answers a full eligibility check: the enumeration watch counts it as one.
    super::eligibility::note_misses(
        &state,
        party.id,
        &[&query],
        std::slice::from_ref(&issued.eligibility),
    )
    .await;
    Ok(HttpResponse::Ok().json(issued))
}

/// Turns an ID back into its person's eligibility answer, or "revoked" (parties of the purpose).
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let map = json_object(&read_limited(payload, BODY_MAX).await?)?;
    only_known(&map, &["purpose", "health_id", "date_of_care"])?;
    let purpose = purpose_field(&map, "purpose")?;
    let id = health_id_field(&map)?;
    let date_of_care = optional_string(&map, "date_of_care")?
        .map(parse_date)
        .transpose()
        .map_err(|e| ClientError::invalid("date_of_care", e))?
        .unwrap_or_else(crate::eligibility::today_in_japan);
    let resolution = health_id::resolve(
        &state.pool,
        &state.audit,
        &state.proofs,
        &caller.0,
        purpose.as_str(),
        &id,
        date_of_care,
    )
    .await;
    let miss = matches!(resolution, Err(HealthIdError::NotFound));
    let key = state.limits.key(&(purpose.as_str(), id));
    state
        .limits
        .note_answers(&state.pool, caller.0.id, vec![(key, !miss)])
        .await;
    Ok(HttpResponse::Ok().json(resolution?))
}

/// Revokes an ID on suspected misuse and issues its person a new one (administrators).
pub async fn reissue(
    state: web::Data<AppState>,
    _admin: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let keys = keys(&state)?;
    let map = json_object(&read_limited(payload, BODY_MAX).await?)?;
    only_known(&map, &["purpose", "health_id"])?;
    let purpose = purpose_field(&map, "purpose")?;
    let id = health_id_field(&map)?;
    let mut client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let issued = health_id::reissue(&mut client, keys, purpose.as_str(), &id).await?;
    Ok(HttpResponse::Ok().json(issued))
}

/// A purpose to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what add_purpose reads")]
struct NewPurposeBody {
    /// 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    name: String,
    /// The ids of the parties that may receive and resolve the purpose's IDs.
    #[schema(min_items = 1)]
    parties: Vec<i64>,
    /// The master key's version the purpose derives under; 1 when absent.
    #[schema(minimum = 1, maximum = 2147483647)]
    key_version: Option<u32>,
}

/// An issuance: an eligibility query, and the purpose.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what issue reads")]
struct IssueBody {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    purpose: String,
    #[serde(flatten)]
    query: super::eligibility::EligibilityQuery,
}

/// An ID to resolve.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what resolve reads")]
struct ResolveBody {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    purpose: String,
    /// 33 Crockford base32 symbols, the last a check symbol (hyphens and lower case allowed).
    #[schema(pattern = "^(-*[0-9A-Za-z*~$=]){33}-*$")]
    health_id: String,
    /// YYYY-MM-DD; today in Japan when absent.
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    date_of_care: Option<String>,
}

/// An ID to revoke and re-issue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what reissue reads")]
struct ReissueBody {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    purpose: String,
    #[schema(pattern = "^(-*[0-9A-Za-z*~$=]){33}-*$")]
    health_id: String,
}

pub const ADD_PURPOSE_DOC: Doc = Doc {
    id: "addPurpose",
    tag: "health-ids",
    summary: "Register a purpose and the parties that may use its IDs.",
    description: "Body at most 16 KiB.",
    body: Body::Json(schema::<NewPurposeBody>),
    replies: &[Reply {
        status: 201,
        description: "Registered.",
        content: Content::Json(schema::<PurposeView>),
    }],
    codes: &[&[Code::PurposeExists, Code::PartiesUnknown]],
    fields: &["name", "parties", "key_version"],
    params: &[],
};

pub const ISSUE_DOC: Doc = Doc {
    id: "issueHealthId",
    tag: "health-ids",
    summary: "Check eligibility and issue the person's ID for a purpose.",
    description: "An eligibility check by card key (audited); when the coverage is valid \
        (validity 1) the person's current ID in the purpose is returned with the answer, issued \
        on first use. Body at most 16 KiB.",
    body: Body::Json(schema::<IssueBody>),
    replies: &[Reply {
        status: 200,
        description: "The eligibility answer, and the ID when valid.",
        content: Content::Json(schema::<crate::health_id::Issuance>),
    }],
    codes: &[&[
        Code::HealthIdUnconfigured,
        Code::PurposeUnknown,
        Code::PurposeNotAuthorized,
        Code::BirthDateAfterDateOfCare,
        Code::QueryNotObject,
    ]],
    fields: &[
        "purpose",
        "insurer_number",
        "symbol",
        "number",
        "branch",
        "birth_date",
        "date_of_care",
    ],
    params: &[],
};

pub const RESOLVE_DOC: Doc = Doc {
    id: "resolveHealthId",
    tag: "health-ids",
    summary: "The eligibility of an ID's person, or that the ID was revoked.",
    description: "Parties of the purpose only. An unknown ID, another purpose's ID and a \
        random well-formed string are the same 404 `health_id.not_found`. Audited. Body at most \
        16 KiB.",
    body: Body::Json(schema::<ResolveBody>),
    replies: &[Reply {
        status: 200,
        description: "Active, with the eligibility answer; or revoked.",
        content: Content::Json(schema::<crate::health_id::Resolution>),
    }],
    codes: &[&[
        Code::PurposeUnknown,
        Code::PurposeNotAuthorized,
        Code::HealthIdNotFound,
    ]],
    fields: &["purpose", "health_id", "date_of_care"],
    params: &[],
};

pub const REISSUE_DOC: Doc = Doc {
    id: "reissueHealthId",
    tag: "health-ids",
    summary: "Revoke an ID on suspected misuse and issue its person a new one.",
    description: "The old ID then resolves to `revoked`; the new one is derived under the next \
        epoch. Body at most 16 KiB.",
    body: Body::Json(schema::<ReissueBody>),
    replies: &[Reply {
        status: 200,
        description: "The new ID.",
        content: Content::Json(schema::<crate::health_id::Issued>),
    }],
    codes: &[&[
        Code::HealthIdUnconfigured,
        Code::PurposeUnknown,
        Code::HealthIdNotFound,
        Code::HealthIdRevoked,
    ]],
    fields: &["purpose", "health_id"],
    params: &[],
};
