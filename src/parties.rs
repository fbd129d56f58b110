//! Registered parties and their bearer tokens.
//!
//! A token is 32 random bytes shown once, as `onshi_` + 64 hex digits. Only its SHA-256 is stored:
//! the token has full entropy, so a plain hash cannot be brute-forced, and looking a party up by
//! the hash means no token is ever compared byte by byte in variable time.

use std::collections::BTreeSet;

use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::{
    CertFingerprint, FacilityCode, FacilityKind, Fault, InsurerNumber, PartyId,
    PublicExpensePayerNumber,
};

pub use crate::domain::Role;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Party {
    pub id: PartyId,
    pub role: Role,
    pub facility_code: Option<String>,
    /// The insurer numbers an insurer owns (canonical 8-digit form); empty for other roles.
    pub insurer_numbers: BTreeSet<String>,
    /// The 公費負担者番号s a payer owns; empty for other roles.
    pub payer_numbers: BTreeSet<String>,
    /// The TLS client certificates the party must present one of; empty: the token alone.
    pub certificates: Vec<CertFingerprint>,
}

impl From<crate::store::parties::PartyRow> for Party {
    fn from(row: crate::store::parties::PartyRow) -> Self {
        Party {
            id: row.id,
            role: row.role,
            facility_code: row.facility_code,
            insurer_numbers: row.insurer_numbers,
            payer_numbers: row.payer_numbers,
            certificates: row.certificates,
        }
    }
}

impl Party {
    /// Whether the party may send batch checks: claims systems before billing, and hospitals
    /// and dental clinics for the next day's booked patients. Pharmacies and home-nursing
    /// stations check each patient as they come. The facility code's 点数表 digit tells medical
    /// from dental from pharmacy but not a hospital from a clinic, so every medical facility
    /// may batch.
    pub fn may_batch(&self) -> bool {
        match self.role {
            Role::Claims => true,
            Role::Facility => self
                .facility_code
                .as_deref()
                .and_then(|code| FacilityCode::parse(code).ok())
                .is_some_and(|code| {
                    matches!(code.kind(), FacilityKind::Medical | FacilityKind::Dental)
                }),
            Role::Insurer | Role::Payer | Role::Admin => false,
        }
    }

    /// The stand-in caller of a server built with the `unguarded-bench` feature, which skips
    /// authentication and the audit record to measure what they cost. Never deployed.
    pub fn unguarded_bench() -> Party {
        Party {
            id: PartyId::new(0),
            role: Role::Claims,
            facility_code: None,
            insurer_numbers: BTreeSet::new(),
            payer_numbers: BTreeSet::new(),
            certificates: Vec::new(),
        }
    }
}

/// The longest expiry a credential may be given (100 years): beyond the calendar's range the
/// expiry date cannot even be computed.
const MAX_EXPIRY_DAYS: u32 = 36_500;

/// What `onshi party add` registers.
#[derive(Debug)]
pub struct NewParty {
    pub role: Role,
    pub name: Option<String>,
    pub facility_code: Option<FacilityCode>,
    pub insurer_numbers: Vec<InsurerNumber>,
    /// The 公費負担者番号s of a payer.
    pub payer_numbers: Vec<PublicExpensePayerNumber>,
    /// When the token stops working; `None` for no expiry.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Client certificates bound to the token (see [`crate::tls`]); empty for none.
    pub client_certificates: Vec<CertFingerprint>,
}

/// Why a party's registration was refused: the field at fault, a stable code, a message.
#[derive(Debug, PartialEq, Eq)]
pub struct PartyInputError {
    /// The member at fault.
    pub field: &'static str,
    /// The first half of the error code (`insurer_number` for a member of `insurer_numbers`).
    pub code_field: &'static str,
    pub fault: Fault,
    pub message: String,
}

impl PartyInputError {
    /// The stable code, `<code_field>.<fault>`.
    pub fn code(&self) -> String {
        format!("{}.{}", self.code_field, self.fault)
    }
}

