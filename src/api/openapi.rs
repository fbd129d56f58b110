//! `GET /openapi.yaml`: the OpenAPI description of this API.
//!
//! The document is compiled into the binary, so a running server always describes the routes it
//! was built with; `tests/api/openapi.rs` fails when a route or an error code is missing from it.

use actix_web::HttpResponse;

const DOCUMENT: &str = include_str!("openapi.yaml");

/// The description, without credentials: it holds no secret and integrators need it first.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(DOCUMENT)
}
