//! Reading a request file: its encoding, its `MessageHeader`, the members directly under
//! `MessageBody`, and its entries (each `QualificationConfirmSearchInfo` or
//! `ReferenceNumberRegistrationInfo`, at any depth under `MessageBody`, in order). What a kind
//! of request requires of them is its reader's to decide.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::encoding::{sniff, Encoding};

/// The elements that are one entry each: a query, or a 照会番号 to register.
pub const ENTRIES: &[&str] = &[
    "QualificationConfirmSearchInfo",
    "ReferenceNumberRegistrationInfo",
];

/// What a request file says; members by name, their text trimmed.
#[derive(Debug, Default)]
pub struct Document {
    /// `MessageHeader` members (QualificationConfirmationDate, MedicalInstitutionCode,
    /// ArbitraryFileIdentifier, ...).
    pub header: HashMap<String, String>,
    /// The leaf members directly under `MessageBody` (e.g. ReceptionNumber).
    pub body: HashMap<String, String>,
    /// The entries, in document order.
    pub entries: Vec<Entry>,
}

/// One `QualificationConfirmSearchInfo` or `ReferenceNumberRegistrationInfo`.
#[derive(Debug, Default, Clone)]
pub struct Entry {
    /// The element's name.
    pub kind: String,
    /// Its members by name.
    pub fields: HashMap<String, String>,
}

impl Document {
    /// The entries of one kind.
    pub fn entries_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.kind == kind)
    }
}

/// Why a request cannot be read: a stable code and words for the desk's software.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub code: &'static str,
    pub message: String,
}

impl Malformed {
    pub fn new(code: &'static str, message: impl Into<String>) -> Malformed {
        Malformed {
            code,
            message: message.into(),
        }
    }
}

/// Finds the encoding, decodes and reads a request; the encoding is returned in every case, to
/// answer in.
///
/// # Errors
/// [`Malformed`] (`request.encoding`, `request.xml`, `request.root`) when the bytes are not
/// text in their encoding, not well-formed XML, or not an `XmlMsg`.
pub fn read(bytes: &[u8]) -> (Encoding, Result<Document, Malformed>) {
    let encoding = sniff(bytes);
    let document = match encoding.decode(bytes) {
        Some(text) => read_text(&text),
        None => Err(Malformed::new(
            "request.encoding",
            format!("the request is not valid {}", encoding.label()),
        )),
    };
    (encoding, document)
}

fn read_text(text: &str) -> Result<Document, Malformed> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut document = Document::default();
    // The depth of the entry being read, if any.
    let mut entry_depth: Option<usize> = None;
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            Malformed::new(
                "request.xml",
                format!(
                    "the request is not well-formed XML (at byte {}): {e}",
                    reader.buffer_position()
                ),
            )
        })?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if root_seen || name != "XmlMsg" {
                        return Err(Malformed::new(
                            "request.root",
                            format!("the document element is {name}, not XmlMsg"),
                        ));
                    }
                    root_seen = true;
                }
                let in_body = path.len() >= 2 && path[1] == "MessageBody";
                if in_body && entry_depth.is_none() && ENTRIES.contains(&name.as_str()) {
                    entry_depth = Some(path.len());
                    document.entries.push(Entry {
                        kind: name.clone(),
                        fields: HashMap::new(),
                    });
                }
                path.push(name);
            }
            Event::Empty(start) => {
                if path.is_empty() {
                    return Err(Malformed::new(
                        "request.root",
                        "the document element is empty",
                    ));
                }
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let in_body = path.len() >= 2 && path[1] == "MessageBody";
                if in_body && entry_depth.is_none() && ENTRIES.contains(&name.as_str()) {
                    document.entries.push(Entry {
                        kind: name,
                        fields: HashMap::new(),
                    });
                } else {
                    store(&mut document, &path, entry_depth, &name, String::new());
                }
            }
            Event::End(_) => {
                path.pop();
                if entry_depth == Some(path.len()) {
                    entry_depth = None;
                }
            }
            Event::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|e| Malformed::new("request.xml", format!("bad text: {e}")))?;
                if let Some((name, parents)) = path.split_last() {
                    let name = name.clone();
                    let parents = parents.to_vec();
                    store(
                        &mut document,
                        &parents,
                        entry_depth,
                        &name,
                        value.trim().to_owned(),
                    );
                }
            }
            Event::CData(c) => {
                let value = String::from_utf8_lossy(&c).trim().to_owned();
                if let Some((name, parents)) = path.split_last() {
                    let name = name.clone();
                    let parents = parents.to_vec();
                    store(&mut document, &parents, entry_depth, &name, value);
                }
            }
            Event::Eof if path.is_empty() => break,
            Event::Eof => {
                return Err(Malformed::new(
                    "request.xml",
                    format!("the request ends inside {}", path.join("/")),
                ))
            }
            _ => {}
        }
    }
    if !root_seen {
        return Err(Malformed::new(
            "request.root",
            "the request has no XmlMsg element",
        ));
    }
    Ok(document)
}

