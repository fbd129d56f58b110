//! A synthetic test PKI of the real JPKI's shape: a root CA, a user-authentication CA
//! with the real issuer's subject, person certificates (`C=JP, CN=<serial-like>`,
//! RSA-2048, sha256WithRSAEncryption, 5 years) that are valid, expired or revoked, a
//! foreign CA with its own person, v2 CRLs of the root and the user-authentication CA (and a
//! stale one), the user-authentication CA renewed under the same name with a new key (and a
//! person of it), a "CA" without basicConstraints or keyUsage (and a person of it), and the
//! synthetic issuer of the 券面事項入力補助AP's data (an anchor, a signing certificate, and
//! the cards' internal-authentication key).
//!
//! Generating it costs fifteen RSA-2048 key pairs: tests make one per test binary.

use anyhow::anyhow;
use rsa::RsaPrivateKey;
use x509_cert::builder::Profile;

use super::card::{CardProfile, AUTH_PIN_TRIES};
use super::surface::{self, BasicFacts, SurfaceProfile, Tamper};
pub use files::read_key;

/// Subject of the real user-authentication CA, reproduced for the synthetic one.
pub const USER_AUTH_CA_SUBJECT: &str = "C=JP, O=JPKI, OU=JPKI for user authentication, \
     OU=Japan Agency for Local Authority Information Systems";

mod files;
mod issue;

use issue::{crl, issue, keys, name, now_secs, serial_like, Spec};

const DAY: u64 = 24 * 60 * 60;
const YEAR: u64 = 365 * DAY;

/// One certificate with its key.
#[derive(Clone)]
pub struct Issued {
    /// File stem and role, e.g. `person-valid`.
    pub name: &'static str,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key.
    pub key: RsaPrivateKey,
    /// The serial number, lower-case hex.
    pub serial_hex: String,
    /// The subject in RFC 4514 order (as printed by tools).
    pub subject: String,
    /// validity, seconds since the epoch.
    not_before: u64,
    not_after: u64,
}

/// The whole synthetic PKI.
pub struct TestPki {
    /// Self-signed root.
    pub root: Issued,
    /// User-authentication CA, issued by the root.
    pub user_ca: Issued,
    /// A valid person certificate.
    pub person_valid: Issued,
    /// A person certificate whose 5 years are over.
    pub person_expired: Issued,
    /// A person certificate listed in [`Self::crl_der`].
    pub person_revoked: Issued,
    /// Another valid person certificate.
    pub person_valid_2: Issued,
    /// A self-signed CA that is not part of the JPKI.
    pub foreign_ca: Issued,
    /// A person certificate of the foreign CA.
    pub foreign_person: Issued,
    /// The user-authentication CA's CRL, DER.
    pub crl_der: Vec<u8>,
    /// The root's CRL (it revokes nothing), DER.
    pub root_crl_der: Vec<u8>,
    /// A verified CRL of the user-authentication CA whose nextUpdate has passed.
    pub stale_crl_der: Vec<u8>,
    /// The user-authentication CA renewed: same subject, new key.
    pub user_ca_renewed: Issued,
    /// A valid person certificate of the renewed CA.
    pub person_renewed: Issued,
    /// The renewed CA's CRL.
    pub renewed_crl_der: Vec<u8>,
    /// A self-signed certificate without basicConstraints or keyUsage: not a CA.
    pub not_a_ca: Issued,
    /// A person certificate "issued" by it.
    pub person_of_not_a_ca: Issued,
    /// The 券面事項 trust anchor.
    pub surface_root: Issued,
    /// The issuer of the input-assistance data (EF 0004), issued by the anchor.
    pub surface_issuer: Issued,
    /// The cards' internal-authentication key (one for all synthetic cards).
    pub surface_card_key: RsaPrivateKey,
}

