//! `GET /metrics` and the middleware that counts every request.

use std::future::Future;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpRequest, HttpResponse};

use super::codes::Code;
use super::doc::{Body, Content, Doc, Reply};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::metrics::{metrics, CONTENT_TYPE};

/// Counts the request under its route pattern (never its path, which may hold ids), method and
/// status, and times it.
pub fn observe<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let answer = service.call(req);
    async move {
        let response = answer.await?;
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        metrics().observe_request(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed(),
        );
        Ok(response)
    }
}

/// The metrics, to the address ranges of `metrics_allow` only (403 to any other).
pub async fn scrape(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let allowed = req
        .peer_addr()
        .is_some_and(|peer| state.metrics_allow.contains_address(peer.ip()));
    if !allowed {
        return Err(ClientError::new(
            Code::AuthForbidden,
            "The metrics are served only to the operator's monitoring addresses (metrics_allow).",
        )
        .into());
    }
    let m = metrics();
    let pool = state.pool.status();
    let in_use = pool.size.saturating_sub(pool.available);
    m.pool_connections
        .with_label_values(&["in_use"])
        .set(i64::try_from(in_use).unwrap_or(i64::MAX));
    m.pool_connections
        .with_label_values(&["idle"])
        .set(i64::try_from(pool.available).unwrap_or(i64::MAX));
    m.pool_waiting
        .set(i64::try_from(pool.waiting).unwrap_or(i64::MAX));
    m.audit_queue_depth
        .set(i64::try_from(state.audit.queue_depth()).unwrap_or(i64::MAX));
    // Read from the database, which every server shares: a scrape that cannot reach it still
    // answers the process's own metrics, and the gauge keeps its last value.
    let jobs = match state.pool.get().await {
        Ok(client) => crate::store::bulk::count_by_state(&**client).await,
        Err(e) => Err(anyhow::Error::new(e)),
    };
    match jobs {
        Ok(jobs) => {
            for (name, n) in [
                ("queued", jobs.queued),
                ("working", jobs.working),
                ("done", jobs.done),
            ] {
                m.bulk_jobs.with_label_values(&[name]).set(n);
            }
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "metrics: counting bulk inquiries failed")
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(m.render()))
}

pub const SCRAPE_DOC: Doc = Doc {
    id: "metrics",
    tag: "service",
    summary: "Metrics in the Prometheus text format.",
    description: "Requests by route and status and their latency, the audit queue and its \
        commit latency, the database pool, the limiters' refusals, the groups single checks \
        are looked up in, the bulk inquiries by state. Served only to the address \
        ranges of `metrics_allow` (default: this host); any other caller gets 403.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The text exposition format, version 0.0.4.",
        content: Content::Text,
    }],
    codes: &[&[Code::AuthForbidden]],
    fields: &[],
    params: &[],
};
