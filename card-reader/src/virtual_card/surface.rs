//! The virtual card's 券面事項入力補助AP (card-surface input assistance): its records, PIN and
//! internal-authentication key, in the layout of `../surface.md`, and the builder of those
//! records from a synthetic person's number and basic facts, signed by a synthetic issuer.

use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

/// Tries of a fresh input-assistance PIN.
pub const SURFACE_PIN_TRIES: u8 = 3;

/// What the application holds.
#[derive(Clone)]
pub struct SurfaceProfile {
    /// The input-assistance PIN.
    pub pin: [u8; 4],
    /// Its tries left at start.
    pub tries: u8,
    /// EF 0001, 0002, 0003, 0004, 0006 (`../surface.md`).
    pub my_number: Vec<u8>,
    pub basic_facts: Vec<u8>,
    pub signature: Vec<u8>,
    pub issuer_certificate: Vec<u8>,
    pub auth_public: Vec<u8>,
    /// The key behind EF 0007.
    pub auth_key: RsaPrivateKey,
}

/// The four basic facts as printed on the card (synthetic people only).
#[derive(Clone, Debug)]
pub struct BasicFacts {
    pub name: String,
    pub address: String,
    /// `YYYYMMDD`.
    pub birth_date: String,
    /// `1` male, `2` female, `3` not set.
    pub sex: String,
}

/// A BER TLV with a definite length (short form, or `81`/`82` long forms).
pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        n => {
            let [hi, lo] = u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
            out.extend_from_slice(&[0x82, hi, lo]);
        }
    }
    out.extend_from_slice(value);
    out
}

/// How a test tampers with the records after the issuer signed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    None,
    /// Another number in EF 0001, the hashes and signature left as signed.
    Number,
}

/// Builds the application's records for `my_number` (12 digits) and `facts`, signed by
/// `issuer_key` whose certificate is `issuer_certificate`, with `auth_key` as the card's
/// internal-authentication key.
///
/// # Errors
/// Signing failures (not expected) or an unencodable key.
#[allow(clippy::too_many_arguments)]
pub fn build(
    my_number: &str,
    facts: &BasicFacts,
    pin: [u8; 4],
    issuer_key: &RsaPrivateKey,
    issuer_certificate: &[u8],
    auth_key: &RsaPrivateKey,
    tamper: Tamper,
) -> anyhow::Result<SurfaceProfile> {
    let signer = SigningKey::<Sha256>::new(issuer_key.clone());
    let number_record = tlv(&[0xFF, 0x10], my_number.as_bytes());
    let offsets: Vec<u8> = [0u16, 0, 0, 0]
        .iter()
        .flat_map(|o| o.to_be_bytes())
        .collect();
    let facts_body = [
        tlv(&[0xDF, 0x21], &offsets),
        tlv(&[0xDF, 0x22], facts.name.as_bytes()),
        tlv(&[0xDF, 0x23], facts.address.as_bytes()),
        tlv(&[0xDF, 0x24], facts.birth_date.as_bytes()),
        tlv(&[0xDF, 0x25], facts.sex.as_bytes()),
    ]
    .concat();
    let facts_record = tlv(&[0xFF, 0x20], &facts_body);
    let hashes = [
        tlv(&[0xDF, 0x31], &Sha256::digest(&number_record)),
        tlv(&[0xDF, 0x32], &Sha256::digest(&facts_record)),
    ]
    .concat();
    let data_signature = signer.try_sign(&hashes)?.to_vec();
    let signature = tlv(
        &[0xFF, 0x30],
        &[hashes, tlv(&[0xDF, 0x33], &data_signature)].concat(),
    );
    let public = tlv(
        &[0xDF, 0x51],
        rsa::RsaPublicKey::from(auth_key).to_pkcs1_der()?.as_bytes(),
    );
    let key_signature = signer.try_sign(&public)?.to_vec();
    let auth_public = tlv(
        &[0xFF, 0x50],
        &[public, tlv(&[0xDF, 0x52], &key_signature)].concat(),
    );
    let my_number = match tamper {
        Tamper::None => number_record,
        Tamper::Number => {
            let mut other = number_record;
            let last = other.len() - 1;
            // Another digit: the number no longer matches the hash the issuer signed.
            other[last] = if other[last] == b'0' { b'1' } else { b'0' };
            other
        }
    };
    Ok(SurfaceProfile {
        pin,
        tries: SURFACE_PIN_TRIES,
        my_number,
        basic_facts: facts_record,
        signature,
        issuer_certificate: issuer_certificate.to_vec(),
        auth_public,
        auth_key: auth_key.clone(),
    })
}
