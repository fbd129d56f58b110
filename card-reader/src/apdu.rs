//! The JPKI card's command APDUs and status words (DOMAIN.md §5): every byte sent to the
//! card is built here, so the wire format lives in one place.

use std::fmt;

/// AID of the JPKI application (公的個人認証 AP).
pub const JPKI_AID: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// EF of the user-authentication certificate (利用者証明用電子証明書).
pub const EF_AUTH_CERT: [u8; 2] = [0x00, 0x0A];
/// EF of the user-authentication CA certificate.
pub const EF_AUTH_CA_CERT: [u8; 2] = [0x00, 0x0B];
/// EF of the user-authentication private key.
pub const EF_AUTH_KEY: [u8; 2] = [0x00, 0x17];
/// EF of the user-authentication PIN (4 digits, 3 tries).
pub const EF_AUTH_PIN: [u8; 2] = [0x00, 0x18];
/// EF of the signature certificate (needs the signature PIN to read).
pub const EF_SIGN_CERT: [u8; 2] = [0x00, 0x01];
/// EF of the signature CA certificate.
pub const EF_SIGN_CA_CERT: [u8; 2] = [0x00, 0x02];
/// EF of the signature private key.
pub const EF_SIGN_KEY: [u8; 2] = [0x00, 0x1A];
/// EF of the signature PIN (6-16 upper-case letters/digits, 5 tries).
pub const EF_SIGN_PIN: [u8; 2] = [0x00, 0x1B];

/// AID of the 券面事項入力補助AP (card-surface input assistance; `surface.md`).
pub const SURFACE_AID: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
/// Input assistance: the My Number record.
pub const EF_SURFACE_MY_NUMBER: [u8; 2] = [0x00, 0x01];
/// Input assistance: the basic-facts record.
pub const EF_SURFACE_BASIC_FACTS: [u8; 2] = [0x00, 0x02];
/// Input assistance: the issuer's signature over the records' hashes.
pub const EF_SURFACE_SIGNATURE: [u8; 2] = [0x00, 0x03];
/// Input assistance: the issuer's certificate.
pub const EF_SURFACE_ISSUER_CERT: [u8; 2] = [0x00, 0x04];
/// Input assistance: the internal-authentication public key, signed by the issuer.
pub const EF_SURFACE_AUTH_PUBLIC: [u8; 2] = [0x00, 0x06];
/// Input assistance: the internal-authentication private key.
pub const EF_SURFACE_AUTH_KEY: [u8; 2] = [0x00, 0x07];
/// Input assistance: its PIN (4 digits, 3 tries).
pub const EF_SURFACE_PIN: [u8; 2] = [0x00, 0x11];

/// DER prefix of a SHA-256 DigestInfo; the 32-byte hash follows it.
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// Length of a SHA-256 DigestInfo (prefix + hash), the `Lc` of the signature command.
pub const DIGEST_INFO_LEN: usize = 51;
/// Length of the card's RSA-2048 signature.
pub const SIGNATURE_LEN: usize = 256;
/// Largest chunk one READ BINARY returns (short APDU, `Le` 00).
pub const MAX_READ: usize = 256;

/// A status word (SW1 SW2) ending every card response.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// Success.
    pub const OK: StatusWord = StatusWord(0x9000);
    /// Security status not satisfied (PIN not verified).
    pub const SECURITY_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// Authentication method blocked.
    pub const BLOCKED: StatusWord = StatusWord(0x6984);
    /// File or application not found.
    pub const NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// Wrong length.
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// Instruction not supported.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// Command not allowed (no current EF, or the wrong kind of EF).
    pub const NOT_ALLOWED: StatusWord = StatusWord(0x6986);
    /// Wrong parameters P1-P2 (offset beyond the file).
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6B00);
    /// End of file reached before `Le` bytes.
    pub const END_OF_FILE: StatusWord = StatusWord(0x6282);

    /// `63 Cn`: verification failed, `n` tries left.
    pub fn tries_left(n: u8) -> StatusWord {
        StatusWord(0x63C0 | u16::from(n & 0x0F))
    }

    /// The `n` of `63 Cn`, if this is that status word.
    pub fn counter(self) -> Option<u8> {
        // The mask keeps the low nibble, so the value fits a u8.
        (self.0 & 0xFFF0 == 0x63C0).then_some((self.0 & 0x0F) as u8)
    }

    /// The two bytes as sent on the wire.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.to_bytes();
        write!(f, "{a:02X} {b:02X}")
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({self})")
    }
}

