//! The 券面事項入力補助AP's signed data, verified: what proves a card's My Number genuine.
//!
//! The reader sends the application's records as read from the card (their layout, EF numbers
//! and tags are in `card-reader/src/surface.md`): the My Number record, the basic-facts record,
//! the issuer's signature record over their SHA-256 hashes, the issuer's certificate, the
//! internal-authentication key record (its public key, signed by the issuer), and that key's
//! signature over the link challenge bound to onshi ([`super::binding`]). The server checks, in
//! order: the issuer's certificate chains to a configured 券面事項 trust anchor (found by key
//! identifier) and is a valid signing certificate; both hashes match the records; the issuer's
//! signature over the hashes verifies; the issuer's signature over the internal-authentication
//! key verifies; that key's signature over the challenge verifies (so the data came from a live
//! card in this session, not from a copy). Only then is the number parsed, and it is handed on
//! as an [`IndividualNumber`] only, to become a link value and be dropped.
//!
//! The issuer's certificate is not checked for revocation: no revocation list of it is
//! configured (the JPKI CRLs cover user-authentication certificates only).

use chrono::{DateTime, Utc};
use der::{Decode, Encode};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::profile::{algorithms_agree, Capabilities};
use super::signature::{signed_by, signed_part, unix_seconds};
use super::trust::Snapshot;
use crate::domain::IndividualNumber;

/// Tags of the records (BER: class, constructed, number), as in `card-reader/src/surface.md`.
const MY_NUMBER: Tag = Tag::private(true, 0x10);
const BASIC_FACTS: Tag = Tag::private(true, 0x20);
const SIGNATURE: Tag = Tag::private(true, 0x30);
const MY_NUMBER_HASH: Tag = Tag::private(false, 0x31);
const BASIC_FACTS_HASH: Tag = Tag::private(false, 0x32);
const DATA_SIGNATURE: Tag = Tag::private(false, 0x33);
const AUTH_KEY: Tag = Tag::private(true, 0x50);
const AUTH_PUBLIC_KEY: Tag = Tag::private(false, 0x51);
const AUTH_KEY_SIGNATURE: Tag = Tag::private(false, 0x52);

/// The records as the reader sent them (each the TLV bytes read from its EF).
pub struct SurfaceData<'a> {
    pub my_number: &'a [u8],
    pub basic_facts: &'a [u8],
    pub signature: &'a [u8],
    pub issuer_certificate: &'a [u8],
    pub auth_key: &'a [u8],
    pub internal_authentication: &'a [u8],
}

/// Why the card's input-assistance data was refused. Each has its own code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SurfaceRejection {
    /// A record does not have the layout of the application.
    Malformed(&'static str),
    /// The issuer's certificate does not chain to a configured anchor.
    UnknownIssuer,
    /// The issuer's certificate is outside its validity, or not a signing certificate.
    IssuerNotValid,
    /// A record's hash is not the one the issuer signed.
    HashMismatch,
    /// The issuer's signature over the hashes, or over the internal-authentication key, fails.
    IssuerSignature,
    /// The card's internal authentication over the challenge fails.
    InternalAuthentication,
}

impl SurfaceRejection {
    pub fn message(self) -> &'static str {
        match self {
            SurfaceRejection::Malformed(_) => "The card's input-assistance records are not readable; read the card again.",
            SurfaceRejection::UnknownIssuer => "The card's input-assistance data was not signed by a trusted issuer; this card cannot be linked here.",
            SurfaceRejection::IssuerNotValid => "The issuer certificate on the card is not valid now (or not a signing certificate); this card cannot be linked here.",
            SurfaceRejection::HashMismatch => "The card's My Number or basic-facts record is not the one its issuer signed: the data was altered. Read the card again.",
            SurfaceRejection::IssuerSignature => "The issuer's signature on the card's data does not verify: the data was altered. Read the card again.",
            SurfaceRejection::InternalAuthentication => "The card did not prove it holds the data (internal authentication failed); take a new challenge and read the card again.",
        }
    }

    /// The request member at fault.
    pub fn field(self) -> &'static str {
        match self {
            SurfaceRejection::Malformed(field) => field,
            SurfaceRejection::UnknownIssuer | SurfaceRejection::IssuerNotValid => {
                "card_surface.issuer_certificate"
            }
            SurfaceRejection::HashMismatch | SurfaceRejection::IssuerSignature => {
                "card_surface.signature"
            }
            SurfaceRejection::InternalAuthentication => "card_surface.internal_authentication",
        }
    }
}

