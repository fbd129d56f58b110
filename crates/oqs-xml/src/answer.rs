//! Writing the answer files in the real system's layout: the header echoes the request, the
//! body carries onshi's answer with dates as `yyyyMMdd` and the insurer number as 8
//! characters. Every document is encoded as its request was.
//!
//! | answer | body |
//! |---|---|
//! | [`single`] (`OQSsiquc01res_`, and the `face` files) | the check's result |
//! | [`bulk_receipt`] (`OQSmuquc01res_`) | `ReceptionNumber` |
//! | [`bulk_results`] (`OQSmuquc02res_`) | `SegmentOfResult` 2 while processing; when done, `ResultList` with one `ResultOfQualificationConfirmation` per query, in upload order, each echoing its query (`QualificationConfirmSearchInfo`) with its own `ProcessingResultStatus` (1 answered, 2 refused), code, validity and coverage |
//! | [`registered`] (`OQSsiimm01res_`, `OQSmuimm01res_`) | `ProcessingResultStatus` 1 and `RegisteredCount` |
//! | [`failed`] (any) | none: `SegmentOfResult` 9 with `ErrorCode` and `ErrorMessage` |

use std::collections::HashMap;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::Value;

use crate::encoding::Encoding;

/// How the person was identified (`ReferenceClassification`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// 1: the My Number card was read.
    Card,
    /// 2: asked by insurance number.
    InsuranceNumber,
}

/// The header every answer starts with: what it echoes of the request, and when it was made.
pub struct Header<'a> {
    /// The request's header members; QualificationConfirmationDate, MedicalInstitutionCode and
    /// ArbitraryFileIdentifier are echoed.
    pub request: &'a HashMap<String, String>,
    pub encoding: Encoding,
    /// `yyyyMMddHHmmss`, Japan time.
    pub executed_at: &'a str,
}

/// The answer of a single check (the body of `POST /v1/eligibility` or
/// `POST /v1/eligibility/card`).
pub fn single(header: &Header<'_>, reference: Reference, answer: &Value) -> Vec<u8> {
    let mut doc = Doc::start(header, Some(reference), Segment::Done);
    doc.open("MessageBody");
    doc.leaf("ProcessingResultStatus", "1");
    result(&mut doc, answer);
    doc.close("MessageBody");
    doc.finish(header.encoding)
}

/// A request that got no answer: `SegmentOfResult` 9 with the code and message, no body.
pub fn failed(
    header: &Header<'_>,
    reference: Option<Reference>,
    code: &str,
    message: &str,
) -> Vec<u8> {
    let doc = Doc::start(header, reference, Segment::Failed(code, message));
    doc.finish(header.encoding)
}

/// The receipt of a bulk upload: its reception number.
pub fn bulk_receipt(header: &Header<'_>, reception_number: &str) -> Vec<u8> {
    let mut doc = Doc::start(header, Some(Reference::InsuranceNumber), Segment::Done);
    doc.open("MessageBody");
    doc.leaf("ProcessingResultStatus", "1");
    doc.leaf("ReceptionNumber", reception_number);
    doc.close("MessageBody");
    doc.finish(header.encoding)
}

/// Where a bulk inquiry is.
pub enum BulkProgress<'a> {
    /// Not every query is answered yet: ask again later.
    Processing,
    /// Every query's result, in upload order: the entries of
    /// `GET /v1/eligibility/bulk/{n}` (`query`, `status`, `answer` or `error`).
    Done(&'a [Value]),
}

