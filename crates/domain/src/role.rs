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
    /// A public-expense payer (a municipality or welfare office), loading the 公費 and 医療扶助
    /// of the 公費負担者番号s it owns.
    Payer,
    /// An operator of onshi.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Facility => "facility",
            Role::Claims => "claims",
            Role::Insurer => "insurer",
            Role::Payer => "payer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "facility" => Some(Role::Facility),
            "claims" => Some(Role::Claims),
            "insurer" => Some(Role::Insurer),
            "payer" => Some(Role::Payer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}
