//! The key printed on an insurance card: 記号 (symbol), 番号 (number) and 枝番 (branch).
//!
//! Symbol and number follow the card rules: at most 38 bytes in the legacy card encoding
//! (half-width 1 byte, full-width 2), alphanumeric or kana/kanji but never mixed widths, and
//! never a full-width space. Purely alphanumeric values are folded to half-width ASCII, because
//! insurers and facilities type "１２" and "12" for the same card and both must find it.

use super::{Fault, Invalid};

/// Longest symbol or number, in bytes of the legacy card encoding.
const MAX_LEGACY_BYTES: usize = 38;

/// What one character of a symbol or number is.
enum CardChar {
    /// Half-width ASCII letter or digit.
    HalfAlnum,
    /// Full-width letter or digit (U+FF10-FF19, FF21-FF3A, FF41-FF5A).
    FullAlnum,
    /// Full-width kana, kanji or symbol.
    FullOther,
}

fn classify(c: char) -> Result<CardChar, Invalid> {
    match c {
        '0'..='9' | 'A'..='Z' | 'a'..='z' => Ok(CardChar::HalfAlnum),
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            Ok(CardChar::FullAlnum)
        }
        '\u{3000}' => Err(Invalid {
            kind: Fault::FullWidthSpace,
            message: "a card symbol or number never contains a full-width space; remove it",
        }),
        // CJK punctuation (、。〃々〆「」…), hiragana, katakana including ・ and ー,
        // CJK ideographs and compatibility ideographs, full-width forms (！－（）…) and
        // full-width signs (￠￡￥…).
        '\u{3001}'..='\u{303F}'
        | '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF01}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}' => Ok(CardChar::FullOther),
        _ => Err(Invalid::format(
            "a card symbol or number has only letters, digits, kana and kanji as printed on the card",
        )),
    }
}

/// Validates a symbol or number and returns its canonical form.
fn parse_card_text(s: &str, required: &'static str) -> Result<String, Invalid> {
    if s.is_empty() {
        return Err(Invalid::required(required));
    }
    let mut legacy_bytes = 0usize;
    let (mut half, mut other) = (false, false);
    for c in s.chars() {
        match classify(c)? {
            CardChar::HalfAlnum => {
                legacy_bytes += 1;
                half = true;
            }
            CardChar::FullAlnum => legacy_bytes += 2,
            CardChar::FullOther => {
                legacy_bytes += 2;
                other = true;
            }
        }
    }
    if half && other {
        return Err(Invalid {
            kind: Fault::MixedWidth,
            message: "when a card symbol or number has kana or kanji, its letters and digits must be full-width too",
        });
    }
    if legacy_bytes > MAX_LEGACY_BYTES {
        return Err(Invalid::too_long(
            "a card symbol or number is at most 38 bytes (19 full-width or 38 half-width characters)",
        ));
    }
    if other {
        Ok(s.to_owned())
    } else {
        // Only alphanumerics: fold full-width to ASCII. The full-width block is the ASCII block
        // shifted by U+FEE0, so the subtraction always lands on an ASCII letter or digit.
        Ok(s.chars()
            .map(|c| match c {
                '\u{FF10}'..='\u{FF5A}' => {
                    char::from_u32(c as u32 - 0xFEE0).expect("U+FF10..FF5A minus FEE0 is ASCII")
                }
                _ => c,
            })
            .collect())
    }
}

/// The 記号 (symbol) on an insurance card. Some cards have none: the edge uses
/// `Option<InsuredSymbol>` for that, and an empty string is rejected as `required`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct InsuredSymbol(String);

