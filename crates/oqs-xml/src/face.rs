//! The `face` folder: the card reader's results, each a single-check answer file with
//! `ReferenceClassification` 1 (the card was read), as reception software picks them up.
//!
//! A file is named `OQSsiquc01res_face_<facility><serial>_<yyyyMMddHHmmss>.xml` (see
//! [`crate::names::face_name`]); the serial is the time to the millisecond, counted up when
//! two checks write in the same millisecond, so no file ever replaces another. It appears
//! whole or not at all (temporary name, sync, link, sync of the folder).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::answer::{self, Header, Reference};
use crate::encoding::Encoding;
use crate::files::write_new_atomically;
use crate::names::face_name;

/// Writes a card check's answer (the body `POST /v1/eligibility/card` answers) as a new file
/// in `dir`, in `encoding`; returns its path. The header's facility code and date of care are
/// those the answer's proof of check names.
///
/// # Errors
/// The folder cannot be written (or a free name is not found after many tries).
pub fn write(dir: &Path, answer: &Value, encoding: Encoding) -> io::Result<PathBuf> {
    let claims = answer["proof"]
        .as_str()
        .and_then(proof_claims)
        .unwrap_or(Value::Null);
    let facility = claims["facility_code"].as_str().unwrap_or("").to_owned();
    let mut request = HashMap::new();
    if let Some(date) = claims["date_of_care"].as_str() {
        request.insert(
            "QualificationConfirmationDate".to_owned(),
            date.replace('-', ""),
        );
    }
    if !facility.is_empty() {
        request.insert("MedicalInstitutionCode".to_owned(), facility.clone());
    }
    let (written_at, millis) = crate::time::japan(SystemTime::now());
    let header = Header {
        request: &request,
        encoding,
        executed_at: &written_at,
    };
    let bytes = answer::single(&header, Reference::Card, answer);
    let mut serial: u64 = format!("{written_at}{millis:03}").parse().unwrap_or(0);
    for _ in 0..1000 {
        let name = face_name(&facility, serial, &written_at);
        match write_new_atomically(dir, &name, &bytes) {
            Ok(()) => return Ok(dir.join(name)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => serial += 1,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free face file name in {}", dir.display()),
    ))
}

/// The payload of a compact JWS, unverified: only to label the file (the proof itself is
/// checked by whoever relies on it).
fn proof_claims(proof: &str) -> Option<Value> {
    let payload = proof.split('.').nth(1)?;
    serde_json::from_slice(&base64url(payload)?).ok()
}

/// Decodes unpadded base64url.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        bits = (bits << 6) | value(c)?;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(((bits >> count) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64url_decodes() {
        assert_eq!(base64url("eyJhIjoxfQ").unwrap(), br#"{"a":1}"#);
        assert_eq!(base64url("_-8").unwrap(), [0xff, 0xef]);
        assert_eq!(base64url("a*b"), None);
    }

    #[test]
    fn each_check_gets_its_own_whole_file() {
        let dir = std::env::temp_dir().join(format!("oqs-xml-face-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // {"facility_code":"1312345678","date_of_care":"2026-12-02"}
        let payload =
            "eyJmYWNpbGl0eV9jb2RlIjoiMTMxMjM0NTY3OCIsImRhdGVfb2ZfY2FyZSI6IjIwMjYtMTItMDIifQ";
        let answer = json!({"validity": 1, "advisories": [], "proof": format!("e30.{payload}.sig"),
                            "coverage": {"name": "架空 花子", "insurer_number": "06139991"}});
        let a = write(&dir, &answer, Encoding::ShiftJis).unwrap();
        let b = write(&dir, &answer, Encoding::ShiftJis).unwrap();
        assert_ne!(a, b);
        for path in [&a, &b] {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("OQSsiquc01res_face_1312345678"), "{name}");
            let text = Encoding::ShiftJis
                .decode(&std::fs::read(path).unwrap())
                .unwrap();
            assert!(text.contains("<ReferenceClassification>1<"), "{text}");
            assert!(
                text.contains("<QualificationConfirmationDate>20261202<"),
                "{text}"
            );
            assert!(text.contains("<Name>架空 花子</Name>"), "{text}");
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
