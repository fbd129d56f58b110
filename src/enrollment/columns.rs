//! The columns of an enrolment file and which change may use which.

use super::report::LineError;

pub use crate::domain::enrolment_columns::{Col, ALL, ATTRIBUTES};

/// Where each known column sits in the file's records.
#[derive(Debug)]
pub struct Layout {
    positions: [Option<usize>; ALL.len()],
}

impl Layout {
    /// Reads the header. Unknown, duplicate or missing required columns reject the file.
    ///
    /// # Errors
    /// One [`LineError`] (line 1) per problem.
    pub fn from_header<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Vec<LineError>> {
        let mut positions = [None; ALL.len()];
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
