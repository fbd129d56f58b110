//! Reading a single-check request (`OQSsiquc01req_*.xml`): its encoding, its header and its
//! `QualificationConfirmSearchInfo`.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// The two encodings of the real system, as `CharacterCodeIdentifier` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// 0.
    Utf8,
    /// 1.
    ShiftJis,
}

impl Encoding {
    pub fn identifier(self) -> &'static str {
        match self {
            Encoding::Utf8 => "0",
            Encoding::ShiftJis => "1",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::ShiftJis => "Shift_JIS",
        }
    }

    /// Encodes an answer; a character Shift_JIS lacks becomes a numeric character reference,
    /// which any XML reader turns back into the character.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.as_bytes().to_vec(),
            Encoding::ShiftJis => encoding_rs::SHIFT_JIS.encode(text).0.into_owned(),
        }
    }
}

/// What the request says, with the encoding to answer in.
#[derive(Debug, Default)]
pub struct Request {
    /// Header members by name (QualificationConfirmationDate, MedicalInstitutionCode,
    /// ArbitraryFileIdentifier, ...), trimmed.
    pub header: HashMap<String, String>,
    /// `QualificationConfirmSearchInfo` members by name, trimmed.
    pub search: HashMap<String, String>,
}

/// Why a request cannot be asked: a stable code and words for the desk's software.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub code: &'static str,
    pub message: String,
}

fn malformed(code: &'static str, message: impl Into<String>) -> Malformed {
    Malformed {
        code,
        message: message.into(),
    }
}

/// The encoding a request is written in: `CharacterCodeIdentifier` 1, or a Shift_JIS XML
/// declaration, means Shift_JIS; anything else UTF-8. Both markers are ASCII, so they are found
/// before the bytes are decoded.
pub fn sniff(bytes: &[u8]) -> Encoding {
    let ascii = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
    let compact: String = ascii.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("<charactercodeidentifier>1</charactercodeidentifier>") {
        return Encoding::ShiftJis;
    }
    if compact.contains("<charactercodeidentifier>0</charactercodeidentifier>") {
        return Encoding::Utf8;
    }
    let declared = compact
        .split("?>")
        .next()
        .filter(|d| d.starts_with("<?xml"))
        .unwrap_or("");
    if ["shift_jis", "shift-jis", "sjis", "windows-31j", "cp932"]
        .iter()
        .any(|e| {
            declared.contains(&format!("encoding=\"{e}\""))
                || declared.contains(&format!("encoding='{e}'"))
        })
    {
        Encoding::ShiftJis
    } else {
        Encoding::Utf8
    }
}

/// Decodes and reads a request written in `encoding`.
///
/// # Errors
/// [`Malformed`] when the bytes are not text in that encoding, not well-formed XML, not an
/// `XmlMsg`, or lack a member the check needs.
pub fn parse(bytes: &[u8], encoding: Encoding) -> Result<Request, Malformed> {
    let text = match encoding {
        Encoding::Utf8 => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            std::str::from_utf8(bytes)
                .map_err(|_| malformed("request.encoding", "the request is not valid UTF-8"))?
                .to_owned()
        }
        Encoding::ShiftJis => {
            let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
            if had_errors {
                return Err(malformed(
                    "request.encoding",
                    "the request is not valid Shift_JIS",
                ));
            }
            text.into_owned()
        }
    };
    let request = read_members(&text)?;
    for member in ["InsurerNumber", "InsuredIdentificationNumber", "Birthdate"] {
        if request.search.get(member).is_none_or(String::is_empty) {
            return Err(malformed(
                "request.missing",
                format!("QualificationConfirmSearchInfo/{member} is required"),
            ));
        }
    }
    Ok(request)
}

