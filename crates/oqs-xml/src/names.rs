//! The real system's file names: what the reception software drops in `req`, the name its
//! answer must have in `res`, and the names of the `face` files.

/// The kinds of request the bridge answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `OQSsiquc01req_`: one check by insurance number.
    Single,
    /// `OQSmuquc01req_`: a bulk inquiry's upload.
    BulkUpload,
    /// `OQSmuquc02req_`: a bulk inquiry's download request (by reception number).
    BulkDownload,
    /// `OQSsiimm01req_`: one 照会番号 to register.
    RegisterOne,
    /// `OQSmuimm01req_`: several 照会番号 to register.
    RegisterMany,
}

impl Kind {
    /// The kind's name in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Single => "single",
            Kind::BulkUpload => "bulk_upload",
            Kind::BulkDownload => "bulk_download",
            Kind::RegisterOne | Kind::RegisterMany => "reference_number",
        }
    }
}

/// Request prefix, answer prefix, kind.
const KINDS: &[(&str, &str, Kind)] = &[
    ("OQSsiquc01req_", "OQSsiquc01res_", Kind::Single),
    ("OQSmuquc01req_", "OQSmuquc01res_", Kind::BulkUpload),
    ("OQSmuquc02req_", "OQSmuquc02res_", Kind::BulkDownload),
    ("OQSsiimm01req_", "OQSsiimm01res_", Kind::RegisterOne),
    ("OQSmuimm01req_", "OQSmuimm01res_", Kind::RegisterMany),
];

/// The kind and the answer's file name for a request file name, or `None` when that name is
/// not answered (another kind of request, not `.xml`, or a temporary file of the writer).
pub fn answer_name(request: &str) -> Option<(Kind, String)> {
    let (prefix, answer, kind) = KINDS.iter().find(|(p, _, _)| request.starts_with(p))?;
    let stem = request.strip_prefix(prefix)?.strip_suffix(".xml")?;
    if stem.is_empty() || stem.contains(['/', '\\']) {
        return None;
    }
    Some((*kind, format!("{answer}{stem}.xml")))
}

/// The prefix of every `face` file: a single check's answer, from the card reader.
pub const FACE_PREFIX: &str = "OQSsiquc01res_face_";

/// A `face` file's name: the prefix, the facility code (10 digits, zeros when unknown), a
/// 17-digit serial and the time written (`yyyyMMddHHmmss`).
pub fn face_name(facility_code: &str, serial: u64, written_at: &str) -> String {
    let facility = if facility_code.len() == 10 && facility_code.bytes().all(|b| b.is_ascii_digit())
    {
        facility_code
    } else {
        "0000000000"
    };
    format!("{FACE_PREFIX}{facility}{serial:017}_{written_at}.xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_is_answered_under_the_matching_name() {
        let answer = |name: &str| answer_name(name);
        assert_eq!(
            answer("OQSsiquc01req_20261202093000123.xml"),
            Some((Kind::Single, "OQSsiquc01res_20261202093000123.xml".into()))
        );
        assert_eq!(
            answer("OQSmuquc01req_1.xml"),
            Some((Kind::BulkUpload, "OQSmuquc01res_1.xml".into()))
        );
        assert_eq!(
            answer("OQSmuquc02req_1.xml"),
            Some((Kind::BulkDownload, "OQSmuquc02res_1.xml".into()))
        );
        assert_eq!(
            answer("OQSsiimm01req_1.xml"),
            Some((Kind::RegisterOne, "OQSsiimm01res_1.xml".into()))
        );
        assert_eq!(
            answer("OQSmuimm01req_1.xml"),
            Some((Kind::RegisterMany, "OQSmuimm01res_1.xml".into()))
        );
        assert_eq!(answer("OQSsiquc01req_.xml"), None);
        assert_eq!(answer("OQSsiquc01req_1.xml.part"), None);
        assert_eq!(answer("OQSmuonq01req_1.xml"), None);
        assert_eq!(answer("OQSsiquc01res_1.xml"), None);
        assert_eq!(answer("notes.txt"), None);
    }

    #[test]
    fn face_names_have_the_facility_a_serial_and_the_time() {
        assert_eq!(
            face_name("1312345678", 20261202093000123, "20261202093000"),
            "OQSsiquc01res_face_131234567820261202093000123_20261202093000.xml"
        );
        assert!(face_name("13", 1, "20261202093000")
            .starts_with("OQSsiquc01res_face_000000000000000000000000001_"));
    }
}
