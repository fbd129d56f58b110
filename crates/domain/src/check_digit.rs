//! Check-digit rules of Japanese health identifiers.
//!
//! Insurer numbers, public-expense payer and recipient numbers and facility codes share one
//! Luhn-style rule ([`luhn`]); the My Number has its own weighted modulus-11 rule ([`my_number`]).
//! Both functions compute the expected check digit of a body; comparing it with the digit given
//! is the caller's job, so generators can use the same functions to produce valid numbers.

/// Check digit of `body` under the Luhn-style rule: from the rightmost body digit the weights are
/// 2, 1, 2, 1…; the digits of each product are added; check = (10 − sum mod 10) mod 10.
///
/// Leading zeros do not change the result, which is why a 6-digit 国民健康保険 insurer number and
/// its 8-digit zero-padded form have the same check digit.
///
/// # Panics
/// If `body` contains anything but ASCII digits: callers validate the characters first, and a
/// silent wrong answer would accept invalid numbers.
pub fn luhn(body: &str) -> u8 {
    let mut sum: u32 = 0;
    for (i, b) in body.bytes().rev().enumerate() {
        assert!(b.is_ascii_digit(), "luhn: body must be ASCII digits");
        let d = u32::from(b - b'0');
        let p = if i % 2 == 0 { d * 2 } else { d };
        sum += p / 10 + p % 10;
    }
    ((10 - sum % 10) % 10) as u8
}

/// Check digit of a My Number body (its first 11 digits, ASCII): weights 6,5,4,3,2,7,6,5,4,3,2
/// from the left; r = sum mod 11; check = 0 if r ≤ 1 else 11 − r.
///
/// Residues 0 and 1 both give 0, so unlike [`luhn`] this rule does not catch every single-digit
/// substitution.
///
/// # Panics
/// If `body` contains anything but ASCII digits, for the same reason as [`luhn`].
pub fn my_number(body: &[u8; 11]) -> u8 {
    const WEIGHTS: [u32; 11] = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let mut sum: u32 = 0;
    for (b, w) in body.iter().zip(WEIGHTS) {
        assert!(b.is_ascii_digit(), "my_number: body must be ASCII digits");
        sum += u32::from(b - b'0') * w;
    }
    let r = sum % 11;
    if r <= 1 {
        0
    } else {
        (11 - r) as u8
    }
}

/// Helpers shared by the property tests of the Luhn-checked types.
#[cfg(test)]
pub(crate) mod testing {
    use proptest::prelude::*;

    /// A body of `len` random digits with its Luhn check digit appended.
    pub(crate) fn luhn_valid(len: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, len).prop_map(|ds| {
            let mut s: String = ds.iter().map(|d| char::from(b'0' + d)).collect();
            let check = super::luhn(&s);
            s.push(char::from(b'0' + check));
            s
        })
    }

    /// Every number that differs from `valid` in exactly one digit.
    pub(crate) fn single_substitutions(valid: &str) -> Vec<String> {
        let mut out = Vec::new();
        for pos in 0..valid.len() {
            for d in b'0'..=b'9' {
                if valid.as_bytes()[pos] != d {
                    let mut bytes = valid.as_bytes().to_vec();
                    bytes[pos] = d;
                    out.push(String::from_utf8(bytes).expect("digits are ASCII"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_answers() {
        assert_eq!(luhn("3312001"), 5); // insurer 33120015
        assert_eq!(luhn("13101"), 1); // 国保 131011
        assert_eq!(luhn("0013101"), 1); // same number zero-padded
        assert_eq!(luhn("5401602"), 7); // payer 54016027
        assert_eq!(luhn("011011371"), 9); // facility 0110113719
        assert_eq!(luhn(""), 0);
        // 9 * 2 = 18 -> 1 + 8 = 9, so the sum is 9 and the check is 1.
        assert_eq!(luhn("9"), 1);
    }

    #[test]
    fn my_number_known_answers() {
        assert_eq!(my_number(b"98320567321"), 4);
        assert_eq!(my_number(b"00000000000"), 0);
        // 1 * 2 = 2 -> r = 2 -> 9.
        assert_eq!(my_number(b"00000000001"), 9);
        // 6 -> r = 6 -> 5.
        assert_eq!(my_number(b"10000000000"), 5);
        // 2 * 6 = 12 -> r = 1 -> 0 (the residue that collides with 0).
        assert_eq!(my_number(b"20000000000"), 0);
    }

    #[test]
    #[should_panic(expected = "ASCII digits")]
    fn luhn_rejects_non_digits() {
        luhn("12a");
    }
}
