//! `POST /v1/parties` and `POST /v1/parties/{id}/revoke`: an administrator registers parties
//! (the token is in the answer, once; a client certificate may be bound to it) and revokes them.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::{read_limited, typed, unused};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, In, Param, Reply};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::parties::{NewParty, Role, Token};

/// A party to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewParty)]
struct NewPartyBody {
    #[schema(pattern = "^(facility|claims|insurer|payer|admin)$")]
    role: String,
    /// At most 100 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
    /// 医療機関コード (10 digits, check digit verified); for a facility only.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{10}$")]
    facility_code: Option<String>,
    /// 保険者番号s; for an insurer only.
    #[serde(default)]
    insurer_numbers: Vec<String>,
    /// 公費負担者番号s (8 digits, check digit verified); for a payer only.
    #[serde(default)]
    payer_numbers: Vec<String>,
    /// When the token expires, in days from now; no expiry when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 36500)]
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
            Code::RoleUnknownCode,
            "The role must be facility, claims, insurer, payer or admin.",
        )
        .with_field("role")
    })?;
    // A payer's 公費負担者番号s take the place of an insurer's numbers; no other role has any.
    let owned = match role {
        Role::Payer if body.insurer_numbers.is_empty() => &body.payer_numbers,
        _ if body.payer_numbers.is_empty() => &body.insurer_numbers,
        _ => {
            return Err(ClientError::fault(
                "payer_numbers",
                crate::domain::Fault::Required,
                "Payer numbers are for a payer only, and a payer has no insurer numbers.",
            )
            .into())
        }
    };
    let party = NewParty::new(
        role,
        body.name,
        body.facility_code.as_deref(),
        owned,
        body.expires_in_days,
        body.client_certificate.as_slice(),
    )
    .map_err(|e| ClientError::fault(e.code_field, e.fault, e.message).with_field(e.field))?;
    let token = Token::generate();
    let mut client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let id = crate::parties::register(&mut client, &party, &token).await?;
    Ok(HttpResponse::Created().json(Registered {
        id,
        role,
        token: token.reveal().to_owned(),
        expires_at: party.expires_at,
        client_certificates: party.client_certificates,
    }))
}

/// Revokes a party's token (cached copies stop working within `auth_cache_seconds`).
pub async fn revoke(
    state: web::Data<AppState>,
    _admin: Caller,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    unused(payload).await?;
    let not_found = || ClientError::new(Code::PartyNotFound, "No party has this id.");
    // Read here rather than by `web::Path<i64>`, whose refusal is a plain-text 404 that
    // repeats the path.
    let id = crate::domain::PartyId::new(path.parse().map_err(|_| not_found())?);
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    match crate::parties::revoke(&**client, id).await? {
        Some(revoked_at) => Ok(HttpResponse::Ok().json(Revoked { revoked_at })),
        None => Err(not_found().into()),
    }
}

/// A party registered: its token is shown this once.
#[derive(Serialize, ToSchema)]
struct Registered {
    #[schema(value_type = i64)]
    id: crate::domain::PartyId,
    #[schema(value_type = String)]
    role: Role,
    token: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The SHA-256 fingerprints (hex) of the client certificates bound to the token.
    #[schema(value_type = Vec<String>)]
    client_certificates: Vec<crate::domain::CertFingerprint>,
}

/// A revocation.
#[derive(Serialize, ToSchema)]
struct Revoked {
    revoked_at: chrono::DateTime<chrono::Utc>,
}

pub const ADD_DOC: Doc = Doc {
    id: "addParty",
    tag: "parties",
    summary: "Register a party; its token is shown this once.",
    description: "A facility needs its facility code, an insurer one or more insurer numbers, \
        and no other role may carry either. Only the token's SHA-256 is stored. Body at most \
        16 KiB.",
    body: Body::Json(schema::<NewPartyBody>),
    replies: &[Reply {
        status: 201,
        description: "Registered.",
        content: Content::Json(schema::<Registered>),
    }],
    codes: &[&[Code::RoleUnknownCode]],
    fields: &[
        "facility_code",
        "insurer_number",
        "insurer_numbers",
        "payer_number",
        "payer_numbers",
        "name",
        "expires_in_days",
        "client_certificate",
    ],
    params: &[],
};

pub const REVOKE_DOC: Doc = Doc {
    id: "revokeParty",
    tag: "parties",
    summary: "Revoke a party's token.",
    description: "The token stops working at once in the database; a server's in-memory cache \
        may accept it for up to `auth_cache_seconds` more. Revoking again answers the first \
        revocation time.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "Revoked.",
        content: Content::Json(schema::<Revoked>),
    }],
    codes: &[&[Code::PartyNotFound]],
    fields: &[],
    params: &[Param {
        name: "id",
        location: In::Path,
        required: true,
        description: "The party's id.",
        schema: || serde_json::json!({ "type": "integer", "format": "int64" }),
    }],
};
