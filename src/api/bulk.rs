//! `POST /v1/eligibility/bulk` and `GET /v1/eligibility/bulk/{reception_number}`: the
//! asynchronous bulk inquiry ([`crate::bulk`]).
//!
//! **What it costs.** The upload is one request against the party's rate (one token), not one
//! per query as the synchronous batch: a hospital sending tomorrow's 3,000 patients the day
//! before would otherwise empty its bucket for a minute at the default rate, and the desk
//! checking today's patients with the same credential would be refused meanwhile. The queries
//! are not answered on the request path but by the workers, a chunk at a time, at a pace the
//! operator sets (`bulk.chunk_size`, `bulk.poll_millis`) and shared by every party, so they
//! cannot crowd the live checks either. What the rate guards against besides load, walking
//! through insurance numbers, is still watched: every bulk answer counts for the enumeration
//! watch, a flagged party's uploads are refused and its jobs wait until the flag is cleared.
//! The queries count against the party's `daily_quota` at the upload, all of them or none (429
//! `rate.daily_quota`, nothing stored). Each poll of the results is one request.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{forbidden, Caller};
use super::body::{json_object, only_known, read_limited};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, In, Param, Reply};
use super::eligibility::{parse_query, EligibilityQuery, QUERY_FIELDS};
use super::error::{ApiError, ClientError, ErrorBody};
use super::AppState;
use crate::bulk::{self, Submitted, BULK_MAX};
use crate::domain::Fault;
use crate::eligibility::{self, Answer};

/// 100,000 queries of about 200 bytes each, with room.
const BULK_BODY_MAX: usize = 48 * 1024 * 1024;
const PAGE_DEFAULT: i64 = 1000;
const PAGE_MAX: i64 = 10_000;

/// A bulk inquiry of 1 to 100,000 queries (or the same as CSV).
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what submit reads")]
struct BulkRequest {
    #[schema(min_items = 1, max_items = 100000)]
    queries: Vec<EligibilityQuery>,
}

