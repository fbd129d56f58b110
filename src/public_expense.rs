//! 公費 (public expense) and 医療扶助 (public medical assistance).
//!
//! A payer (a municipality or welfare office) loads a CSV file for the 公費負担者番号s it owns,
//! all of it or none, once per Idempotency-Key, as insurers load enrolment: each line grants a
//! person a public expense (the My Number becomes the person's link value and is dropped), ends
//! one, or, for 医療扶助 (法別 12), issues a month's 医療券 (medical) or 調剤券 (dispensing)
//! ticket naming the facility. Eligibility answers list the public expenses in force on the date
//! of care, and [`check_assistance`] answers a check of 医療扶助 by its numbers.
//!
//! # What a check of 医療扶助 by its numbers answers
//! The real system answers such a check with the validity codes of a coverage, plus 6. As onshi
//! implements them (payer number, recipient number, birth date, date of care, month of care):
//!
//! | validity | meaning |
//! |---|---|
//! | 1 有効 | the person receives 医療扶助 under these numbers on the date of care, and a ticket for the asking facility and the month is registered |
//! | 6 有効（未登録） | the person receives 医療扶助 on the date of care, but no ticket for this facility and month is registered yet: the facility treats the person and asks the welfare office for the ticket |
//! | 2 無効 | the assistance under these numbers ended before the date of care |
//! | 3 無効（新しい資格あり） | it ended, and the person receives 医療扶助 under other numbers (moved to another welfare office) on the date of care |
//! | 4 該当資格なし | no such numbers, or the birth date does not match (never a disclosure) |

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use deadpool_postgres::Pool;
use serde::Serialize;

use crate::audit::{AuditLog, Disclosure, DisclosureKind};
use crate::domain::{
    parse_date, Actor, FacilityCode, IndividualNumber, Invalid, LinkKey, PartyId,
    PublicExpensePayerNumber, PublicExpenseRecipientNumber, SelfPayCap,
};
use crate::eligibility::Validity;
use crate::enrollment::report::{BatchStatus, LineError};
use crate::store::public_expense::{self as store, End, Grant, PublicExpenseRow, Ticket};

/// The 法別 of 医療扶助 (生活保護).
pub const MEDICAL_ASSISTANCE: &str = "12";

/// The columns of a payer's file.
pub const COLUMNS: [&str; 11] = [
    "change",
    "payer_number",
    "recipient_number",
    "individual_number",
    "birth_date",
    "valid_from",
    "valid_to",
    "self_pay_cap",
    "month",
    "facility_code",
    "ticket",
];

/// A payer batch's report.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PublicExpenseReport {
    pub batch_id: String,
    pub status: BatchStatus,
    /// Data lines read (the header not counted).
    pub rows: u64,
    pub granted: u64,
    pub ended: u64,
    pub tickets: u64,
    pub rejected_lines: u64,
    pub errors: Vec<LineError>,
}

/// What became of a batch.
pub enum Outcome {
    Applied(PublicExpenseReport),
    Rejected(PublicExpenseReport),
    /// The batch id was used before by this payer: the first report.
    Repeated(PublicExpenseReport),
    /// The batch id was used by another party.
    Taken,
}

/// The most errors a report lists.
const ERRORS_MAX: usize = 1000;

