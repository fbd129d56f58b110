//! The health-ID format: what is MACed, how much of the MAC is kept, how it is written.
//!
//! This module is pure (no I/O, no key storage) so that the format can be pinned by known-answer
//! vectors and checked for unlinkability over many persons without a database. The format is
//! documented with its vectors in `FORMAT.md` beside it; changing anything here changes every
//! ID and needs a new [`FORMAT_VERSION`].
#![forbid(unsafe_code)]

use crate::domain::Invalid;

/// Goes into every MAC input, so a future format never yields the same IDs.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the MAC kept: 160 bits, well above the 128 the policy asks for; the birthday bound
/// at 125 M persons per purpose is then ~5e-33 (and the uniqueness constraint makes it "never").
pub const ID_BYTES: usize = 20;
/// 160 bits in 5-bit symbols.
const DATA_SYMBOLS: usize = ID_BYTES * 8 / 5;
/// Data symbols plus the check symbol.
pub const ENCODED_LEN: usize = DATA_SYMBOLS + 1;
/// Separates health-ID MACs from every other use of the same key.
const DOMAIN_TAG: &[u8] = b"onshi/health-id";
/// Crockford base32: no I, L, O, U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Crockford's check symbols: the 32 data symbols, then `* ~ $ = U` for 32..36.
const CHECK_ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/// Everything an ID is derived from besides the key.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The purpose's registered name.
    pub purpose: &'a str,
    /// The purpose's key version the ID is issued under.
    pub key_version: u32,
    /// The person's random secret base (`person_bases`), never the My Number link.
    pub base: &'a [u8; 32],
    /// Raised by each re-issuance of this person's ID in this purpose.
    pub epoch: u32,
    /// Raised only when the derived ID was already taken in the purpose.
    pub counter: u32,
}

/// The MAC input: the tag and each field, each as a 4-byte big-endian length then its bytes, in
/// the order tag, format version, purpose, key version, base, epoch, counter. Length prefixes make
/// the encoding injective: no two different inputs share a message.
pub fn message(inputs: &Inputs<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MESSAGE_FIXED + inputs.purpose.len());
    write_message(&mut out, inputs);
    out
}

/// The message length without the purpose name: seven length prefixes and the fixed fields.
const MESSAGE_FIXED: usize = 7 * 4 + DOMAIN_TAG.len() + 1 + 4 + 32 + 4 + 4;

/// Calls `f` with the message, built on the stack when it fits (every valid purpose name does):
/// issuance then allocates nothing but the ID's string.
pub fn with_message<R>(inputs: &Inputs<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    const STACK: usize = 256;
    if MESSAGE_FIXED + inputs.purpose.len() > STACK {
        return f(&message(inputs));
    }
    let mut buf = [0u8; STACK];
    let mut out = SliceWriter {
        buf: &mut buf,
        len: 0,
    };
    write_message(&mut out, inputs);
    let len = out.len;
    f(&buf[..len])
}

/// Where a message is written: a `Vec`, or a stack buffer known to be large enough.
pub(crate) trait Sink {
    fn put_bytes(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Sink for SliceWriter<'_> {
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

fn write_message(out: &mut impl Sink, inputs: &Inputs<'_>) {
    put(out, DOMAIN_TAG);
    put(out, &[FORMAT_VERSION]);
    put(out, inputs.purpose.as_bytes());
    put(out, &inputs.key_version.to_be_bytes());
    put(out, inputs.base);
    put(out, &inputs.epoch.to_be_bytes());
    put(out, &inputs.counter.to_be_bytes());
}

/// Appends one length-prefixed field.
pub(crate) fn put(out: &mut impl Sink, field: &[u8]) {
    let len = u32::try_from(field.len()).expect("fields are at most a few hundred bytes");
    out.put_bytes(&len.to_be_bytes());
    out.put_bytes(field);
}

/// A health ID in canonical form: 32 Crockford base32 symbols and one mod-37 check symbol.
/// Held inline (no allocation): deriving one is on the issuance path.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HealthId([u8; ENCODED_LEN]);

impl std::fmt::Debug for HealthId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HealthId").field(&self.as_str()).finish()
    }
}