/// The receipt of a bulk inquiry.
#[derive(Serialize, ToSchema)]
struct BulkReceipt {
    /// 受付番号: 32 hex digits, random.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    reception_number: String,
    /// Where the results are read.
    status_url: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum BulkJobStatus {
    /// Some queries are not answered yet.
    Processing,
    /// Every query is answered or refused.
    Done,
}

/// How far the job is.
#[derive(Serialize, ToSchema)]
struct BulkCounts {
    total: i32,
    /// Answered, each with its audit record.
    answered: i32,
    /// Refused for their own fault (an `error` entry).
    rejected: i32,
    /// Not answered yet.
    waiting: i32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum BulkEntryStatus {
    Answered,
    Rejected,
}

/// One query's result.
#[derive(Serialize, ToSchema)]
struct BulkEntry {
    /// The query's place in the upload, from 0.
    index: i32,
    /// The query as sent (a CSV line as its cells by column).
    query: serde_json::Value,
    status: BulkEntryStatus,
    /// The answer, as `POST /v1/eligibility` gives it (status `answered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Answer>)]
    answer: Option<serde_json::Value>,
    /// Why the query was refused (status `rejected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ErrorBody>)]
    error: Option<serde_json::Value>,
}

/// A bulk inquiry's progress and one page of its results.
#[derive(Serialize, ToSchema)]
struct BulkJob {
    reception_number: String,
    status: BulkJobStatus,
    received_at: chrono::DateTime<chrono::Utc>,
    counts: BulkCounts,
    /// In upload order, after `after`; only results before the first unanswered query, so that
    /// paging while the job runs skips none.
    results: Vec<BulkEntry>,
    /// Pass as `after` for the next page; present when more results are ready now.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i32>,
}

/// Stores a bulk inquiry and answers its reception number at once.
pub async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    if !party.may_batch() {
        return Err(forbidden(
            "Bulk inquiries are for claims systems, hospitals, clinics and dental clinics; check each patient with POST /v1/eligibility.",
        )
        .into());
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let idempotency_key = optional_idempotency_key(&req)?;
    if let Some(key) = &idempotency_key {
        // Sent before: the same receipt, nothing stored and nothing counted again.
        if let Some(reception_number) = bulk::previous_job(&state.pool, party.id, key).await? {
            return Ok(receipt(reception_number));
        }
    }
    let items = if content_type.starts_with("application/json") {
        json_queries(&read_limited(payload, BULK_BODY_MAX).await?)?
    } else if content_type.starts_with("text/csv") {
        csv_queries(&read_limited(payload, BULK_BODY_MAX).await?)?
    } else {
        return Err(ClientError::new(
            Code::ContentTypeUnsupported,
            "Send the queries as application/json ({\"queries\": [...]}) or text/csv.",
        )
        .with_field("Content-Type")
        .into());
    };
    if items.is_empty() || items.len() > BULK_MAX {
        return Err(ClientError::new(
            Code::BulkCount,
            "A bulk inquiry holds 1 to 100,000 queries; split larger ones.",
        )
        .with_field("queries")
        .into());
    }
    state
        .limits
        .count_queries(&state.pool, party.id, items.len())
        .await?;
    let today = eligibility::today_in_japan();
    let submitted = items
        .into_iter()
        .map(|query| {
            let refusal = parse_query(&query, today)
                .err()
                .map(|refusal| serde_json::to_value(&refusal.body))
                .transpose()?;
            Ok(Submitted { query, refusal })
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(anyhow::Error::new)?;
    let reception_number = bulk::submit(
        &state.pool,
        party.id,
        today,
        idempotency_key.as_deref(),
        submitted,
    )
    .await?;
    Ok(receipt(reception_number))
}

fn receipt(reception_number: String) -> HttpResponse {
    HttpResponse::Accepted().json(BulkReceipt {
        status_url: format!("/v1/eligibility/bulk/{reception_number}"),
        reception_number,
    })
}

/// The upload's `Idempotency-Key`, when it names itself (the same rules as an enrolment
/// batch id).
fn optional_idempotency_key(req: &HttpRequest) -> Result<Option<String>, ClientError> {
    if req.headers().contains_key("Idempotency-Key") {
        super::enrollments::idempotency_key(req).map(Some)
    } else {
        Ok(None)
    }
}

/// The optional `Idempotency-Key` of a bulk upload.
const BULK_IDEMPOTENCY_KEY: Param = Param {
    name: "Idempotency-Key",
    location: In::Header,
    required: false,
    description: "Names this upload, 1 to 200 printable ASCII characters, no spaces. Sent again with the same key, the upload is answered the first one's receipt and stores and counts nothing (whatever the body).",
    schema: || serde_json::json!({ "type": "string", "pattern": "^[!-~]{1,200}$" }),
};

/// The queries of a JSON upload: `{"queries": [...]}`.
fn json_queries(body: &[u8]) -> Result<Vec<serde_json::Value>, ClientError> {
    let mut map = json_object(body)?;
    only_known(&map, &["queries"])?;
    match map.remove("queries") {
        Some(serde_json::Value::Array(items)) => Ok(items),
        _ => Err(ClientError::new(
            Code::QueriesRequired,
            "Send {\"queries\": [ ... ]} with 1 to 100,000 queries.",
        )
        .with_field("queries")),
    }
}

/// The queries of a CSV upload, each line as an object of its cells by column.
///
/// # Errors
/// 400 `csv.header` for a header naming an unknown or repeated column or lacking a required
/// one; 400 `csv.malformed` for a file that is not CSV (or not UTF-8), naming the line.
fn csv_queries(body: &[u8]) -> Result<Vec<serde_json::Value>, ClientError> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let malformed = |error: &csv::Error| {
        let line = error.position().map_or(1, csv::Position::line);
        ClientError::new(
            Code::CsvMalformed,
            format!("The file is not readable CSV at line {line}; nothing was stored."),
        )
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| malformed(&e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    for (i, column) in header.iter().enumerate() {
        if !QUERY_FIELDS.contains(&column.as_str()) || header[..i].contains(column) {
            return Err(ClientError::new(
                Code::CsvHeader,
                format!(
                    "The header's column {} is unknown or repeated; columns are {}.",
                    i + 1,
                    QUERY_FIELDS.join(", ")
                ),
            ));
        }
    }
    for required in ["insurer_number", "number", "birth_date"] {
        if !header.iter().any(|c| c == required) {
            return Err(ClientError::new(
                Code::CsvHeader,
                format!("The header has no {required} column."),
            ));
        }
    }
    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| malformed(&e))?;
        if items.len() == BULK_MAX {
            // One more than the limit is enough to refuse the file.
            items.push(serde_json::Value::Null);
            break;
        }
        let cells = header
            .iter()
            .zip(record.iter())
            .map(|(column, cell)| (column.clone(), cell_value(column, cell)))
            .collect();
        items.push(serde_json::Value::Object(cells));
    }
    Ok(items)
}

/// A CSV cell as the JSON member of the same name: a consent column's `true`/`1` and
/// `false`/`0`/empty are booleans; anything else stays text (and fails as that query's own
/// `<member>.type`).
fn cell_value(column: &str, cell: &str) -> serde_json::Value {
    if column.ends_with("_consent") {
        match cell.trim() {
            "true" | "1" => return serde_json::Value::Bool(true),
            "false" | "0" | "" => return serde_json::Value::Bool(false),
            _ => {}
        }
    }
    serde_json::Value::String(cell.to_owned())
}

/// A bulk inquiry's progress and a page of its results, to the party that sent it only.
pub async fn status(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let (after, limit) = page_parameters(&req)?;
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let Some(job) = bulk::job_of(&**client, party.id, &path).await? else {
        return Err(ClientError::new(
            Code::BulkNotFound,
            "No bulk inquiry of yours has this reception number (results are kept for a limited number of days).",
        )
        .into());
    };
    let mut items = crate::store::bulk::done_items(&**client, job.id, after, limit + 1).await?;
    drop(client);
    let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = more.then(|| items.last().map(|item| item.idx)).flatten();
    let results = items
        .into_iter()
        .map(|item| {
            let answered = item.check_id.is_some();
            BulkEntry {
                index: item.idx,
                query: item.query,
                status: if answered {
                    BulkEntryStatus::Answered
                } else {
                    BulkEntryStatus::Rejected
                },
                answer: answered.then_some(item.result.clone()),
                error: (!answered).then_some(item.result),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(BulkJob {
        status: if job.done {
            BulkJobStatus::Done
        } else {
            BulkJobStatus::Processing
        },
        received_at: job.received_at,
        counts: BulkCounts {
            total: job.total,
            answered: job.answered,
            rejected: job.rejected,
            waiting: job.total - job.answered - job.rejected,
        },
        reception_number: job.reception_number,
        results,
        next,
    }))
}

/// `after` (an index, absent for the first page) and `limit` from the query string.
fn page_parameters(req: &HttpRequest) -> Result<(i32, i64), ClientError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| {
            ClientError::new(
                Code::QueryInvalid,
                "The query string is not readable; send ?after=...&limit=... URL-encoded.",
            )
        })?
        .into_inner();
    let (mut after, mut limit) = (-1, PAGE_DEFAULT);
    for (name, value) in &pairs {
        match name.as_str() {
            "after" => {
                after = value
                    .parse::<i32>()
                    .ok()
                    .filter(|a| *a >= 0)
                    .ok_or_else(|| {
                        ClientError::fault(
                            "after",
                            Fault::Format,
                            "'after' is the index of the last result received (a whole number from 0).",
                        )
                    })?;
            }
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=PAGE_MAX).contains(l))
                    .ok_or_else(|| {
                        ClientError::fault(
                            "limit",
                            Fault::Range,
                            "'limit' is 1 to 10,000 results a page.",
                        )
                    })?;
            }
            _ => {
                return Err(ClientError::new(
                    Code::QueryUnknownParameter,
                    "Only 'after' and 'limit' may be given in the query string.",
                )
                .with_field(name.chars().take(64).collect::<String>()))
            }
        }
    }
    Ok((after, limit))
}

