//! The keyed chain over audit records.
//!
//! `hash = HMAC-SHA256(chain key, "onshi/audit/v2\0" || prev_hash || fields)`, fields in a fixed,
//! length-prefixed encoding, so that changing, deleting, inserting or reordering any record breaks
//! every hash after it, and nobody without the audit key can compute a hash that verifies (the
//! chain key of a writer session is derived from the audit key, see [`super::key`]). The first
//! record of a lane has 32 zero bytes as `prev_hash`.
//!
//! Records written before keyed chains (migration 0008) carry no key epoch and were linked with
//! plain SHA-256 ([`link_unkeyed`]); migration 0008 froze each lane's unkeyed head, and verify
//! accepts the unkeyed scheme only up to that head.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Disclosure;

pub const GENESIS: [u8; 32] = [0; 32];

/// The fields of a record as stored, for hashing and for verification from the database.
pub struct ChainFields<'a> {
    pub at_micros: i64,
    pub party_id: i64,
    pub person_id: Option<i64>,
    pub coverage_id: Option<i64>,
    pub kind: &'a str,
    pub check_id: [u8; 16],
    pub validity: i16,
}

impl<'a> From<&'a Disclosure> for ChainFields<'a> {
    fn from(d: &'a Disclosure) -> Self {
        ChainFields {
            at_micros: d.at.timestamp_micros(),
            party_id: d.actor.stored(),
            person_id: d.person_id.map(crate::domain::PersonId::get),
            coverage_id: d.coverage_id.map(crate::domain::CoverageId::get),
            kind: d.kind.as_str(),
            check_id: *d.check_id.as_bytes(),
            validity: d.validity,
        }
    }
}

impl ChainFields<'_> {
    fn feed(&self, h: &mut impl FnMut(&[u8])) {
        h(&self.at_micros.to_be_bytes());
        h(&self.party_id.to_be_bytes());
        for optional in [self.person_id, self.coverage_id] {
            match optional {
                Some(v) => {
                    h(&[1]);
                    h(&v.to_be_bytes());
                }
                None => h(&[0]),
            }
        }
        h(&(self.kind.len() as u32).to_be_bytes());
        h(self.kind.as_bytes());
        h(&self.check_id);
        h(&self.validity.to_be_bytes());
    }
}

/// An HMAC-SHA256 key ready to use: the state already keyed, so each record costs only the
/// hashing of its own bytes. Never printed.
#[derive(Clone)]
pub struct ChainKey(Hmac<Sha256>);

impl ChainKey {
    pub fn new(key: &[u8]) -> Self {
        ChainKey(Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"))
    }

    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// The keyed link of a record to its predecessor.
pub fn link(key: &ChainKey, prev: &[u8; 32], fields: &ChainFields<'_>) -> [u8; 32] {
    let mut mac = key.0.clone();
    mac.update(b"onshi/audit/v2\0");
    mac.update(prev);
    fields.feed(&mut |bytes| mac.update(bytes));
    mac.finalize().into_bytes().into()
}

/// The plain SHA-256 link of the records written before keyed chains (verification only).
pub fn link_unkeyed(prev: &[u8; 32], fields: &ChainFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"onshi/audit/v1");
    h.update(prev);
    fields.feed(&mut |bytes| h.update(bytes));
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(validity: i16) -> ChainFields<'static> {
        ChainFields {
            at_micros: 1_700_000_000_000_000,
            party_id: 1,
            person_id: Some(2),
            coverage_id: None,
            kind: "eligibility.number",
            check_id: [7; 16],
            validity,
        }
    }

    #[test]
    fn every_field_the_predecessor_and_the_key_change_the_hash() {
        let key = ChainKey::new(&[9; 32]);
        let base = link(&key, &GENESIS, &fields(1));
        assert_ne!(base, link(&key, &GENESIS, &fields(4)));
        assert_ne!(base, link(&key, &[1; 32], &fields(1)));
        assert_ne!(base, link(&ChainKey::new(&[8; 32]), &GENESIS, &fields(1)));
        let mut moved = fields(1);
        moved.person_id = None;
        moved.coverage_id = Some(2);
        assert_ne!(base, link(&key, &GENESIS, &moved));
        assert_ne!(base, link_unkeyed(&GENESIS, &fields(1)));
    }

    /// The unkeyed scheme is what migration 0002 wrote: its known answer must never change.
    #[test]
    fn the_unkeyed_scheme_keeps_its_known_answer() {
        let mut h = Sha256::new();
        h.update(b"onshi/audit/v1");
        h.update(GENESIS);
        h.update(1_700_000_000_000_000i64.to_be_bytes());
        h.update(1i64.to_be_bytes());
        h.update([1]);
        h.update(2i64.to_be_bytes());
        h.update([0]);
        h.update(18u32.to_be_bytes());
        h.update(b"eligibility.number");
        h.update([7; 16]);
        h.update(1i16.to_be_bytes());
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(link_unkeyed(&GENESIS, &fields(1)), expected);
    }
}
