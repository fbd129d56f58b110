//! The columns of an enrolment file and which change may use which.

use super::report::LineError;

/// Every column onshi knows; a header naming anything else rejects the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    Change,
    IndividualNumber,
    InsurerNumber,
    InsurerName,
    Symbol,
    Number,
    Branch,
    CardClassification,
    Relationship,
    InsuredName,
    Name,
    NameKana,
    Sex,
    BirthDate,
    Postcode,
    Address,
    AcquiredOn,
    LostOn,
    LossReason,
    EffectiveOn,
    CopayRatio,
    CardIssuedOn,
    CardValidFrom,
    CardValidTo,
    ElderlyCopayRatio,
    ElderlyValidFrom,
    ElderlyValidTo,
    LimitClassification,
    LimitCategory,
    LimitValidFrom,
    LimitValidTo,
}

pub const ALL: [Col; 31] = [
    Col::Change,
    Col::IndividualNumber,
    Col::InsurerNumber,
    Col::InsurerName,
    Col::Symbol,
    Col::Number,
    Col::Branch,
    Col::CardClassification,
    Col::Relationship,
    Col::InsuredName,
    Col::Name,
    Col::NameKana,
    Col::Sex,
    Col::BirthDate,
    Col::Postcode,
    Col::Address,
    Col::AcquiredOn,
    Col::LostOn,
    Col::LossReason,
    Col::EffectiveOn,
    Col::CopayRatio,
    Col::CardIssuedOn,
    Col::CardValidFrom,
    Col::CardValidTo,
    Col::ElderlyCopayRatio,
    Col::ElderlyValidFrom,
    Col::ElderlyValidTo,
    Col::LimitClassification,
    Col::LimitCategory,
    Col::LimitValidFrom,
    Col::LimitValidTo,
];

/// The attribute columns an `update` may change (and an `acquire` sets).
pub const ATTRIBUTES: [Col; 20] = [
    Col::CardClassification,
    Col::Relationship,
    Col::InsuredName,
    Col::Name,
    Col::NameKana,
    Col::Sex,
    Col::BirthDate,
    Col::Postcode,
    Col::Address,
    Col::CopayRatio,
    Col::CardIssuedOn,
    Col::CardValidFrom,
    Col::CardValidTo,
    Col::ElderlyCopayRatio,
    Col::ElderlyValidFrom,
    Col::ElderlyValidTo,
    Col::LimitClassification,
    Col::LimitCategory,
    Col::LimitValidFrom,
    Col::LimitValidTo,
];

impl Col {
    pub fn name(self) -> &'static str {
        match self {
            Col::Change => "change",
            Col::IndividualNumber => "individual_number",
            Col::InsurerNumber => "insurer_number",
            Col::InsurerName => "insurer_name",
            Col::Symbol => "symbol",
            Col::Number => "number",
            Col::Branch => "branch",
            Col::CardClassification => "card_classification",
            Col::Relationship => "relationship",
            Col::InsuredName => "insured_name",
            Col::Name => "name",
            Col::NameKana => "name_kana",
            Col::Sex => "sex",
            Col::BirthDate => "birth_date",
            Col::Postcode => "postcode",
            Col::Address => "address",
            Col::AcquiredOn => "acquired_on",
            Col::LostOn => "lost_on",
            Col::LossReason => "loss_reason",
            Col::EffectiveOn => "effective_on",
            Col::CopayRatio => "copay_ratio",
            Col::CardIssuedOn => "card_issued_on",
            Col::CardValidFrom => "card_valid_from",
            Col::CardValidTo => "card_valid_to",
            Col::ElderlyCopayRatio => "elderly_copay_ratio",
            Col::ElderlyValidFrom => "elderly_valid_from",
            Col::ElderlyValidTo => "elderly_valid_to",
            Col::LimitClassification => "limit_classification",
            Col::LimitCategory => "limit_category",
            Col::LimitValidFrom => "limit_valid_from",
            Col::LimitValidTo => "limit_valid_to",
        }
    }

    /// Whether the column holds a date (`YYYY-MM-DD`).
    pub fn is_date(self) -> bool {
        matches!(
            self,
            Col::BirthDate
                | Col::AcquiredOn
                | Col::LostOn
                | Col::EffectiveOn
                | Col::CardIssuedOn
                | Col::CardValidFrom
                | Col::CardValidTo
                | Col::ElderlyValidFrom
                | Col::ElderlyValidTo
                | Col::LimitValidFrom
                | Col::LimitValidTo
        )
    }

    /// The column's place in [`ALL`], which lists the variants in declaration order (a test
    /// holds the two together): a cast, because `Layout::get` asks for it for every cell.
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Where each known column sits in the file's records.
#[derive(Debug)]
pub struct Layout {
    positions: [Option<usize>; 31],
}

impl Layout {
    /// Reads the header. Unknown, duplicate or missing required columns reject the file.
    ///
    /// # Errors
    /// One [`LineError`] (line 1) per problem.
    pub fn from_header<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Vec<LineError>> {
        let mut positions = [None; 31];
        let mut errors = Vec::new();
        for (i, raw) in names.into_iter().enumerate() {
            let name = raw.trim_start_matches('\u{feff}').trim();
            match ALL.iter().find(|c| c.name() == name) {
                Some(col) if positions[col.index()].is_some() => errors.push(header_error(
                    name,
                    "column.duplicate",
                    "This column appears twice in the header.",
                )),
                Some(col) => positions[col.index()] = Some(i),
                None => errors.push(header_error(
                    name,
                    "column.unknown",
                    "Unknown column; see the enrolment file layout in the API description.",
                )),
            }
        }
        for required in [Col::Change, Col::InsurerNumber, Col::Number] {
            if positions[required.index()].is_none() {
                errors.push(header_error(
                    required.name(),
                    "column.missing",
                    "The header must name this column.",
                ));
            }
        }
        if errors.is_empty() {
            Ok(Layout { positions })
        } else {
            Err(errors)
        }
    }

    /// The raw value of a column in a record; absent columns and empty cells are `None`.
    pub fn get<'r>(&self, record: &'r csv::StringRecord, col: Col) -> Option<&'r str> {
        self.positions[col.index()]
            .and_then(|i| record.get(i))
            .filter(|v| !v.is_empty())
    }
}

fn header_error(column: &str, code: &str, message: &str) -> LineError {
    LineError {
        line: 1,
        column: column.chars().take(64).collect(),
        code: code.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn all_is_in_declaration_order() {
        for (i, col) in ALL.iter().enumerate() {
            assert_eq!(col.index(), i, "{col:?}");
        }
    }

    #[test]
    fn header_problems_are_each_reported() {
        let errors = Layout::from_header(["change", "nmber", "change"]).unwrap_err();
        let codes: Vec<_> = errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "column.unknown",
                "column.duplicate",
                "column.missing",
                "column.missing"
            ]
        );
    }

    #[test]
    fn a_bom_and_any_order_are_accepted() {
        let layout = Layout::from_header(["\u{feff}number", "insurer_number", "change"]).unwrap();
        let record = csv::StringRecord::from(vec!["1", "33120015", "lose"]);
        assert_eq!(layout.get(&record, Col::Change), Some("lose"));
        assert_eq!(layout.get(&record, Col::Symbol), None);
    }
}
