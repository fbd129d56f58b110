//! 保険者番号: the number of the insurer that issued a coverage.

use super::{all_ascii_digits, check_digit, Invalid};

/// An insurer number (保険者番号), checked with the Luhn-style rule.
///
/// Employee insurers have 8 digits: 法別 (2) + prefecture (2) + insurer (3) + check (1).
/// 国民健康保険 numbers have no 法別 and are 6 digits. Both shapes are accepted; the canonical
/// form ([`as_str`](Self::as_str)) is always 8 digits, zero-padded as JP Core FHIR writes it, so
/// "131011" and "00131011" are the same insurer. [`display_form`](Self::display_form) gives back
/// the 6 digits printed on a 国保 card.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct InsurerNumber(String);

impl InsurerNumber {
    /// # Errors
    /// `required` when empty, `format` unless 6 or 8 ASCII digits, `check_digit` when the last
    /// digit does not match the rest.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the insurer number is required"));
        }
        if !all_ascii_digits(s) || !(s.len() == 6 || s.len() == 8) {
            return Err(Invalid::format(
                "an insurer number is 8 digits, or 6 for 国民健康保険",
            ));
        }
        let (body, check) = s.split_at(s.len() - 1);
        if check_digit::luhn(body) != check.as_bytes()[0] - b'0' {
            return Err(Invalid::check_digit(
                "the insurer number's check digit does not match; check for a mistyped digit",
            ));
        }
        Ok(Self(format!("{s:0>8}")))
    }

    /// The canonical 8-digit form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form printed on the card: 6 digits for 国民健康保険 (canonical form starting "00"),
    /// otherwise the 8 digits.
    pub fn display_form(&self) -> &str {
        match self.0.strip_prefix("00") {
            Some(six) => six,
            None => &self.0,
        }
    }

    /// The 法別 (scheme) code, or `None` for 国民健康保険, whose numbers have none.
    pub fn houbetsu(&self) -> Option<&str> {
        if self.0.starts_with("00") {
            None
        } else {
            Some(&self.0[..2])
        }
    }

    /// True for 後期高齢者医療 (法別 39), whose cards carry no branch number.
    pub fn is_kouki(&self) -> bool {
        self.houbetsu() == Some("39")
    }
}

canonical_string!(InsurerNumber);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_digit::testing::{luhn_valid, single_substitutions};
    use proptest::prelude::*;

    #[test]
    fn accepts_known_good_numbers() {
        let n = InsurerNumber::parse("33120015").unwrap();
        assert_eq!(n.as_str(), "33120015");
        assert_eq!(n.display_form(), "33120015");
        assert_eq!(n.houbetsu(), Some("33"));
        assert!(!n.is_kouki());

        let kokuho = InsurerNumber::parse("131011").unwrap();
        assert_eq!(kokuho.as_str(), "00131011");
        assert_eq!(kokuho.display_form(), "131011");
        assert_eq!(kokuho.houbetsu(), None);
        assert_eq!(kokuho, InsurerNumber::parse("00131011").unwrap());
        assert_eq!(kokuho.to_string(), "00131011");
    }

    #[test]
    fn recognises_kouki() {
        // 法別 39, prefecture 13, insurer 001: body 3913001, check 8.
        assert_eq!(check_digit::luhn("3913001"), 8);
        assert!(InsurerNumber::parse("39130018").unwrap().is_kouki());
    }

    #[test]
    fn rejects_bad_input_with_the_right_kind() {
        let kind = |s: &str| InsurerNumber::parse(s).unwrap_err().kind;
        assert_eq!(kind(""), "required");
        assert_eq!(kind("3312001"), "format"); // 7 digits
        assert_eq!(kind("331200150"), "format"); // 9 digits
        assert_eq!(kind("3312001a"), "format");
        assert_eq!(kind(" 33120015"), "format");
        assert_eq!(kind("３３１２００１５"), "format"); // full-width digits
        assert_eq!(kind("33120016"), "check_digit");
        assert_eq!(kind("131012"), "check_digit");
    }

    #[test]
    fn serializes_as_the_canonical_string() {
        let n = InsurerNumber::parse("131011").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"00131011\"");
    }

    proptest! {
        #[test]
        fn every_single_digit_substitution_is_rejected(valid in luhn_valid(7)) {
            prop_assert!(InsurerNumber::parse(&valid).is_ok());
            for bad in single_substitutions(&valid) {
                prop_assert_eq!(InsurerNumber::parse(&bad).unwrap_err().kind, "check_digit");
            }
        }
    }
}