impl HealthId {
    /// The ID of a MAC: its first [`ID_BYTES`] bytes, encoded.
    pub fn from_mac(mac: &[u8; 32]) -> Self {
        let mut kept = [0u8; ID_BYTES];
        kept.copy_from_slice(&mac[..ID_BYTES]);
        Self::from_bytes(&kept)
    }

    fn from_bytes(bytes: &[u8; ID_BYTES]) -> Self {
        let mut out = [0u8; ENCODED_LEN];
        for (group, symbols) in bytes.chunks_exact(5).zip(out.chunks_exact_mut(8)) {
            let value = group.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
            for (i, symbol) in symbols.iter_mut().enumerate() {
                *symbol = ALPHABET[((value >> (35 - 5 * i)) & 31) as usize];
            }
        }
        out[DATA_SYMBOLS] = CHECK_ALPHABET[usize::from(mod37(bytes))];
        HealthId(out)
    }

    /// Parses an ID as a caller sends it: case-insensitive, hyphens ignored, and `O`→0, `I`/`L`→1
    /// as Crockford's decoding prescribes. The result is canonical.
    ///
    /// # Errors
    /// `format` when the length or a symbol is wrong, `check_symbol` when the check symbol does
    /// not match (a mistyped or corrupted ID). Messages never repeat the input.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        const FORMAT: Invalid = Invalid {
            kind: crate::domain::Fault::Format,
            message: "A health ID is 33 Crockford base32 symbols (the last one a check symbol).",
        };
        let symbols: Vec<u8> = s
            .bytes()
            .filter(|&b| b != b'-')
            .map(|b| match b.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            })
            .collect();
        if symbols.len() != ENCODED_LEN {
            return Err(FORMAT);
        }
        let mut bytes = [0u8; ID_BYTES];
        for (group, out) in symbols[..DATA_SYMBOLS]
            .chunks_exact(8)
            .zip(bytes.chunks_exact_mut(5))
        {
            let mut value = 0u64;
            for &symbol in group {
                let digit = ALPHABET.iter().position(|&a| a == symbol).ok_or(FORMAT)?;
                value = (value << 5) | digit as u64;
            }
            for (i, b) in out.iter_mut().enumerate() {
                *b = (value >> (8 * (4 - i))) as u8;
            }
        }
        let check = CHECK_ALPHABET
            .iter()
            .position(|&a| a == symbols[DATA_SYMBOLS])
            .ok_or(FORMAT)?;
        if check != usize::from(mod37(&bytes)) {
            return Err(Invalid {
                kind: crate::domain::Fault::CheckSymbol,
                message: "The check symbol does not match: the health ID was altered or mistyped.",
            });
        }
        Ok(Self::from_bytes(&bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("only the ASCII alphabets are ever stored")
    }
}

