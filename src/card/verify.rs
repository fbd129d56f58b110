//! Verifying what a card sent: its user-authentication certificate (chain to a trusted JPKI CA,
//! validity with the real system's three-month grace after expiry, revocation) and its
//! RSASSA-PKCS1-v1_5 SHA-256 signature over the server's nonce.

use chrono::{DateTime, Months, Utc};
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;
use x509_cert::Certificate;

use super::trust::Snapshot;

/// sha256WithRSAEncryption.
const SHA256_WITH_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Why a card was not accepted. Each has its own stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    UnknownIssuer,
    ChainSignature,
    NotYetValid,
    Expired,
    Revoked,
    BadSignature,
}

impl Rejection {
    pub fn code(self) -> &'static str {
        match self {
            Rejection::Malformed => "certificate.malformed",
            Rejection::UnknownIssuer => "certificate.unknown_issuer",
            Rejection::ChainSignature => "certificate.bad_chain_signature",
            Rejection::NotYetValid => "certificate.not_yet_valid",
            Rejection::Expired => "certificate.expired",
            Rejection::Revoked => "certificate.revoked",
            Rejection::BadSignature => "signature.invalid",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Rejection::Malformed => "The certificate is not a readable X.509 certificate; read the card again.",
            Rejection::UnknownIssuer => "The certificate was not issued by a trusted JPKI user-authentication CA; this is not a valid My Number card certificate.",
            Rejection::ChainSignature => "The certificate's CA signature does not verify: it was altered. Read the card again.",
            Rejection::NotYetValid => "The certificate is not valid yet; check the reader PC's clock.",
            Rejection::Expired => "The card's certificate expired more than three months ago; the person must renew it at the town hall, then check by insurance number meanwhile.",
            Rejection::Revoked => "The card's certificate is revoked; check by insurance number, and the person should contact the town hall.",
            Rejection::BadSignature => "The card's signature over the challenge does not verify; take a new challenge and try again.",
        }
    }
}

/// A certificate accepted for a card check.
#[derive(Debug)]
pub struct VerifiedCard {
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
    pub not_after: DateTime<Utc>,
    /// Expired, but within the three months during which eligibility is still served.
    pub in_grace: bool,
}

/// Checks the certificate against the trust store at `now` and, when `proof` is given, the
/// card's signature over the nonce.
///
/// # Errors
/// The first [`Rejection`] found, in the order of the checks.
pub fn verify(
    trust: &Snapshot,
    cert_der: &[u8],
    proof: Option<(&[u8], &[u8])>,
    now: DateTime<Utc>,
) -> Result<VerifiedCard, Rejection> {
    let cert = Certificate::from_der(cert_der).map_err(|_| Rejection::Malformed)?;
    let tbs = &cert.tbs_certificate;
    let issuer = tbs.issuer.to_der().map_err(|_| Rejection::Malformed)?;
    let ca = trust.ca_named(&issuer).ok_or(Rejection::UnknownIssuer)?;
    let tbs_der = signed_part(cert_der).ok_or(Rejection::Malformed)?;
    if !signed_by(
        &ca.key,
        &cert.signature_algorithm,
        tbs_der,
        cert.signature.as_bytes(),
    ) {
        return Err(Rejection::ChainSignature);
    }
    let now_s = now.timestamp();
    if now_s < unix_seconds(&tbs.validity.not_before) {
        return Err(Rejection::NotYetValid);
    }
    let not_after = DateTime::from_timestamp(unix_seconds(&tbs.validity.not_after), 0)
        .ok_or(Rejection::Malformed)?;
    let grace_end = not_after
        .checked_add_months(Months::new(3))
        .ok_or(Rejection::Malformed)?;
    if now > grace_end {
        return Err(Rejection::Expired);
    }
    let serial = tbs.serial_number.as_bytes().to_vec();
    if trust
        .revoked
        .get(&issuer)
        .is_some_and(|set| set.contains(&serial))
    {
        return Err(Rejection::Revoked);
    }
    if let Some((nonce, signature)) = proof {
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|_| Rejection::Malformed)?;
        let key = RsaPublicKey::from_public_key_der(&spki).map_err(|_| Rejection::Malformed)?;
        let digest = Sha256::digest(nonce);
        if key
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
            .is_err()
        {
            return Err(Rejection::BadSignature);
        }
    }
    Ok(VerifiedCard {
        issuer,
        serial,
        not_after,
        in_grace: now > not_after,
    })
}

/// The bytes of the first element of a signed structure (`tbsCertificate`, `tbsCertList`) exactly
/// as received: signatures are checked over these, never over a re-encoding.
pub fn signed_part(der_bytes: &[u8]) -> Option<&[u8]> {
    use der::Reader;
    let outer = der::asn1::AnyRef::from_der(der_bytes).ok()?;
    let mut reader = der::SliceReader::new(outer.value()).ok()?;
    reader.tlv_bytes().ok()
}

/// Whether `signature` over `data` verifies with `key` under sha256WithRSAEncryption (the only
/// algorithm the JPKI uses).
pub fn signed_by(
    key: &RsaPublicKey,
    algorithm: &AlgorithmIdentifierOwned,
    data: &[u8],
    signature: Option<&[u8]>,
) -> bool {
    let Some(signature) = signature else {
        return false;
    };
    algorithm.oid == SHA256_WITH_RSA
        && key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(data),
                signature,
            )
            .is_ok()
}

pub fn unix_seconds(time: &Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}