impl TestPki {
    /// Generates a fresh PKI: new keys, serials and subjects every time.
    ///
    /// # Errors
    /// Key generation or encoding failures (not expected).
    pub fn generate() -> anyhow::Result<TestPki> {
        let now = now_secs();
        let start = now - DAY;
        let mut keys = keys(15)?.into_iter();
        let mut next_key = || keys.next().ok_or_else(|| anyhow!("not enough keys"));

        let root = issue(Spec {
            name: "root-ca",
            subject: "C=JP, O=onshi synthetic test PKI, CN=Synthetic JPKI root CA".into(),
            profile: Profile::Root,
            not_before: start,
            not_after: start + 20 * YEAR,
            key: next_key()?,
            issuer_key: None,
        })?;
        let user_ca = issue(Spec {
            name: "user-auth-ca",
            subject: USER_AUTH_CA_SUBJECT.into(),
            profile: Profile::SubCA {
                issuer: name(&root.subject)?,
                path_len_constraint: Some(0),
            },
            not_before: start,
            not_after: start + 12 * YEAR,
            key: next_key()?,
            issuer_key: Some(&root.key),
        })?;
        let person = |n: &'static str, nb: u64, key: RsaPrivateKey, ca: &Issued| {
            issue(Spec {
                name: n,
                subject: format!("C=JP, CN={}", serial_like()),
                profile: Profile::Leaf {
                    issuer: name(&ca.subject)?,
                    enable_key_agreement: false,
                    enable_key_encipherment: false,
                    include_subject_key_identifier: true,
                },
                not_before: nb,
                not_after: nb + 5 * YEAR,
                key,
                issuer_key: Some(&ca.key),
            })
        };
        let person_valid = person("person-valid", start, next_key()?, &user_ca)?;
        let person_expired = person("person-expired", now - 6 * YEAR, next_key()?, &user_ca)?;
        let person_revoked = person("person-revoked", start, next_key()?, &user_ca)?;
        let person_valid_2 = person("person-valid-2", start, next_key()?, &user_ca)?;
        let foreign_ca = issue(Spec {
            name: "foreign-ca",
            subject: "C=JP, O=Synthetic foreign issuer, CN=Not a JPKI CA".into(),
            profile: Profile::Root,
            not_before: start,
            not_after: start + 20 * YEAR,
            key: next_key()?,
            issuer_key: None,
        })?;
        let foreign_person = person("foreign-person", start, next_key()?, &foreign_ca)?;
        let crl_der = crl(&user_ca, &[&person_revoked], now, now + 7 * DAY)?;
        let root_crl_der = crl(&root, &[], now, now + 7 * DAY)?;
        let stale_crl_der = crl(&user_ca, &[&person_revoked], now - 8 * DAY, now - DAY)?;
        let user_ca_renewed = issue(Spec {
            name: "user-auth-ca-renewed",
            subject: USER_AUTH_CA_SUBJECT.into(),
            profile: Profile::SubCA {
                issuer: name(&root.subject)?,
                path_len_constraint: Some(0),
            },
            not_before: start,
            not_after: start + 12 * YEAR,
            key: next_key()?,
            issuer_key: Some(&root.key),
        })?;
        let person_renewed = person("person-renewed", start, next_key()?, &user_ca_renewed)?;
        let renewed_crl_der = crl(&user_ca_renewed, &[], now, now + 7 * DAY)?;
        let not_a_ca = issue(Spec {
            name: "not-a-ca",
            subject: "C=JP, O=onshi synthetic test PKI, CN=Not a CA - no basicConstraints and no keyUsage".into(),
            profile: Profile::Manual { issuer: None },
            not_before: start,
            not_after: start + 20 * YEAR,
            key: next_key()?,
            issuer_key: None,
        })?;
        let person_of_not_a_ca = person("person-of-not-a-ca", start, next_key()?, &not_a_ca)?;
        let surface_root = issue(Spec {
            name: "surface-root",
            subject: "C=JP, O=onshi synthetic test PKI, CN=Synthetic card-surface root".into(),
            profile: Profile::Root,
            not_before: start,
            not_after: start + 20 * YEAR,
            key: next_key()?,
            issuer_key: None,
        })?;
        let surface_issuer = issue(Spec {
            name: "surface-issuer",
            subject: "C=JP, O=onshi synthetic test PKI, CN=Synthetic card-surface data issuer"
                .into(),
            profile: Profile::Leaf {
                issuer: name(&surface_root.subject)?,
                enable_key_agreement: false,
                enable_key_encipherment: false,
                include_subject_key_identifier: true,
            },
            not_before: start,
            not_after: start + 10 * YEAR,
            key: next_key()?,
            issuer_key: Some(&surface_root.key),
        })?;
        let surface_card_key = next_key()?;
        Ok(TestPki {
            root,
            user_ca,
            person_valid,
            person_expired,
            person_revoked,
            person_valid_2,
            foreign_ca,
            foreign_person,
            crl_der,
            root_crl_der,
            stale_crl_der,
            user_ca_renewed,
            person_renewed,
            renewed_crl_der,
            not_a_ca,
            person_of_not_a_ca,
            surface_root,
            surface_issuer,
            surface_card_key,
        })
    }

    /// The input-assistance application of a card whose holder has `my_number` (synthetic),
    /// signed by the PKI's surface issuer; `tamper` alters it after signing.
    ///
    /// # Errors
    /// Signing failures (not expected).
    pub fn surface_profile(
        &self,
        my_number: &str,
        pin: [u8; 4],
        tamper: Tamper,
    ) -> anyhow::Result<SurfaceProfile> {
        let facts = BasicFacts {
            name: "架空 太郎".into(),
            address: "東京都千代田区架空町1-1".into(),
            birth_date: "19800401".into(),
            sex: "1".into(),
        };
        surface::build(
            my_number,
            &facts,
            pin,
            &self.surface_issuer.key,
            &self.surface_issuer.cert_der,
            &self.surface_card_key,
            tamper,
        )
    }

    /// Every certificate, CAs first.
    pub fn all(&self) -> [&Issued; 14] {
        [
            &self.root,
            &self.user_ca,
            &self.person_valid,
            &self.person_expired,
            &self.person_revoked,
            &self.person_valid_2,
            &self.foreign_ca,
            &self.foreign_person,
            &self.user_ca_renewed,
            &self.person_renewed,
            &self.not_a_ca,
            &self.person_of_not_a_ca,
            &self.surface_root,
            &self.surface_issuer,
        ]
    }

    /// A card holding `person`'s certificate and key, with full PIN tries.
    pub fn card_profile(&self, person: &Issued, pin: [u8; 4]) -> CardProfile {
        CardProfile {
            jpki: true,
            pin,
            tries: AUTH_PIN_TRIES,
            auth_cert: person.cert_der.clone(),
            auth_ca_cert: self.user_ca.cert_der.clone(),
            auth_key: person.key.clone(),
            surface: None,
        }
    }

    /// [`Self::card_profile`] with the input-assistance application for `my_number`, its PIN
    /// the same digits as the user-authentication PIN.
    ///
    /// # Errors
    /// Signing failures (not expected).
    pub fn linking_card_profile(
        &self,
        person: &Issued,
        pin: [u8; 4],
        my_number: &str,
    ) -> anyhow::Result<CardProfile> {
        Ok(CardProfile {
            surface: Some(self.surface_profile(my_number, pin, Tamper::None)?),
            ..self.card_profile(person, pin)
        })
    }
}
