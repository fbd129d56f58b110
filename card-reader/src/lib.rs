//! Reads the My Number card (JPKI) through PC/SC and runs onshi's card eligibility check.
//!
//! Module map:
//! - [`reader`]: the PC/SC context, reader listing, waiting for a card, connecting.
//! - [`jpki`]: the JPKI application on a connected card: certificate, PIN, signature.
//! - [`surface`]: the card-surface input-assistance application (its PIN, its signed records,
//!   internal authentication) in the same session.
//! - [`binding`]: what the card signs for onshi (use, server origin, nonce, consents).
//! - [`apdu`]: the command APDUs and status words of the JPKI card.
//! - [`pin`]: the [`Pin`] secret type.
//! - [`error`]: the one [`Error`] enum of this crate.
//! - [`server`]: the blocking HTTP client of the onshi server's card check.
//! - [`answer`]: a typed view of the eligibility answer, for printing.
//! - [`pem`]: DER to PEM.
//! - `virtual_card` (feature `virtual-card`): a virtual JPKI card for vpcd and a
//!   synthetic test PKI, test support only.
//!
//! The flow at a reception desk: [`reader::Readers::wait_for_card`] →
//! [`jpki::JpkiCard::open`] → read the certificate → show the PIN tries left → verify the
//! PIN → get a challenge from the server → sign it, bound to onshi, on the card → send
//! certificate and signature to the server → print the answer. Linking adds the
//! input-assistance application's records and its internal authentication over the same
//! challenge.
#![forbid(unsafe_code)]

pub mod answer;
pub mod apdu;
pub mod binding;
pub mod error;
pub mod jpki;
pub mod pem;
pub mod pin;
pub mod reader;
pub mod server;
pub mod surface;
#[cfg(feature = "virtual-card")]
pub mod virtual_card;

pub use error::{Error, Result};
pub use jpki::{JpkiCard, PinStatus};
pub use pin::Pin;
pub use reader::Readers;
