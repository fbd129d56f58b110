//! From a request file's bytes to its answer file's, by kind: what each kind requires of the
//! request, which onshi endpoint answers it, and how the answer is written.
//!
//! | request | onshi | answer |
//! |---|---|---|
//! | `OQSsiquc01req_` | `POST /v1/eligibility` | the check's result |
//! | `OQSmuquc01req_` | `POST /v1/eligibility/bulk`, with an `Idempotency-Key` from the file's name and content | the `ReceptionNumber` |
//! | `OQSmuquc02req_` | `GET /v1/eligibility/bulk/{ReceptionNumber}`, every page | `SegmentOfResult` 2 while processing; every entry's result when done |
//! | `OQSsiimm01req_`, `OQSmuimm01req_` | `POST /v1/reference-numbers` | how many were registered |

use std::collections::HashMap;

use onshi_oqs_xml::answer::{self, BulkProgress, Header, Reference};
use onshi_oqs_xml::document::{self, Document, Entry, Malformed};
use onshi_oqs_xml::names::Kind;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::client::{Call, Client, Reply};
use super::metrics::Outcome;

const SEARCH: &str = "QualificationConfirmSearchInfo";
const REGISTRATION: &str = "ReferenceNumberRegistrationInfo";
/// What `POST /v1/eligibility/bulk` takes at most.
const BULK_MAX: usize = 100_000;
/// The largest page `GET /v1/eligibility/bulk/{n}` gives.
const PAGE: usize = 10_000;

/// The answer document for a request file, and what became of it.
pub fn respond(kind: Kind, name: &str, bytes: &[u8], client: &Client) -> (Vec<u8>, Outcome) {
    let (executed_at, _) = onshi_oqs_xml::time::japan(std::time::SystemTime::now());
    let (encoding, document) = document::read(bytes);
    let empty = HashMap::new();
    let request_header = document.as_ref().map_or(&empty, |d| &d.header);
    let header = Header {
        request: request_header,
        encoding,
        executed_at: &executed_at,
    };
    let reference = match kind {
        Kind::Single | Kind::BulkUpload | Kind::BulkDownload => Some(Reference::InsuranceNumber),
        Kind::RegisterOne | Kind::RegisterMany => None,
    };
    let failed = |code: &str, message: &str| answer::failed(&header, reference, code, message);
    let document = match &document {
        Ok(document) => document,
        Err(m) => return (failed(m.code, &m.message), Outcome::Malformed),
    };
    let asked = match kind {
        Kind::Single => single(document, client, &header),
        Kind::BulkUpload => bulk_upload(document, name, bytes, client, &header),
        Kind::BulkDownload => bulk_download(document, client, &header),
        Kind::RegisterOne | Kind::RegisterMany => register(kind, document, client, &header),
    };
    match asked {
        Ok(bytes) => (bytes, Outcome::Answered),
        Err(Failure::Malformed(m)) => (failed(m.code, &m.message), Outcome::Malformed),
        Err(Failure::Onshi { code, message }) => (failed(&code, &message), Outcome::Error),
    }
}

/// Why a request got an error answer.
enum Failure {
    Malformed(Malformed),
    /// onshi refused it or could not be reached.
    Onshi {
        code: String,
        message: String,
    },
}

impl From<Malformed> for Failure {
    fn from(m: Malformed) -> Self {
        Failure::Malformed(m)
    }
}

/// onshi's answer body, or the failure it was.
fn answered(reply: Reply) -> Result<Value, Failure> {
    match reply {
        Reply::Answered(body) => Ok(body),
        Reply::Refused { code, message } | Reply::Unreachable { code, message } => {
            Err(Failure::Onshi { code, message })
        }
    }
}

