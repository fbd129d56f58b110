//! Issuing the test PKI's certificates and CRLs: names, serials, keys, validity.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use der::asn1::UtcTime;
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use rand::{Rng, RngCore};
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::signature::Signer as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
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

use super::{Issued, DAY};

pub(super) fn now_secs() -> u64 {
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
pub(super) fn serial_like() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Turns `C=JP, O=X` (most significant first, as in the DER) into a [`Name`].
pub(super) fn name(subject: &str) -> anyhow::Result<Name> {
    // RFC 4514 strings list the RDNs last-first.
    let mut rfc4514: Vec<&str> = subject.split(", ").collect();
    rfc4514.reverse();
    Name::from_str(&rfc4514.join(",")).with_context(|| format!("bad name {subject}"))
}

/// Generates `n` RSA-2048 keys on two threads (the slow part).
pub(super) fn keys(n: usize) -> anyhow::Result<Vec<RsaPrivateKey>> {
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

pub(super) struct Spec<'a> {
    pub(super) name: &'static str,
    pub(super) subject: String,
    pub(super) profile: Profile,
    pub(super) not_before: u64,
    pub(super) not_after: u64,
    pub(super) key: RsaPrivateKey,
    pub(super) issuer_key: Option<&'a RsaPrivateKey>,
}

pub(super) fn issue(spec: Spec<'_>) -> anyhow::Result<Issued> {
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

/// An X.509 v2 CRL of `ca` listing `revoked`, issued at `now`, next update at `next`, with the
/// CA's key identifier (so a renewed CA's list is told apart).
pub(super) fn crl(
    ca: &Issued,
    revoked: &[&Issued],
    now: u64,
    next: u64,
) -> anyhow::Result<Vec<u8>> {
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
