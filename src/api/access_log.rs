//! A person's access log: `POST /v1/self/challenges` and `POST /v1/self/access-log` (the person,
//! with their card, no token) and `POST /v1/access-log/lookup` (an administrator).
//!
//! The page is chosen in the query string (`?before=<next or RFC 3339 time>&limit=1..100`), so
//! the bodies stay those of the card check and of eligibility by number.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::body::{json_object, read_limited, typed, unused};
use super::card::{base64_field, card_error, challenge_created, uuid_field};
use super::eligibility::parse_query;
use super::error::{ApiError, ClientError};
use super::limits::AddressLimited;
use super::AppState;
use crate::access_log::{self, Before, LookupError, PageLimit, SelfViewError};
use crate::card::{self, Audience, CardError, CardProof};
use crate::eligibility::today_in_japan;

const BODY_MAX: usize = 64 * 1024;

/// A single-use nonce for the card holder's own read; no token, as no party is involved.
pub async fn self_challenge(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    unused(payload).await?;
    // Without trust anchors no card can prove itself: say so now rather than after the reader
    // has asked for the PIN.
    if state.trust.current().is_none() {
        return Err(card_error(CardError::NotConfigured));
    }
    let challenge =
        card::new_challenge(&state.pool, Audience::Holder, state.challenge_lifetime).await?;
    Ok(challenge_created(&challenge))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfViewBody {
    certificate: String,
    challenge_id: String,
    signature: String,
}

/// The card holder's own log; the card's signature over a fresh self challenge is the credential.
pub async fn self_view(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = page_parameters(&request)?;
    let body: SelfViewBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let signature = base64_field(&body.signature, "signature")?;
    let proof = CardProof {
        certificate: &certificate,
        challenge_id: uuid_field(&body.challenge_id)?,
        signature: &signature,
    };
    let trust = state.trust.current();
    let page = access_log::of_card_holder(
        &state.pool,
        &state.audit,
        trust.as_deref(),
        &state.origin,
        &proof,
        before,
        limit,
    )
    .await
    .map_err(|error| match error {
        SelfViewError::Card(error) => card_error(error),
        SelfViewError::UnknownCursor => unknown_cursor(),
        SelfViewError::Unexpected(error) => error.into(),
    })?;
    Ok(HttpResponse::Ok().json(page))
}

/// A person's log looked up by an administrator, by insured-person number and birth date.
pub async fn lookup(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let admin = caller.party();
    let (before, limit) = page_parameters(&request)?;
    let body = read_limited(payload, BODY_MAX).await?;
    let query = parse_query(
        &serde_json::Value::Object(json_object(&body)?),
        today_in_japan(),
    )?;
    let page = access_log::by_coverage(&state.pool, &state.audit, admin.id, &query, before, limit)
        .await
        .map_err(|error| -> ApiError {
            match error {
                LookupError::NoSuchPerson => ClientError::new(
                    StatusCode::NOT_FOUND,
                    "coverage.not_found",
                    "No coverage matches this number and birth date (on the date of care, today by default); check both.",
                )
                .into(),
                LookupError::SeveralPersons => ClientError::new(
                    StatusCode::CONFLICT,
                    "person.ambiguous",
                    "This number and birth date match coverages of several persons; add the branch number or a date_of_care on which the coverage was held.",
                )
                .with_field("branch")
                .into(),
                LookupError::UnknownCursor => unknown_cursor(),
                LookupError::Unexpected(error) => error.into(),
            }
        })?;
    Ok(HttpResponse::Ok().json(page))
}

/// `before` and `limit` from the query string; any other parameter is refused.
fn page_parameters(request: &HttpRequest) -> Result<(Before, PageLimit), ClientError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map_err(|_| {
            ClientError::new(
                StatusCode::BAD_REQUEST,
                "query.invalid",
                "The query string is not readable; send ?before=...&limit=... URL-encoded.",
            )
        })?
        .into_inner();
    let (mut before, mut limit) = (None, None);
    for (name, value) in &pairs {
        match name.as_str() {
            "before" => before = Some(value.as_str()),
            "limit" => limit = Some(value.as_str()),
            _ => {
                return Err(ClientError::new(
                    StatusCode::BAD_REQUEST,
                    "query.unknown_parameter",
                    "Only 'before' and 'limit' may be given in the query string.",
                )
                .with_field(name.chars().take(64).collect::<String>()))
            }
        }
    }
    Ok((
        Before::parse(before).map_err(|e| ClientError::invalid("before", e))?,
        PageLimit::parse(limit).map_err(|e| ClientError::invalid("limit", e))?,
    ))
}

fn unknown_cursor() -> ApiError {
    ClientError::new(
        StatusCode::BAD_REQUEST,
        "before.unknown",
        "This is not a check of this person's access log; pass the 'next' value of the previous page, or a time.",
    )
    .with_field("before")
    .into()
}
