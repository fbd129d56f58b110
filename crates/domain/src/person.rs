//! The registered facts about a person: names, postcode, address, dates.
//!
//! These are checked loosely on purpose: they are compared against the resident registry by the
//! insurer, not by onshi, so onshi only refuses what can never be right (empty, control
//! characters, absurd length, wrong script for a kana reading).

use chrono::NaiveDate;

use super::Invalid;

/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest address, in characters.
const MAX_ADDRESS_CHARS: usize = 200;

/// Checks a free-text field: non-empty, at most `max` characters, no control characters.
fn free_text(
    s: &str,
    max: usize,
    required: &'static str,
    too_long: &'static str,
    format: &'static str,
) -> Result<String, Invalid> {
    if s.is_empty() {
        return Err(Invalid::required(required));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::format(format));
    }
    if s.chars().count() > max {
        return Err(Invalid::too_long(too_long));
    }
    Ok(s.to_owned())
}

/// A name as registered, usually in kanji (氏名).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PersonName(String);

impl PersonName {
    /// # Errors
    /// `required` when empty, `format` on a control character, `too_long` past 100 characters.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        free_text(
            s,
            MAX_NAME_CHARS,
            "the name is required",
            "a name is at most 100 characters",
            "a name cannot contain control characters such as tabs or line breaks",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The katakana reading of a name (カナ氏名), full- or half-width, with spaces and ー.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KanaName(String);

impl KanaName {
    /// # Errors
    /// `required` when empty, `format` on anything but katakana, ー and spaces (or only spaces),
    /// `too_long` past 100 characters.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the kana name is required"));
        }
        let is_kana = |c: char| {
            matches!(c,
                '\u{30A1}'..='\u{30FA}' // full-width katakana ァ-ヺ
                | '\u{30FC}'            // ー
                | '\u{FF66}'..='\u{FF9F}' // half-width katakana, ｰ and sound marks
            )
        };
        let is_space = |c: char| c == ' ' || c == '\u{3000}';
        if !s.chars().all(|c| is_kana(c) || is_space(c)) || !s.chars().any(is_kana) {
            return Err(Invalid::format(
                "a kana name is written in katakana, with spaces between family and given name",
            ));
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::too_long("a kana name is at most 100 characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Japanese postcode (郵便番号), canonical form "123-4567".
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Postcode(String);

impl Postcode {
    /// Accepts "1234567" or "123-4567".
    ///
    /// # Errors
    /// `required` when empty, `format` for any other shape.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the postcode is required"));
        }
        let b = s.as_bytes();
        let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
        let canonical = match b.len() {
            7 if digits(b) => format!("{}-{}", &s[..3], &s[3..]),
            8 if b[3] == b'-' && digits(&b[..3]) && digits(&b[4..]) => s.to_owned(),
            _ => {
                return Err(Invalid::format(
                    "a postcode is 7 digits, as 1234567 or 123-4567",
                ))
            }
        };
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An address as registered (住所).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Address(String);

impl Address {
    /// # Errors
    /// `required` when empty, `format` on a control character, `too_long` past 200 characters.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        free_text(
            s,
            MAX_ADDRESS_CHARS,
            "the address is required",
            "an address is at most 200 characters",
            "an address cannot contain control characters such as tabs or line breaks",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

canonical_string!(PersonName, KanaName, Postcode, Address);

/// Parses a date written strictly as YYYY-MM-DD.
///
/// chrono's own parser accepts single-digit months and days; the wire format does not, so the
/// shape is checked first.
///
/// # Errors
/// `required` when empty, `format` for any other shape or a day that does not exist.
pub fn parse_date(s: &str) -> Result<NaiveDate, Invalid> {
    if s.is_empty() {
        return Err(Invalid::required("the date is required"));
    }
    const FORMAT: Invalid = Invalid::format("a date is written YYYY-MM-DD, e.g. 2024-04-01");
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(FORMAT);
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().map_err(|_| FORMAT);
    let year = i32::try_from(num(0..4)?).map_err(|_| FORMAT)?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?).ok_or(FORMAT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert_eq!(
            PersonName::parse("架空 太郎").unwrap().as_str(),
            "架空 太郎"
        );
        assert_eq!(PersonName::parse("").unwrap_err().kind, "required");
        assert_eq!(PersonName::parse("太郎\n").unwrap_err().kind, "format");
        assert!(PersonName::parse(&"あ".repeat(100)).is_ok());
        assert_eq!(
            PersonName::parse(&"あ".repeat(101)).unwrap_err().kind,
            "too_long"
        );
    }

    #[test]
    fn kana_names() {
        assert!(KanaName::parse("カクウ タロウ").is_ok());
        assert!(KanaName::parse("ｶｸｳ ﾀﾛｳ").is_ok());
        assert!(KanaName::parse("ヴァーレ　ジョー").is_ok());
        assert_eq!(KanaName::parse("").unwrap_err().kind, "required");
        assert_eq!(KanaName::parse("   ").unwrap_err().kind, "format");
        assert_eq!(KanaName::parse("かくう").unwrap_err().kind, "format"); // hiragana
        assert_eq!(KanaName::parse("架空").unwrap_err().kind, "format");
        assert_eq!(KanaName::parse("TARO").unwrap_err().kind, "format");
        assert_eq!(
            KanaName::parse(&"ア".repeat(101)).unwrap_err().kind,
            "too_long"
        );
    }

    #[test]
    fn postcodes() {
        assert_eq!(Postcode::parse("1000001").unwrap().as_str(), "100-0001");
        assert_eq!(
            Postcode::parse("100-0001").unwrap(),
            Postcode::parse("1000001").unwrap()
        );
        assert_eq!(Postcode::parse("").unwrap_err().kind, "required");
        for bad in [
            "100001",
            "10000011",
            "1000-001",
            "100_0001",
            "１００-０００１",
            "100-000a",
        ] {
            assert_eq!(Postcode::parse(bad).unwrap_err().kind, "format", "{bad}");
        }
    }

    #[test]
    fn addresses() {
        assert!(Address::parse("東京都架空区緑町1-2-3").is_ok());
        assert_eq!(Address::parse("").unwrap_err().kind, "required");
        assert_eq!(Address::parse("a\tb").unwrap_err().kind, "format");
        assert_eq!(
            Address::parse(&"町".repeat(201)).unwrap_err().kind,
            "too_long"
        );
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("2024-02-29"),
            Ok(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
        assert_eq!(parse_date("").unwrap_err().kind, "required");
        for bad in [
            "2023-02-29",
            "2024-2-29",
            "2024/02/29",
            "20240229",
            "2024-13-01",
            "2024-02-29 ",
            "+024-02-29",
        ] {
            assert_eq!(parse_date(bad).unwrap_err().kind, "format", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_real_date_round_trips(days in 0i64..100_000) {
            let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(days);
            prop_assert_eq!(parse_date(&d.format("%Y-%m-%d").to_string()), Ok(d));
        }
    }
}
