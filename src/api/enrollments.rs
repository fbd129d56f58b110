//! `POST /v1/enrollments` (CSV upload, streamed) and `GET /v1/enrollments/{batch id}`.

use std::io::Read;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::auth::Caller;
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::enrollment::report::{BatchStatus, Report};
use crate::enrollment::{self, LoadError, Outcome, Sender};
use crate::parties::Role;

/// Loads an insurer's enrolment file, streaming it from the request into the database.
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.require(&[Role::Insurer])?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(ClientError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type.unsupported",
            "Send the enrolment file with Content-Type: text/csv (UTF-8).",
        )
        .with_field("Content-Type")
        .into());
    }
    let batch_id = idempotency_key(&req)?;
    let sender = Sender {
        party_id: Some(party.id),
        owned: Some(party.insurer_numbers.clone()),
    };

    let (chunks, receiver) = mpsc::channel::<std::io::Result<Bytes>>(8);
    // A file may take minutes to arrive, but not with long silences.
    let mut stalled = false;
    let forward = async {
        // Moved in, so that the reader sees the end of the file when this ends.
        let chunks = chunks;
        loop {
            let chunk = match tokio::time::timeout(state.upload_idle, payload.next()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(_) => {
                    stalled = true;
                    let _ = chunks
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the upload stalled",
                        )))
                        .await;
                    break;
                }
            };
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if chunks.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let mut client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let load = enrollment::load(
        &mut client,
        ChannelReader::new(receiver),
        &batch_id,
        sender,
        state.link_key.clone(),
    );
    let ((), outcome) = tokio::join!(forward, load);
    if stalled {
        return Err(ClientError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body.timeout",
            format!(
                "The upload stopped for more than {} seconds; nothing was applied. Send the file again.",
                state.upload_idle.as_secs()
            ),
        )
        .into());
    }
    match outcome {
        Ok(Outcome::Applied(report) | Outcome::Rejected(report) | Outcome::Repeated(report)) => {
            Ok(report_response(&report))
        }
        Err(LoadError::BatchIdTaken) => Err(ClientError::new(
            StatusCode::CONFLICT,
            "idempotency_key.taken",
            "Another sender used this Idempotency-Key; choose a unique batch id.",
        )
        .with_field("Idempotency-Key")
        .into()),
        Err(LoadError::Unexpected(error)) => Err(error.into()),
    }
}

/// The report of an earlier batch: its sender's, or any for an administrator.
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let party = caller.require(&[Role::Insurer, Role::Admin])?;
    // An id no upload could have used names no batch (and a NUL would fail in the database).
    let stored = if is_batch_id(&path) {
        let client = state.pool.get().await.map_err(anyhow::Error::new)?;
        crate::store::enrollment::stored_report(&**client, &path).await?
    } else {
        None
    };
    match stored {
        Some((owner, report)) if party.role == Role::Admin || owner == Some(party.id) => {
            Ok(HttpResponse::Ok().json(report))
        }
        _ => Err(ClientError::new(
            StatusCode::NOT_FOUND,
            "batch.not_found",
            "No batch of yours has this id.",
        )
        .into()),
    }
}

fn report_response(report: &Report) -> HttpResponse {
    match report.status {
        BatchStatus::Applied => HttpResponse::Ok().json(report),
        BatchStatus::Rejected => {
            let mut body = serde_json::to_value(report).unwrap_or_default();
            body["error"] = serde_json::json!({
                "code": "enrollment.rejected",
                "message": format!(
                    "{} lines were rejected; nothing was applied. Correct them and send the file again with a new Idempotency-Key.",
                    report.rejected_lines
                ),
            });
            HttpResponse::UnprocessableEntity().json(body)
        }
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<String, ClientError> {
    let error = |code: &'static str, message: &'static str| {
        ClientError::new(StatusCode::BAD_REQUEST, code, message).with_field("Idempotency-Key")
    };
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Err(error(
            "idempotency_key.required",
            "Send an Idempotency-Key header naming this batch, unique per batch.",
        ));
    };
    match value.to_str() {
        Ok(key) if is_batch_id(key) => Ok(key.to_owned()),
        _ => Err(error(
            "idempotency_key.format",
            "The Idempotency-Key must be 1 to 200 printable ASCII characters without spaces.",
        )),
    }
}

/// A batch id (the Idempotency-Key) is 1 to 200 printable ASCII characters.
fn is_batch_id(key: &str) -> bool {
    (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A blocking `Read` over the chunks forwarded from the request body. A broken upload reads
/// as an error, never as a shorter file.
struct ChannelReader {
    receiver: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(receiver: mpsc::Receiver<std::io::Result<Bytes>>) -> Self {
        ChannelReader {
            receiver,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
