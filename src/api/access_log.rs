//! A person's access log: `POST /v1/self/challenges` and `POST /v1/self/access-log` (the person,
//! with their card, no token) and `POST /v1/access-log/lookup` (an administrator).
//!
//! The page is chosen in the query string (`?before=<next or RFC 3339 time>&limit=1..100`), so
//! the bodies stay those of the card check and of eligibility by number.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Caller;
use super::body::{json_object, read_limited, typed, unused};
use super::card::{card_error, challenge_created, ProofBody};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, In, Param, Reply};
use super::eligibility::parse_query;
use super::error::{ApiError, ClientError};
use super::limits::AddressLimited;
use super::AppState;
use crate::access_log::{self, Before, LookupError, PageLimit, SelfViewError};
use crate::card::{self, Audience, CardError};
use crate::eligibility::today_in_japan;

const BODY_MAX: usize = 64 * 1024;

/// A single-use nonce for the card holder's own read; no token, as no party is involved.
pub async fn self_challenge(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    unused(payload).await?;
    // Without trust anchors no card can prove itself: say so now rather than after the reader
    // has asked for the PIN.
    if state.trust.current().is_none() {
        return Err(card_error(CardError::NotConfigured));
    }
    let challenge =
        card::new_challenge(&state.pool, Audience::Holder, state.challenge_lifetime).await?;
    Ok(challenge_created(&challenge))
}

/// The card holder's own log; the card's signature over a fresh self challenge is the credential.
pub async fn self_view(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = page_parameters(&request)?;
    let body: ProofBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let decoded = body.decode()?;
    let proof = decoded.proof();
    let trust = state.trust.current();
    let page = access_log::of_card_holder(
        &state.pool,
        &state.audit,
        trust.as_deref(),
        &state.origin,
        &proof,
        before,
        limit,
    )
    .await
    .map_err(|error| match error {
        SelfViewError::Card(error) => card_error(error),
        SelfViewError::UnknownCursor => unknown_cursor(),
        SelfViewError::Unexpected(error) => error.into(),
    })?;
    Ok(HttpResponse::Ok().json(page))
}

/// A person's log looked up by an administrator, by insured-person number and birth date.
pub async fn lookup(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let admin = caller.party();
    let (before, limit) = page_parameters(&request)?;
    let body = read_limited(payload, BODY_MAX).await?;
    let query = parse_query(
        &serde_json::Value::Object(json_object(&body)?),
        today_in_japan(),
    )?;
    let page = access_log::by_coverage(&state.pool, &state.audit, admin.id, &query, before, limit)
        .await
        .map_err(|error| -> ApiError {
            match error {
                LookupError::NoSuchPerson => ClientError::new(Code::CoverageNotFound,
                    "No coverage matches this number and birth date (on the date of care, today by default); check both.",
                )
                .into(),
                LookupError::SeveralPersons => ClientError::new(Code::PersonAmbiguous,
                    "This number and birth date match coverages of several persons; add the branch number or a date_of_care on which the coverage was held.",
                )
                .with_field("branch")
                .into(),
                LookupError::UnknownCursor => unknown_cursor(),
                LookupError::Unexpected(error) => error.into(),
            }
        })?;
    Ok(HttpResponse::Ok().json(page))
}

/// `before` and `limit` from the query string; any other parameter is refused.
fn page_parameters(request: &HttpRequest) -> Result<(Before, PageLimit), ClientError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map_err(|_| {
            ClientError::new(
                Code::QueryInvalid,
                "The query string is not readable; send ?before=...&limit=... URL-encoded.",
            )
        })?
        .into_inner();
    let (mut before, mut limit) = (None, None);
    for (name, value) in &pairs {
        match name.as_str() {
            "before" => before = Some(value.as_str()),
            "limit" => limit = Some(value.as_str()),
            _ => {
                return Err(ClientError::new(
                    Code::QueryUnknownParameter,
                    "Only 'before' and 'limit' may be given in the query string.",
                )
                .with_field(name.chars().take(64).collect::<String>()))
            }
        }
    }
    Ok((
        Before::parse(before).map_err(|e| ClientError::invalid("before", e))?,
        PageLimit::parse(limit).map_err(|e| ClientError::invalid("limit", e))?,
    ))
}

