//! `POST /v1/challenges`, `POST /v1/eligibility/card` and `POST /v1/card-links`; the card
//! helpers here serve the self endpoints of [`super::access_log`] too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::body::{read_limited, typed, unused};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::card::{self, Audience, CardError, CardProof, Challenge};
use crate::domain::{parse_date, IndividualNumber};
use crate::eligibility::today_in_japan;
use crate::parties::Role;
use crate::store::card::ConsentChoices;

const BODY_MAX: usize = 64 * 1024;

/// A single-use nonce for one card signature, bound to the asking facility.
pub async fn challenge(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.require(&[Role::Facility])?;
    unused(payload).await?;
    let challenge = card::new_challenge(
        &state.pool,
        Audience::Party(party.id),
        state.challenge_lifetime,
    )
    .await?;
    Ok(challenge_created(&challenge))
}

/// The 201 answer handing a challenge to the reader.
pub(super) fn challenge_created(challenge: &Challenge) -> HttpResponse {
    HttpResponse::Created().json(serde_json::json!({
        "challenge_id": challenge.id,
        "nonce": B64.encode(challenge.nonce),
        "expires_at": challenge.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardCheckBody {
    certificate: String,
    challenge_id: String,
    signature: String,
    #[serde(default)]
    date_of_care: Option<String>,
    #[serde(default, deserialize_with = "consents_object")]
    consents: ConsentChoices,
}

/// The consents as a JSON object only: serde would also read a struct from an array.
fn consents_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ConsentChoices, D::Error> {
    let map = serde_json::Map::deserialize(d)?;
    ConsentChoices::deserialize(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    certificate: String,
    individual_number: String,
    #[serde(default)]
    challenge_id: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

/// Eligibility of the card's holder.
pub async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.require(&[Role::Facility])?;
    let body: CardCheckBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let signature = base64_field(&body.signature, "signature")?;
    let challenge_id = uuid_field(&body.challenge_id)?;
    let date_of_care = match body.date_of_care.as_deref() {
        None | Some("") => today_in_japan(),
        Some(d) => parse_date(d).map_err(|e| ClientError::invalid("date_of_care", e))?,
    };
    let trust = state.trust.current();
    let proof = CardProof {
        certificate: &certificate,
        challenge_id,
        signature: &signature,
    };
    let answer = card::check(
        &state.pool,
        &state.audit,
        trust.as_deref(),
        party.id,
        &proof,
        date_of_care,
        body.consents,
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Links a card to a person: at a facility's reader with the card's signature, or by an
/// administrator with the certificate alone.
pub async fn link(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.require(&[Role::Facility, Role::Admin])?;
    let body: LinkBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let number = IndividualNumber::parse(&body.individual_number)
        .map_err(|e| ClientError::invalid("individual_number", e))?;
    let person_link = number.link(&state.link_key).map_err(ApiError::Unexpected)?;
    drop(number);
    let proof = match (&body.challenge_id, &body.signature) {
        (Some(id), Some(signature)) => {
            Some((uuid_field(id)?, base64_field(signature, "signature")?))
        }
        _ if party.role == Role::Admin => None,
        _ => {
            return Err(ClientError::new(
                StatusCode::BAD_REQUEST,
                "signature.required",
                "Linking at a reader needs the card's signature over a challenge.",
            )
            .with_field("signature")
            .into())
        }
    };
    let trust = state.trust.current();
    let not_after = card::link(
        &state.pool,
        trust.as_deref(),
        (party.role == Role::Facility).then_some(party.id),
        &certificate,
        proof.as_ref().map(|(id, sig)| (*id, sig.as_slice())),
        &person_link,
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "linked": true,
        "certificate_not_after": not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })))
}

pub(super) fn base64_field(value: &str, field: &'static str) -> Result<Vec<u8>, ClientError> {
    B64.decode(value).map_err(|_| {
        ClientError::new(
            StatusCode::BAD_REQUEST,
            format!("{field}.format"),
            "Must be standard base64.",
        )
        .with_field(field)
    })
}

pub(super) fn uuid_field(value: &str) -> Result<Uuid, ClientError> {
    value.parse().map_err(|_| {
        ClientError::new(
            StatusCode::BAD_REQUEST,
            "challenge_id.format",
            "Must be the challenge_id returned with the challenge.",
        )
        .with_field("challenge_id")
    })
}

pub(super) fn card_error(error: CardError) -> ApiError {
    let (status, code, message, field): (StatusCode, &'static str, &'static str, Option<&'static str>) = match error {
        CardError::NotConfigured => (
            StatusCode::SERVICE_UNAVAILABLE,
            "card.not_configured",
            "This server has no JPKI trust anchors configured; check by insurance number.",
            None,
        ),
        CardError::ChallengeUnknown => (StatusCode::NOT_FOUND, "challenge.unknown", "No such challenge; ask for a new one.", Some("challenge_id")),
        CardError::ChallengeUsed => (StatusCode::CONFLICT, "challenge.used", "This challenge was used already; ask for a new one.", Some("challenge_id")),
        CardError::ChallengeExpired => (StatusCode::GONE, "challenge.expired", "This challenge expired; ask for a new one and sign it promptly.", Some("challenge_id")),
        CardError::ChallengeOtherParty => (StatusCode::FORBIDDEN, "challenge.other_party", "This challenge was issued to another facility.", Some("challenge_id")),
        CardError::ChallengeWrongAudience => (StatusCode::FORBIDDEN, "challenge.wrong_audience", "This challenge was issued for another use of the card: take one from POST /v1/challenges for a check or link at a facility, or from POST /v1/self/challenges for a person's own access log.", Some("challenge_id")),
        CardError::Rejected(rejection) => {
            let field = if rejection == card::verify::Rejection::BadSignature { "signature" } else { "certificate" };
            (StatusCode::UNPROCESSABLE_ENTITY, rejection.code(), rejection.message(), Some(field))
        }
        CardError::NotLinked => (
            StatusCode::NOT_FOUND,
            "card.not_linked",
            "This card is not linked to health insurance yet. The person can link it once at this reader, on the Mynaportal or at an ATM; meanwhile check by insurance number.",
            None,
        ),
        CardError::PersonUnknown => (
            StatusCode::NOT_FOUND,
            "person.not_found",
            "No insured person is registered with this individual number; the person should ask their insurer.",
            Some("individual_number"),
        ),
        CardError::LinkedElsewhere => (
            StatusCode::CONFLICT,
            "card.linked_to_another_person",
            "This card is already linked to another person; contact the operator.",
            Some("certificate"),
        ),
        CardError::Unexpected(error) => return error.into(),
    };
    let mut client = ClientError::new(status, code, message);
    if let Some(field) = field {
        client = client.with_field(field);
    }
    client.into()
}
