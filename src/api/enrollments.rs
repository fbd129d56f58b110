//! `POST /v1/enrollments` (CSV upload, streamed) and `GET /v1/enrollments/{batch id}`.

use std::collections::HashMap;
use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::auth::Caller;
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, In, Param, Reply};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::PartyId;
use crate::enrollment::report::{BatchStatus, Report};
use crate::enrollment::{self, LoadError, Outcome, Sender};
use crate::parties::Role;

/// Loads an insurer's enrolment file, streaming it from the request into the database.
///
/// Uploads cannot starve the checks: each waits for its turn ([`UploadGate`]: so many at once in
/// total and per insurer), takes a pooled connection only once its body is flowing, and has an
/// overall deadline (which also bounds its statements) and a size cap.
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    require_csv(&req)?;
    let batch_id = idempotency_key(&req)?;
    let gate = &state.uploads;
    let _turn = gate.turn(party.id).await?;
    let started = Instant::now();
    let deadline = started + gate.deadline;

    // Nothing is held for a sender that has not started sending.
    let first = match next_chunk(&mut payload, state.upload_idle, deadline).await {
        Next::Chunk(chunk) => chunk,
        Next::End => Bytes::new(),
        Next::Failed(error) => return Err(anyhow::anyhow!(error).into()),
        Next::Stalled => return Err(stalled(state.upload_idle)),
        Next::Overdue => return Err(overdue(gate.deadline)),
    };
    let sender = Sender {
        party_id: Some(party.id),
        owned: Some(party.insurer_numbers.clone()),
        statement_timeout: gate.deadline,
    };

    let (chunks, receiver) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let mut refused: Option<ClientError> = None;
    let forward = async {
        // Moved in, so that the reader sees the end of the file when this ends.
        let chunks = chunks;
        let mut received = first.len() as u64;
        let mut next = if first.is_empty() {
            Next::End
        } else {
            Next::Chunk(first)
        };
        loop {
            let chunk = match next {
                Next::Chunk(chunk) => chunk,
                Next::End => break,
                Next::Failed(error) => {
                    let _ = chunks.send(Err(std::io::Error::other(error))).await;
                    break;
                }
                Next::Stalled | Next::Overdue => {
                    refused = Some(if matches!(next, Next::Stalled) {
                        stalled_client(state.upload_idle)
                    } else {
                        overdue_client(gate.deadline)
                    });
                    let _ = chunks.send(Err(std::io::ErrorKind::TimedOut.into())).await;
                    break;
                }
            };
            if received > gate.max_bytes {
                refused = Some(too_large(gate.max_bytes));
                let _ = chunks
                    .send(Err(std::io::Error::other("the upload is too large")))
                    .await;
                break;
            }
            if chunks.send(Ok(chunk)).await.is_err() {
                // The load has stopped (finished early or failed): it answers for itself.
                break;
            }
            next = next_chunk(&mut payload, state.upload_idle, deadline).await;
            if let Next::Chunk(chunk) = &next {
                received += chunk.len() as u64;
            }
        }
    };
    let load = async {
        let mut client = state.pool.get().await.map_err(anyhow::Error::new)?;
        enrollment::load(
            &mut client,
            ChannelReader::new(receiver),
            &batch_id,
            sender,
            state.link_key.clone(),
        )
        .await
    };
    let ((), outcome) = tokio::join!(forward, load);
    if let Some(refusal) = refused {
        return Err(refusal.into());
    }
    match outcome {
        Ok(Outcome::Applied(report) | Outcome::Rejected(report) | Outcome::Repeated(report)) => {
            Ok(report_response(&report))
        }
        Err(LoadError::BatchIdTaken) => Err(ClientError::new(
            Code::IdempotencyKeyTaken,
            "Another sender used this Idempotency-Key; choose a unique batch id.",
        )
        .with_field("Idempotency-Key")
        .into()),
        Err(LoadError::Unexpected(error)) => Err(error.into()),
    }
}

/// What the next read of the body gave.
enum Next {
    Chunk(Bytes),
    End,
    Failed(String),
    /// Nothing arrived for the idle time.
    Stalled,
    /// The upload's deadline passed.
    Overdue,
}

async fn next_chunk(payload: &mut web::Payload, idle: Duration, deadline: Instant) -> Next {
    let now = Instant::now();
    if now >= deadline {
        return Next::Overdue;
    }
    let overdue = deadline - now < idle;
    match tokio::time::timeout(idle.min(deadline - now), payload.next()).await {
        Ok(Some(Ok(chunk))) => Next::Chunk(chunk),
        Ok(Some(Err(error))) => Next::Failed(error.to_string()),
        Ok(None) => Next::End,
        Err(_) if overdue => Next::Overdue,
        Err(_) => Next::Stalled,
    }
}

