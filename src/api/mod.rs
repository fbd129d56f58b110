//! The HTTP edge: parse and authenticate, call the use case, shape the answer. The routes and
//! who may call each are one table, [`routes::ROUTES`]; this overview follows it.
//!
//! | route | who | module |
//! |---|---|---|
//! | `GET /healthz`, `GET /readyz` | anyone | [`health`] |
//! | `GET /openapi.json`, `GET /openapi.yaml` | anyone | [`doc`] |
//! | `GET /.well-known/jwks.json` | anyone | [`proof_keys`] |
//! | `GET /desk/`, `/desk/desk.js`, `/desk/desk.css` | anyone (the page signs in with a facility's token) | [`desk`] |
//! | `POST /v1/eligibility` | facility, claims | [`eligibility`] |
//! | `POST /v1/eligibility/batch` | claims, medical and dental facilities (not pharmacies, home nursing) | [`eligibility`] |
//! | `POST /v1/eligibility/bulk`, `GET /v1/eligibility/bulk/{reception_number}` | as the batch; a job only to its sender | [`bulk`] |
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
pub mod bulk;
pub mod card;
pub mod codes;
pub mod desk;
pub mod doc;
pub mod eligibility;
pub mod enrollments;
pub mod error;
pub mod fhir;
pub mod health;
pub mod health_ids;
pub mod limits;
pub mod metrics;
pub mod parties;
pub mod proof_keys;
pub mod public_expenses;
pub mod reference_numbers;
pub mod routes;

use std::sync::Arc;

use actix_web::web;
use deadpool_postgres::Pool;

use crate::audit::AuditLog;
use crate::domain::LinkKey;
use auth::AuthCache;

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
    /// The time the use cases see (the system's, outside the tests).
    pub clock: crate::clock::Clock,
    /// Who may read `GET /metrics`.
    pub metrics_allow: limits::TrustedProxies,
    /// The key that signs every eligibility answer's proof.
    pub proofs: Arc<crate::proof::ProofKey>,
    /// The queue single checks by number are answered through, together when they arrive
    /// together ([`crate::eligibility::coalesce`]).
    pub checks: crate::eligibility::coalesce::Coalescer,
}

/// Every route of [`routes::ROUTES`]; anything else is 405 (a known path) or 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    routes::register(cfg);
    cfg.default_service(web::to(routes::unmatched));
}
