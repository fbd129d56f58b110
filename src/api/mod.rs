//! The HTTP edge: parse and authenticate, call the use case, shape the answer.
//!
//! | route | who | module |
//! |---|---|---|
//! | `GET /healthz`, `GET /readyz` | anyone | [`health`] |
//! | `GET /openapi.yaml` | anyone | [`openapi`] |
//! | `POST /v1/eligibility` | facility, claims | [`eligibility`] |
//! | `POST /v1/eligibility/batch` | claims, medical and dental facilities (not pharmacies, home nursing) | [`eligibility`] |
//! | `POST /v1/enrollments` | insurer | [`enrollments`] |
//! | `GET /v1/enrollments/{id}` | insurer (own), admin | [`enrollments`] |
//! | `POST /v1/parties`, `POST /v1/parties/{id}/revoke` | admin | [`parties`] |
//! | `POST /v1/challenges` | facility | [`card`] |
//! | `POST /v1/eligibility/card` | facility | [`card`] |
//! | `POST /v1/card-links` | facility (with the card and its signed data) | [`card`] |
//! | `POST /v1/card-links/unlink` | admin | [`card`] |
//! | `POST /v1/self/card-unlink` | the card's holder, **no token** | [`card`] |
//! | `POST /v1/purposes`, `POST /v1/health-ids/reissue` | admin | [`health_ids`] |
//! | `POST /v1/health-ids`, `POST /v1/health-ids/resolve` | parties of the purpose | [`health_ids`] |
//! | `POST /v1/self/challenges`, `POST /v1/self/access-log` | the card's holder, **no token** | [`access_log`] |
//! | `POST /v1/access-log/lookup` | admin | [`access_log`] |
//!
//! Every `/v1` route takes a [`auth::Caller`] (the bearer token) except the `/v1/self/`
//! routes, deliberately: they serve a person, who holds no party token. There the credential is
//! the card itself: `POST /v1/self/access-log` and `POST /v1/self/card-unlink` answer only to
//! the card's signature over a fresh, single-use challenge issued for the holder (a facility's
//! challenge is refused), bound to that use and this server (`crate::card::binding`), from a
//! certificate that chains to the JPKI, is not revoked (against a current CRL) and is linked to
//! the person whose log it returns or whose link it removes. A challenge alone discloses
//! nothing.

pub mod access_log;
pub mod auth;
pub mod body;
pub mod card;
pub mod eligibility;
pub mod enrollments;
pub mod error;
pub mod health;
pub mod health_ids;
pub mod limits;
pub mod openapi;
pub mod parties;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use deadpool_postgres::Pool;

use crate::audit::AuditLog;
use crate::domain::LinkKey;
use auth::AuthCache;
use error::{ApiError, ClientError};

/// What every request handler shares.
pub struct AppState {
    pub pool: Pool,
    pub audit: AuditLog,
    pub link_key: Arc<LinkKey>,
    pub auth: AuthCache,
    pub limits: limits::Limits,
    pub trust: crate::card::trust::TrustStore,
    /// The 券面事項 trust anchors that linking verifies a card's signed number against.
    pub surface_trust: crate::card::trust::TrustStore,
    /// The origin readers sign into every card proof (`crate::card::binding`).
    pub origin: crate::card::binding::Origin,
    pub challenge_lifetime: chrono::Duration,
    /// The longest pause allowed between two pieces of an enrolment upload: a stalled sender
    /// would hold the batch's transaction (and its locks) open.
    pub upload_idle: std::time::Duration,
    pub uploads: enrollments::UploadGate,
    pub health_ids: Option<Arc<crate::health_id::keys::KeySource>>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/openapi.yaml", web::get().to(openapi::document))
        .service(
            web::scope("/v1")
                .route("/eligibility", web::post().to(eligibility::check_one))
                .route(
                    "/eligibility/batch",
                    web::post().to(eligibility::check_batch),
                )
                .route("/eligibility/card", web::post().to(card::check))
                .route("/challenges", web::post().to(card::challenge))
                .route("/card-links", web::post().to(card::link))
                .route("/card-links/unlink", web::post().to(card::unlink_by_admin))
                .route("/self/card-unlink", web::post().to(card::unlink_by_holder))
                .route("/parties", web::post().to(parties::add))
                .route("/parties/{id}/revoke", web::post().to(parties::revoke))
                .route("/enrollments", web::post().to(enrollments::upload))
                .route(
                    "/enrollments/{batch_id}",
                    web::get().to(enrollments::report),
                )
                .configure(health_ids::routes)
                .configure(access_log::routes),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ClientError::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        "No such endpoint (or not with this method); see the API description.",
    )
    .into())
}