/// Splits a response into its data and status word; `None` if shorter than 2 bytes.
pub fn split_response(resp: &[u8]) -> Option<(&[u8], StatusWord)> {
    let (data, sw) = resp.split_at(resp.len().checked_sub(2)?);
    Some((data, StatusWord(u16::from_be_bytes([sw[0], sw[1]]))))
}

/// SELECT the JPKI application by AID, no FCI in the answer (P2 = 0C).
pub fn select_jpki_app() -> Vec<u8> {
    select_app(&JPKI_AID)
}

/// SELECT an application by its 10-byte AID, no FCI in the answer.
pub fn select_app(aid: &[u8; 10]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
    apdu.extend_from_slice(aid);
    apdu
}

/// INTERNAL AUTHENTICATE over a SHA-256 DigestInfo, with the current key EF.
pub fn internal_authenticate(sha256: &[u8; 32]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x88, 0x00, 0x80, DIGEST_INFO_LEN as u8];
    apdu.extend_from_slice(&digest_info(sha256));
    apdu.push(0x00);
    apdu
}

/// Total length (header included) of the BER TLV whose first bytes are `header`: a tag in one
/// byte or the high-tag form (at most 3 bytes), a definite length of at most 3 bytes. `None`
/// when the header is incomplete or not of that shape.
pub fn tlv_total_len(header: &[u8]) -> Option<usize> {
    let mut at = 1;
    if header.first()? & 0x1F == 0x1F {
        while header.get(at)? & 0x80 != 0 {
            at += 1;
            if at > 3 {
                return None;
            }
        }
        at += 1;
    }
    let first = *header.get(at)?;
    at += 1;
    let len = match first {
        0..=0x7F => usize::from(first),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7F);
            let bytes = header.get(at..at + n)?;
            at += n;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        _ => return None,
    };
    Some(at + len)
}

/// SELECT an EF of the current application by its 2-byte id.
pub fn select_ef(id: [u8; 2]) -> Vec<u8> {
    vec![0x00, 0xA4, 0x02, 0x0C, 0x02, id[0], id[1]]
}

/// READ BINARY of `len` (1..=256) bytes at `offset` (< 0x8000) of the current EF.
///
/// # Panics
/// If `len` or `offset` is out of range: callers compute them from a DER length, which
/// the reader checks first.
pub fn read_binary(offset: usize, len: usize) -> Vec<u8> {
    assert!((1..=MAX_READ).contains(&len), "READ BINARY length {len}");
    assert!(offset < 0x8000, "READ BINARY offset {offset}");
    let [hi, lo] = (offset as u16).to_be_bytes();
    // Le 00 means 256 in a short APDU.
    vec![0x00, 0xB0, hi, lo, (len % 256) as u8]
}

/// VERIFY with no data: asks for the PIN state (`63 Cn`) without spending a try.
pub fn pin_status() -> Vec<u8> {
    vec![0x00, 0x20, 0x00, 0x80]
}

/// VERIFY with the 4 PIN digits, written into `out` so the caller controls its wiping.
pub fn verify_pin(digits: &[u8; 4], out: &mut [u8; 9]) {
    out[..5].copy_from_slice(&[0x00, 0x20, 0x00, 0x80, 0x04]);
    out[5..].copy_from_slice(digits);
}

/// The SHA-256 DigestInfo of a 32-byte hash.
pub fn digest_info(sha256: &[u8; 32]) -> [u8; DIGEST_INFO_LEN] {
    let mut info = [0u8; DIGEST_INFO_LEN];
    info[..19].copy_from_slice(&SHA256_DIGEST_INFO_PREFIX);
    info[19..].copy_from_slice(sha256);
    info
}