/// Loads `csv` for `party_id`, which owns `owned`, under `batch_id`.
///
/// # Errors
/// Database failures, or a link key that cannot be used.
pub async fn load(
    pool: &Pool,
    link_key: &LinkKey,
    party_id: PartyId,
    owned: &BTreeSet<String>,
    batch_id: &str,
    csv: &[u8],
) -> anyhow::Result<Outcome> {
    let mut client = pool.get().await?;
    if let Some(outcome) = earlier(&client, party_id, batch_id).await? {
        return Ok(outcome);
    }
    let parsed = parse(csv, link_key, owned);
    let mut report = PublicExpenseReport {
        batch_id: batch_id.to_owned(),
        status: BatchStatus::Applied,
        rows: parsed.rows,
        granted: 0,
        ended: 0,
        tickets: 0,
        rejected_lines: 0,
        errors: parsed.errors,
    };
    let tx = client.transaction().await?;
    if report.errors.is_empty() {
        let (applied, refused) =
            store::apply(&tx, batch_id, &parsed.grants, &parsed.ends, &parsed.tickets).await?;
        report.granted = applied.granted;
        report.ended = applied.ended;
        report.tickets = applied.tickets;
        report.errors.extend(refused.into_iter().map(|r| LineError {
            line: u64::try_from(r.line).unwrap_or_default(),
            column: r.column.into(),
            code: r.code.into(),
            message: refusal_message(r.code).into(),
        }));
    }
    let mut lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    lines.dedup();
    report.rejected_lines = lines.len() as u64;
    report.errors.truncate(ERRORS_MAX);
    if report.rejected_lines > 0 {
        tx.rollback().await?;
        report.status = BatchStatus::Rejected;
        report.granted = 0;
        report.ended = 0;
        report.tickets = 0;
        let json = serde_json::to_value(&report)?;
        if !store::save_batch(&client, batch_id, party_id, "rejected", &json).await? {
            return Ok(earlier(&client, party_id, batch_id)
                .await?
                .unwrap_or(Outcome::Taken));
        }
        return Ok(Outcome::Rejected(report));
    }
    let json = serde_json::to_value(&report)?;
    if !store::save_batch(&tx, batch_id, party_id, "applied", &json).await? {
        tx.rollback().await?;
        return Ok(earlier(&client, party_id, batch_id)
            .await?
            .unwrap_or(Outcome::Taken));
    }
    tx.commit().await?;
    Ok(Outcome::Applied(report))
}

async fn earlier(
    client: &impl deadpool_postgres::GenericClient,
    party_id: PartyId,
    batch_id: &str,
) -> anyhow::Result<Option<Outcome>> {
    Ok(match store::batch(client, batch_id).await? {
        Some((sender, _, report)) if sender == party_id => {
            Some(Outcome::Repeated(serde_json::from_value(report)?))
        }
        Some(_) => Some(Outcome::Taken),
        None => None,
    })
}

fn refusal_message(code: &str) -> &'static str {
    match code {
        "public_expense.already_granted" => {
            "These numbers already have a public expense from this date."
        }
        "public_expense.not_open" => {
            "No open public expense under these numbers starts on or before this end date."
        }
        _ => "No public expense under these numbers is in force in this month.",
    }
}

struct Parsed {
    rows: u64,
    grants: Vec<Grant>,
    ends: Vec<End>,
    tickets: Vec<Ticket>,
    errors: Vec<LineError>,
}

/// Validates every line (the My Number becomes its link at once and is dropped).
fn parse(csv: &[u8], link_key: &LinkKey, owned: &BTreeSet<String>) -> Parsed {
    let mut out = Parsed {
        rows: 0,
        grants: Vec::new(),
        ends: Vec::new(),
        tickets: Vec::new(),
        errors: Vec::new(),
    };
    let csv = csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(csv);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(csv);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(_) => {
            out.errors.push(error(
                1,
                "change",
                "file.header",
                "The file has no readable header.",
            ));
            return out;
        }
    };
    for name in &header {
        if !COLUMNS.contains(&name.as_str()) || header.iter().filter(|h| *h == name).count() > 1 {
            out.errors.push(error(
                1,
                "change",
                "file.header",
                "The header names an unknown or repeated column.",
            ));
            return out;
        }
    }
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        out.rows += 1;
        let Ok(record) = record else {
            out.errors.push(error(
                line,
                "change",
                "line.unreadable",
                "The line is not readable CSV with the header's columns.",
            ));
            continue;
        };
        let get = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
        };
        if let Err(e) = one_line(line, &get, link_key, owned, &mut out) {
            out.errors.push(e);
        }
        if out.errors.len() >= ERRORS_MAX {
            break;
        }
    }
    out
}

fn error(line: u64, column: &str, code: &str, message: &str) -> LineError {
    LineError {
        line,
        column: column.into(),
        code: code.into(),
        message: message.into(),
    }
}

fn invalid(line: u64, column: &str, e: Invalid) -> LineError {
    error(line, column, &format!("{column}.{}", e.kind), e.message)
}

