//! `POST /v1/parties` and `POST /v1/parties/{id}/revoke`: an administrator registers parties
//! (the token is in the answer, once; a client certificate may be bound to it) and revokes them.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::body::{read_limited, typed, unused};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::parties::{NewParty, Role, Token};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPartyBody {
    role: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    facility_code: Option<String>,
    #[serde(default)]
    insurer_numbers: Vec<String>,
    #[serde(default)]
    expires_in_days: Option<u32>,
    /// PEM of one client certificate the party must present over TLS besides its token.
    #[serde(default)]
    client_certificate: Option<String>,
}

/// Registers a party; answers its id and its token, shown this once.
pub async fn add(
    state: web::Data<AppState>,
    _admin: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: NewPartyBody = typed(&read_limited(payload, 16 * 1024).await?)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ClientError::new(
            StatusCode::BAD_REQUEST,
            "role.unknown_code",
            "The role must be facility, claims, insurer or admin.",
        )
        .with_field("role")
    })?;
    let party = NewParty::new(
        role,
        body.name,
        body.facility_code.as_deref(),
        &body.insurer_numbers,
        body.expires_in_days,
        body.client_certificate.as_slice(),
    )
    .map_err(|e| {
        ClientError::new(StatusCode::BAD_REQUEST, e.code, e.message).with_field(e.field)
    })?;
    let token = Token::generate();
    let mut client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let id = crate::parties::register(&mut client, &party, &token).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": id,
        "role": role,
        "token": token.reveal(),
        "expires_at": party.expires_at,
        "client_certificates": party.client_certificates,
    })))
}

/// Revokes a party's token (cached copies stop working within `auth_cache_seconds`).
pub async fn revoke(
    state: web::Data<AppState>,
    _admin: Caller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    unused(payload).await?;
    let not_found = || {
        ClientError::new(
            StatusCode::NOT_FOUND,
            "party.not_found",
            "No party has this id.",
        )
    };
    // Read here rather than by `web::Path<i64>`, whose refusal is a plain-text 404 that
    // repeats the path.
    let id = crate::domain::PartyId::new(path.parse().map_err(|_| not_found())?);
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    match crate::parties::revoke(&**client, id).await? {
        Some(at) => Ok(HttpResponse::Ok().json(serde_json::json!({ "revoked_at": at }))),
        None => Err(not_found().into()),
    }
}
