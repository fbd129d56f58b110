//! The hash chain over audit records.
//!
//! `hash = SHA-256("onshi/audit/v1" || prev_hash || fields)`, fields in a fixed, length-prefixed
//! encoding, so that changing, deleting, inserting or reordering any record breaks every hash
//! after it. The first record's `prev_hash` is 32 zero bytes.

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
            party_id: d.party_id,
            person_id: d.person_id,
            coverage_id: d.coverage_id,
            kind: d.kind.as_str(),
            check_id: *d.check_id.as_bytes(),
            validity: d.validity,
        }
    }
}

pub fn link(prev: &[u8; 32], fields: &ChainFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"onshi/audit/v1");
    h.update(prev);
    h.update(fields.at_micros.to_be_bytes());
    h.update(fields.party_id.to_be_bytes());
    for optional in [fields.person_id, fields.coverage_id] {
        match optional {
            Some(v) => {
                h.update([1]);
                h.update(v.to_be_bytes());
            }
            None => h.update([0]),
        }
    }
    h.update((fields.kind.len() as u32).to_be_bytes());
    h.update(fields.kind.as_bytes());
    h.update(fields.check_id);
    h.update(fields.validity.to_be_bytes());
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
    fn every_field_and_the_predecessor_change_the_hash() {
        let base = link(&GENESIS, &fields(1));
        assert_ne!(base, link(&GENESIS, &fields(4)));
        assert_ne!(base, link(&[1; 32], &fields(1)));
        let mut moved = fields(1);
        moved.person_id = None;
        moved.coverage_id = Some(2);
        assert_ne!(base, link(&GENESIS, &moved));
    }
}
