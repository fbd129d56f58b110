//! One line of an enrolment file: validated column by column into canonical values, then
//! encoded as one line of PostgreSQL's COPY text format for the staging table.
//!
//! The My Number is turned into its person link here and dropped; it never reaches the encoder,
//! an error message or a log line.

use std::collections::BTreeSet;
use std::io::Write;

use chrono::NaiveDate;

use super::columns::{Col, Layout, ALL, ATTRIBUTES};
use super::report::LineError;
use crate::domain::{
    parse_date, Address, BranchNumber, CardClassification, CopayRatio, IndividualNumber,
    InsuredNumber, InsuredSymbol, InsurerNumber, Invalid, KanaName, LimitCategory,
    LimitClassification, LinkKey, LossReason, PersonName, Postcode, Relationship, SelfPayCap, Sex,
    SpecificDisease,
};

/// What a line may do to a coverage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Acquire,
    Lose,
    Update,
}

impl Change {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "acquire" => Some(Change::Acquire),
            "lose" => Some(Change::Lose),
            "update" => Some(Change::Update),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Change::Acquire => "acquire",
            Change::Lose => "lose",
            Change::Update => "update",
        }
    }

    fn required(self) -> &'static [Col] {
        match self {
            Change::Acquire => &[
                Col::IndividualNumber,
                Col::CardClassification,
                Col::Relationship,
                Col::InsuredName,
                Col::Name,
                Col::NameKana,
                Col::Sex,
                Col::BirthDate,
                Col::AcquiredOn,
                Col::CopayRatio,
            ],
            Change::Lose => &[Col::LostOn, Col::LossReason],
            Change::Update => &[Col::EffectiveOn],
        }
    }

    fn forbidden(self, col: Col) -> bool {
        match self {
            Change::Acquire => matches!(col, Col::LostOn | Col::LossReason | Col::EffectiveOn),
            Change::Lose => {
                matches!(
                    col,
                    Col::IndividualNumber | Col::AcquiredOn | Col::EffectiveOn
                ) || ATTRIBUTES.contains(&col)
            }
            Change::Update => matches!(
                col,
                Col::IndividualNumber | Col::AcquiredOn | Col::LostOn | Col::LossReason
            ),
        }
    }
}

/// What every line is checked against besides its own content.
pub struct RowContext<'a> {
    pub link_key: &'a LinkKey,
    /// The insurer numbers the sender owns; `None` for an operator loading from the command line.
    pub owned: Option<&'a BTreeSet<String>>,
    /// Set when the link key's token failed: the load must then fail as a whole (not as a bad
    /// line), and the caller looks here after each line.
    pub key_failure: std::cell::RefCell<Option<anyhow::Error>>,
}

const MAX_FREE_TEXT: usize = 100;

