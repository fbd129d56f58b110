//! `GET /.well-known/jwks.json`: the public keys of the proofs of check, without credentials.

use actix_web::{web, HttpResponse};

use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, Reply};
use super::error::ApiError;
use super::limits::AddressLimited;
use super::AppState;
use crate::proof::jws::Jwks;

/// Every key that ever signed a proof here (current and rotated out), so that a proof verifies
/// however old it is. Public by nature: it lets an insurer check a claim's proof without asking
/// onshi, and should be saved by whoever relies on it (`onshi proof verify --jwks FILE`).
pub async fn jwks(
    state: web::Data<AppState>,
    _limited: AddressLimited,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let keys = crate::proof::published(&client).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(keys))
}

pub const JWKS_DOC: Doc = Doc {
    id: "proofKeys",
    tag: "service",
    summary: "The public keys of the proofs of check (JWK Set).",
    description: "Every Ed25519 key that has signed a `proof` here, the most recently published \
        first: the current key and every key rotated out, so that a proof verifies however old \
        it is. Each key's `kid` is its RFC 7638 thumbprint, as in the proof's header. Save it \
        and check proofs offline (`onshi proof verify --jwks FILE`, or any JOSE library with \
        `alg` `EdDSA`). Limited per client address, like every route without a token.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The JWK Set.",
        content: Content::Json(schema::<Jwks>),
    }],
    codes: &[&[Code::RateLimited]],
    fields: &[],
    params: &[],
};