fn read_members(text: &str) -> Result<Request, Malformed> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut request = Request::default();
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            malformed(
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
                        return Err(malformed(
                            "request.root",
                            format!("the document element is {name}, not XmlMsg"),
                        ));
                    }
                    root_seen = true;
                }
                path.push(name);
            }
            Event::Empty(start) => {
                if path.is_empty() {
                    return Err(malformed("request.root", "the document element is empty"));
                }
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                store(&mut request, &path, &name, String::new());
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|e| malformed("request.xml", format!("bad text: {e}")))?;
                if let Some((name, parents)) = path.split_last() {
                    store(&mut request, parents, name, value.trim().to_owned());
                }
            }
            Event::CData(c) => {
                let value = String::from_utf8_lossy(&c).trim().to_owned();
                if let Some((name, parents)) = path.split_last() {
                    store(&mut request, parents, name, value);
                }
            }
            Event::Eof if path.is_empty() => break,
            Event::Eof => {
                return Err(malformed(
                    "request.xml",
                    format!("the request ends inside {}", path.join("/")),
                ))
            }
            _ => {}
        }
    }
    if !root_seen {
        return Err(malformed(
            "request.root",
            "the request has no XmlMsg element",
        ));
    }
    Ok(request)
}

fn store(request: &mut Request, parents: &[String], name: &str, value: String) {
    let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
    let map = match parents.as_slice() {
        ["XmlMsg", "MessageHeader"] => &mut request.header,
        ["XmlMsg", "MessageBody", "QualificationConfirmSearchInfo"] => &mut request.search,
        _ => return,
    };
    map.entry(name.to_owned())
        .and_modify(|v| v.push_str(&value))
        .or_insert(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <XmlMsg><MessageHeader><QualificationConfirmationDate>20261202</QualificationConfirmationDate>\
        <MedicalInstitutionCode>1312345678</MedicalInstitutionCode></MessageHeader>\
        <MessageBody><QualificationConfirmSearchInfo><InsurerNumber>  138057</InsurerNumber>\
        <InsuredCardSymbol>記号&amp;1</InsuredCardSymbol><InsuredIdentificationNumber>3456</InsuredIdentificationNumber>\
        <Birthdate>19600401</Birthdate></QualificationConfirmSearchInfo></MessageBody></XmlMsg>";

    #[test]
    fn a_request_is_read_by_member() {
        let r = parse(REQUEST.as_bytes(), Encoding::Utf8).unwrap();
        assert_eq!(r.header["MedicalInstitutionCode"], "1312345678");
        assert_eq!(r.search["InsurerNumber"], "138057");
        assert_eq!(r.search["InsuredCardSymbol"], "記号&1");
        assert_eq!(r.search["Birthdate"], "19600401");
    }

    #[test]
    fn shift_jis_is_found_by_identifier_or_declaration() {
        assert_eq!(sniff(REQUEST.as_bytes()), Encoding::Utf8);
        let declared = REQUEST.replace("UTF-8", "Shift_JIS");
        assert_eq!(sniff(declared.as_bytes()), Encoding::ShiftJis);
        let identified = REQUEST.replace(
            "</MedicalInstitutionCode>",
            "</MedicalInstitutionCode><CharacterCodeIdentifier> 1 </CharacterCodeIdentifier>",
        );
        assert_eq!(sniff(identified.as_bytes()), Encoding::ShiftJis);
        let bytes = Encoding::ShiftJis.encode(&identified);
        let r = parse(&bytes, Encoding::ShiftJis).unwrap();
        assert_eq!(r.search["InsuredCardSymbol"], "記号&1");
    }

    #[test]
    fn broken_requests_are_named() {
        let code = |text: &str| parse(text.as_bytes(), Encoding::Utf8).unwrap_err().code;
        assert_eq!(code("<XmlMsg><MessageHeader>"), "request.xml");
        assert_eq!(code("<Other/>"), "request.root");
        assert_eq!(code(""), "request.root");
        assert_eq!(
            code(&REQUEST.replace("<Birthdate>19600401</Birthdate>", "")),
            "request.missing"
        );
        assert_eq!(
            parse(b"\xff\xfe<", Encoding::Utf8).unwrap_err().code,
            "request.encoding"
        );
    }
}
