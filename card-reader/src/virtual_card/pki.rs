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

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use der::asn1::UtcTime;
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use rand::{Rng, RngCore};
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::Signer as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::json;
use sha2::Sha256;
use spki::{
    DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::CrlNumber;
use x509_cert::ext::AsExtension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Version;

use super::card::{CardProfile, AUTH_PIN_TRIES};
use super::surface::{self, BasicFacts, SurfaceProfile, Tamper};

/// Subject of the real user-authentication CA, reproduced for the synthetic one.
pub const USER_AUTH_CA_SUBJECT: &str = "C=JP, O=JPKI, OU=JPKI for user authentication, \
     OU=Japan Agency for Local Authority Information Systems";

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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn time_at(secs: u64) -> anyhow::Result<Time> {
    Ok(Time::UtcTime(UtcTime::from_unix_duration(
        Duration::from_secs(secs),
    )?))
}

/// A positive random 16-byte serial, as CAs issue them.
fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7F) | 0x10;
    Ok(SerialNumber::new(&bytes)?)
}

/// A subject string like the real cards': 16 characters, digits and upper-case letters.
fn serial_like() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Turns `C=JP, O=X` (most significant first, as in the DER) into a [`Name`].
fn name(subject: &str) -> anyhow::Result<Name> {
    // RFC 4514 strings list the RDNs last-first.
    let mut rfc4514: Vec<&str> = subject.split(", ").collect();
    rfc4514.reverse();
    Name::from_str(&rfc4514.join(",")).with_context(|| format!("bad name {subject}"))
}

/// Generates `n` RSA-2048 keys on two threads (the slow part).
fn keys(n: usize) -> anyhow::Result<Vec<RsaPrivateKey>> {
    let half = n / 2;
    std::thread::scope(|s| {
        let gen = |count: usize| {
            move || -> anyhow::Result<Vec<RsaPrivateKey>> {
                let mut rng = rand::thread_rng();
                (0..count)
                    .map(|_| Ok(RsaPrivateKey::new(&mut rng, 2048)?))
                    .collect()
            }
        };
        let other = s.spawn(gen(half));
        let mut mine = gen(n - half)()?;
        let theirs = other
            .join()
            .map_err(|_| anyhow!("key generation thread panicked"))??;
        mine.extend(theirs);
        Ok(mine)
    })
}

struct Spec<'a> {
    name: &'static str,
    subject: String,
    profile: Profile,
    not_before: u64,
    not_after: u64,
    key: RsaPrivateKey,
    issuer_key: Option<&'a RsaPrivateKey>,
}