/// Verifies the records against `anchors` at `now`, the internal authentication over `digest`,
/// and returns the card's My Number.
///
/// # Errors
/// The first [`SurfaceRejection`] found, in the order of the module documentation.
pub fn verify(
    anchors: &Snapshot,
    data: &SurfaceData<'_>,
    digest: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<IndividualNumber, SurfaceRejection> {
    let issuer_key = issuer_key(anchors, data.issuer_certificate, now)?;
    let malformed = SurfaceRejection::Malformed;
    let number = whole(data.my_number, MY_NUMBER).ok_or(malformed("card_surface.my_number"))?;
    whole(data.basic_facts, BASIC_FACTS).ok_or(malformed("card_surface.basic_facts"))?;
    let signature = whole(data.signature, SIGNATURE).ok_or(malformed("card_surface.signature"))?;
    let mut parts = Tlvs(signature);
    let (number_hash, facts_hash, issuer_signature) =
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c), None)
                if a.tag == MY_NUMBER_HASH
                    && b.tag == BASIC_FACTS_HASH
                    && c.tag == DATA_SIGNATURE =>
            {
                (a, b, c)
            }
            _ => return Err(malformed("card_surface.signature")),
        };
    if number_hash.value != Sha256::digest(data.my_number).as_slice()
        || facts_hash.value != Sha256::digest(data.basic_facts).as_slice()
    {
        return Err(SurfaceRejection::HashMismatch);
    }
    let signed = [number_hash.raw, facts_hash.raw].concat();
    rsa_verified(&issuer_key, &signed, issuer_signature.value)
        .ok_or(SurfaceRejection::IssuerSignature)?;

    let auth = whole(data.auth_key, AUTH_KEY).ok_or(malformed("card_surface.auth_key"))?;
    let mut parts = Tlvs(auth);
    let (public, key_signature) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) if a.tag == AUTH_PUBLIC_KEY && b.tag == AUTH_KEY_SIGNATURE => {
            (a, b)
        }
        _ => return Err(malformed("card_surface.auth_key")),
    };
    rsa_verified(&issuer_key, public.raw, key_signature.value)
        .ok_or(SurfaceRejection::IssuerSignature)?;
    let card_key = RsaPublicKey::from_pkcs1_der(public.value)
        .map_err(|_| malformed("card_surface.auth_key"))?;
    card_key
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            digest,
            data.internal_authentication,
        )
        .map_err(|_| SurfaceRejection::InternalAuthentication)?;

    // The digits are read only now, from a record whose origin is proved.
    let digits = std::str::from_utf8(number).map_err(|_| malformed("card_surface.my_number"))?;
    IndividualNumber::parse(digits).map_err(|_| malformed("card_surface.my_number"))
}

/// The issuer certificate's key, when it chains to an anchor and may sign now.
fn issuer_key(
    anchors: &Snapshot,
    der_bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<RsaPublicKey, SurfaceRejection> {
    let malformed = SurfaceRejection::Malformed("card_surface.issuer_certificate");
    let cert = Certificate::from_der(der_bytes).map_err(|_| malformed)?;
    let tbs = &cert.tbs_certificate;
    let capabilities = Capabilities::of(tbs).map_err(|_| malformed)?;
    if !algorithms_agree(&cert) {
        return Err(malformed);
    }
    let name = tbs.issuer.to_der().map_err(|_| malformed)?;
    let tbs_der = signed_part(der_bytes).ok_or(malformed)?;
    let anchor = anchors
        .issuers(&name, capabilities.authority_key_id.as_deref())
        .into_iter()
        .find(|ca| {
            signed_by(
                &ca.key,
                &cert.signature_algorithm,
                tbs_der,
                cert.signature.as_bytes(),
            )
        })
        .ok_or(SurfaceRejection::UnknownIssuer)?;
    let now = now.timestamp();
    let valid = (unix_seconds(&tbs.validity.not_before)..=unix_seconds(&tbs.validity.not_after))
        .contains(&now);
    if !valid || !anchor.valid_at(now) || !capabilities.is_signing_leaf() {
        return Err(SurfaceRejection::IssuerNotValid);
    }
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| malformed)?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| malformed)
}