impl NewParty {
    /// Validates a registration: a facility needs its facility code and an insurer at least one
    /// insurer number, and no other role may carry either. Each of `client_certificates` is the
    /// PEM text of one certificate the party will have to present over TLS.
    ///
    /// # Errors
    /// The first problem found.
    pub fn new(
        role: Role,
        name: Option<String>,
        code: Option<&str>,
        insurer_numbers: &[String],
        expires_in_days: Option<u32>,
        client_certificates: &[String],
    ) -> Result<Self, PartyInputError> {
        let fail =
            |field: &'static str, (code_field, fault): (&'static str, Fault), message: String| {
                PartyInputError {
                    field,
                    code_field,
                    fault,
                    message,
                }
            };
        let facility_code = code
            .map(FacilityCode::parse)
            .transpose()
            .map_err(|e| fail("facility_code", ("facility_code", e.kind), e.message.into()))?;
        if (role == Role::Facility) != facility_code.is_some() {
            return Err(fail(
                "facility_code",
                ("facility_code", Fault::Required),
                "A facility code is required for a facility and only for a facility.".into(),
            ));
        }
        // A payer's numbers are 公費負担者番号s, given where an insurer gives its insurer numbers.
        let (owned, payer_numbers) = if role == Role::Payer {
            let payer_numbers = insurer_numbers
                .iter()
                .map(|n| PublicExpensePayerNumber::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail("payer_numbers", ("payer_number", e.kind), e.message.into()))?;
            if payer_numbers.is_empty() {
                return Err(fail(
                    "payer_numbers",
                    ("payer_numbers", Fault::Required),
                    "A payer needs the 公費負担者番号s it owns.".into(),
                ));
            }
            (&[][..], payer_numbers)
        } else {
            (insurer_numbers, Vec::new())
        };
        let insurer_numbers = owned
            .iter()
            .map(|n| InsurerNumber::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                fail(
                    "insurer_numbers",
                    ("insurer_number", e.kind),
                    e.message.into(),
                )
            })?;
        if role != Role::Payer && (role == Role::Insurer) == insurer_numbers.is_empty() {
            return Err(fail(
                "insurer_numbers",
                ("insurer_numbers", Fault::Required),
                "Insurer numbers are required for an insurer and only for an insurer.".into(),
            ));
        }
        if name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control))
        {
            return Err(fail(
                "name",
                ("name", Fault::Format),
                "At most 100 characters, no control characters.".into(),
            ));
        }
        if expires_in_days.is_some_and(|days| !(1..=MAX_EXPIRY_DAYS).contains(&days)) {
            return Err(fail(
                "expires_in_days",
                ("expires_in_days", Fault::Range),
                format!("A credential expires in 1 to {MAX_EXPIRY_DAYS} days; leave this out for no expiry."),
            ));
        }
        let client_certificates = client_certificates
            .iter()
            .map(|pem| CertFingerprint::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                fail(
                    "client_certificate",
                    ("client_certificate", e.kind),
                    e.message.into(),
                )
            })?;
        Ok(NewParty {
            role,
            name,
            facility_code,
            insurer_numbers,
            payer_numbers,
            expires_at: expires_in_days
                .map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days))),
            client_certificates,
        })
    }
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

impl NewParty {
    /// The row the store inserts.
    fn row(&self) -> crate::store::parties::NewPartyRow<'_> {
        crate::store::parties::NewPartyRow {
            role: self.role,
            name: self.name.as_deref(),
            facility_code: self.facility_code.as_ref(),
            insurer_numbers: &self.insurer_numbers,
            payer_numbers: &self.payer_numbers,
            expires_at: self.expires_at,
            client_certificates: &self.client_certificates,
        }
    }
}

/// Registers `party` under the hash of `token`; returns its id.
///
/// # Errors
/// Database failures.
pub async fn register(
    client: &mut tokio_postgres::Client,
    party: &NewParty,
    token: &Token,
) -> anyhow::Result<PartyId> {
    crate::store::parties::insert(client, &party.row(), &token.hash()).await
}

/// The active party holding the token with this hash.
///
/// # Errors
/// Database failures.
pub async fn by_token_hash(
    client: &impl deadpool_postgres::GenericClient,
    token_hash: &[u8; 32],
) -> anyhow::Result<Option<Party>> {
    Ok(crate::store::parties::by_token_hash(client, token_hash)
        .await?
        .map(Party::from))
}

/// Revokes a party's token now; when it was revoked, or `None` for an unknown party.
///
/// # Errors
/// Database failures.
pub async fn revoke(
    client: &impl tokio_postgres::GenericClient,
    party_id: PartyId,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    crate::store::parties::revoke(client, party_id).await
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
    fn a_bad_client_certificate_names_its_field() {
        let err =
            NewParty::new(Role::Claims, None, None, &[], None, &["not a pem".into()]).unwrap_err();
        assert_eq!(err.field, "client_certificate");
        assert_eq!(err.code(), "client_certificate.format");
        assert!(err.message.contains("PEM"), "{}", err.message);
    }

    #[test]
    fn claims_systems_and_medical_and_dental_facilities_may_batch() {
        let party = |role, code: Option<&str>| Party {
            id: PartyId::new(1),
            role,
            facility_code: code.map(str::to_owned),
            insurer_numbers: BTreeSet::new(),
            payer_numbers: BTreeSet::new(),
            certificates: Vec::new(),
        };
        assert!(party(Role::Claims, None).may_batch());
        assert!(
            party(Role::Facility, Some("0110113719")).may_batch(),
            "medical"
        );
        assert!(
            party(Role::Facility, Some("0130113715")).may_batch(),
            "dental"
        );
        assert!(
            !party(Role::Facility, Some("0140113713")).may_batch(),
            "pharmacy"
        );
        assert!(
            !party(Role::Facility, Some("0160113718")).may_batch(),
            "home nursing"
        );
        assert!(!party(Role::Facility, None).may_batch());
        assert!(!party(Role::Insurer, None).may_batch());
        assert!(!party(Role::Admin, None).may_batch());
    }

    #[test]
    fn expiry_is_one_day_to_a_hundred_years() {
        let with = |days| NewParty::new(Role::Claims, None, None, &[], Some(days), &[]);
        assert!(with(1).is_ok() && with(MAX_EXPIRY_DAYS).is_ok());
        for days in [0, MAX_EXPIRY_DAYS + 1, u32::MAX] {
            assert_eq!(with(days).unwrap_err().code(), "expires_in_days.range");
        }
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Facility, Role::Claims, Role::Insurer, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