fn single(document: &Document, client: &Client, header: &Header<'_>) -> Result<Vec<u8>, Failure> {
    let mut searches = document.entries_of(SEARCH);
    let (Some(search), None) = (searches.next(), searches.next()) else {
        return Err(Malformed::new(
            "request.entries",
            format!("a single check has exactly one {SEARCH}"),
        )
        .into());
    };
    for member in ["InsurerNumber", "InsuredIdentificationNumber", "Birthdate"] {
        if search.fields.get(member).is_none_or(String::is_empty) {
            return Err(Malformed::new(
                "request.missing",
                format!("{SEARCH}/{member} is required"),
            )
            .into());
        }
    }
    let birth = strict_date("Birthdate", &search.fields["Birthdate"])?;
    let mut asked = query(search, care_date(document)?);
    asked["birth_date"] = json!(birth);
    let answer = answered(client.call(&Call {
        method: "POST",
        path: "/v1/eligibility",
        body: Some(&asked),
        idempotency_key: None,
        kind: Kind::Single.label(),
    }))?;
    Ok(answer::single(header, Reference::InsuranceNumber, &answer))
}

/// Uploads every query; each query's own faults (a missing number, a bad date) are onshi's to
/// refuse as that query's result, so only an unreadable file or one without queries fails
/// whole.
fn bulk_upload(
    document: &Document,
    name: &str,
    bytes: &[u8],
    client: &Client,
    header: &Header<'_>,
) -> Result<Vec<u8>, Failure> {
    let care = care_date(document)?;
    let queries: Vec<Value> = document
        .entries_of(SEARCH)
        .map(|search| query(search, care.clone()))
        .collect();
    if queries.is_empty() || queries.len() > BULK_MAX {
        return Err(Malformed::new(
            "request.entries",
            format!("a bulk inquiry holds 1 to 100,000 {SEARCH}"),
        )
        .into());
    }
    // The same file sent again (the bridge restarted, or the answer was lost on the way) is
    // the same job: onshi answers the first receipt.
    let key = idempotency_key(name, bytes);
    let receipt = answered(client.call(&Call {
        method: "POST",
        path: "/v1/eligibility/bulk",
        body: Some(&json!({ "queries": queries })),
        idempotency_key: Some(&key),
        kind: Kind::BulkUpload.label(),
    }))?;
    let number = receipt["reception_number"].as_str().unwrap_or_default();
    Ok(answer::bulk_receipt(header, number))
}

/// `bridge-` and the SHA-256 of the file's name and content.
fn idempotency_key(name: &str, bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(bytes);
    format!("bridge-{}", hex::encode(hasher.finalize()))
}

fn bulk_download(
    document: &Document,
    client: &Client,
    header: &Header<'_>,
) -> Result<Vec<u8>, Failure> {
    let number = document
        .body
        .get("ReceptionNumber")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Malformed::new("request.missing", "MessageBody/ReceptionNumber is required")
        })?;
    if number.len() > 64 || !number.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Failure::Onshi {
            code: "bulk.not_found".into(),
            message: "no bulk inquiry of this facility has this reception number".into(),
        });
    }
    let mut results = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(after) => format!("/v1/eligibility/bulk/{number}?limit={PAGE}&after={after}"),
            None => format!("/v1/eligibility/bulk/{number}?limit={PAGE}"),
        };
        let page = answered(client.call(&Call {
            method: "GET",
            path: &path,
            body: None,
            idempotency_key: None,
            kind: Kind::BulkDownload.label(),
        }))?;
        if page["status"] != "done" {
            return Ok(answer::bulk_results(
                header,
                number,
                &BulkProgress::Processing,
            ));
        }
        results.extend(page["results"].as_array().cloned().unwrap_or_default());
        match page["next"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(answer::bulk_results(
        header,
        number,
        &BulkProgress::Done(&results),
    ))
}

