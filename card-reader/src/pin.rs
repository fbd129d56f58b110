//! The user-authentication PIN as a secret: validated at the edge, never printed, wiped
//! from memory when dropped.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The 4-digit user-authentication PIN.
///
/// It has no `Display`, its `Debug` is redacted, and it is zeroized on drop.
/// [`crate::JpkiCard::verify_pin`] takes it by value, so it lives no longer than the
/// VERIFY transmit.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Pin([u8; 4]);

/// Why a PIN string was refused. It never contains the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the PIN must be exactly 4 digits (0-9)")]
pub struct InvalidPin;

impl Pin {
    /// Parses exactly 4 ASCII digits, nothing else (no spaces, no full-width digits).
    ///
    /// # Errors
    /// [`InvalidPin`] for any other input.
    pub fn parse(s: &str) -> Result<Pin, InvalidPin> {
        let bytes = s.as_bytes();
        if bytes.len() != 4 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(InvalidPin);
        }
        let mut digits = [0u8; 4];
        digits.copy_from_slice(bytes);
        Ok(Pin(digits))
    }

    /// The digits as sent to the card.
    pub(crate) fn digits(&self) -> &[u8; 4] {
        &self.0
    }

    /// The digits, for a caller that must use the same PIN twice (both applications of a card
    /// whose holder set them alike). Whatever it copies them into must wipe itself.
    pub fn reveal(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_four_ascii_digits() {
        assert_eq!(Pin::parse("0123").map(|p| *p.digits()), Ok(*b"0123"));
        for bad in [
            "",
            "123",
            "12345",
            "12a4",
            " 123",
            "１２３４",
            "12\n4",
            "-123",
        ] {
            assert_eq!(Pin::parse(bad).map(|_| ()), Err(InvalidPin), "{bad:?}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let pin = Pin::parse("4321").expect("valid PIN");
        let shown = format!("{pin:?}");
        assert_eq!(shown, "Pin(****)");
        assert!(!shown.contains("4321"));
    }

    #[test]
    fn zeroize_wipes_the_digits() {
        let mut pin = Pin::parse("9876").expect("valid PIN");
        pin.zeroize();
        assert_eq!(pin.0, [0; 4]);
    }
}