/// The kept bytes as one big-endian number, modulo 37 (Crockford's check).
fn mod37(bytes: &[u8]) -> u8 {
    // Seven bytes at a time: 37 · 2^56 still fits a u64.
    let r = bytes.chunks(7).fold(0u64, |r, chunk| {
        let value = chunk.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
        ((r << (8 * chunk.len())) | value) % 37
    });
    u8::try_from(r).expect("a remainder of 37 fits a byte")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health_id::keys::MasterKey;
    use std::collections::HashSet;

    /// The published vectors of src/health_id/FORMAT.md: master key 00 01 .. 1f.
    const VECTORS: &[(&str, u32, u8, u32, u32, &str)] = &[
        // (purpose, key version, base byte repeated 32 times, epoch, counter, ID)
        (
            "regional-care",
            1,
            0x11,
            0,
            0,
            "WRKTT2BMKM5PN9RRA01VFEKHA3QRJSHB8",
        ),
        (
            "regional-care",
            1,
            0x11,
            1,
            0,
            "0KX7RRTMTCEVAD7B223MMC9423FCEHNS7",
        ),
        (
            "regional-care",
            1,
            0x11,
            0,
            1,
            "ZTZM6Z51KCMXR70WN1PNSFCE7H262B5CE",
        ),
        (
            "regional-care",
            2,
            0x11,
            0,
            0,
            "7MHNPZ2ZGJQGYYM977760QF5Z65KPS2M8",
        ),
        (
            "research-db",
            1,
            0x11,
            0,
            0,
            "E4X6WHQX013MZ4DVVNA30JNZHDS552YTJ",
        ),
        (
            "research-db",
            1,
            0x22,
            0,
            0,
            "HHP8YK6X0S55GEEHRF67G0FP0X9MHN3WB",
        ),
    ];

    fn master() -> MasterKey {
        MasterKey::from_bytes((0u8..32).collect()).unwrap()
    }

    #[test]
    fn known_answer_vectors() {
        let master = master();
        for &(purpose, key_version, base, epoch, counter, expected) in VECTORS {
            let key = master.purpose_key(purpose, key_version);
            let inputs = Inputs {
                purpose,
                key_version,
                base: &[base; 32],
                epoch,
                counter,
            };
            let id = HealthId::from_mac(&key.mac(&message(&inputs)));
            assert_eq!(id.as_str(), expected, "{inputs:?}");
        }
    }

    #[test]
    fn ids_parse_back_and_detect_a_changed_symbol() {
        let id = HealthId::from_mac(&[0xa5; 32]);
        assert_eq!(id.as_str().len(), ENCODED_LEN);
        assert_eq!(HealthId::parse(id.as_str()).unwrap(), id);
        let lower = id.as_str().to_ascii_lowercase();
        assert_eq!(HealthId::parse(&lower).unwrap(), id);
        let mut changed = id.as_str().as_bytes().to_vec();
        changed[3] = if changed[3] == b'7' { b'8' } else { b'7' };
        let changed = String::from_utf8(changed).unwrap();
        assert_eq!(HealthId::parse(&changed).unwrap_err().kind, "check_symbol");
        assert_eq!(HealthId::parse("ABC").unwrap_err().kind, "format");
        let bad_symbol = format!("U{}", &id.as_str()[1..]);
        assert_eq!(HealthId::parse(&bad_symbol).unwrap_err().kind, "format");
    }

    #[test]
    fn the_stack_message_equals_the_heap_one() {
        let long = "p".repeat(300);
        for purpose in ["regional-care", long.as_str()] {
            let inputs = Inputs {
                purpose,
                key_version: 3,
                base: &[9; 32],
                epoch: 2,
                counter: 1,
            };
            assert_eq!(with_message(&inputs, <[u8]>::to_vec), message(&inputs));
        }
    }

    #[test]
    fn every_value_of_the_check_symbol_round_trips() {
        let mut seen = HashSet::new();
        for i in 0u8..=255 {
            let id = HealthId::from_mac(&[i; 32]);
            seen.insert(id.as_str().as_bytes()[DATA_SYMBOLS]);
            assert_eq!(HealthId::parse(id.as_str()).unwrap(), id);
        }
        assert!(seen.len() > 30, "{}", seen.len());
    }

    #[test]
    fn purposes_are_unlinkable_over_100_000_persons() {
        let master = master();
        let a = master.purpose_key("regional-care", 1);
        let b = master.purpose_key("research-db", 1);
        let mut ids = HashSet::with_capacity(200_000);
        for person in 0u64..100_000 {
            let mut base = [0u8; 32];
            base[..8].copy_from_slice(&person.to_be_bytes());
            for (purpose, key) in [("regional-care", &a), ("research-db", &b)] {
                let inputs = Inputs {
                    purpose,
                    key_version: 1,
                    base: &base,
                    epoch: 0,
                    counter: 0,
                };
                let id = HealthId::from_mac(&key.mac(&message(&inputs)));
                assert!(ids.insert(id), "person {person} shares an ID");
            }
        }
    }
}
