//! Verifying what a card sent: its user-authentication certificate (the leaf's profile, the
//! chain to a trusted JPKI CA found by key identifier, every CA's validity, revocation against
//! current CRLs only) and its RSASSA-PKCS1-v1_5 SHA-256 signature over the bound challenge
//! ([`super::binding`]).
//!
//! The real system serves eligibility for three months after a certificate expires; that grace
//! is asked for by the caller ([`Grace`]) and only eligibility answers ask for it: linking a card
//! and the holder's own view need a certificate that is valid now.

use chrono::{DateTime, Months, Utc};
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::profile::{algorithms_agree, Capabilities};
use super::signature::{signed_by, signed_part, unix_seconds};
use super::trust::{CaCert, Snapshot};

/// The longest chain walked above the issuing CA.
const MAX_DEPTH: usize = 4;

/// Why a card was not accepted. Each has its own stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    /// Not an end-entity signing certificate: a CA, or no digitalSignature key usage.
    NotForAuthentication,
    UnknownIssuer,
    ChainSignature,
    /// A CA of the chain is outside its validity.
    IssuerNotValid,
    NotYetValid,
    Expired,
    Revoked,
    /// A CA of the chain has no current, verified CRL: revocation cannot be determined.
    RevocationUnavailable,
    BadSignature,
}

impl Rejection {
    pub fn message(self) -> &'static str {
        match self {
            Rejection::Malformed => "The certificate is not a readable X.509 certificate; read the card again.",
            Rejection::NotForAuthentication => "The certificate is not a user-authentication certificate (it is a CA's, or its key may not sign); read the card's user-authentication certificate.",
            Rejection::UnknownIssuer => "The certificate was not issued by a trusted JPKI user-authentication CA; this is not a valid My Number card certificate.",
            Rejection::ChainSignature => "The certificate's CA signature does not verify: it was altered. Read the card again.",
            Rejection::IssuerNotValid => "The CA that issued this certificate is outside its validity period; check by insurance number, and check the reader PC's clock.",
            Rejection::NotYetValid => "The certificate is not valid yet; check the reader PC's clock.",
            Rejection::Expired => "The card's certificate has expired; the person must renew it at the town hall (eligibility alone is served for three months after expiry), then check by insurance number meanwhile.",
            Rejection::Revoked => "The card's certificate is revoked; check by insurance number, and the person should contact the town hall.",
            Rejection::RevocationUnavailable => "Whether the card's certificate is revoked cannot be determined: the server has no current, verified revocation list of its CA (see /readyz). Check by insurance number meanwhile; the operator must install the CA's current CRL.",
            Rejection::BadSignature => "The card's signature over the challenge does not verify; take a new challenge and try again.",
        }
    }
}

/// Whether an expired certificate is still accepted for three months.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grace {
    /// Eligibility answers: the real system's three months after expiry.
    Eligibility,
    /// Linking, unlinking, the holder's own view: valid now, or refused.
    None,
}

/// A certificate accepted for a card check.
#[derive(Debug)]
pub struct VerifiedCard {
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
    pub not_after: DateTime<Utc>,
    /// Expired, but within the three months during which eligibility is still served.
    pub in_grace: bool,
    pub key: RsaPublicKey,
}