/// The answer of a bulk download request.
pub fn bulk_results(
    header: &Header<'_>,
    reception_number: &str,
    progress: &BulkProgress<'_>,
) -> Vec<u8> {
    let segment = match progress {
        BulkProgress::Processing => Segment::Processing,
        BulkProgress::Done(_) => Segment::Done,
    };
    let mut doc = Doc::start(header, Some(Reference::InsuranceNumber), segment);
    doc.open("MessageBody");
    doc.leaf("ReceptionNumber", reception_number);
    if let BulkProgress::Done(entries) = progress {
        doc.leaf("ProcessingResultStatus", "1");
        doc.leaf("ResultCount", &entries.len().to_string());
        doc.open("ResultList");
        for entry in *entries {
            doc.open("ResultOfQualificationConfirmation");
            echo_query(&mut doc, &entry["query"]);
            if entry["status"] == "answered" {
                doc.leaf("ProcessingResultStatus", "1");
                let answer = &entry["answer"];
                advisories(&mut doc, answer);
                doc.leaf("QualificationValidity", &text(&answer["validity"]));
                if let Some(coverage) = answer.get("coverage").filter(|c| c.is_object()) {
                    coverage_fields(&mut doc, coverage);
                }
                doc.optional("ReferenceNumber", &answer["reference_number"]);
            } else {
                let error = &entry["error"];
                doc.leaf("ProcessingResultStatus", "2");
                doc.leaf("ProcessingResultCode", &text(&error["code"]));
                let mut message = text(&error["message"]);
                if let Some(field) = error["field"].as_str() {
                    message = format!("{message} ({field})");
                }
                doc.leaf("ProcessingResultMessage", &message);
            }
            doc.close("ResultOfQualificationConfirmation");
        }
        doc.close("ResultList");
    }
    doc.close("MessageBody");
    doc.finish(header.encoding)
}

/// The answer of a 照会番号 registration: how many entries were registered.
pub fn registered(header: &Header<'_>, count: u64) -> Vec<u8> {
    let mut doc = Doc::start(header, None, Segment::Done);
    doc.open("MessageBody");
    doc.leaf("ProcessingResultStatus", "1");
    doc.leaf("RegisteredCount", &count.to_string());
    doc.close("MessageBody");
    doc.finish(header.encoding)
}

/// `SegmentOfResult`.
enum Segment<'a> {
    /// 1.
    Done,
    /// 2.
    Processing,
    /// 9, with the code and message.
    Failed(&'a str, &'a str),
}

/// The body members of one check's result.
fn result(doc: &mut Doc, answer: &Value) {
    advisories(doc, answer);
    doc.leaf("QualificationValidity", &text(&answer["validity"]));
    if let Some(coverage) = answer.get("coverage").filter(|c| c.is_object()) {
        doc.open("ResultList");
        doc.open("ResultOfQualificationConfirmation");
        coverage_fields(doc, coverage);
        doc.close("ResultOfQualificationConfirmation");
        doc.close("ResultList");
    }
    doc.optional("ReferenceNumber", &answer["reference_number"]);
}

fn advisories(doc: &mut Doc, answer: &Value) {
    let advisories = answer["advisories"].as_array().cloned().unwrap_or_default();
    if let Some(first) = advisories.first() {
        doc.leaf("ProcessingResultCode", &text(&first["code"]));
        let messages: Vec<String> = advisories.iter().map(|a| text(&a["message"])).collect();
        doc.leaf("ProcessingResultMessage", &messages.join(" "));
    }
}

/// A bulk query as sent (onshi's JSON members), in the request's element names.
fn echo_query(doc: &mut Doc, query: &Value) {
    doc.open("QualificationConfirmSearchInfo");
    let insurer = text(&query["insurer_number"]);
    if !insurer.is_empty() {
        doc.leaf("InsurerNumber", &padded_insurer_number(&insurer));
    }
    doc.optional("InsuredCardSymbol", &query["symbol"]);
    doc.optional("InsuredIdentificationNumber", &query["number"]);
    doc.optional("InsuredBranchNumber", &query["branch"]);
    doc.date("Birthdate", &query["birth_date"]);
    for (member, element) in [
        (
            "limit_certificate_consent",
            "LimitApplicationCertificateRelatedConsFlg",
        ),
        (
            "specific_disease_consent",
            "SpecificDiseasesCertificateRelatedConsFlg",
        ),
    ] {
        if let Some(flag) = query[member].as_bool() {
            doc.leaf(element, if flag { "1" } else { "0" });
        }
    }
    doc.close("QualificationConfirmSearchInfo");
}