const BULK_CSV: &str = "UTF-8 CSV (a BOM is accepted). The first line names the columns, in \
any order: `insurer_number`, `number` and `birth_date` are required, `symbol`, `branch`, \
`date_of_care`, `limit_certificate_consent` and `specific_disease_consent` optional, each as \
the member of the same name in the JSON form (a consent cell is `true`/`1` or \
`false`/`0`/empty); an unknown or repeated column refuses the file (`csv.header`). One query a \
line; an empty cell is an absent member.";

pub const SUBMIT_DOC: Doc = Doc {
    id: "submitBulkEligibility",
    tag: "eligibility",
    summary: "An asynchronous bulk inquiry (一括照会) of 1 to 100,000 queries.",
    description: "For the day-before check of booked patients. The upload is `{\"queries\": \
        [...]}` as for `POST /v1/eligibility/batch`, or CSV with the same members as columns. \
        With an `Idempotency-Key`, sending the same upload again (after a lost answer) \
        returns the first receipt and stores nothing. It is validated as a whole first: a malformed body, a wrong content type or more than \
        100,000 queries is refused and stores nothing. A query that fails its own validation \
        becomes its own `rejected` result, as in the batch. Answered at once with 202 and the \
        reception number; the queries are answered in the background, each recorded in the \
        access audit (`eligibility.bulk`), and read with the `status_url`. A date of care left \
        out is the day of receipt (Japan). The upload costs one request against the rate, \
        whatever its size; its queries count against the daily quota, all of them or none \
        (429 `rate.daily_quota`, nothing stored). Pharmacies and home-nursing stations check one patient at a time \
        (403). Body at most 48 MiB.",
    body: Body::JsonOrCsv(schema::<BulkRequest>, BULK_CSV),
    replies: &[Reply {
        status: 202,
        description: "Received: the reception number and where to read the results.",
        content: Content::Json(schema::<BulkReceipt>),
    }],
    codes: &[&[
        Code::ContentTypeUnsupported,
        Code::QueriesRequired,
        Code::BulkCount,
        Code::CsvHeader,
        Code::CsvMalformed,
        Code::IdempotencyKeyFormat,
    ]],
    fields: &[],
    params: &[BULK_IDEMPOTENCY_KEY],
};