/// Validates one record. On success appends its COPY line to `out`; otherwise returns every
/// problem found on the line and leaves `out` unchanged.
pub fn encode(
    layout: &Layout,
    record: &csv::StringRecord,
    line: u64,
    ctx: &RowContext<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Vec<LineError>> {
    let mut errors = Vec::new();
    let mut fail = |col: Col, kind: &str, message: &str| {
        errors.push(LineError {
            line,
            column: col.name().into(),
            code: format!("{}.{kind}", col.name()),
            message: message.into(),
        });
    };

    let change = match layout.get(record, Col::Change) {
        None => {
            fail(Col::Change, "required", "Say acquire, lose or update.");
            None
        }
        Some(raw) => {
            let parsed = Change::parse(raw);
            if parsed.is_none() {
                fail(
                    Col::Change,
                    "unknown_code",
                    "Must be acquire, lose or update.",
                );
            }
            parsed
        }
    };

    // Canonical value of every column (index as in ALL), validated.
    let mut values: [Option<String>; ALL.len()] = std::array::from_fn(|_| None);
    let mut dates: [Option<NaiveDate>; ALL.len()] = [None; ALL.len()];
    let mut link_hex = None;
    for (i, &col) in ALL.iter().enumerate().skip(1) {
        let Some(raw) = layout.get(record, col) else {
            continue;
        };
        if let Some(change) = change {
            if change.forbidden(col) {
                fail(
                    col,
                    "not_allowed",
                    "This column must be empty for this change.",
                );
                continue;
            }
        }
        if col == Col::IndividualNumber {
            match IndividualNumber::parse(raw) {
                Ok(number) => match number.link(ctx.link_key) {
                    Ok(link) => link_hex = Some(hex::encode(link.as_bytes())),
                    Err(error) => {
                        *ctx.key_failure.borrow_mut() = Some(error);
                        fail(col, "unavailable", "The link key could not be used.");
                    }
                },
                Err(invalid) => fail(col, invalid.kind.as_str(), invalid.message),
            }
            continue;
        }
        match canonical(col, raw) {
            Ok((value, date)) => {
                values[i] = Some(value);
                dates[i] = date;
            }
            Err(invalid) => fail(col, invalid.kind.as_str(), invalid.message),
        }
    }
    let value = |col: Col| values[col.index()].as_deref();
    let date = |col: Col| dates[col.index()];

    for col in [Col::InsurerNumber, Col::Number] {
        if layout.get(record, col).is_none() {
            fail(
                col,
                "required",
                "Every line needs the coverage's insurer number and number.",
            );
        }
    }
    if let Some(change) = change {
        for &col in change.required() {
            if layout.get(record, col).is_none() {
                fail(col, "required", "This change needs this column.");
            }
        }
        if change == Change::Update && ATTRIBUTES.iter().all(|&c| layout.get(record, c).is_none()) {
            fail(
                Col::Change,
                "nothing_to_change",
                "An update must change at least one column.",
            );
        }
        if change == Change::Acquire {
            let elderly = [Col::ElderlyValidFrom, Col::ElderlyValidTo];
            if elderly.iter().any(|&c| value(c).is_some())
                && value(Col::ElderlyCopayRatio).is_none()
            {
                fail(
                    Col::ElderlyCopayRatio,
                    "required",
                    "An elderly recipient certificate needs its copay ratio.",
                );
            }
            let limit = [
                Col::LimitClassification,
                Col::LimitValidFrom,
                Col::LimitValidTo,
            ];
            if limit.iter().any(|&c| value(c).is_some()) && value(Col::LimitCategory).is_none() {
                fail(
                    Col::LimitCategory,
                    "required",
                    "A limit certificate needs its category.",
                );
            }
            let specific = [
                Col::SpecificDiseaseValidFrom,
                Col::SpecificDiseaseValidTo,
                Col::SpecificDiseaseSelfPay,
            ];
            if specific.iter().any(|&c| value(c).is_some()) && value(Col::SpecificDisease).is_none()
            {
                fail(
                    Col::SpecificDisease,
                    "required",
                    "A specific-disease certificate needs its disease category.",
                );
            }
        }
    }
    for (from, to) in [
        (Col::CardValidFrom, Col::CardValidTo),
        (Col::ElderlyValidFrom, Col::ElderlyValidTo),
        (Col::LimitValidFrom, Col::LimitValidTo),
        (Col::SpecificDiseaseValidFrom, Col::SpecificDiseaseValidTo),
    ] {
        if let (Some(a), Some(b)) = (date(from), date(to)) {
            if b < a {
                fail(
                    to,
                    "before_valid_from",
                    "The end date is before the start date.",
                );
            }
        }
    }
    if let Some(insurer) = value(Col::InsurerNumber) {
        if insurer.starts_with("39") && value(Col::Branch).is_some() {
            fail(
                Col::Branch,
                "not_allowed",
                "後期高齢者医療 coverages have no branch number.",
            );
        }
        if let Some(owned) = ctx.owned {
            if !owned.contains(insurer) {
                fail(
                    Col::InsurerNumber,
                    "not_owned",
                    "You may only send lines for your own insurer numbers.",
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let change = change.expect("no errors means the change parsed");

    // COPY text line: line, change, link, then every column after individual_number.
    // Digits need no escaping.
    write!(out, "{line}").expect("writing to a Vec cannot fail");
    out.push(b'\t');
    push_field(out, change.as_str());
    out.push(b'\t');
    match &link_hex {
        Some(hex) => {
            out.extend_from_slice(b"\\\\x");
            out.extend_from_slice(hex.as_bytes());
        }
        None => out.extend_from_slice(b"\\N"),
    }
    for (i, &col) in ALL.iter().enumerate().skip(2) {
        out.push(b'\t');
        match (&values[i], col) {
            (Some(v), _) => push_field(out, v),
            // Key parts are '' when the card shows none, so keys compare with plain equality.
            (None, Col::Symbol | Col::Branch) => {}
            (None, _) => out.extend_from_slice(b"\\N"),
        }
    }
    out.push(b'\n');
    Ok(())
}

/// The canonical text of a column's value (and the date, for date columns).
fn canonical(col: Col, raw: &str) -> Result<(String, Option<NaiveDate>), Invalid> {
    let text = |s: &str| Ok((s.to_owned(), None));
    match col {
        Col::InsurerNumber => text(InsurerNumber::parse(raw)?.as_str()),
        Col::InsurerName => free_text(raw).map(|s| (s, None)),
        Col::Symbol => text(InsuredSymbol::parse(raw)?.as_str()),
        Col::Number => text(InsuredNumber::parse(raw)?.as_str()),
        Col::Branch => text(BranchNumber::parse(raw)?.as_str()),
        Col::CardClassification => text(CardClassification::parse(raw)?.as_str()),
        Col::Relationship => text(Relationship::parse(raw)?.as_str()),
        Col::InsuredName | Col::Name => text(PersonName::parse(raw)?.as_str()),
        Col::NameKana => text(KanaName::parse(raw)?.as_str()),
        Col::Sex => text(Sex::parse(raw)?.as_str()),
        Col::Postcode => text(Postcode::parse(raw)?.as_str()),
        Col::Address => text(Address::parse(raw)?.as_str()),
        Col::LossReason => text(LossReason::parse(raw)?.as_str()),
        Col::CopayRatio | Col::ElderlyCopayRatio => text(CopayRatio::parse(raw)?.as_str()),
        Col::LimitClassification => text(LimitClassification::parse(raw)?.as_str()),
        Col::LimitCategory => text(LimitCategory::parse(raw)?.as_str()),
        Col::SpecificDisease => text(SpecificDisease::parse(raw)?.as_str()),
        Col::SpecificDiseaseSelfPay => Ok((SelfPayCap::parse(raw)?.yen().to_string(), None)),
        date if date.is_date() => {
            let d = parse_date(raw)?;
            // `Display` is YYYY-MM-DD for the years `parse_date` accepts, without parsing a
            // format string per cell.
            Ok((d.to_string(), Some(d)))
        }
        _ => unreachable_column(),
    }
}

fn unreachable_column() -> Result<(String, Option<NaiveDate>), Invalid> {
    Err(Invalid::format("This column is not validated here."))
}

fn free_text(raw: &str) -> Result<String, Invalid> {
    if raw.chars().count() > MAX_FREE_TEXT {
        return Err(Invalid::too_long("At most 100 characters."));
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid::format("Control characters are not allowed."));
    }
    Ok(raw.to_owned())
}

/// Appends a value escaped for COPY text format.
fn push_field(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LinkKey {
        LinkKey::from_bytes(vec![9; 32]).unwrap()
    }

    fn layout() -> Layout {
        Layout::from_header(ALL.iter().map(|c| c.name())).unwrap()
    }

    fn record(pairs: &[(Col, &str)]) -> csv::StringRecord {
        let mut cells = vec![""; ALL.len()];
        for (col, v) in pairs {
            cells[ALL.iter().position(|c| c == col).unwrap()] = v;
        }
        csv::StringRecord::from(cells)
    }

    fn acquire() -> Vec<(Col, &'static str)> {
        vec![
            (Col::Change, "acquire"),
            (Col::IndividualNumber, "983205673214"),
            (Col::InsurerNumber, "33120015"),
            (Col::Symbol, "１２"),
            (Col::Number, "3456"),
            (Col::Branch, "01"),
            (Col::CardClassification, "01"),
            (Col::Relationship, "1"),
            (Col::InsuredName, "架空 太郎"),
            (Col::Name, "架空 太郎"),
            (Col::NameKana, "カクウ タロウ"),
            (Col::Sex, "1"),
            (Col::BirthDate, "1980-04-01"),
            (Col::AcquiredOn, "2020-04-01"),
            (Col::CopayRatio, "030"),
        ]
    }

    fn run(
        pairs: &[(Col, &str)],
        owned: Option<&BTreeSet<String>>,
    ) -> Result<String, Vec<LineError>> {
        let key = key();
        let ctx = RowContext {
            link_key: &key,
            owned,
            key_failure: Default::default(),
        };
        let mut out = Vec::new();
        encode(&layout(), &record(pairs), 2, &ctx, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn codes(result: Result<String, Vec<LineError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.code).collect()
    }

    #[test]
    fn a_valid_acquire_encodes_canonical_values_and_no_my_number() {
        let line = run(&acquire(), None).unwrap();
        assert!(line.starts_with("2\tacquire\t\\\\x"), "{line}");
        assert!(!line.contains("983205673214"));
        assert!(
            line.contains("\t12\t3456\t01\t"),
            "symbol folded to half-width: {line}"
        );
        assert_eq!(line.matches('\t').count(), 35);
        assert!(line.contains("\t1980-04-01\t"), "{line}");
    }

    #[test]
    fn dates_are_written_with_four_digit_years() {
        let (text, date) = canonical(Col::BirthDate, "0050-01-02").unwrap();
        assert_eq!(text, "0050-01-02");
        assert_eq!(date, NaiveDate::from_ymd_opt(50, 1, 2));
    }

    #[test]
    fn a_bad_check_digit_names_the_column_and_hides_the_value() {
        let mut pairs = acquire();
        pairs[1] = (Col::IndividualNumber, "983205673215");
        let errors = run(&pairs, None).unwrap_err();
        assert_eq!(errors[0].code, "individual_number.check_digit");
        assert_eq!(errors[0].column, "individual_number");
        assert!(!format!("{errors:?}").contains("98320567321"));
    }

    #[test]
    fn change_specific_rules() {
        assert_eq!(
            codes(run(
                &[
                    (Col::Change, "update"),
                    (Col::InsurerNumber, "33120015"),
                    (Col::Number, "1")
                ],
                None
            )),
            ["effective_on.required", "change.nothing_to_change"]
        );
        assert_eq!(
            codes(run(
                &[
                    (Col::Change, "lose"),
                    (Col::InsurerNumber, "33120015"),
                    (Col::Number, "1"),
                    (Col::LostOn, "2026-01-01"),
                    (Col::LossReason, "03"),
                    (Col::Name, "架空")
                ],
                None
            )),
            ["name.not_allowed"]
        );
        assert_eq!(
            codes(run(&[(Col::Change, "swap")], None))[0],
            "change.unknown_code"
        );
    }

    #[test]
    fn foreign_insurer_numbers_are_rejected_for_insurers() {
        let owned: BTreeSet<String> = ["06130012".to_string()].into();
        assert!(
            codes(run(&acquire(), Some(&owned))).contains(&"insurer_number.not_owned".to_string())
        );
        let owned: BTreeSet<String> = ["33120015".to_string()].into();
        assert!(run(&acquire(), Some(&owned)).is_ok());
    }

    #[test]
    fn copy_escapes_backslashes_and_tabs() {
        let mut out = Vec::new();
        push_field(&mut out, "a\\b\tc\nd");
        assert_eq!(out, b"a\\\\b\\tc\\nd");
    }
}
