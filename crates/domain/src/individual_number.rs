//! The My Number (個人番号) and the keyed link onshi stores in its place.
//!
//! The law allows the My Number only where a statute permits it, and the real system never lets a
//! facility see it. onshi therefore keeps it only as long as it takes to compute a [`PersonLink`]:
//! an HMAC-SHA256 under a [`LinkKey`] that joins a person's coverages across insurers. The number
//! and the key redact themselves in `Debug`, have no `Display` or `Serialize`, cannot be cloned,
//! are wiped on drop and compare in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{check_digit, Invalid};

/// Domain separation for the link, so the same key can never produce a link that collides with
/// another use of HMAC under it. The version lets a later scheme live beside this one.
const LINK_CONTEXT: &[u8] = b"onshi/person-link/v1\0";

/// A My Number: 11 digits and a check digit. A secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct IndividualNumber {
    digits: [u8; 12],
}

impl IndividualNumber {
    /// # Errors
    /// `required` when empty, `format` unless 12 ASCII digits, `check_digit` on a mismatch. The
    /// message never repeats the input.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the individual number is required"));
        }
        let bytes = s.as_bytes();
        if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(Invalid::format("an individual number is 12 digits"));
        }
        // Copy straight into the value that wipes itself, so a rejected number is wiped too.
        let mut number = Self { digits: [0; 12] };
        number.digits.copy_from_slice(bytes);
        let mut body = Zeroizing::new([0u8; 11]);
        body.copy_from_slice(&number.digits[..11]);
        if check_digit::my_number(&body) != number.digits[11] - b'0' {
            return Err(Invalid::check_digit(
                "the individual number's check digit does not match; check for a mistyped digit",
            ));
        }
        Ok(number)
    }

    /// The link under `key`: HMAC-SHA256(key, "onshi/person-link/v1\0" || the 12 digits), in
    /// process or inside the PKCS#11 token that holds the key; the same value either way.
    ///
    /// # Errors
    /// The token failed (an in-process key never fails).
    pub fn link(&self, key: &LinkKey) -> anyhow::Result<PersonLink> {
        match &key.source {
            KeySource::InProcess(bytes) => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes)
                    .expect("HMAC-SHA256 accepts keys of any length");
                mac.update(LINK_CONTEXT);
                mac.update(&self.digits);
                Ok(PersonLink(mac.finalize().into_bytes().into()))
            }
            KeySource::Token(token) => {
                let mut message = Zeroizing::new([0u8; LINK_CONTEXT.len() + 12]);
                message[..LINK_CONTEXT.len()].copy_from_slice(LINK_CONTEXT);
                message[LINK_CONTEXT.len()..].copy_from_slice(&self.digits);
                token.mac(message.as_ref()).map(PersonLink)
            }
        }
    }
}

impl PartialEq for IndividualNumber {
    fn eq(&self, other: &Self) -> bool {
        self.digits.ct_eq(&other.digits).into()
    }
}

impl Eq for IndividualNumber {}

impl fmt::Debug for IndividualNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndividualNumber(<redacted>)")
    }
}

/// An HMAC-SHA256 key held by a PKCS#11 token: the token computes the MAC, the key never leaves.
pub trait TokenMac: Send + Sync {
    /// # Errors
    /// The token refused or failed.
    fn mac(&self, message: &[u8]) -> anyhow::Result<[u8; 32]>;
}

/// The secret key of the person link: bytes in process (at least 32, the HMAC-SHA256 block
/// security level; wiped on drop), or a key inside a PKCS#11 token.
pub struct LinkKey {
    source: KeySource,
}

enum KeySource {
    InProcess(Zeroizing<Vec<u8>>),
    Token(Box<dyn TokenMac>),
}

impl LinkKey {
    /// Shortest accepted key, in bytes.
    pub const MIN_LEN: usize = 32;

    /// # Errors
    /// `required` when empty, `format` when shorter than [`Self::MIN_LEN`]. The bytes are wiped
    /// either way.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Invalid> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(Invalid::required("the link key is required"));
        }
        if bytes.len() < Self::MIN_LEN {
            return Err(Invalid::format("the link key must be at least 32 bytes"));
        }
        Ok(Self {
            source: KeySource::InProcess(bytes),
        })
    }

    /// A key written in hexadecimal (64 or more hex digits).
    ///
    /// # Errors
    /// `format` when `s` is not hexadecimal, otherwise as [`Self::from_bytes`].
    pub fn from_hex(s: &str) -> Result<Self, Invalid> {
        let bytes = hex::decode(s.trim())
            .map_err(|_| Invalid::format("the link key must be written in hexadecimal"))?;
        Self::from_bytes(bytes)
    }

    /// The key inside a token.
    pub fn in_token(token: Box<dyn TokenMac>) -> Self {
        Self {
            source: KeySource::Token(token),
        }
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.source {
            KeySource::InProcess(_) => "LinkKey(<redacted>)",
            KeySource::Token(_) => "LinkKey(<in token>)",
        })
    }
}

