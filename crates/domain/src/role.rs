//! The roles a registered party can have.

use serde::Serialize;

/// What a party is, and so which routes it may use.
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