fn one_line<'a>(
    line: u64,
    get: &dyn Fn(&str) -> Option<&'a str>,
    link_key: &LinkKey,
    owned: &BTreeSet<String>,
    out: &mut Parsed,
) -> Result<(), LineError> {
    let required = |name: &str| {
        get(name).ok_or_else(|| {
            error(
                line,
                name,
                &format!("{name}.required"),
                "This change needs this column.",
            )
        })
    };
    let date = |name: &str| -> Result<Option<NaiveDate>, LineError> {
        get(name)
            .map(|v| parse_date(v).map_err(|e| invalid(line, name, e)))
            .transpose()
    };
    let payer = PublicExpensePayerNumber::parse(required("payer_number")?)
        .map_err(|e| invalid(line, "payer_number", e))?;
    if !owned.contains(payer.as_str()) {
        return Err(error(
            line,
            "payer_number",
            "payer_number.not_owned",
            "You may only send lines for your own payer numbers.",
        ));
    }
    let recipient = PublicExpenseRecipientNumber::parse(required("recipient_number")?)
        .map_err(|e| invalid(line, "recipient_number", e))?;
    let row_line = i32::try_from(line).unwrap_or(i32::MAX);
    let forbid = |names: &[&str]| -> Result<(), LineError> {
        match names.iter().find(|n| get(n).is_some()) {
            Some(name) => Err(error(
                line,
                name,
                &format!("{name}.not_allowed"),
                "This column must be empty for this change.",
            )),
            None => Ok(()),
        }
    };
    match required("change")? {
        "grant" => {
            forbid(&["month", "facility_code", "ticket"])?;
            let number = IndividualNumber::parse(required("individual_number")?)
                .map_err(|e| invalid(line, "individual_number", e))?;
            let link = number.link(link_key).map_err(|_| {
                error(
                    line,
                    "individual_number",
                    "individual_number.unavailable",
                    "The link key could not be used.",
                )
            })?;
            let birth_date =
                parse_date(required("birth_date")?).map_err(|e| invalid(line, "birth_date", e))?;
            let valid_from =
                parse_date(required("valid_from")?).map_err(|e| invalid(line, "valid_from", e))?;
            let valid_to = date("valid_to")?;
            if valid_to.is_some_and(|to| to < valid_from) {
                return Err(error(
                    line,
                    "valid_to",
                    "valid_to.before_valid_from",
                    "The end date is before the start date.",
                ));
            }
            let self_pay_cap = get("self_pay_cap")
                .map(|v| SelfPayCap::parse(v).map_err(|e| invalid(line, "self_pay_cap", e)))
                .transpose()?
                .map(|cap| i32::try_from(cap.yen()).unwrap_or(i32::MAX));
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(link.as_bytes());
            out.grants.push(Grant {
                line: row_line,
                link: bytes,
                payer_number: payer.as_str().to_owned(),
                recipient_number: recipient.as_str().to_owned(),
                birth_date,
                valid_from,
                valid_to,
                self_pay_cap,
            });
        }
        "end" => {
            forbid(&[
                "individual_number",
                "birth_date",
                "valid_from",
                "self_pay_cap",
                "month",
                "facility_code",
                "ticket",
            ])?;
            let valid_to =
                parse_date(required("valid_to")?).map_err(|e| invalid(line, "valid_to", e))?;
            out.ends.push(End {
                line: row_line,
                payer_number: payer.as_str().to_owned(),
                recipient_number: recipient.as_str().to_owned(),
                valid_to,
            });
        }
        "ticket" => {
            forbid(&[
                "individual_number",
                "birth_date",
                "valid_from",
                "valid_to",
                "self_pay_cap",
            ])?;
            if payer.houbetsu() != MEDICAL_ASSISTANCE {
                return Err(error(
                    line,
                    "ticket",
                    "ticket.not_medical_assistance",
                    "Tickets are issued for 医療扶助 (法別 12) only.",
                ));
            }
            let month = parse_month(required("month")?).ok_or_else(|| {
                error(
                    line,
                    "month",
                    "month.format",
                    "A month is written YYYY-MM, e.g. 2026-11.",
                )
            })?;
            let facility = FacilityCode::parse(required("facility_code")?)
                .map_err(|e| invalid(line, "facility_code", e))?;
            let ticket = match required("ticket")? {
                "medical" => "medical",
                "dispensing" => "dispensing",
                _ => {
                    return Err(error(
                        line,
                        "ticket",
                        "ticket.unknown_code",
                        "Must be medical (医療券) or dispensing (調剤券).",
                    ))
                }
            };
            out.tickets.push(Ticket {
                line: row_line,
                payer_number: payer.as_str().to_owned(),
                recipient_number: recipient.as_str().to_owned(),
                month,
                facility_code: facility.as_str().to_owned(),
                ticket,
            });
        }
        _ => {
            return Err(error(
                line,
                "change",
                "change.unknown_code",
                "Must be grant, end or ticket.",
            ));
        }
    }
    Ok(())
}