fn coverage_fields(doc: &mut Doc, c: &Value) {
    doc.optional("InsuredCardClassification", &c["card_classification"]);
    doc.leaf(
        "InsurerNumber",
        &padded_insurer_number(&text(&c["insurer_number"])),
    );
    doc.optional("InsurerName", &c["insurer_name"]);
    doc.optional("InsuredCardSymbol", &c["symbol"]);
    doc.optional("InsuredIdentificationNumber", &c["number"]);
    doc.optional("InsuredBranchNumber", &c["branch"]);
    doc.optional("PersonalFamilyClassification", &c["relationship"]);
    doc.optional("InsuredName", &c["insured_name"]);
    doc.optional("Name", &c["name"]);
    doc.optional("NameKana", &c["name_kana"]);
    doc.optional("Sex1", &c["sex"]);
    doc.date("Birthdate", &c["birth_date"]);
    doc.optional("Address", &c["address"]);
    doc.optional("PostNumber", &c["postcode"]);
    doc.date("QualificationDate", &c["acquired_on"]);
    doc.date("DisqualificationDate", &c["lost_on"]);
    doc.optional("ReasonOfLoss", &c["loss_reason"]);
    doc.date("InsuredCertificateIssuanceDate", &c["card_issued_on"]);
    doc.date("InsuredCardValidDate", &c["card_valid_from"]);
    doc.date("InsuredCardExpirationDate", &c["card_valid_to"]);
    doc.optional("InsuredPartialContributionRatio", &c["copay_ratio"]);
    if c["preschool"] == Value::Bool(true) {
        // 1: 未就学者.
        doc.leaf("PreschoolClassification", "1");
    }
    if let Some(elderly) = c.get("elderly_recipient").filter(|e| e.is_object()) {
        doc.open("ElderlyRecipientCertificateInfo");
        doc.date("ElderlyRecipientValidStartDate", &elderly["valid_from"]);
        doc.date("ElderlyRecipientValidEndDate", &elderly["valid_to"]);
        doc.optional("ElderlyRecipientContributionRatio", &elderly["copay_ratio"]);
        doc.close("ElderlyRecipientCertificateInfo");
    }
    if let Some(limit) = c.get("limit_certificate").filter(|l| l.is_object()) {
        doc.open("LimitApplicationCertificateRelatedInfo");
        doc.optional(
            "LimitApplicationCertificateClassification",
            &limit["classification"],
        );
        doc.optional(
            "LimitApplicationCertificateClassificationFlag",
            &limit["category"],
        );
        doc.date(
            "LimitApplicationCertificateValidStartDate",
            &limit["valid_from"],
        );
        doc.date(
            "LimitApplicationCertificateValidEndDate",
            &limit["valid_to"],
        );
        doc.close("LimitApplicationCertificateRelatedInfo");
    }
    let diseases = c["specific_disease_certificates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !diseases.is_empty() {
        doc.open("SpecificDiseasesCertificateList");
        for d in &diseases {
            doc.open("SpecificDiseasesCertificateInfo");
            doc.optional("SpecificDiseasesDiseaseCategory", &d["category"]);
            doc.date("SpecificDiseasesValidStartDate", &d["valid_from"]);
            doc.date("SpecificDiseasesValidEndDate", &d["valid_to"]);
            doc.optional("SpecificDiseasesSelfPay", &d["self_pay_cap"]);
            doc.close("SpecificDiseasesCertificateInfo");
        }
        doc.close("SpecificDiseasesCertificateList");
    }
}

/// The insurer number as the real system writes it: 8 characters, a 6-digit 国保 number
/// preceded by two spaces. onshi writes a 国保 number with two leading zeros (no 法別番号 is
/// 00), which become the spaces.
pub fn padded_insurer_number(number: &str) -> String {
    let number = match number.strip_prefix("00") {
        Some(kokuho) if number.len() == 8 => kokuho,
        _ => number,
    };
    format!("{number:>8}")
}

/// A JSON scalar as the text of an element; empty for null.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The document being written; writing to a `Vec` cannot fail.
struct Doc(Writer<Vec<u8>>);

