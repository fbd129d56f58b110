//! 医療機関コード: the code of a medical facility, pharmacy or home-nursing station.

use super::{all_ascii_digits, check_digit, Invalid};

/// What a facility is, from the 点数表 (fee schedule) digit of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FacilityKind {
    /// 医科: hospitals and clinics (点数表 1).
    Medical,
    /// 歯科: dental clinics (点数表 3).
    Dental,
    /// 調剤: pharmacies (点数表 4).
    Pharmacy,
    /// 訪問看護: home-nursing stations (点数表 6).
    HomeNursing,
}

impl FacilityKind {
    /// The 点数表 digit of this kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Medical => "1",
            Self::Dental => "3",
            Self::Pharmacy => "4",
            Self::HomeNursing => "6",
        }
    }

    fn from_digit(d: u8) -> Option<Self> {
        match d {
            b'1' => Some(Self::Medical),
            b'3' => Some(Self::Dental),
            b'4' => Some(Self::Pharmacy),
            b'6' => Some(Self::HomeNursing),
            _ => None,
        }
    }
}

canonical_string!(FacilityKind);

/// A facility code (医療機関コード): prefecture (2) + 点数表 (1) + 郡市区 (2) + number (4) +
/// check (1), the check being the Luhn-style rule over the 9 preceding digits.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FacilityCode {
    code: String,
    kind: FacilityKind,
}

impl FacilityCode {
    /// # Errors
    /// `required` when empty, `format` unless 10 ASCII digits, `range` when the prefecture is not
    /// 01-47, `unknown_code` when the 点数表 digit is not 1, 3, 4 or 6, `check_digit` on a mismatch.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the facility code is required"));
        }
        if s.len() != 10 || !all_ascii_digits(s) {
            return Err(Invalid::format("a facility code is 10 digits"));
        }
        let b = s.as_bytes();
        let prefecture = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !(1..=47).contains(&prefecture) {
            return Err(Invalid::range(
                "a facility code starts with a prefecture number from 01 to 47",
            ));
        }
        let kind = FacilityKind::from_digit(b[2]).ok_or(Invalid::unknown_code(
            "the third digit of a facility code must be 1 (medical), 3 (dental), 4 (pharmacy) or 6 (home nursing)",
        ))?;
        if check_digit::luhn(&s[..9]) != b[9] - b'0' {
            return Err(Invalid::check_digit(
                "the facility code's check digit does not match; check for a mistyped digit",
            ));
        }
        Ok(Self {
            code: s.to_owned(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.code
    }

    pub fn kind(&self) -> FacilityKind {
        self.kind
    }

    /// The prefecture number, 1-47.
    pub fn prefecture(&self) -> u8 {
        let b = self.code.as_bytes();
        (b[0] - b'0') * 10 + (b[1] - b'0')
    }
}

canonical_string!(FacilityCode);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_digit::testing::single_substitutions;
    use proptest::prelude::*;

    #[test]
    fn known_good_code() {
        let c = FacilityCode::parse("0110113719").unwrap();
        assert_eq!(c.as_str(), "0110113719");
        assert_eq!(c.kind(), FacilityKind::Medical);
        assert_eq!(c.prefecture(), 1);
    }

    #[test]
    fn kinds_come_from_the_third_digit() {
        // Same body with 点数表 4: 014011371, weighted sum 27, check 3.
        assert_eq!(check_digit::luhn("014011371"), 3);
        assert_eq!(
            FacilityCode::parse("0140113713").unwrap().kind(),
            FacilityKind::Pharmacy
        );
    }

    #[test]
    fn rejects_bad_input_with_the_right_kind() {
        let kind = |s: &str| FacilityCode::parse(s).unwrap_err().kind;
        assert_eq!(kind(""), "required");
        assert_eq!(kind("011011371"), "format");
        assert_eq!(kind("01101137190"), "format");
        assert_eq!(kind("011011371a"), "format");
        assert_eq!(kind("0010113719"), "range"); // prefecture 00
        assert_eq!(kind("4810113719"), "range"); // prefecture 48
        assert_eq!(kind("0120113719"), "unknown_code"); // 点数表 2
        assert_eq!(kind("0110113718"), "check_digit");
    }

    fn valid_code() -> impl Strategy<Value = String> {
        (
            1u8..=47,
            prop::sample::select(vec![1u8, 3, 4, 6]),
            0u32..1_000_000,
        )
            .prop_map(|(pref, kind, rest)| {
                let body = format!("{pref:02}{kind}{rest:06}");
                let check = check_digit::luhn(&body);
                format!("{body}{check}")
            })
    }

    proptest! {
        #[test]
        fn every_single_digit_substitution_is_rejected(valid in valid_code()) {
            prop_assert!(FacilityCode::parse(&valid).is_ok());
            for bad in single_substitutions(&valid) {
                let err = FacilityCode::parse(&bad).unwrap_err();
                // A substitution in the prefecture or 点数表 digit may be caught by those checks
                // first; anywhere else it must be the check digit that catches it.
                if bad[..2] == valid[..2] && bad.as_bytes()[2] == valid.as_bytes()[2] {
                    prop_assert_eq!(err.kind, "check_digit");
                }
            }
        }
    }
}
