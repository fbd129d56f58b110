//! `POST /v1/challenges`, `POST /v1/eligibility/card`, `POST /v1/card-links` (a facility links
//! a card from its signed data), `POST /v1/card-links/unlink` (an administrator) and
//! `POST /v1/self/card-unlink` (the holder, no token); the card helpers here serve the self
//! endpoints of [`super::access_log`] too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::body::{read_limited, typed, unused};
use super::error::{ApiError, ClientError};
use super::limits::AddressLimited;
use super::AppState;
use crate::card::link::{LinkProof, LinkTrust};
use crate::card::surface::SurfaceData;
use crate::card::{self, Audience, CardError, CardProof, Challenge};
use crate::domain::parse_date;
use crate::eligibility::today_in_japan;
use crate::store::card::ConsentChoices;

const BODY_MAX: usize = 64 * 1024;

/// A single-use nonce for one card signature, bound to the asking facility.
pub async fn challenge(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
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

/// `POST /v1/card-links`: the card's proof and the 券面事項入力補助AP's records. There is no
/// member for a typed number: a number nobody can prove is never a reason to link.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    certificate: String,
    challenge_id: String,
    signature: String,
    card_surface: SurfaceBody,
}

/// The records as read from the card, each base64 of its TLV bytes. The My Number record is
/// among them: wiped when the request is done.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct SurfaceBody {
    my_number: String,
    basic_facts: String,
    signature: String,
    issuer_certificate: String,
    auth_key: String,
    internal_authentication: String,
}

/// A proof of the card alone: the holder's unlink.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofBody {
    certificate: String,
    challenge_id: String,
    signature: String,
}

/// An administrator's unlink names the certificate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminUnlinkBody {
    certificate: String,
}

/// Eligibility of the card's holder.
pub async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
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
        &state.origin,
        party.id,
        &proof,
        date_of_care,
        body.consents,
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Links a card to its person at a facility's reader, from the card's signed data. The body is
/// read before the role is checked, so a typed number is refused (400) whoever sends it.
pub async fn link(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: LinkBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let party = super::routes::admit_after_body(&req, &caller)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let signature = base64_field(&body.signature, "signature")?;
    let challenge_id = uuid_field(&body.challenge_id)?;
    let s = &body.card_surface;
    let records = zeroize::Zeroizing::new([
        base64_field(&s.my_number, "card_surface.my_number")?,
        base64_field(&s.basic_facts, "card_surface.basic_facts")?,
        base64_field(&s.signature, "card_surface.signature")?,
        base64_field(&s.issuer_certificate, "card_surface.issuer_certificate")?,
        base64_field(&s.auth_key, "card_surface.auth_key")?,
        base64_field(
            &s.internal_authentication,
            "card_surface.internal_authentication",
        )?,
    ]);
    let [my_number, basic_facts, surface_signature, issuer_certificate, auth_key, internal] =
        &*records;
    let proof = LinkProof {
        card: CardProof {
            certificate: &certificate,
            challenge_id,
            signature: &signature,
        },
        surface: SurfaceData {
            my_number,
            basic_facts,
            signature: surface_signature,
            issuer_certificate,
            auth_key,
            internal_authentication: internal,
        },
    };
    let (jpki, surface) = (state.trust.current(), state.surface_trust.current());
    let trust = LinkTrust {
        jpki: jpki.as_deref(),
        surface: surface.as_deref(),
        origin: &state.origin,
    };
    let done = card::link::link(
        &state.pool,
        &state.audit,
        trust,
        &state.link_key,
        party.id,
        &proof,
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "linked": true,
        "certificate_not_after": done.not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "check_id": done.check_id,
    })))
}

/// The holder unlinks their card: the card's signature over a holder challenge, no token.
pub async fn unlink_by_holder(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: ProofBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let signature = base64_field(&body.signature, "signature")?;
    let proof = CardProof {
        certificate: &certificate,
        challenge_id: uuid_field(&body.challenge_id)?,
        signature: &signature,
    };
    let trust = state.trust.current();
    let done = card::link::unlink_by_holder(
        &state.pool,
        &state.audit,
        trust.as_deref(),
        &state.origin,
        &proof,
    )
    .await
    .map_err(card_error)?;
    Ok(unlinked(&done))
}

/// An administrator unlinks a card by its certificate; recorded like every unlink.
pub async fn unlink_by_admin(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let admin = caller.party();
    let body: AdminUnlinkBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let done = card::link::unlink_by_admin(&state.pool, &state.audit, admin.id, &certificate)
        .await
        .map_err(card_error)?;
    Ok(unlinked(&done))
}

fn unlinked(done: &card::link::Done) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "unlinked": true,
        "check_id": done.check_id,
    }))
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
            "This server has no JPKI trust anchors (or, for linking, no card-surface trust anchors) configured; check by insurance number.",
            None,
        ),
        CardError::ChallengeUnknown => (StatusCode::NOT_FOUND, "challenge.unknown", "No such challenge; ask for a new one.", Some("challenge_id")),
        CardError::ChallengeUsed => (StatusCode::CONFLICT, "challenge.used", "This challenge was used already; ask for a new one.", Some("challenge_id")),
        CardError::ChallengeExpired => (StatusCode::GONE, "challenge.expired", "This challenge expired; ask for a new one and sign it promptly.", Some("challenge_id")),
        CardError::ChallengeOtherParty => (StatusCode::FORBIDDEN, "challenge.other_party", "This challenge was issued to another facility.", Some("challenge_id")),
        CardError::ChallengeWrongAudience => (StatusCode::FORBIDDEN, "challenge.wrong_audience", "This challenge was issued for another use of the card: take one from POST /v1/challenges for a check or link at a facility, or from POST /v1/self/challenges for a person's own access log.", Some("challenge_id")),
        CardError::Rejected(card::verify::Rejection::RevocationUnavailable) => {
            let rejection = card::verify::Rejection::RevocationUnavailable;
            (StatusCode::SERVICE_UNAVAILABLE, rejection.code(), rejection.message(), None)
        }
        CardError::Rejected(rejection) => {
            let field = if rejection == card::verify::Rejection::BadSignature { "signature" } else { "certificate" };
            (StatusCode::UNPROCESSABLE_ENTITY, rejection.code(), rejection.message(), Some(field))
        }
        CardError::Surface(rejection) => {
            (StatusCode::UNPROCESSABLE_ENTITY, rejection.code(), rejection.message(), Some(rejection.field()))
        }
        CardError::NotLinked => (
            StatusCode::NOT_FOUND,
            "card.not_linked",
            "This card is not linked to health insurance yet. The person can link it once at this reader, on the Mynaportal or at an ATM; meanwhile check by insurance number.",
            None,
        ),
        CardError::NoCoverage => (
            StatusCode::NOT_FOUND,
            "card.no_coverage_to_link",
            "There is no coverage to link this card to; the person should ask their insurer, and check by insurance number meanwhile.",
            None,
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