fn register(
    kind: Kind,
    document: &Document,
    client: &Client,
    header: &Header<'_>,
) -> Result<Vec<u8>, Failure> {
    let entries: Vec<Value> = document
        .entries_of(REGISTRATION)
        .map(|entry| {
            let get = |name: &str| entry.fields.get(name).filter(|v| !v.is_empty()).cloned();
            json!({
                "insurer_number": get("InsurerNumber").unwrap_or_default(),
                "symbol": get("InsuredCardSymbol"),
                "number": get("InsuredIdentificationNumber").unwrap_or_default(),
                "branch": get("InsuredBranchNumber"),
                "reference_number": get("ReferenceNumber").unwrap_or_default(),
            })
        })
        .collect();
    let allowed = match kind {
        Kind::RegisterOne => 1..=1,
        _ => 1..=10_000,
    };
    if !allowed.contains(&entries.len()) {
        return Err(Malformed::new(
            "request.entries",
            format!(
                "this registration holds {} to {} {REGISTRATION}",
                allowed.start(),
                allowed.end()
            ),
        )
        .into());
    }
    let registered = answered(client.call(&Call {
        method: "POST",
        path: "/v1/reference-numbers",
        body: Some(&json!({ "entries": entries })),
        idempotency_key: None,
        kind: kind.label(),
    }))?;
    Ok(answer::registered(
        header,
        registered["registered"].as_u64().unwrap_or_default(),
    ))
}

/// The header's QualificationConfirmationDate as the date of care, if given.
fn care_date(document: &Document) -> Result<Option<String>, Malformed> {
    document
        .header
        .get("QualificationConfirmationDate")
        .filter(|v| !v.is_empty())
        .map(|d| strict_date("QualificationConfirmationDate", d))
        .transpose()
}

/// `yyyyMMdd` as `YYYY-MM-DD`.
fn strict_date(member: &str, value: &str) -> Result<String, Malformed> {
    loose_date(value)
        .ok_or_else(|| Malformed::new("request.date", format!("{member} must be yyyyMMdd")))
}

/// `yyyyMMdd` as `YYYY-MM-DD`, or `None`.
fn loose_date(value: &str) -> Option<String> {
    let ok = value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("{}-{}-{}", &value[..4], &value[4..6], &value[6..]))
}

/// The `POST /v1/eligibility` query for an entry. A birth date that is not `yyyyMMdd` is sent
/// as written, for onshi to refuse as that query's fault.
fn query(search: &Entry, date_of_care: Option<String>) -> Value {
    let get = |name: &str| search.fields.get(name).filter(|v| !v.is_empty()).cloned();
    let birth = get("Birthdate").unwrap_or_default();
    let flag = |name: &str| get(name).is_some_and(|v| v == "1");
    json!({
        "insurer_number": get("InsurerNumber").unwrap_or_default(),
        "symbol": get("InsuredCardSymbol"),
        "number": get("InsuredIdentificationNumber").unwrap_or_default(),
        "branch": get("InsuredBranchNumber"),
        "birth_date": loose_date(&birth).unwrap_or(birth),
        "date_of_care": date_of_care,
        "limit_certificate_consent": flag("LimitApplicationCertificateRelatedConsFlg"),
        "specific_disease_consent": flag("SpecificDiseasesCertificateRelatedConsFlg"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_follows_the_name_and_the_content() {
        let a = idempotency_key("OQSmuquc01req_1.xml", b"<XmlMsg/>");
        assert_eq!(a, idempotency_key("OQSmuquc01req_1.xml", b"<XmlMsg/>"));
        assert_ne!(a, idempotency_key("OQSmuquc01req_2.xml", b"<XmlMsg/>"));
        assert_ne!(a, idempotency_key("OQSmuquc01req_1.xml", b"<XmlMsg />"));
        assert!(a.len() <= 200 && a.bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn dates_are_yyyymmdd() {
        assert_eq!(loose_date("19600401").as_deref(), Some("1960-04-01"));
        assert_eq!(loose_date("1960-04-01"), None);
        assert_eq!(
            strict_date("Birthdate", "1960").unwrap_err().code,
            "request.date"
        );
    }
}