pub const STATUS_DOC: Doc = Doc {
    id: "bulkEligibilityStatus",
    tag: "eligibility",
    summary: "A bulk inquiry's progress and its results, a page at a time.",
    description: "`status` is `processing` until every query is answered or refused, then \
        `done`. Results come in upload order, each with its `index`, the `query` as sent and \
        its own `status`: `answered` with the `answer` (as `POST /v1/eligibility` gives it), or \
        `rejected` with the `error`. A page holds the results after `after`, at most `limit`; \
        while the job runs, ask again with `after` set to the last index received. Only the \
        party that sent the inquiry may read it: any other reception number, or one past its \
        retention, is 404 `bulk.not_found`.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The progress and one page of results.",
        content: Content::Json(schema::<BulkJob>),
    }],
    codes: &[&[
        Code::QueryInvalid,
        Code::QueryUnknownParameter,
        Code::BulkNotFound,
    ]],
    fields: &["after", "limit"],
    params: &[
        Param {
            name: "reception_number",
            location: In::Path,
            required: true,
            description: "The reception number the upload answered.",
            schema: || serde_json::json!({ "type": "string" }),
        },
        Param {
            name: "after",
            location: In::Query,
            required: false,
            description: "Results after this index (the `next` of the previous page, or the last index received); from the first when absent.",
            schema: || serde_json::json!({ "type": "integer", "minimum": 0 }),
        },
        Param {
            name: "limit",
            location: In::Query,
            required: false,
            description: "At most this many results (1 to 10,000; 1,000 by default).",
            schema: || serde_json::json!({ "type": "integer", "minimum": 1, "maximum": 10000 }),
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: ClientError) -> String {
        error.body.code.into_owned()
    }

    #[test]
    fn a_csv_file_becomes_one_object_per_line() {
        let csv = "\u{feff}insurer_number,number,birth_date,branch\n33120015,1,1970-01-01,\n\n06130017,\"2\",1980-02-03,01\n";
        let items = csv_queries(csv.as_bytes()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["insurer_number"], "33120015");
        assert_eq!(items[0]["branch"], "");
        assert_eq!(items[1]["number"], "2");
        assert_eq!(items[1]["branch"], "01");
        let consent = "insurer_number,number,birth_date,limit_certificate_consent\n1,2,3,1\n1,2,3,\n1,2,3,yes\n";
        let items = csv_queries(consent.as_bytes()).unwrap();
        assert_eq!(items[0]["limit_certificate_consent"], true);
        assert_eq!(items[1]["limit_certificate_consent"], false);
        assert_eq!(items[2]["limit_certificate_consent"], "yes");
    }

    #[test]
    fn a_bad_csv_file_is_refused_whole() {
        let refused = |csv: &str| code(csv_queries(csv.as_bytes()).unwrap_err());
        assert_eq!(refused("insurer_number,number,birthdate\n"), "csv.header");
        assert_eq!(refused("insurer_number,number\n1,2\n"), "csv.header");
        assert_eq!(
            refused("insurer_number,number,number,birth_date\n"),
            "csv.header"
        );
        assert_eq!(
            refused("insurer_number,number,birth_date\n1,2,3\n1,2\n"),
            "csv.malformed"
        );
        let not_utf8 = b"insurer_number,number,birth_date\n1,\xff,3\n";
        assert_eq!(code(csv_queries(not_utf8).unwrap_err()), "csv.malformed");
    }

    #[test]
    fn a_json_upload_needs_its_queries() {
        assert_eq!(json_queries(br#"{"queries": [1, {}]}"#).unwrap().len(), 2);
        assert_eq!(
            code(json_queries(br#"{"queries": {}}"#).unwrap_err()),
            "queries.required"
        );
        assert_eq!(
            code(json_queries(br#"{"queries": [], "x": 1}"#).unwrap_err()),
            "body.unknown_field"
        );
        assert_eq!(code(json_queries(b"[").unwrap_err()), "body.invalid_json");
    }
}
