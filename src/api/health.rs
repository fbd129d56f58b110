//! Liveness and readiness, without credentials.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
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
    if unchecked.is_empty() {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})));
    }
    let cas: Vec<serde_json::Value> = unchecked
        .iter()
        .map(|ca| {
            let mut entry = serde_json::json!({"ca": ca.name, "problem": ca.state.problem()});
            match &ca.state {
                crate::card::crl::CrlState::Stale { next_update } => {
                    entry["next_update"] = chrono::DateTime::from_timestamp(*next_update, 0)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .into();
                }
                crate::card::crl::CrlState::Refused(why) => entry["reason"] = why.as_str().into(),
                _ => {}
            }
            entry
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "degraded", "card_revocation": cas})))
}
