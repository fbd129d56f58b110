//! Writing the answer file (`OQSsiquc01res_*.xml`) in the real system's layout: the header
//! echoes the request, the body carries onshi's answer with dates as `yyyyMMdd` and the
//! insurer number as 8 characters.

use std::collections::HashMap;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::Value;

use super::request::Encoding;

/// What the bridge has to say about one request.
pub enum Outcome {
    /// onshi's answer to the check (the body of `POST /v1/eligibility`).
    Answered(Value),
    /// No answer: the request was malformed, onshi refused it, or onshi could not be reached
    /// in time. `SegmentOfResult` 9 with the code and message.
    Failed { code: String, message: String },
}

/// The answer document, encoded as the request was.
pub fn render(
    header: &HashMap<String, String>,
    encoding: Encoding,
    outcome: &Outcome,
    executed_at: &str,
) -> Vec<u8> {
    let mut doc = Doc(Writer::new_with_indent(Vec::new(), b' ', 2));
    doc.event(Event::Decl(BytesDecl::new(
        "1.0",
        Some(encoding.label()),
        Some("yes"),
    )));
    doc.open("XmlMsg");
    doc.open("MessageHeader");
    doc.leaf("ProcessExecutionTime", executed_at);
    for echoed in [
        "QualificationConfirmationDate",
        "MedicalInstitutionCode",
        "ArbitraryFileIdentifier",
    ] {
        if let Some(value) = header.get(echoed).filter(|v| !v.is_empty()) {
            doc.leaf(echoed, value);
        }
    }
    // 2: asked by insurance number (1 would be a card read).
    doc.leaf("ReferenceClassification", "2");
    match outcome {
        Outcome::Answered(_) => doc.leaf("SegmentOfResult", "1"),
        Outcome::Failed { code, message } => {
            doc.leaf("SegmentOfResult", "9");
            doc.leaf("ErrorCode", code);
            doc.leaf("ErrorMessage", message);
        }
    }
    doc.leaf("CharacterCodeIdentifier", encoding.identifier());
    doc.close("MessageHeader");
    if let Outcome::Answered(answer) = outcome {
        body(&mut doc, answer);
    }
    doc.close("XmlMsg");
    let mut text = String::from_utf8(doc.0.into_inner()).unwrap_or_default();
    text.push('\n');
    encoding.encode(&text)
}

fn body(doc: &mut Doc, answer: &Value) {
    doc.open("MessageBody");
    doc.leaf("ProcessingResultStatus", "1");
    let advisories = answer["advisories"].as_array().cloned().unwrap_or_default();
    if let Some(first) = advisories.first() {
        doc.leaf("ProcessingResultCode", &text(&first["code"]));
        let messages: Vec<String> = advisories.iter().map(|a| text(&a["message"])).collect();
        doc.leaf("ProcessingResultMessage", &messages.join(" "));
    }
    doc.leaf("QualificationValidity", &text(&answer["validity"]));
    if let Some(coverage) = answer.get("coverage").filter(|c| c.is_object()) {
        doc.open("ResultList");
        doc.open("ResultOfQualificationConfirmation");
        coverage_fields(doc, coverage);
        doc.close("ResultOfQualificationConfirmation");
        doc.close("ResultList");
    }
    if let Some(reference) = answer.get("reference_number").and_then(Value::as_str) {
        doc.leaf("ReferenceNumber", reference);
    }
    doc.close("MessageBody");
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

    #[test]
    fn a_national_health_insurance_number_gets_two_leading_spaces() {
        assert_eq!(padded_insurer_number("138057"), "  138057");
        assert_eq!(padded_insurer_number("00138057"), "  138057");
        assert_eq!(padded_insurer_number("06139991"), "06139991");
    }

    #[test]
    fn a_failure_has_segment_9_and_its_code_in_the_request_encoding() {
        let header = HashMap::from([("ArbitraryFileIdentifier".to_owned(), "受付1".to_owned())]);
        let failed = Outcome::Failed {
            code: "request.xml".into(),
            message: "壊れた要求".into(),
        };
        let bytes = render(&header, Encoding::ShiftJis, &failed, "20261202093000");
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
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
}
