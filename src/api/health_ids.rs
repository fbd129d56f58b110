//! `POST /v1/purposes`, `POST /v1/health-ids`, `POST /v1/health-ids/resolve`,
//! `POST /v1/health-ids/reissue`.
//!
//! Unknown IDs, revoked IDs of another purpose and random well-formed strings all answer the
//! same 404 `health_id.not_found`: a caller learns nothing about other purposes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::auth::Caller;
use super::body::{json_object, only_known, optional_string, read_limited, required_string};
use super::eligibility::parse_query;
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::parse_date;
use crate::health_id::derive::HealthId;
use crate::health_id::keys::KeySource;
use crate::health_id::{self, HealthIdError, PurposeName};
use crate::store::health_id::NewPurpose;

const BODY_MAX: usize = 16 * 1024;

impl From<HealthIdError> for ApiError {
    fn from(error: HealthIdError) -> Self {
        let (status, code, message, field) = match error {
            HealthIdError::UnknownPurpose => (
                StatusCode::NOT_FOUND,
                "purpose.unknown",
                "No purpose has this name; ask the operator which purposes you are registered for.",
                "purpose",
            ),
            HealthIdError::NotAuthorized => (
                StatusCode::FORBIDDEN,
                "purpose.not_authorized",
                "Your credential is not registered for this purpose.",
                "purpose",
            ),
            HealthIdError::NotFound => (
                StatusCode::NOT_FOUND,
                "health_id.not_found",
                "No such health ID in this purpose.",
                "health_id",
            ),
            HealthIdError::AlreadyRevoked => (
                StatusCode::CONFLICT,
                "health_id.revoked",
                "This health ID was revoked already; re-issue the current one.",
                "health_id",
            ),
            HealthIdError::Unexpected(e) => return e.into(),
        };
        ClientError::new(status, code, message)
            .with_field(field)
            .into()
    }
}

fn keys(state: &AppState) -> Result<&KeySource, ApiError> {
    state.health_ids.as_deref().ok_or_else(|| {
        ClientError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "health_id.unconfigured",
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

#[derive(Serialize)]
struct PurposeView {
    id: i64,
    name: String,
    key_version: u32,
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
        ClientError::new(StatusCode::BAD_REQUEST, format!("{field}.type"), message)
            .with_field(field)
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
            StatusCode::CONFLICT,
            "purpose.exists",
            "A purpose with this name exists already.",
        )
        .with_field("name")
        .into()),
        NewPurpose::UnknownParty => Err(ClientError::new(
            StatusCode::BAD_REQUEST,
            "parties.unknown",
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
        keys,
        party.id,
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
        caller.0.id,
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
