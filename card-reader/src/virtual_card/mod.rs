//! Test support: a virtual JPKI card that plugs into vsmartcard's vpcd, so tests and
//! demos go through the real pcscd without hardware, and a synthetic test PKI of the
//! same shape as the real JPKI.
//!
//! - [`card`]: the card's state machine, answering command APDUs.
//! - [`vpcd`]: the TCP link to vpcd (framing, power controls, ATR).
//! - [`pki`]: the synthetic root, user-authentication CA, person certificates and CRLs, and
//!   the issuer of the input-assistance data.
//! - [`surface`]: the 券面事項入力補助AP's records (`../surface.md`) and their builder.
//!
//! Only synthetic keys and people: nothing here is or imitates a real person's card.

pub mod card;
pub mod pki;
pub mod surface;
pub mod vpcd;

pub use card::{CardProfile, VirtualCard};
pub use pki::TestPki;
pub use vpcd::{RunningCard, ATR, DEFAULT_PORT};