impl VerifiedCard {
    /// Checks the card's signature over `digest` (a SHA-256 the card signed as a DigestInfo).
    ///
    /// # Errors
    /// [`Rejection::BadSignature`].
    pub fn signed(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Rejection> {
        self.key
            .verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
            .map_err(|_| Rejection::BadSignature)
    }
}

/// Checks the user-authentication certificate against the trust store at `now`.
///
/// # Errors
/// The first [`Rejection`] found, in the order of the checks: shape, issuer, chain signature,
/// validity, revocation.
pub fn verify_certificate(
    trust: &Snapshot,
    cert_der: &[u8],
    now: DateTime<Utc>,
    grace: Grace,
) -> Result<VerifiedCard, Rejection> {
    let cert = Certificate::from_der(cert_der).map_err(|_| Rejection::Malformed)?;
    let tbs = &cert.tbs_certificate;
    if !algorithms_agree(&cert) {
        return Err(Rejection::Malformed);
    }
    let capabilities = Capabilities::of(tbs).map_err(|_| Rejection::Malformed)?;
    if !capabilities.is_signing_leaf() {
        return Err(Rejection::NotForAuthentication);
    }
    let issuer = tbs.issuer.to_der().map_err(|_| Rejection::Malformed)?;
    let ca = issuer_of(
        trust,
        &cert,
        cert_der,
        &issuer,
        capabilities.authority_key_id.as_deref(),
    )?;
    let now_s = now.timestamp();
    if now_s < unix_seconds(&tbs.validity.not_before) {
        return Err(Rejection::NotYetValid);
    }
    let not_after = DateTime::from_timestamp(unix_seconds(&tbs.validity.not_after), 0)
        .ok_or(Rejection::Malformed)?;
    let last_day = match grace {
        Grace::Eligibility => not_after
            .checked_add_months(Months::new(3))
            .ok_or(Rejection::Malformed)?,
        Grace::None => not_after,
    };
    if now > last_day {
        return Err(Rejection::Expired);
    }
    let serial = tbs.serial_number.as_bytes().to_vec();
    not_revoked(trust, ca, &serial, now_s)?;
    chain_in_force(trust, ca, now_s)?;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| Rejection::Malformed)?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|_| Rejection::Malformed)?;
    Ok(VerifiedCard {
        issuer,
        serial,
        not_after,
        in_grace: now > not_after,
        key,
    })
}

/// The CA whose key verifies `cert`'s signature, among those of its issuer name and key id;
/// remembered for the same bytes ([`crate::card::trust::VerifiedIssuers`]).
fn issuer_of<'a>(
    trust: &'a Snapshot,
    cert: &Certificate,
    cert_der: &[u8],
    name: &[u8],
    key_id: Option<&[u8]>,
) -> Result<&'a CaCert, Rejection> {
    let digest: [u8; 32] = Sha256::digest(cert_der).into();
    if let Some(ca) = trust.verified.get(&digest).and_then(|i| trust.cas.get(i)) {
        return Ok(ca);
    }
    let tbs_der = signed_part(cert_der).ok_or(Rejection::Malformed)?;
    let candidates = trust.issuers(name, key_id);
    if candidates.is_empty() {
        return Err(Rejection::UnknownIssuer);
    }
    let ca = candidates
        .into_iter()
        .find(|ca| {
            signed_by(
                &ca.key,
                &cert.signature_algorithm,
                tbs_der,
                cert.signature.as_bytes(),
            )
        })
        .ok_or(Rejection::ChainSignature)?;
    if let Some(i) = trust.cas.iter().position(|c| std::ptr::eq(c, ca)) {
        trust.verified.insert(digest, i);
    }
    Ok(ca)
}

/// `serial` is not on `ca`'s current CRL; no current CRL is a refusal of its own.
fn not_revoked(trust: &Snapshot, ca: &CaCert, serial: &[u8], now: i64) -> Result<(), Rejection> {
    let crl = ca.revocation.current(now, trust.crl_grace).ok_or_else(|| {
        tracing::warn!(ca = %ca.name, "card refused: no current CRL of its CA");
        Rejection::RevocationUnavailable
    })?;
    if crl.revoked.contains(serial) {
        return Err(Rejection::Revoked);
    }
    Ok(())
}

/// Every CA from `ca` up to its self-signed anchor is valid at `now` and not revoked by its
/// own issuer's current CRL.
fn chain_in_force<'a>(trust: &'a Snapshot, mut ca: &'a CaCert, now: i64) -> Result<(), Rejection> {
    for _ in 0..MAX_DEPTH {
        if !ca.valid_at(now) {
            return Err(Rejection::IssuerNotValid);
        }
        // The parent was verified when the store was loaded (every CA kept chains to an anchor).
        let parent = trust.cas.get(ca.parent).ok_or(Rejection::UnknownIssuer)?;
        if std::ptr::eq(parent, ca) {
            // An anchor is trusted as configured; its own list covers the CAs below it.
            return Ok(());
        }
        not_revoked(
            trust,
            parent,
            ca.cert.tbs_certificate.serial_number.as_bytes(),
            now,
        )?;
        ca = parent;
    }
    Err(Rejection::UnknownIssuer)
}
