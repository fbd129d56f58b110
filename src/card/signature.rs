//! The signature primitives every part of the card path shares: the signed bytes of a DER
//! structure as received, sha256WithRSAEncryption verification, and X.509 times. The leaf of the
//! card module graph: the trust store, the CRLs, the card data and the card check all use it,
//! and it uses none of them.

use der::Decode;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

/// sha256WithRSAEncryption.
const SHA256_WITH_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

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