impl Doc {
    /// The declaration and the header, up to `CharacterCodeIdentifier`; the body is open to
    /// write next.
    fn start(header: &Header<'_>, reference: Option<Reference>, segment: Segment<'_>) -> Doc {
        let mut doc = Doc(Writer::new_with_indent(Vec::new(), b' ', 2));
        doc.event(Event::Decl(BytesDecl::new(
            "1.0",
            Some(header.encoding.label()),
            Some("yes"),
        )));
        doc.open("XmlMsg");
        doc.open("MessageHeader");
        doc.leaf("ProcessExecutionTime", header.executed_at);
        for echoed in [
            "QualificationConfirmationDate",
            "MedicalInstitutionCode",
            "ArbitraryFileIdentifier",
        ] {
            if let Some(value) = header.request.get(echoed).filter(|v| !v.is_empty()) {
                doc.leaf(echoed, value);
            }
        }
        match reference {
            Some(Reference::Card) => doc.leaf("ReferenceClassification", "1"),
            Some(Reference::InsuranceNumber) => doc.leaf("ReferenceClassification", "2"),
            None => {}
        }
        match segment {
            Segment::Done => doc.leaf("SegmentOfResult", "1"),
            Segment::Processing => doc.leaf("SegmentOfResult", "2"),
            Segment::Failed(code, message) => {
                doc.leaf("SegmentOfResult", "9");
                doc.leaf("ErrorCode", code);
                doc.leaf("ErrorMessage", message);
            }
        }
        doc.leaf("CharacterCodeIdentifier", header.encoding.identifier());
        doc.close("MessageHeader");
        doc
    }

    /// Closes the document and encodes it.
    fn finish(mut self, encoding: Encoding) -> Vec<u8> {
        self.close("XmlMsg");
        // quick-xml writes what it is given as UTF-8 text.
        let mut text = String::from_utf8(self.0.into_inner()).unwrap_or_default();
        text.push('\n');
        encoding.encode(&text)
    }

    fn event(&mut self, event: Event<'_>) {
        self.0
            .write_event(event)
            .expect("writing XML to memory does not fail");
    }

    fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn leaf(&mut self, name: &str, value: &str) {
        self.open(name);
        self.event(Event::Text(BytesText::new(value)));
        self.close(name);
    }

    /// The element when the value is present and not empty.
    fn optional(&mut self, name: &str, value: &Value) {
        let value = text(value);
        if !value.is_empty() {
            self.leaf(name, &value);
        }
    }