/// The keyed link of a person: what onshi stores instead of the My Number. Without the key it
/// reveals nothing about the number, so it may be stored and indexed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersonLink([u8; 32]);

impl PersonLink {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PersonLink {
    /// Only a prefix: enough to tell links apart in a test failure, too little to correlate logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonLink({}…)", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "983205673214";

    fn key() -> LinkKey {
        LinkKey::from_bytes((0u8..32).collect()).unwrap()
    }

    #[test]
    fn accepts_known_good_number() {
        assert!(IndividualNumber::parse(GOOD).is_ok());
        assert_eq!(
            IndividualNumber::parse(GOOD).unwrap(),
            IndividualNumber::parse(GOOD).unwrap()
        );
    }

    #[test]
    fn rejects_bad_input_without_echoing_it() {
        for (input, kind) in [
            ("", "required"),
            ("98320567321", "format"),
            ("9832056732140", "format"),
            ("98320567321a", "format"),
            ("９８３２０５６７３２１４", "format"),
            ("983205673215", "check_digit"),
        ] {
            let err = IndividualNumber::parse(input).unwrap_err();
            assert_eq!(err.kind, kind, "{input}");
            assert!(!err.message.contains("98320"), "message leaks the input");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let n = IndividualNumber::parse(GOOD).unwrap();
        let shown = format!("{n:?}");
        assert_eq!(shown, "IndividualNumber(<redacted>)");
        assert!(!shown.contains("9832"));

        let k = LinkKey::from_hex(&"ab".repeat(32)).unwrap();
        let shown = format!("{k:?}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}"); // 0xab in decimal
    }

    #[test]
    fn link_is_hmac_of_context_and_digits() {
        let n = IndividualNumber::parse(GOOD).unwrap();
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&(0u8..32).collect::<Vec<_>>()).unwrap();
        mac.update(b"onshi/person-link/v1\0983205673214");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(n.link(&key()).unwrap().as_bytes(), &expected);
        // A different key gives a different link.
        let other = LinkKey::from_bytes(vec![7; 32]).unwrap();
        assert_ne!(n.link(&key()).unwrap(), n.link(&other).unwrap());
        // Debug of the link is a short prefix only.
        let shown = format!("{:?}", n.link(&key()).unwrap());
        assert_eq!(
            shown,
            format!("PersonLink({}…)", hex::encode(&expected[..4]))
        );
        assert_eq!(PersonLink::from_bytes(expected), n.link(&key()).unwrap());
    }

    #[test]
    fn link_key_length_and_hex() {
        assert_eq!(LinkKey::from_bytes(vec![]).unwrap_err().kind, "required");
        assert_eq!(LinkKey::from_bytes(vec![1; 31]).unwrap_err().kind, "format");
        assert!(LinkKey::from_bytes(vec![1; 32]).is_ok());
        assert_eq!(LinkKey::from_hex("zz").unwrap_err().kind, "format");
        assert_eq!(
            LinkKey::from_hex(&"0".repeat(62)).unwrap_err().kind,
            "format"
        );
        assert!(LinkKey::from_hex(&"0f".repeat(32)).is_ok());
    }

    proptest! {
        /// Residues 0 and 1 both give check 0, so not every substitution is caught: `parse`
        /// accepts exactly the numbers whose check digit matches the rule.
        #[test]
        fn accepts_iff_check_digit_matches(body in "[0-9]{11}", check in 0u8..10) {
            let mut b = [0u8; 11];
            b.copy_from_slice(body.as_bytes());
            let s = format!("{body}{check}");
            prop_assert_eq!(IndividualNumber::parse(&s).is_ok(), check_digit::my_number(&b) == check);
        }

        #[test]
        fn every_other_check_digit_is_rejected(body in "[0-9]{11}") {
            let mut b = [0u8; 11];
            b.copy_from_slice(body.as_bytes());
            let good = check_digit::my_number(&b);
            let valid = format!("{body}{good}");
            prop_assert!(IndividualNumber::parse(&valid).is_ok());
            for wrong in (0u8..10).filter(|&d| d != good) {
                let err = IndividualNumber::parse(&format!("{body}{wrong}")).unwrap_err();
                prop_assert_eq!(err.kind, "check_digit");
            }
        }
    }
}