/// `YYYY-MM` as the month's first day.
pub fn parse_month(s: &str) -> Option<NaiveDate> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// A public expense as an answer shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PublicExpenseView {
    /// 公費負担者番号.
    pub payer_number: String,
    /// 受給者番号.
    pub recipient_number: String,
    /// 法別: e.g. 12 生活保護 (医療扶助), 21 精神通院, 54 指定難病.
    pub houbetsu: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    /// The monthly self-pay cap in yen, when the payer set one.
    pub self_pay_cap: Option<i32>,
}

impl From<&PublicExpenseRow> for PublicExpenseView {
    fn from(row: &PublicExpenseRow) -> Self {
        PublicExpenseView {
            payer_number: row.payer_number.clone(),
            recipient_number: row.recipient_number.clone(),
            houbetsu: row.payer_number[..2].to_owned(),
            valid_from: row.valid_from,
            valid_to: row.valid_to,
            self_pay_cap: row.self_pay_cap,
        }
    }
}

/// A check of 医療扶助 by its numbers.
#[derive(Debug)]
pub struct AssistanceQuery {
    pub payer_number: PublicExpensePayerNumber,
    pub recipient_number: PublicExpenseRecipientNumber,
    pub birth_date: NaiveDate,
    pub date_of_care: NaiveDate,
    /// The month of care (its first day): the month of the date of care unless given.
    pub month: NaiveDate,
}

/// The answer of a check of 医療扶助 by its numbers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssistanceAnswer {
    /// 1, 2, 3, 4 or 6 (see the module's table).
    #[schema(value_type = i16)]
    pub validity: i16,
    /// Present unless validity is 4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_expense: Option<PublicExpenseView>,
    /// The tickets of the month for the asking facility (`medical`, `dispensing`).
    pub tickets: Vec<String>,
    pub check_id: uuid::Uuid,
}

/// Answers a check of 医療扶助 by its numbers for `party_id` (whose facility code the tickets
/// name), recording the answer in the audit log before returning it.
///
/// # Errors
/// Database failures, or the audit record could not be made durable.
pub async fn check_assistance(
    pool: &Pool,
    audit: &AuditLog,
    now: chrono::DateTime<chrono::Utc>,
    party_id: PartyId,
    facility_code: Option<&str>,
    query: &AssistanceQuery,
) -> anyhow::Result<AssistanceAnswer> {
    let client = pool.get().await?;
    let all = store::by_numbers(
        &client,
        query.payer_number.as_str(),
        query.recipient_number.as_str(),
    )
    .await?;
    // The birth date is part of the match: another birth date is "no such numbers".
    let matching: Vec<&PublicExpenseRow> = all
        .iter()
        .filter(|x| x.birth_date == query.birth_date && x.valid_from <= query.date_of_care)
        .collect();
    let in_force = matching
        .iter()
        .rev()
        .find(|x| x.valid_to.is_none_or(|to| to >= query.date_of_care))
        .copied();
    let (validity, shown, tickets) = match (in_force, matching.last()) {
        (Some(x), _) => {
            let tickets: Vec<String> = store::tickets(&client, x.id, query.month)
                .await?
                .into_iter()
                .filter(|(facility, _)| Some(facility.as_str()) == facility_code)
                .map(|(_, ticket)| ticket)
                .collect();
            let validity = if tickets.is_empty() { 6 } else { 1 };
            (validity, Some(x), tickets)
        }
        (None, Some(last)) => {
            let newer = store::newer_exists(
                &client,
                last.person_id,
                MEDICAL_ASSISTANCE,
                last.valid_from,
                query.date_of_care,
            )
            .await?;
            (if newer { 3 } else { 2 }, Some(*last), Vec::new())
        }
        (None, None) => (Validity::NoSuchCoverage.code(), None, Vec::new()),
    };
    drop(client);
    let check_id = uuid::Uuid::now_v7();
    audit
        .record(vec![Disclosure {
            at: now,
            actor: Actor::Party(party_id),
            person_id: shown.map(|x| x.person_id),
            coverage_id: None,
            kind: DisclosureKind::EligibilityAssistance,
            check_id,
            validity,
        }])
        .await?;
    Ok(AssistanceAnswer {
        validity,
        public_expense: shown.map(PublicExpenseView::from),
        tickets,
        check_id,
    })
}

/// The month of `date`, as its first day.
pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}