    /// A `YYYY-MM-DD` date as `yyyyMMdd`, when present.
    fn date(&mut self, name: &str, value: &Value) {
        if let Some(date) = value.as_str().filter(|d| !d.is_empty()) {
            self.leaf(name, &date.replace('-', ""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(request: &HashMap<String, String>, encoding: Encoding) -> Header<'_> {
        Header {
            request,
            encoding,
            executed_at: "20261202093000",
        }
    }

    fn decoded(bytes: &[u8], encoding: Encoding) -> String {
        encoding
            .decode(bytes)
            .expect("the answer is in its encoding")
    }

    #[test]
    fn a_national_health_insurance_number_gets_two_leading_spaces() {
        assert_eq!(padded_insurer_number("138057"), "  138057");
        assert_eq!(padded_insurer_number("00138057"), "  138057");
        assert_eq!(padded_insurer_number("06139991"), "06139991");
    }

    #[test]
    fn a_failure_has_segment_9_and_its_code_in_the_request_encoding() {
        let request = HashMap::from([("ArbitraryFileIdentifier".to_owned(), "受付1".to_owned())]);
        let bytes = failed(
            &header(&request, Encoding::ShiftJis),
            Some(Reference::InsuranceNumber),
            "request.xml",
            "壊れた要求",
        );
        let text = decoded(&bytes, Encoding::ShiftJis);
        assert!(text.contains("encoding=\"Shift_JIS\""), "{text}");
        assert!(
            text.contains("<SegmentOfResult>9</SegmentOfResult>"),
            "{text}"
        );
        assert!(
            text.contains("<ErrorCode>request.xml</ErrorCode>"),
            "{text}"
        );
        assert!(text.contains("<ArbitraryFileIdentifier>受付1</"), "{text}");
        assert!(!text.contains("MessageBody"), "{text}");
    }

    #[test]
    fn bulk_results_say_processing_then_each_entry() {
        let request = HashMap::new();
        let h = header(&request, Encoding::Utf8);
        let text = decoded(
            &bulk_results(&h, "ab", &BulkProgress::Processing),
            Encoding::Utf8,
        );
        assert!(
            text.contains("<SegmentOfResult>2</SegmentOfResult>"),
            "{text}"
        );
        assert!(!text.contains("ResultList"), "{text}");
        let entries = [
            json!({"index": 0, "query": {"insurer_number": "138057", "number": "1", "birth_date": "1960-04-01", "limit_certificate_consent": true},
                   "status": "answered", "answer": {"validity": 4, "advisories": []}}),
            json!({"index": 1, "query": {"insurer_number": "138058", "number": "2", "birth_date": "19600401"},
                   "status": "rejected", "error": {"code": "insurer_number.check_digit", "message": "wrong", "field": "insurer_number"}}),
        ];
        let text = decoded(
            &bulk_results(&h, "ab", &BulkProgress::Done(&entries)),
            Encoding::Utf8,
        );
        assert!(
            text.contains("<SegmentOfResult>1</SegmentOfResult>"),
            "{text}"
        );
        assert_eq!(
            text.matches("<ResultOfQualificationConfirmation>").count(),
            2
        );
        assert!(
            text.contains("<InsurerNumber>  138057</InsurerNumber>"),
            "{text}"
        );
        assert!(text.contains("<Birthdate>19600401</Birthdate>"), "{text}");
        assert!(
            text.contains("<LimitApplicationCertificateRelatedConsFlg>1<"),
            "{text}"
        );
        assert!(
            text.contains("<QualificationValidity>4</QualificationValidity>"),
            "{text}"
        );
        assert!(
            text.contains("<ProcessingResultCode>insurer_number.check_digit<"),
            "{text}"
        );
        assert!(text.contains("wrong (insurer_number)"), "{text}");
    }

    #[test]
    fn yen_overline_and_minus_survive_shift_jis() {
        let text = "¥500‾−1 記号";
        let request = HashMap::from([("ArbitraryFileIdentifier".to_owned(), text.to_owned())]);
        let bytes = failed(&header(&request, Encoding::ShiftJis), None, "x.y", "m");
        let document = crate::document::read(&bytes).1.unwrap();
        assert_eq!(document.header["ArbitraryFileIdentifier"], text);
    }

    proptest::proptest! {
        /// Whatever text an answer carries comes back the same through a reader of the file,
        /// in both encodings (escaped, and as references where Shift_JIS lacks a character).
        #[test]
        fn any_text_round_trips_through_an_answer(text in "\\PC{1,40}") {
            for encoding in [Encoding::Utf8, Encoding::ShiftJis] {
                let request =
                    HashMap::from([("ArbitraryFileIdentifier".to_owned(), text.clone())]);
                let bytes = failed(&header(&request, encoding), None, "x.y", &text);
                let (read_as, document) = crate::document::read(&bytes);
                proptest::prop_assert_eq!(read_as, encoding);
                let document = document.unwrap();
                let trimmed = text.trim();
                proptest::prop_assert_eq!(
                    document.header.get("ArbitraryFileIdentifier").map(String::as_str),
                    (!trimmed.is_empty()).then_some(trimmed)
                );
                proptest::prop_assert_eq!(document.header["ErrorMessage"].as_str(), trimmed);
            }
        }
    }

    #[test]
    fn a_card_answer_is_reference_classification_1() {
        let request = HashMap::new();
        let answer = json!({"validity": 1, "coverage": {"insurer_number": "06139991", "birth_date": "1960-04-01", "name": "架空 太郎"}, "advisories": []});
        let text = decoded(
            &single(&header(&request, Encoding::Utf8), Reference::Card, &answer),
            Encoding::Utf8,
        );
        assert!(text.contains("<ReferenceClassification>1<"), "{text}");
        assert!(text.contains("<Name>架空 太郎</Name>"), "{text}");
        assert!(text.contains("<Birthdate>19600401</Birthdate>"), "{text}");
    }
}