fn stalled_client(idle: Duration) -> ClientError {
    ClientError::new(
        Code::BodyTimeout,format!(
            "The upload stopped for more than {} seconds; nothing was applied. Send the file again.",
            idle.as_secs()
        ),
    )
}

fn stalled(idle: Duration) -> ApiError {
    stalled_client(idle).into()
}

fn overdue_client(deadline: Duration) -> ClientError {
    ClientError::new(
        Code::UploadDeadline,
        format!(
            "The upload took longer than {} seconds; nothing was applied. Send it again on a \
             faster link, or split the file.",
            deadline.as_secs()
        ),
    )
}

fn overdue(deadline: Duration) -> ApiError {
    overdue_client(deadline).into()
}

fn too_large(max: u64) -> ClientError {
    ClientError::new(
        Code::BodyTooLarge,
        format!("An enrolment file may be at most {max} bytes; nothing was applied. Split it."),
    )
}

/// Turns for enrolment uploads: so many at once in total and per insurer, each waiting at most
/// `wait` for its turn.
pub struct UploadGate {
    total: Arc<Semaphore>,
    per_party: usize,
    parties: Mutex<HashMap<PartyId, Arc<Semaphore>>>,
    wait: Duration,
    pub deadline: Duration,
    pub max_bytes: u64,
}

/// An upload's turn; dropping it lets the next one in.
pub struct Turn {
    _party: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl UploadGate {
    pub fn new(
        total: NonZeroUsize,
        per_party: NonZeroUsize,
        wait: Duration,
        deadline: Duration,
        max_bytes: u64,
    ) -> Self {
        UploadGate {
            total: Arc::new(Semaphore::new(total.get())),
            per_party: per_party.get(),
            parties: Mutex::new(HashMap::new()),
            wait,
            deadline: deadline.max(Duration::from_secs(1)),
            max_bytes,
        }
    }

    /// Waits for the party's turn.
    ///
    /// # Errors
    /// 429 `upload.busy` when no turn came within the wait.
    pub async fn turn(&self, party_id: PartyId) -> Result<Turn, ClientError> {
        let party = {
            let mut parties = self.parties.lock().unwrap_or_else(|p| p.into_inner());
            parties
                .entry(party_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_party)))
                .clone()
        };
        let busy = || {
            ClientError::new(
                Code::UploadBusy,
                "Other enrolment uploads are being applied; send this file again after the \
                 Retry-After seconds (the same Idempotency-Key is safe to reuse).",
            )
            .with_retry_after(self.wait.as_secs().max(1))
        };
        let turn = async {
            let party = party.acquire_owned().await.ok()?;
            let total = self.total.clone().acquire_owned().await.ok()?;
            Some(Turn {
                _party: party,
                _total: total,
            })
        };
        tokio::time::timeout(self.wait, turn)
            .await
            .ok()
            .flatten()
            .ok_or_else(busy)
    }
}

/// The report of an earlier batch: its sender's, or any for an administrator.
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    // An id no upload could have used names no batch (and a NUL would fail in the database).
    let stored = if is_batch_id(&path) {
        let client = state.pool.get().await.map_err(anyhow::Error::new)?;
        crate::enrollment::stored_report(&**client, &path).await?
    } else {
        None
    };
    match stored {
        Some((owner, report)) if party.role == Role::Admin || owner == Some(party.id) => {
            Ok(HttpResponse::Ok().json(report))
        }
        _ => Err(ClientError::new(Code::BatchNotFound, "No batch of yours has this id.").into()),
    }
}

fn report_response(report: &Report) -> HttpResponse {
    batch_answer(report, report.status, report.rejected_lines)
}

/// 415 unless the request says it carries CSV.
pub(super) fn require_csv(req: &HttpRequest) -> Result<(), ClientError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("text/csv") {
        Ok(())
    } else {
        Err(ClientError::new(
            Code::ContentTypeUnsupported,
            "Send the file with Content-Type: text/csv (UTF-8).",
        )
        .with_field("Content-Type"))
    }
}

/// A batch's report: 200 when applied, 422 with `error` beside the report when rejected.
pub(super) fn batch_answer(
    report: &impl serde::Serialize,
    status: BatchStatus,
    rejected_lines: u64,
) -> HttpResponse {
    if status == BatchStatus::Applied {
        return HttpResponse::Ok().json(report);
    }
    let mut body = serde_json::to_value(report).unwrap_or_default();
    let error = ClientError::new(
        Code::EnrollmentRejected,
        format!(
            "{rejected_lines} lines were rejected; nothing was applied. Correct them and send the file again with a new Idempotency-Key."
        ),
    );
    body["error"] = serde_json::to_value(&error.body).unwrap_or_default();
    HttpResponse::build(error.status).json(body)
}

