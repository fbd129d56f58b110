//! Registered parties and their bearer tokens.
//!
//! A token is 32 random bytes shown once, as `onshi_` + 64 hex digits. Only its SHA-256 is stored:
//! the token has full entropy, so a plain hash cannot be brute-forced, and looking a party up by
//! the hash means no token is ever compared byte by byte in variable time.

use std::collections::BTreeSet;

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::{FacilityCode, InsurerNumber};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A hospital, clinic, dental clinic or pharmacy, by its facility code.
    Facility,
    /// A claims system checking many patients before billing.
    Claims,
    /// An insurer, loading enrolment for the insurer numbers it owns.
    Insurer,
    /// An operator of onshi.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Facility => "facility",
            Role::Claims => "claims",
            Role::Insurer => "insurer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "facility" => Some(Role::Facility),
            "claims" => Some(Role::Claims),
            "insurer" => Some(Role::Insurer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Party {
    pub id: i64,
    pub role: Role,
    pub facility_code: Option<String>,
    /// The insurer numbers an insurer owns (canonical 8-digit form); empty for other roles.
    pub insurer_numbers: BTreeSet<String>,
}

/// What `onshi party add` registers.
#[derive(Debug)]
pub struct NewParty {
    pub role: Role,
    pub name: Option<String>,
    pub facility_code: Option<FacilityCode>,
    pub insurer_numbers: Vec<InsurerNumber>,
}

/// A bearer token in the clear: exists only between generation and printing, or while a request
/// is authenticated. Never printed by `Debug`, wiped on drop.
pub struct Token(Zeroizing<String>);

impl Token {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Token(Zeroizing::new(format!(
            "onshi_{}",
            hex::encode(bytes.as_ref())
        )))
    }

    pub fn from_header(value: &str) -> Self {
        Token(Zeroizing::new(value.to_owned()))
    }

    /// The value to show the operator once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// What the database stores and looks parties up by.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_never_debug_printed() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(a.reveal().len(), 6 + 64);
        assert!(!format!("{a:?}").contains(&a.reveal()[6..]));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash(), Token::from_header(a.reveal()).hash());
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Facility, Role::Claims, Role::Insurer, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
