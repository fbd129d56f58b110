//! Liveness and readiness, without credentials.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::doc::{schema, Body, Content, Doc, Reply};
use super::error::ApiError;
use super::AppState;

/// The answer of `GET /healthz`.
#[derive(Serialize, ToSchema)]
struct Alive {
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// The answer of `GET /readyz`.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready`, or `degraded` when a CA of the trust store has no current, verified CRL.
    #[schema(pattern = "^(ready|degraded)$")]
    status: &'static str,
    /// Each CA whose cards' checks answer 503 `card.revocation_unavailable`, when degraded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    card_revocation: Vec<UncheckedCa>,
}

/// A CA without a current, verified CRL.
#[derive(Serialize, ToSchema)]
struct UncheckedCa {
    ca: String,
    problem: &'static str,
    /// When the stale CRL stopped being current.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_update: Option<String>,
    /// Why the CRL found was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok" })
}

/// The database answers: 200, else 503. When a CA of the JPKI trust store has no current,
/// verified CRL, the answer stays 200 (eligibility by number is unaffected) but says
/// `"status": "degraded"` and names each such CA under `card_revocation`: card checks of that
/// CA's certificates answer 503 `card.revocation_unavailable` until a current CRL is installed.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    client
        .simple_query("select 1")
        .await
        .map_err(anyhow::Error::new)?;
    let unchecked = state
        .trust
        .current()
        .map(|trust| trust.unchecked(chrono::Utc::now().timestamp()))
        .unwrap_or_default();
    let card_revocation: Vec<UncheckedCa> = unchecked
        .iter()
        .map(|ca| {
            let (next_update, reason) = match &ca.state {
                crate::card::crl::CrlState::Stale { next_update } => (
                    chrono::DateTime::from_timestamp(*next_update, 0)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    None,
                ),
                crate::card::crl::CrlState::Refused(why) => (None, Some(why.as_str().to_owned())),
                _ => (None, None),
            };
            UncheckedCa {
                ca: ca.name.clone(),
                problem: ca.state.problem(),
                next_update,
                reason,
            }
        })
        .collect();
    let status = if card_revocation.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Ok(HttpResponse::Ok().json(Readiness {
        status,
        card_revocation,
    }))
}

pub const HEALTHZ_DOC: Doc = Doc {
    id: "healthz",
    tag: "service",
    summary: "The process is alive.",
    description: "Always 200 while the process serves.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "Alive.",
        content: Content::Json(schema::<Alive>),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

pub const READYZ_DOC: Doc = Doc {
    id: "readyz",
    tag: "service",
    summary: "The database answers.",
    description: "When a CA of the JPKI trust store has no current, verified CRL the answer \
        stays 200 (checks by number are unaffected) but says `degraded` and names each such CA: \
        its cards' checks answer 503 `card.revocation_unavailable`.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "Ready, or degraded for card checks of the CAs named.",
        content: Content::Json(schema::<Readiness>),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};
