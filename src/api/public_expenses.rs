//! `POST /v1/public-expenses`: a payer loads the 公費 and 医療扶助 of the payer numbers it owns;
//! `POST /v1/eligibility/assistance`: a facility checks 医療扶助 by its numbers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::{json_object, only_known, optional_string, read_limited, required_string};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, Reply};
use super::enrollments::{
    batch_answer, idempotency_key, require_csv, IDEMPOTENCY_KEY, UPLOAD_CODES,
};
use super::error::{ApiError, ClientError};
use super::AppState;
use crate::domain::{parse_date, Fault, PublicExpensePayerNumber, PublicExpenseRecipientNumber};
use crate::eligibility::today_in_japan;
use crate::public_expense::{
    self, month_of, parse_month, AssistanceAnswer, AssistanceQuery, Outcome, PublicExpenseReport,
};

/// A payer's file at most this large; a welfare office's whole caseload is far smaller.
const FILE_MAX: usize = 64 * 1024 * 1024;

/// Loads a payer's file, all of it or none, once per Idempotency-Key.
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    require_csv(&req)?;
    let batch_id = idempotency_key(&req)?;
    let body = read_limited(payload, FILE_MAX).await?;
    let outcome = public_expense::load(
        &state.pool,
        &state.link_key,
        party.id,
        &party.payer_numbers,
        &batch_id,
        &body,
    )
    .await?;
    match outcome {
        Outcome::Applied(report) | Outcome::Rejected(report) | Outcome::Repeated(report) => {
            Ok(batch_answer(&report, report.status, report.rejected_lines))
        }
        Outcome::Taken => Err(ClientError::new(
            Code::IdempotencyKeyTaken,
            "Another sender used this Idempotency-Key; choose a unique batch id.",
        )
        .into()),
    }
}

/// A check of 医療扶助 by its numbers.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes what check reads")]
struct AssistanceBody {
    /// 公費負担者番号 of 法別 12 (8 digits, check digit verified).
    #[schema(pattern = "^12[0-9]{6}$")]
    payer_number: String,
    /// 受給者番号 (7 digits, check digit verified).
    #[schema(pattern = "^[0-9]{7}$")]
    recipient_number: String,
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    birth_date: String,
    /// YYYY-MM-DD; today in Japan when absent.
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    date_of_care: Option<String>,
    /// The month of care (診療年月), YYYY-MM; the month of the date of care when absent.
    #[schema(pattern = "^([0-9]{4}-[0-9]{2})?$")]
    month: Option<String>,
}

const ASSISTANCE_FIELDS: [&str; 5] = [
    "payer_number",
    "recipient_number",
    "birth_date",
    "date_of_care",
    "month",
];

/// Checks 医療扶助 by payer and recipient number (validity 1-4 or 6; see
/// [`crate::public_expense`]).
pub async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let map = json_object(&read_limited(payload, 16 * 1024).await?)?;
    only_known(&map, &ASSISTANCE_FIELDS)?;
    let invalid = |field: &'static str| move |e| ClientError::invalid(field, e);
    let payer_number = PublicExpensePayerNumber::parse(required_string(&map, "payer_number")?)
        .map_err(invalid("payer_number"))?;
    if payer_number.houbetsu() != public_expense::MEDICAL_ASSISTANCE {
        return Err(ClientError::fault(
            "payer_number",
            Fault::UnknownCode,
            "A check by numbers is for 医療扶助: the payer number's 法別 is 12.",
        )
        .into());
    }
    let recipient_number =
        PublicExpenseRecipientNumber::parse(required_string(&map, "recipient_number")?)
            .map_err(invalid("recipient_number"))?;
    let birth_date =
        parse_date(required_string(&map, "birth_date")?).map_err(invalid("birth_date"))?;
    let date_of_care = optional_string(&map, "date_of_care")?
        .map(parse_date)
        .transpose()
        .map_err(invalid("date_of_care"))?
        .unwrap_or_else(today_in_japan);
    let month = match optional_string(&map, "month")? {
        Some(m) => parse_month(m).ok_or_else(|| {
            ClientError::fault(
                "month",
                Fault::Format,
                "A month is written YYYY-MM, e.g. 2026-11.",
            )
        })?,
        None => month_of(date_of_care),
    };
    if birth_date > date_of_care {
        return Err(ClientError::new(
            Code::BirthDateAfterDateOfCare,
            "The birth date is after the date of care.",
        )
        .into());
    }
    let answer = public_expense::check_assistance(
        &state.pool,
        &state.audit,
        state.clock.now(),
        party.id,
        party.facility_code.as_deref(),
        &AssistanceQuery {
            payer_number,
            recipient_number,
            birth_date,
            date_of_care,
            month,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

const PUBLIC_EXPENSE_FILE: &str = "UTF-8 CSV. The first line names the columns, in any order; a \
BOM is accepted. Each line is one change:\n\n\
| change | columns |\n|---|---|\n\
| `grant` | `payer_number`, `recipient_number`, `individual_number` (12 digits, check digit \
verified; becomes the person's link value and is dropped: never stored, logged or returned), \
`birth_date`, `valid_from`; optional `valid_to` (last day) and `self_pay_cap` (yen a month) |\n\
| `end` | `payer_number`, `recipient_number`, `valid_to` (the last day of the open grant) |\n\
| `ticket` | 医療扶助 (法別 12) only: `payer_number`, `recipient_number`, `month` (YYYY-MM), \
`facility_code`, `ticket` (`medical` 医療券 or `dispensing` 調剤券) |\n\n\
Every payer number must be one the payer owns. If any line is rejected nothing is applied; the \
same Idempotency-Key again returns the first report.";

pub const UPLOAD_DOC: Doc = Doc {
    id: "uploadPublicExpenses",
    tag: "enrolment",
    summary: "A payer's 公費 and 医療扶助 file, all or nothing.",
    description: "Grants and ends the public expenses of the payer's own 公費負担者番号s and \
        issues 医療扶助's monthly tickets. Rejected lines are reported (422, with the report) and \
        nothing is applied. File at most 64 MiB.",
    body: Body::Csv(PUBLIC_EXPENSE_FILE),
    replies: &[
        Reply {
            status: 200,
            description: "Applied: the report.",
            content: Content::Json(schema::<PublicExpenseReport>),
        },
        Reply {
            status: 422,
            description: "Rejected, nothing applied: the report, with `error`.",
            content: Content::Json(schema::<PublicExpenseReport>),
        },
    ],
    codes: &[UPLOAD_CODES],
    fields: &[],
    params: &[IDEMPOTENCY_KEY],
};

pub const CHECK_DOC: Doc = Doc {
    id: "checkMedicalAssistance",
    tag: "eligibility",
    summary: "A check of 医療扶助 by its payer and recipient numbers.",
    description: "Validity 1: assistance on the date of care and a ticket (医療券 or 調剤券) of \
        the month for the asking facility; 6 有効（未登録）: assistance, but no ticket for this \
        facility and month yet (treat, and ask the welfare office for it); 2: ended before the \
        date of care; 3: ended, and the person has 医療扶助 under other numbers; 4: no such numbers \
        or another birth date. Audited. Body at most 16 KiB.",
    body: Body::Json(schema::<AssistanceBody>),
    replies: &[Reply {
        status: 200,
        description: "The answer.",
        content: Content::Json(schema::<AssistanceAnswer>),
    }],
    codes: &[&[Code::BirthDateAfterDateOfCare]],
    fields: &ASSISTANCE_FIELDS,
    params: &[],
};