fn unknown_cursor() -> ApiError {
    ClientError::new(Code::BeforeUnknown,
        "This is not a check of this person's access log; pass the 'next' value of the previous page, or a time.",
    )
    .with_field("before")
    .into()
}

/// The page parameters of both listings.
const PAGE_PARAMS: &[Param] = &[
    Param {
        name: "before",
        location: In::Query,
        required: false,
        description:
            "Entries older than this: the `next` of the previous page, or an RFC 3339 time.",
        schema: || serde_json::json!({ "type": "string" }),
    },
    Param {
        name: "limit",
        location: In::Query,
        required: false,
        description: "Entries per page, 1 to 100, default 50.",
        schema: || serde_json::json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 50 }),
    },
];

pub const SELF_CHALLENGE_DOC: Doc = Doc {
    id: "newSelfChallenge",
    tag: "access-log",
    summary: "A single-use nonce for the card holder's own requests.",
    description: "This, `POST /v1/self/access-log` and `POST /v1/self/card-unlink` are the \
        deliberate exception to the bearer-token rule: no party is involved, and the card's \
        signature over this fresh nonce proves the person. Any Authorization header is ignored. \
        Limited per client address (429). The challenge serves only the `/v1/self/` routes \
        (elsewhere `challenge.wrong_audience`) and expires after `challenge_seconds`. No request \
        body (at most 1 KiB is read and ignored).",
    body: Body::None,
    replies: &[Reply {
        status: 201,
        description: "The challenge.",
        content: Content::Json(schema::<super::card::ChallengeView>),
    }],
    codes: &[&[
        Code::CardNotConfigured,
        Code::BodyTimeout,
        Code::BodyIncomplete,
        Code::BodyTooLarge,
    ]],
    fields: &[],
    params: &[],
};

pub const SELF_VIEW_DOC: Doc = Doc {
    id: "readOwnAccessLog",
    tag: "access-log",
    summary: "Who looked at the card holder's data, and when.",
    description: "Takes the self challenge (once; see `POST /v1/self/challenges`), verifies the \
        certificate and signature exactly as `POST /v1/eligibility/card` does, and answers the \
        linked person's access log, newest first. The read is itself recorded \
        (`access_log.self`) before the answer leaves. Limited per client address. Body at most \
        64 KiB.",
    body: Body::Json(schema::<ProofBody>),
    replies: &[Reply {
        status: 200,
        description: "One page of the log.",
        content: Content::Json(schema::<crate::access_log::Page>),
    }],
    codes: &[
        super::card::PROOF_CODES,
        &[
            Code::CardNotLinked,
            Code::QueryInvalid,
            Code::QueryUnknownParameter,
            Code::BeforeUnknown,
        ],
    ],
    fields: &[
        "certificate",
        "challenge_id",
        "signature",
        "before",
        "limit",
    ],
    params: PAGE_PARAMS,
};

pub const LOOKUP_DOC: Doc = Doc {
    id: "lookUpAccessLog",
    tag: "access-log",
    summary: "A person's access log, looked up by an administrator.",
    description: "The person is found as `POST /v1/eligibility` finds a coverage (card key and \
        birth date, on `date_of_care`, today by default); a birth date that does not match is \
        the same 404 as no coverage. The read is itself recorded (`access_log.admin`) before the \
        answer leaves. Body at most 64 KiB.",
    body: Body::Json(schema::<super::eligibility::EligibilityQuery>),
    replies: &[Reply {
        status: 200,
        description: "One page of the log.",
        content: Content::Json(schema::<crate::access_log::Page>),
    }],
    codes: &[&[
        Code::QueryInvalid,
        Code::QueryUnknownParameter,
        Code::BeforeUnknown,
        Code::CoverageNotFound,
        Code::PersonAmbiguous,
        Code::BirthDateAfterDateOfCare,
        Code::QueryNotObject,
    ]],
    fields: &[
        "insurer_number",
        "symbol",
        "number",
        "branch",
        "birth_date",
        "date_of_care",
        "before",
        "limit",
    ],
    params: PAGE_PARAMS,
};