/// Files a leaf's text under the header, the body or the open entry. Text between elements
/// (whitespace) lands on a parent and is dropped: only leaves are kept.
fn store(
    document: &mut Document,
    parents: &[String],
    entry_depth: Option<usize>,
    name: &str,
    value: String,
) {
    let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
    let map = match (parents.as_slice(), entry_depth) {
        (["XmlMsg", "MessageHeader"], _) => &mut document.header,
        (["XmlMsg", "MessageBody"], None) => &mut document.body,
        (["XmlMsg", "MessageBody", ..], Some(depth)) if parents.len() > depth => {
            match document.entries.last_mut() {
                Some(entry) => &mut entry.fields,
                None => return,
            }
        }
        _ => return,
    };
    if value.is_empty() && map.contains_key(name) {
        return;
    }
    map.entry(name.to_owned())
        .and_modify(|v| v.push_str(&value))
        .or_insert(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINGLE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <XmlMsg><MessageHeader><QualificationConfirmationDate>20261202</QualificationConfirmationDate>\
        <MedicalInstitutionCode>1312345678</MedicalInstitutionCode></MessageHeader>\
        <MessageBody><QualificationConfirmSearchInfo><InsurerNumber>  138057</InsurerNumber>\
        <InsuredCardSymbol>記号&amp;1</InsuredCardSymbol><InsuredIdentificationNumber>3456</InsuredIdentificationNumber>\
        <Birthdate>19600401</Birthdate></QualificationConfirmSearchInfo></MessageBody></XmlMsg>";

    fn ok(text: &str) -> Document {
        read(text.as_bytes()).1.unwrap()
    }

    #[test]
    fn a_request_is_read_by_member() {
        let d = ok(SINGLE);
        assert_eq!(d.header["MedicalInstitutionCode"], "1312345678");
        assert_eq!(d.entries.len(), 1);
        let search = &d.entries[0].fields;
        assert_eq!(d.entries[0].kind, "QualificationConfirmSearchInfo");
        assert_eq!(search["InsurerNumber"], "138057");
        assert_eq!(search["InsuredCardSymbol"], "記号&1");
        assert_eq!(search["Birthdate"], "19600401");
    }

    #[test]
    fn entries_are_kept_apart_and_in_order_at_any_depth() {
        let text = "<XmlMsg><MessageHeader><MedicalInstitutionCode>1</MedicalInstitutionCode></MessageHeader>\
            <MessageBody><ReceptionNumber> ab </ReceptionNumber><List>\
            <QualificationConfirmSearchInfo><InsuredIdentificationNumber>1</InsuredIdentificationNumber></QualificationConfirmSearchInfo>\
            <QualificationConfirmSearchInfo><InsuredIdentificationNumber>2</InsuredIdentificationNumber><InsuredBranchNumber/></QualificationConfirmSearchInfo>\
            </List><ReferenceNumberRegistrationInfo><ReferenceNumber>P-1</ReferenceNumber></ReferenceNumberRegistrationInfo>\
            <QualificationConfirmSearchInfo/></MessageBody></XmlMsg>";
        let d = ok(text);
        assert_eq!(d.body["ReceptionNumber"], "ab");
        let numbers: Vec<_> = d
            .entries_of("QualificationConfirmSearchInfo")
            .map(|e| e.fields.get("InsuredIdentificationNumber").cloned())
            .collect();
        assert_eq!(numbers, [Some("1".into()), Some("2".into()), None]);
        assert_eq!(d.entries[1].fields["InsuredBranchNumber"], "");
        let registered: Vec<_> = d.entries_of("ReferenceNumberRegistrationInfo").collect();
        assert_eq!(registered[0].fields["ReferenceNumber"], "P-1");
        assert!(!d.body.contains_key("InsuredIdentificationNumber"));
    }

    #[test]
    fn shift_jis_requests_are_decoded() {
        let identified = SINGLE.replace(
            "</MedicalInstitutionCode>",
            "</MedicalInstitutionCode><CharacterCodeIdentifier>1</CharacterCodeIdentifier>",
        );
        let bytes = Encoding::ShiftJis.encode(&identified);
        let (encoding, d) = read(&bytes);
        assert_eq!(encoding, Encoding::ShiftJis);
        assert_eq!(d.unwrap().entries[0].fields["InsuredCardSymbol"], "記号&1");
    }

    #[test]
    fn broken_requests_are_named() {
        let code = |text: &str| read(text.as_bytes()).1.unwrap_err().code;
        assert_eq!(code("<XmlMsg><MessageHeader>"), "request.xml");
        assert_eq!(code("<Other/>"), "request.root");
        assert_eq!(code("<Other></Other>"), "request.root");
        assert_eq!(code(""), "request.root");
        assert_eq!(read(b"\xff\xfe<").1.unwrap_err().code, "request.encoding");
    }
}