/// COMPUTE DIGITAL SIGNATURE over a SHA-256 DigestInfo, with the current key EF.
pub fn sign(sha256: &[u8; 32]) -> Vec<u8> {
    let mut apdu = vec![0x80, 0x2A, 0x00, 0x80, DIGEST_INFO_LEN as u8];
    apdu.extend_from_slice(&digest_info(sha256));
    apdu.push(0x00);
    apdu
}

/// Total length (header included) of the DER element whose first bytes are `header`:
/// `None` unless it is a SEQUENCE with a definite length of at most 4 length bytes.
pub fn der_total_len(header: &[u8]) -> Option<usize> {
    let (&tag, rest) = header.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 || n > 4 || rest.len() < n {
        return None;
    }
    let len = rest[..n]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some(2 + n + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_the_domain_table() {
        assert_eq!(
            select_jpki_app(),
            [
                0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00,
                0x01
            ]
        );
        assert_eq!(
            select_ef(EF_AUTH_CERT),
            [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]
        );
        assert_eq!(read_binary(0, 7), [0x00, 0xB0, 0x00, 0x00, 0x07]);
        assert_eq!(read_binary(0x107, 256), [0x00, 0xB0, 0x01, 0x07, 0x00]);
        let apdu = sign(&[0xAB; 32]);
        assert_eq!(apdu.len(), 5 + 51 + 1);
        assert_eq!(apdu[..5], [0x80, 0x2A, 0x00, 0x80, 0x33]);
        assert_eq!(hex(&apdu[5..24]), "3031300d060960864801650304020105000420");
        assert_eq!(apdu[56], 0x00);
    }

    #[test]
    fn status_words() {
        assert_eq!(StatusWord(0x63C2).counter(), Some(2));
        assert_eq!(StatusWord(0x9000).counter(), None);
        assert_eq!(StatusWord::tries_left(3), StatusWord(0x63C3));
        assert_eq!(StatusWord(0x6A82).to_string(), "6A 82");
        assert_eq!(
            split_response(&[1, 2, 0x90, 0x00]),
            Some((&[1u8, 2][..], StatusWord::OK))
        );
        assert_eq!(split_response(&[0x90]), None);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der_total_len(&[0x30, 0x82, 0x04, 0xD2, 0x30, 0x82, 0x03]),
            Some(4 + 0x4D2)
        );
        assert_eq!(der_total_len(&[0x30, 0x81, 0x90]), Some(3 + 0x90));
        assert_eq!(der_total_len(&[0x30, 0x05]), Some(7));
        assert_eq!(der_total_len(&[0x04, 0x05]), None);
        assert_eq!(der_total_len(&[0x30, 0x80]), None);
        assert_eq!(
            der_total_len(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            None
        );
    }

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv_total_len(&[0xFF, 0x10, 0x0C]), Some(15));
        assert_eq!(tlv_total_len(&[0xF0, 0x0C]), Some(14));
        assert_eq!(tlv_total_len(&[0xFF, 0x20, 0x81, 0x90]), Some(4 + 0x90));
        assert_eq!(
            tlv_total_len(&[0xFF, 0x30, 0x82, 0x01, 0x46, 0xDF]),
            Some(5 + 0x146)
        );
        assert_eq!(tlv_total_len(&[0x30, 0x82, 0x04, 0xD2]), Some(4 + 0x4D2));
        assert_eq!(tlv_total_len(&[0xFF, 0x30]), None);
        assert_eq!(tlv_total_len(&[0xFF, 0x30, 0x80]), None);
        assert_eq!(tlv_total_len(&[0xFF, 0x30, 0x84, 0, 0, 0, 1]), None);
        assert_eq!(tlv_total_len(&[0xFF, 0x81, 0x81, 0x81, 0x01, 0x00]), None);
        assert_eq!(
            internal_authenticate(&[0; 32])[..5],
            [0x00, 0x88, 0x00, 0x80, 0x33]
        );
        assert_eq!(select_app(&SURFACE_AID)[5..], SURFACE_AID);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
