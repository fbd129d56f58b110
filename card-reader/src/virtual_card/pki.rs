//! A synthetic test PKI of the real JPKI's shape: a root CA, a user-authentication CA
//! with the real issuer's subject, person certificates (`C=JP, CN=<serial-like>`,
//! RSA-2048, sha256WithRSAEncryption, 5 years) that are valid, expired or revoked, a
//! foreign CA with its own person, and a v2 CRL of the user-authentication CA.
//!
//! Generating it costs eight RSA-2048 key pairs: tests make one per test binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use der::asn1::UtcTime;
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
        let mut keys = keys(8)?.into_iter();
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
        let crl_der = crl(&user_ca, &[&person_revoked], now)?;
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
        })
    }

    /// Every certificate, CAs first.
    pub fn all(&self) -> [&Issued; 8] {
        [
            &self.root,
            &self.user_ca,
            &self.person_valid,
            &self.person_expired,
            &self.person_revoked,
            &self.person_valid_2,
            &self.foreign_ca,
            &self.foreign_person,
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
        }
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
        let manifest = json!({
            "description": "Synthetic test PKI of onshi: no real person, no real CA.",
            "certificates": certs,
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
        "foreign-person" => "foreign",
        _ => "ca",
    }
}

/// An X.509 v2 CRL of `ca` listing `revoked`, valid for 7 days from `now`.
fn crl(ca: &Issued, revoked: &[&Issued], now: u64) -> anyhow::Result<Vec<u8>> {
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
    let tbs = TbsCertList {
        version: Version::V2,
        signature: algorithm.clone(),
        issuer: issuer.clone(),
        this_update: time_at(now)?,
        next_update: Some(time_at(now + 7 * DAY)?),
        revoked_certificates: Some(revoked_certificates),
        crl_extensions: Some(vec![crl_number.to_extension(&issuer, &[])?]),
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