fn issue(spec: Spec<'_>) -> anyhow::Result<Issued> {
    let signer = SigningKey::<Sha256>::new(spec.issuer_key.unwrap_or(&spec.key).clone());
    let spki = SubjectPublicKeyInfoOwned::from_key(RsaPublicKey::from(&spec.key))?;
    let validity = Validity {
        not_before: time_at(spec.not_before)?,
        not_after: time_at(spec.not_after)?,
    };
    let serial = random_serial()?;
    let serial_hex = hex(serial.as_bytes());
    let builder = CertificateBuilder::new(
        spec.profile,
        serial,
        validity,
        name(&spec.subject)?,
        spki,
        &signer,
    )
    .map_err(|e| anyhow!("certificate {}: {e}", spec.name))?;
    let cert = builder
        .build::<Signature>()
        .map_err(|e| anyhow!("signing certificate {}: {e}", spec.name))?;
    Ok(Issued {
        name: spec.name,
        cert_der: cert.to_der()?,
        key: spec.key,
        serial_hex,
        subject: spec.subject,
        not_before: spec.not_before,
        not_after: spec.not_after,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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

    /// Writes every certificate as `<name>.der` and `<name>.pem`, every key as
    /// `<name>.key.pem` (PKCS#8), the CRL as `user-auth-ca.crl` (DER) and
    /// `user-auth-ca.crl.pem`, and `manifest.json` listing them; returns the paths.
    ///
    /// # Errors
    /// File system errors.
    pub fn write_to(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let mut written = Vec::new();
        let mut write = |file: String, bytes: &[u8]| -> anyhow::Result<()> {
            let path = dir.join(&file);
            fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
            written.push(path);
            Ok(())
        };
        let mut certs = Vec::new();
        for c in self.all() {
            write(format!("{}.der", c.name), &c.cert_der)?;
            write(
                format!("{}.pem", c.name),
                crate::pem::encode("CERTIFICATE", &c.cert_der).as_bytes(),
            )?;
            let key = c.key.to_pkcs8_pem(LineEnding::LF)?;
            write(format!("{}.key.pem", c.name), key.as_bytes())?;
            certs.push(json!({
                "name": c.name,
                "status": status_of(c.name),
                "subject": c.subject,
                "serial": c.serial_hex,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "der": format!("{}.der", c.name),
                "pem": format!("{}.pem", c.name),
                "key": format!("{}.key.pem", c.name),
            }));
        }
        write("user-auth-ca.crl".into(), &self.crl_der)?;
        let crl_pem = crate::pem::encode("X509 CRL", &self.crl_der);
        write("user-auth-ca.crl.pem".into(), crl_pem.as_bytes())?;
        write("root-ca.crl".into(), &self.root_crl_der)?;
        write("user-auth-ca-renewed.crl".into(), &self.renewed_crl_der)?;
        let key = self.surface_card_key.to_pkcs8_pem(LineEnding::LF)?;
        write("surface-card.key.pem".into(), key.as_bytes())?;
        let manifest = json!({
            "description": "Synthetic test PKI of onshi: no real person, no real CA.",
            "certificates": certs,
            "other_crls": ["root-ca.crl", "user-auth-ca-renewed.crl"],
            "surface_card_key": "surface-card.key.pem",
            "crl": {
                "der": "user-auth-ca.crl",
                "pem": "user-auth-ca.crl.pem",
                "issuer": self.user_ca.subject,
                "revoked_serials": [self.person_revoked.serial_hex],
            },
        });
        write(
            "manifest.json".into(),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
        Ok(written)
    }
}

fn status_of(name: &str) -> &'static str {
    match name {
        "person-valid" | "person-valid-2" => "valid",
        "person-expired" => "expired",
        "person-revoked" => "revoked",
        "person-renewed" => "valid",
        "foreign-person" | "person-of-not-a-ca" => "foreign",
        "surface-issuer" => "surface issuer",
        _ => "ca",
    }
}

/// An X.509 v2 CRL of `ca` listing `revoked`, issued at `now`, next update at `next`, with the
/// CA's key identifier (so a renewed CA's list is told apart).
fn crl(ca: &Issued, revoked: &[&Issued], now: u64, next: u64) -> anyhow::Result<Vec<u8>> {
    let signer = SigningKey::<Sha256>::new(ca.key.clone());
    let algorithm = signer.signature_algorithm_identifier()?;
    let issuer = name(&ca.subject)?;
    let revoked_certificates = revoked
        .iter()
        .map(|c| {
            let cert = x509_cert::Certificate::from_der(&c.cert_der)?;
            Ok(RevokedCert {
                serial_number: cert.tbs_certificate.serial_number,
                revocation_date: time_at(now - DAY)?,
                crl_entry_extensions: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let crl_number = CrlNumber(der::asn1::Uint::new(&[0x01])?);
    let spki = SubjectPublicKeyInfoOwned::from_key(RsaPublicKey::from(&ca.key))?;
    let key_id = x509_cert::ext::pkix::AuthorityKeyIdentifier::try_from(spki.owned_to_ref())?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: algorithm.clone(),
        issuer: issuer.clone(),
        this_update: time_at(now)?,
        next_update: Some(time_at(next)?),
        revoked_certificates: Some(revoked_certificates),
        crl_extensions: Some(vec![
            crl_number.to_extension(&issuer, &[])?,
            key_id.to_extension(&issuer, &[])?,
        ]),
    };
    let signature: Signature = signer.try_sign(&tbs.to_der()?)?;
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: signature.to_bitstring()?,
    };
    Ok(list.to_der()?)
}

/// Reads a PKCS#8 PEM private key, as `write_to` writes them.
///
/// # Errors
/// If the file cannot be read or is not an RSA PKCS#8 key.
pub fn read_key(path: &Path) -> anyhow::Result<RsaPrivateKey> {
    let pem = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    RsaPrivateKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("{} is not a PKCS#8 RSA key", path.display()))
}