fn rsa_verified(key: &RsaPublicKey, data: &[u8], signature: &[u8]) -> Option<()> {
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(data),
        signature,
    )
    .ok()
}

/// A BER tag: class bits, constructed bit, tag number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag {
    class: u8,
    constructed: bool,
    number: u32,
}

impl Tag {
    const fn private(constructed: bool, number: u32) -> Tag {
        Tag {
            class: 3,
            constructed,
            number,
        }
    }
}

/// One TLV: its tag, its value, and its bytes as a whole.
struct Tlv<'a> {
    tag: Tag,
    value: &'a [u8],
    raw: &'a [u8],
}

/// Reads one TLV at the start of `bytes` (definite lengths of up to 3 bytes; a tag number in
/// the one-byte or the high form, so `F0` and `FF 10` are the same tag); `None` when malformed.
fn tlv(bytes: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&first, mut rest) = bytes.split_first()?;
    let mut number = u32::from(first & 0x1F);
    if number == 0x1F {
        number = 0;
        loop {
            let (&b, more) = rest.split_first()?;
            rest = more;
            number = number.checked_mul(128)? | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&len0, mut rest2) = rest.split_first()?;
    let len = match len0 {
        0..=0x7F => usize::from(len0),
        0x81..=0x83 => {
            let n = usize::from(len0 & 0x7F);
            let (len_bytes, after) = rest2.split_at_checked(n)?;
            rest2 = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        _ => return None,
    };
    let (value, after) = rest2.split_at_checked(len)?;
    let raw = &bytes[..bytes.len() - after.len()];
    let tag = Tag {
        class: first >> 6,
        constructed: first & 0x20 != 0,
        number,
    };
    Some((Tlv { tag, value, raw }, after))
}

/// The value of `bytes` when it is exactly one TLV of `tag`.
fn whole(bytes: &[u8], tag: Tag) -> Option<&[u8]> {
    match tlv(bytes)? {
        (t, []) if t.tag == tag => Some(t.value),
        _ => None,
    }
}

/// The TLVs of a constructed value in order; stops (yields no more) at malformed bytes, which
/// the callers see as a missing member.
struct Tlvs<'a>(&'a [u8]);

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let (item, rest) = tlv(self.0)?;
        self.0 = rest;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn reading_never_panics_and_stays_in_bounds(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Some((t, rest)) = tlv(&bytes) {
                proptest::prop_assert_eq!(t.raw.len() + rest.len(), bytes.len());
                proptest::prop_assert!(t.value.len() <= t.raw.len());
            }
            let _ = Tlvs(&bytes).count();
        }
    }

    #[test]
    fn tags_in_both_forms_lengths_and_bounds() {
        let (t, rest) = tlv(&[0xFF, 0x10, 0x02, b'1', b'2', 0xAA]).unwrap();
        assert_eq!((t.tag, t.value, rest), (MY_NUMBER, &b"12"[..], &[0xAA][..]));
        assert_eq!(t.raw, [0xFF, 0x10, 0x02, b'1', b'2']);
        assert_eq!(tlv(&[0xF0, 0x00]).unwrap().0.tag, MY_NUMBER);
        assert_eq!(tlv(&[0xDF, 0x31, 0x01, 7]).unwrap().0.tag, MY_NUMBER_HASH);
        let long: Vec<u8> = [0xDF, 0x33, 0x82, 0x01, 0x00]
            .into_iter()
            .chain([9; 256])
            .collect();
        assert_eq!(tlv(&long).unwrap().0.value.len(), 256);
        for bad in [
            &[][..],
            &[0xDF][..],
            &[0xDF, 0x31][..],
            &[0xDF, 0x31, 0x05, 1][..],
            &[0xDF, 0x31, 0x84, 0, 0, 0, 1][..],
            &[0xDF, 0x31, 0x80][..],
        ] {
            assert!(tlv(bad).is_none(), "{bad:02x?}");
        }
        assert!(
            whole(&[0xFF, 0x10, 0x00, 0x00], MY_NUMBER).is_none(),
            "trailing bytes"
        );
        assert!(
            whole(&[0xFF, 0x20, 0x00], MY_NUMBER).is_none(),
            "another tag"
        );
    }
}