impl InsuredSymbol {
    /// # Errors
    /// `required` when empty; `format`, `full_width_space`, `mixed_width` or `too_long` when the
    /// card rules above are broken.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        parse_card_text(
            s,
            "an absent card symbol is sent as no value, not as an empty string",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 番号 (number) on an insurance card; always present.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct InsuredNumber(String);

impl InsuredNumber {
    /// # Errors
    /// As [`InsuredSymbol::parse`].
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        parse_card_text(s, "the card number is required").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 枝番 (branch number) that tells apart persons sharing one card key: two digits 00-99.
/// Absent (not "00") when the card shows none and for 後期高齢者医療; the edge uses
/// `Option<BranchNumber>` for that.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BranchNumber(String);

impl BranchNumber {
    /// # Errors
    /// `required` when empty, `format` unless exactly two ASCII digits.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required(
                "an absent branch number is sent as no value, not as an empty string",
            ));
        }
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::format("a branch number is two digits, 00 to 99"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

canonical_string!(InsuredSymbol, InsuredNumber, BranchNumber);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind(s: &str) -> &'static str {
        InsuredNumber::parse(s).unwrap_err().kind.as_str()
    }

    #[test]
    fn accepts_card_forms() {
        assert_eq!(InsuredNumber::parse("1234").unwrap().as_str(), "1234");
        assert_eq!(InsuredSymbol::parse("AB12").unwrap().as_str(), "AB12");
        assert_eq!(
            InsuredSymbol::parse("東京１２").unwrap().as_str(),
            "東京１２"
        );
        assert_eq!(
            InsuredSymbol::parse("あいう・ー－").unwrap().as_str(),
            "あいう・ー－"
        );
        assert_eq!(InsuredSymbol::parse("ｱ").unwrap_err().kind, "format"); // half-width kana
    }

    #[test]
    fn full_width_alphanumerics_fold_to_half_width() {
        assert_eq!(
            InsuredNumber::parse("１２").unwrap(),
            InsuredNumber::parse("12").unwrap()
        );
        assert_eq!(InsuredSymbol::parse("ＡＢｃ９").unwrap().as_str(), "ABc9");
        // Mixed widths of alphanumerics alone are fine and fold too.
        assert_eq!(InsuredSymbol::parse("Ａ1").unwrap().as_str(), "A1");
    }

    #[test]
    fn rejects_bad_input_with_the_right_kind() {
        assert_eq!(kind(""), "required");
        assert_eq!(InsuredSymbol::parse("").unwrap_err().kind, "required");
        assert_eq!(kind("12 34"), "format");
        assert_eq!(kind("12\t"), "format");
        assert_eq!(kind("12-34"), "format");
        assert_eq!(kind("１２　３４"), "full_width_space");
        assert_eq!(kind("東京12"), "mixed_width");
        assert_eq!(kind("a東"), "mixed_width");
    }

    #[test]
    fn length_counts_legacy_bytes() {
        assert!(InsuredNumber::parse(&"1".repeat(38)).is_ok());
        assert_eq!(kind(&"1".repeat(39)), "too_long");
        assert!(InsuredNumber::parse(&"東".repeat(19)).is_ok());
        assert_eq!(kind(&"東".repeat(20)), "too_long");
        // 19 full-width digits are 38 bytes even though they fold to 19 ASCII bytes.
        assert!(InsuredNumber::parse(&"１".repeat(19)).is_ok());
        assert_eq!(kind(&"１".repeat(20)), "too_long");
    }

    #[test]
    fn branch_number() {
        assert_eq!(BranchNumber::parse("01").unwrap().as_str(), "01");
        assert_eq!(BranchNumber::parse("00").unwrap().as_str(), "00");
        assert_eq!(BranchNumber::parse("").unwrap_err().kind, "required");
        assert_eq!(BranchNumber::parse("1").unwrap_err().kind, "format");
        assert_eq!(BranchNumber::parse("001").unwrap_err().kind, "format");
        assert_eq!(BranchNumber::parse("０１").unwrap_err().kind, "format");
    }

    proptest! {
        #[test]
        fn full_and_half_width_digits_are_the_same_key(n in "[0-9A-Za-z]{1,19}") {
            let full: String = n.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap()).collect();
            prop_assert_eq!(InsuredNumber::parse(&full).unwrap(), InsuredNumber::parse(&n).unwrap());
        }

        #[test]
        fn any_half_width_alphanumeric_next_to_kanji_is_mixed(n in "[0-9A-Za-z]{1,5}", k in "[東京都大阪]{1,5}") {
            prop_assert_eq!(kind(&format!("{k}{n}")), "mixed_width");
        }
    }
}