/// The codes every batch upload may answer.
pub(super) const UPLOAD_CODES: &[Code] = &[
    Code::BodyTimeout,
    Code::BodyIncomplete,
    Code::BodyTooLarge,
    Code::ContentTypeUnsupported,
    Code::IdempotencyKeyRequired,
    Code::IdempotencyKeyFormat,
    Code::IdempotencyKeyTaken,
    Code::EnrollmentRejected,
];

/// The batch id of an upload.
pub(super) const IDEMPOTENCY_KEY: Param = Param {
    name: "Idempotency-Key",
    location: In::Header,
    required: true,
    description: "The batch id, unique per batch; 1 to 200 printable ASCII characters, no spaces.",
    schema: || serde_json::json!({ "type": "string", "pattern": "^[!-~]{1,200}$" }),
};

pub(super) fn idempotency_key(req: &HttpRequest) -> Result<String, ClientError> {
    let error = |code: Code, message: &'static str| ClientError::new(code, message);
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Err(error(
            Code::IdempotencyKeyRequired,
            "Send an Idempotency-Key header naming this batch, unique per batch.",
        ));
    };
    match value.to_str() {
        Ok(key) if is_batch_id(key) => Ok(key.to_owned()),
        _ => Err(error(
            Code::IdempotencyKeyFormat,
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

const ENROLMENT_FILE: &str = "UTF-8 CSV. The first line names the columns, in any order; a BOM is accepted.\n`change`, `insurer_number` and `number` are required columns; an unknown or repeated\ncolumn rejects the file.\n\n| column | meaning |\n|---|---|\n| change | `acquire`, `lose` or `update` |\n| individual_number | 12-digit My Number, check digit verified; required for `acquire`; only links the person's coverages, never stored, logged or returned |\n| insurer_number, symbol, number, branch | the coverage's key (no branch for 後期高齢者医療, insurer numbers 39…) |\n| insurer_name | optional display name of the insurer |\n| card_classification | 01-07 or A1 |\n| relationship | 1 insured person, 2 dependant |\n| insured_name, name, name_kana, sex, birth_date | the person on this coverage (sex 1/2/3) |\n| postcode, address | as registered |\n| acquired_on, lost_on, loss_reason | loss reason 01, 02, 03 or 99 |\n| effective_on | for `update`: the day the change takes effect |\n| copay_ratio | `010`, `020` or `030` |\n| card_issued_on, card_valid_from, card_valid_to | card dates |\n| elderly_copay_ratio, elderly_valid_from, elderly_valid_to | elderly recipient certificate |\n| limit_classification, limit_category, limit_valid_from, limit_valid_to | high-cost limit certificate (01-03; A01-A06, B01-B10) |\n| specific_disease, specific_disease_valid_from, specific_disease_valid_to, specific_disease_self_pay | specific-disease certificate (1-3; yen a month) |\n\nDates are `YYYY-MM-DD`. An `acquire` needs `individual_number`, `card_classification`,\n`relationship`, `insured_name`, `name`, `name_kana`, `sex`, `birth_date`, `acquired_on`\nand `copay_ratio`; a `lose` carries only the key, `lost_on` and `loss_reason`; an\n`update` the key, `effective_on` and the columns that change (empty means unchanged).\nLines for the same key apply in file order.";

pub const UPLOAD_DOC: Doc = Doc {
    id: "uploadEnrollments",
    tag: "enrolment",
    summary: "Apply an enrolment file, all or nothing.",
    description: "The file is streamed and validated line by line; if any line is rejected \
        nothing is applied and every rejected line is reported (422, with the report). Sending \
        the same `Idempotency-Key` again returns the first report (same status) and changes \
        nothing.",
    body: Body::Csv(ENROLMENT_FILE),
    replies: &[
        Reply {
            status: 200,
            description: "Applied: the report.",
            content: Content::Json(schema::<Report>),
        },
        Reply {
            status: 422,
            description: "Rejected, nothing applied: the report, with `error`.",
            content: Content::Json(schema::<Report>),
        },
    ],
    codes: &[UPLOAD_CODES, &[Code::UploadDeadline, Code::UploadBusy]],
    fields: &[],
    params: &[IDEMPOTENCY_KEY],
};

pub const REPORT_DOC: Doc = Doc {
    id: "enrollmentReport",
    tag: "enrolment",
    summary: "The report of an earlier batch.",
    description: "The stored report, with status 200 whether the batch was applied or \
        rejected. An insurer reads only its own batches.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The report.",
        content: Content::Json(schema::<Report>),
    }],
    codes: &[&[Code::BatchNotFound]],
    fields: &[],
    params: &[Param {
        name: "batch_id",
        location: In::Path,
        required: true,
        description: "The batch's `Idempotency-Key`.",
        schema: || serde_json::json!({ "type": "string" }),
    }],
};
