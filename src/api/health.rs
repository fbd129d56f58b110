//! Liveness and readiness, without credentials.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers: 200, else 503.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    client
        .simple_query("select 1")
        .await
        .map_err(anyhow::Error::new)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}
