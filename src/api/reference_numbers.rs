//! `POST /v1/reference-numbers`: a facility registers its own patient numbers (照会番号) for
//! coverage keys, one or many at once; its eligibility answers then carry them, and no other
//! party ever sees them. Registering says nothing about whether a coverage exists.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::{json_object, only_known, optional_string, read_limited, required_string};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, Reply};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::ReferenceNumber;
use crate::domain::{BranchNumber, Fault, InsuredNumber, InsuredSymbol, InsurerNumber};
use crate::store::reference::Key;

const BODY_MAX: usize = 2 * 1024 * 1024;
pub const ENTRIES_MAX: usize = 10_000;
const ENTRY_FIELDS: [&str; 5] = [
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "reference_number",
];

/// Registers (or replaces) the caller's reference numbers: all entries, or none when any is
/// wrong (the error names the entry, e.g. `entries[3].number`).
pub async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let mut map = json_object(&read_limited(payload, BODY_MAX).await?)?;
    only_known(&map, &["entries"])?;
    let Some(serde_json::Value::Array(items)) = map.remove("entries") else {
        return Err(ClientError::fault(
            "entries",
            Fault::Required,
            "Send {\"entries\": [ ... ]} with 1 to 10,000 entries.",
        )
        .into());
    };
    if items.is_empty() || items.len() > ENTRIES_MAX {
        return Err(ClientError::fault(
            "entries",
            Fault::Range,
            "Send 1 to 10,000 entries at once; split larger lists.",
        )
        .into());
    }
    let entries = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            entry(item).map_err(|mut e| {
                let field = e.body.field.take().unwrap_or_default();
                e.with_field(format!("entries[{i}].{field}"))
            })
        })
        .collect::<Result<Vec<_>, ClientError>>()?;
    let client = state.pool.get().await.map_err(anyhow::Error::new)?;
    let registered =
        crate::store::reference::register(&client, party.id, &entries, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(ReferenceNumbersRegistered { registered }))
}

fn entry(item: &serde_json::Value) -> Result<(Key, String), ClientError> {
    let serde_json::Value::Object(map) = item else {
        return Err(ClientError::new(
            Code::QueryNotObject,
            "Each entry must be a JSON object.",
        ));
    };
    only_known(map, &ENTRY_FIELDS)?;
    let invalid = |field: &'static str| move |e| ClientError::invalid(field, e);
    let insurer = InsurerNumber::parse(required_string(map, "insurer_number")?)
        .map_err(invalid("insurer_number"))?;
    let symbol = optional_string(map, "symbol")?
        .map(InsuredSymbol::parse)
        .transpose()
        .map_err(invalid("symbol"))?;
    let number =
        InsuredNumber::parse(required_string(map, "number")?).map_err(invalid("number"))?;
    let branch = optional_string(map, "branch")?
        .map(BranchNumber::parse)
        .transpose()
        .map_err(invalid("branch"))?;
    let reference = ReferenceNumber::parse(required_string(map, "reference_number")?)
        .map_err(invalid("reference_number"))?;
    Ok((
        Key {
            insurer_number: insurer.as_str().to_owned(),
            symbol: symbol.as_ref().map_or("", |s| s.as_str()).to_owned(),
            number: number.as_str().to_owned(),
            branch: branch.as_ref().map_or("", |b| b.as_str()).to_owned(),
        },
        reference.as_str().to_owned(),
    ))
}

/// One reference number for a coverage key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what register reads")]
struct ReferenceEntry {
    #[schema(pattern = "^([0-9]{6}|[0-9]{8})$")]
    insurer_number: String,
    #[schema(max_length = 38)]
    symbol: Option<String>,
    #[schema(min_length = 1, max_length = 38)]
    number: String,
    #[schema(pattern = "^([0-9]{2})?$")]
    branch: Option<String>,
    /// The facility's own patient number: 1 to 20 ASCII letters, digits or hyphens.
    #[schema(pattern = "^[A-Za-z0-9-]{1,20}$")]
    reference_number: String,
}

/// 1 to 10,000 entries, applied together.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what register reads")]
struct ReferenceEntries {
    #[schema(min_items = 1, max_items = 10000)]
    entries: Vec<ReferenceEntry>,
}

/// How many entries were registered or replaced.
#[derive(Serialize, ToSchema)]
struct ReferenceNumbersRegistered {
    registered: u64,
}

pub const REGISTER_DOC: Doc = Doc {
    id: "registerReferenceNumbers",
    tag: "eligibility",
    summary: "Register the facility's own patient numbers (照会番号) for coverage keys.",
    description: "All entries or none: a wrong entry refuses the request, naming it \
        (`entries[3].number`). A key registered again gets the new number. The caller's \
        eligibility answers (single, batch, card) then carry `reference_number` for the key; no \
        other party sees it. Body at most 2 MiB.",
    body: Body::Json(schema::<ReferenceEntries>),
    replies: &[Reply {
        status: 200,
        description: "Registered.",
        content: Content::Json(schema::<ReferenceNumbersRegistered>),
    }],
    codes: &[&[Code::QueryNotObject]],
    fields: &[
        "entries",
        "insurer_number",
        "symbol",
        "number",
        "branch",
        "reference_number",
    ],
    params: &[],
};
