//! onshi's domain: validated identifier and code types. This crate depends on no other part of
//! onshi; every other part may depend on it.
//!
//! Every value that crosses the edge of onshi is parsed into one of these types; nothing past
//! the edge handles a raw `String` for an identifier. Each type keeps its fields private and has
//! `parse` as its only constructor, so holding a value proves it passed validation.
//!
//! | module | holds |
//! |---|---|
//! | [`check_digit`] | the Luhn-style rule (insurer, payer, recipient, facility) and the My Number rule |
//! | [`insurer`] | [`InsurerNumber`] (保険者番号) |
//! | [`public_expense`] | [`PublicExpensePayerNumber`] (公費負担者番号), [`PublicExpenseRecipientNumber`] (受給者番号) |
//! | [`facility`] | [`FacilityCode`] (医療機関コード) and [`FacilityKind`] |
//! | [`certificate`] | [`CertFingerprint`]: a party's TLS client certificate, as registered |
//! | [`card_key`] | [`InsuredSymbol`] (記号), [`InsuredNumber`] (番号), [`BranchNumber`] (枝番) |
//! | [`individual_number`] | the secret [`IndividualNumber`] (個人番号), [`LinkKey`], [`PersonLink`] |
//! | [`codes`] | the small wire code enums of an eligibility answer |
//! | [`person`] | [`PersonName`], [`KanaName`], [`Postcode`], [`Address`], [`parse_date`] |
//! | [`ids`] | [`PartyId`], [`PersonId`], [`CoverageId`] and the [`Actor`] of a disclosure |
//! | [`role`] | [`Role`]: what a registered party is |
//! | [`calendar`] | dates the law fixes by age (school start) |
//! | [`enrolment_columns`] | the columns of an insurer's enrolment file |
//!
//! Rejections are an [`Invalid`]: a stable `kind` plus a message for a person. The type does not
//! know which field it was parsed from; the edge joins the two into a code such as
//! `insurer_number.check_digit`. Messages never repeat the input, so they are safe to log even
//! for a My Number.

use std::fmt;

/// Implements `Serialize` and `Display` as the canonical string (`as_str`) of a non-secret type.
macro_rules! canonical_string {
    ($($t:ty),+ $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

pub mod calendar;
pub mod card_key;
pub mod certificate;
pub mod check_digit;
pub mod codes;
pub mod enrolment_columns;
pub mod facility;
pub mod ids;
pub mod individual_number;
pub mod insurer;
pub mod person;
pub mod public_expense;
pub mod role;

pub use card_key::{BranchNumber, InsuredNumber, InsuredSymbol};
pub use certificate::CertFingerprint;
pub use codes::{
    CardClassification, CopayRatio, LimitCategory, LimitClassification, LossReason,
    ReferenceNumber, Relationship, SelfPayCap, Sex, SpecificDisease,
};
pub use facility::{FacilityCode, FacilityKind};
pub use ids::{Actor, CoverageId, PartyId, PersonId};
pub use individual_number::{IndividualNumber, LinkKey, PersonLink, TokenMac};
pub use insurer::InsurerNumber;
pub use person::{parse_date, Address, KanaName, PersonName, Postcode};
pub use public_expense::{PublicExpensePayerNumber, PublicExpenseRecipientNumber};
pub use role::Role;

/// Why a value was rejected. The edge builds the stable code "<field>.<fault>", e.g.
/// "insurer_number.check_digit"; `message` says what a valid value looks like and never contains
/// the rejected input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    pub kind: Fault,
    pub message: &'static str,
}

macro_rules! faults {
    ($($variant:ident $name:literal,)+) => {
        /// What is wrong with a value, the second half of a field's error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Fault { $($variant),+ }

        impl Fault {
            pub const ALL: &'static [Fault] = &[$(Fault::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $(Fault::$variant => $name),+ }
            }
        }
    };
}

faults! {
    Required "required",
    Type "type",
    Format "format",
    CheckDigit "check_digit",
    TooLong "too_long",
    MixedWidth "mixed_width",
    FullWidthSpace "full_width_space",
    UnknownCode "unknown_code",
    Range "range",
    CheckSymbol "check_symbol",
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Fault {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Invalid {
    pub const fn required(message: &'static str) -> Self {
        Self {
            kind: Fault::Required,
            message,
        }
    }
    pub const fn format(message: &'static str) -> Self {
        Self {
            kind: Fault::Format,
            message,
        }
    }
    pub const fn check_digit(message: &'static str) -> Self {
        Self {
            kind: Fault::CheckDigit,
            message,
        }
    }
    pub const fn too_long(message: &'static str) -> Self {
        Self {
            kind: Fault::TooLong,
            message,
        }
    }
    pub const fn unknown_code(message: &'static str) -> Self {
        Self {
            kind: Fault::UnknownCode,
            message,
        }
    }
    pub const fn range(message: &'static str) -> Self {
        Self {
            kind: Fault::Range,
            message,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Invalid {}

/// True when `s` is non-empty and made only of ASCII digits.
pub(crate) fn all_ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}
