//! Numbers of public-expense (公費) medical assistance: the payer and the recipient.

use super::{all_ascii_digits, check_digit, Invalid};

/// Validates `s` as `len` ASCII digits whose last digit is the Luhn check of the others.
fn luhn_digits(
    s: &str,
    len: usize,
    required: &'static str,
    format: &'static str,
    check: &'static str,
) -> Result<(), Invalid> {
    if s.is_empty() {
        return Err(Invalid::required(required));
    }
    if s.len() != len || !all_ascii_digits(s) {
        return Err(Invalid::format(format));
    }
    let (body, digit) = s.split_at(len - 1);
    if check_digit::luhn(body) != digit.as_bytes()[0] - b'0' {
        return Err(Invalid::check_digit(check));
    }
    Ok(())
}

/// A public-expense payer number (公費負担者番号): 法別 (2) + prefecture (2) + agency (3) + check
/// (1), checked with the Luhn-style rule.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PublicExpensePayerNumber(String);

impl PublicExpensePayerNumber {
    /// # Errors
    /// `required` when empty, `format` unless 8 ASCII digits, `check_digit` on a mismatch.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        luhn_digits(
            s,
            8,
            "the public-expense payer number is required",
            "a public-expense payer number is 8 digits",
            "the payer number's check digit does not match; check for a mistyped digit",
        )?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 法別 code, e.g. "12" 生活保護, "21" 精神通院, "54" 指定難病.
    pub fn houbetsu(&self) -> &str {
        &self.0[..2]
    }
}

/// A public-expense recipient number (受給者番号): 6 digits + check digit.
///
/// The public sources do not confirm the check-digit rule of recipient numbers; onshi assumes the
/// same Luhn-style rule as payer numbers. If real numbers turn out to fail it, this is the one
/// place to change.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PublicExpenseRecipientNumber(String);

impl PublicExpenseRecipientNumber {
    /// # Errors
    /// `required` when empty, `format` unless 7 ASCII digits, `check_digit` on a mismatch.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        luhn_digits(
            s,
            7,
            "the public-expense recipient number is required",
            "a public-expense recipient number is 7 digits",
            "the recipient number's check digit does not match; check for a mistyped digit",
        )?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

canonical_string!(PublicExpensePayerNumber, PublicExpenseRecipientNumber);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_digit::testing::{luhn_valid, single_substitutions};
    use proptest::prelude::*;

    #[test]
    fn payer_known_answers() {
        let p = PublicExpensePayerNumber::parse("54016027").unwrap();
        assert_eq!(p.as_str(), "54016027");
        assert_eq!(p.houbetsu(), "54");
        let kind = |s: &str| PublicExpensePayerNumber::parse(s).unwrap_err().kind;
        assert_eq!(kind(""), "required");
        assert_eq!(kind("5401602"), "format");
        assert_eq!(kind("540160270"), "format");
        assert_eq!(kind("5401602x"), "format");
        assert_eq!(kind("54016028"), "check_digit");
    }

    #[test]
    fn recipient_known_answers() {
        // Body 123456 by hand: 6*2=12 -> 1+2=3, 5, 4*2=8, 3, 2*2=4, 1; sum 24, check 6.
        assert_eq!(
            PublicExpenseRecipientNumber::parse("1234566")
                .unwrap()
                .as_str(),
            "1234566"
        );
        let kind = |s: &str| PublicExpenseRecipientNumber::parse(s).unwrap_err().kind;
        assert_eq!(kind(""), "required");
        assert_eq!(kind("123456"), "format");
        assert_eq!(kind("12345660"), "format");
        assert_eq!(kind("1234567"), "check_digit");
    }

    proptest! {
        #[test]
        fn payer_substitutions_are_rejected(valid in luhn_valid(7)) {
            prop_assert!(PublicExpensePayerNumber::parse(&valid).is_ok());
            for bad in single_substitutions(&valid) {
                prop_assert_eq!(PublicExpensePayerNumber::parse(&bad).unwrap_err().kind, "check_digit");
            }
        }

        #[test]
        fn recipient_substitutions_are_rejected(valid in luhn_valid(6)) {
            prop_assert!(PublicExpenseRecipientNumber::parse(&valid).is_ok());
            for bad in single_substitutions(&valid) {
                prop_assert_eq!(
                    PublicExpenseRecipientNumber::parse(&bad).unwrap_err().kind,
                    "check_digit"
                );
            }
        }
    }
}
