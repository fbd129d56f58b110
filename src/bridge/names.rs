//! The real system's file names: what the reception software drops in `req` and the name its
//! answer must have in `res`.

/// The requests the bridge answers, by the prefix of their file name.
const KINDS: &[(&str, &str)] = &[("OQSsiquc01req_", "OQSsiquc01res_")];

/// The answer's file name for a request file name, or `None` when the bridge does not handle
/// that name (another kind of request, not `.xml`, or a temporary file of the writer).
pub fn answer_name(request: &str) -> Option<String> {
    let (prefix, answer) = KINDS.iter().find(|(p, _)| request.starts_with(p))?;
    let suffix = request.strip_prefix(prefix)?;
    let stem = suffix.strip_suffix(".xml")?;
    if stem.is_empty() || stem.contains(['/', '\\']) {
        return None;
    }
    Some(format!("{answer}{stem}.xml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_check_is_answered_under_the_matching_name() {
        assert_eq!(
            answer_name("OQSsiquc01req_20261202093000123.xml").as_deref(),
            Some("OQSsiquc01res_20261202093000123.xml")
        );
        assert_eq!(answer_name("OQSsiquc01req_.xml"), None);
        assert_eq!(answer_name("OQSsiquc01req_1.xml.part"), None);
        assert_eq!(answer_name("OQSmuquc01req_1.xml"), None);
        assert_eq!(answer_name("notes.txt"), None);
    }
}
