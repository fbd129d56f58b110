//! What a card signs for onshi: not the bare nonce, but a digest that binds the nonce to onshi,
//! to the use of the card, to the server the reader talks to, and to the consents given at the
//! reader. A signature made for another relying party (which would sign its own encoding, or
//! the bare nonce) never verifies here, and consents cannot be changed after the card signed.
//! The encoding and its known-answer vectors are in `binding.md` beside this file; the reader
//! (`card-reader/src/binding.rs`) computes the same bytes independently.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::store::card::ConsentChoices;

/// The first field of every signed message: the protocol and its version.
pub const DOMAIN: &[u8] = b"onshi/v1";

/// The use of the card a signature is for (the `audience` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A facility's eligibility check.
    Check,
    /// The holder reading their own access log.
    SelfView,
    /// Linking the card to its person at a facility.
    Link,
    /// The holder unlinking their card.
    Unlink,
    /// The holder withdrawing the consents they gave at readers.
    WithdrawConsents,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Check => "eligibility.card",
            Purpose::SelfView => "access_log.self",
            Purpose::Link => "card.link",
            Purpose::Unlink => "card.unlink",
            Purpose::WithdrawConsents => "consent.withdraw",
        }
    }
}

/// A server origin as the reader names it: `scheme://host[:port]`, scheme and host lower case,
/// the scheme's default port left out, no path (the serialisation of a URL's origin).
#[derive(Clone, PartialEq, Eq)]
pub struct Origin(String);

/// Why a text is not an origin.
#[derive(Debug, thiserror::Error)]
#[error("not an http(s) origin like https://onshi.example.jp[:port]")]
pub struct NotAnOrigin;

impl Origin {
    /// Parses `http://` or `https://` with a host and an optional port; a path, query or
    /// fragment after the authority is ignored (the reader may be given a base URL).
    ///
    /// # Errors
    /// [`NotAnOrigin`] for any other scheme, no host, user information or a bad port.
    pub fn parse(url: &str) -> Result<Self, NotAnOrigin> {
        let (scheme, rest) = url.split_once("://").ok_or(NotAnOrigin)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => "80",
            "https" => "443",
            _ => return Err(NotAnOrigin),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(NotAnOrigin);
        }
        // An IPv6 literal keeps its brackets; the port follows the last colon outside them.
        let (host, port) = match authority.rfind(':') {
            Some(at) if !authority[at..].contains(']') => {
                (&authority[..at], Some(&authority[at + 1..]))
            }
            _ => (authority, None),
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NotAnOrigin);
        }
        let host = host.to_ascii_lowercase();
        match port {
            None => Ok(Origin(format!("{scheme}://{host}"))),
            Some(p) if p.parse::<u16>().is_err() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                Err(NotAnOrigin)
            }
            Some(p) if p.trim_start_matches('0') == default_port => {
                Ok(Origin(format!("{scheme}://{host}")))
            }
            Some(p) => Ok(Origin(format!(
                "{scheme}://{host}:{}",
                p.parse::<u16>().map_err(|_| NotAnOrigin)?
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.0)
    }
}

/// The `consents` field: six bytes (medication, checkups, diagnosis, surgery, limit certificate,
/// specific diseases), each 0 or 1, for a check; empty for every other use.
fn consent_bytes(consents: Option<ConsentChoices>) -> Vec<u8> {
    consents.map_or_else(Vec::new, |c| {
        [
            c.medication,
            c.checkups,
            c.diagnosis,
            c.surgery,
            c.limit_certificate,
            c.specific_diseases,
        ]
        .into_iter()
        .map(u8::from)
        .collect()
    })
}

/// The message before hashing: each field as a 4-byte big-endian length and its bytes.
pub fn message(
    purpose: Purpose,
    origin: &Origin,
    nonce: &[u8],
    consents: Option<ConsentChoices>,
) -> Vec<u8> {
    let consents = consent_bytes(consents);
    let fields: [&[u8]; 5] = [
        DOMAIN,
        purpose.as_str().as_bytes(),
        origin.as_str().as_bytes(),
        nonce,
        &consents,
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| 4 + f.len()).sum());
    for field in fields {
        // Every field is far below 4 GiB: a nonce is 32 bytes, an origin a URL's authority.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// The SHA-256 the card signs (as a DigestInfo, RSASSA-PKCS1-v1_5).
pub fn digest(
    purpose: Purpose,
    origin: &Origin,
    nonce: &[u8],
    consents: Option<ConsentChoices>,
) -> [u8; 32] {
    Sha256::digest(message(purpose, origin, nonce, consents)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of `binding.md`.
    #[test]
    fn known_answers() {
        let origin = Origin::parse("https://onshi.example.jp").unwrap();
        let nonce: Vec<u8> = (0u8..32).collect();
        let check = ConsentChoices {
            medication: true,
            checkups: false,
            diagnosis: true,
            surgery: false,
            limit_certificate: true,
            specific_diseases: false,
        };
        assert_eq!(
            hex::encode(message(Purpose::Link, &origin, &[0xAB; 2], None)),
            concat!(
                "000000086f6e7368692f7631",
                "00000009636172642e6c696e6b",
                "0000001868747470733a2f2f6f6e7368692e6578616d706c652e6a70",
                "00000002abab",
                "00000000"
            )
        );
        for (purpose, consents, want) in [
            (Purpose::Check, Some(check), VECTOR_CHECK),
            (Purpose::SelfView, None, VECTOR_SELF),
            (Purpose::Link, None, VECTOR_LINK),
            (Purpose::Unlink, None, VECTOR_UNLINK),
        ] {
            assert_eq!(
                hex::encode(digest(purpose, &origin, &nonce, consents)),
                want,
                "{purpose:?}"
            );
        }
        // The bare nonce's hash (what a card signs for a relying party that does not bind) is
        // none of these.
        let bare = hex::encode(Sha256::digest(&nonce));
        assert!(![VECTOR_CHECK, VECTOR_SELF, VECTOR_LINK, VECTOR_UNLINK].contains(&bare.as_str()));
    }

    const VECTOR_CHECK: &str = "9c569472ab6166506ed6970e417547bdd6ceef8e01b6f07d2adbc7aa8728a27c";
    const VECTOR_SELF: &str = "183ef67980b089e8ea50029f0b68144bb49311f4e73c6eed8fcbe028d5d26a52";
    const VECTOR_LINK: &str = "ec39d75ee4fa821ef791a48ac33b6aa6db97aa27c822b934886ccccc54cc1c50";
    const VECTOR_UNLINK: &str = "ff389b6e1294bbf578e3a2b65f8f520547ce66e3cec796353cc9f3c5878fad82";

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_an_origin_is_its_own_origin(url in "\\PC{0,40}", host in "[a-zA-Z0-9.-]{1,20}", port in proptest::option::of(0u16..)) {
            let _ = Origin::parse(&url);
            let text = match port {
                Some(p) => format!("https://{host}:{p}/path?q"),
                None => format!("https://{host}"),
            };
            if let Ok(origin) = Origin::parse(&text) {
                proptest::prop_assert_eq!(Origin::parse(origin.as_str()).unwrap(), origin);
            }
        }
    }

    #[test]
    fn origins_are_normalised_like_url_origins() {
        for (input, want) in [
            ("https://onshi.example.jp", "https://onshi.example.jp"),
            ("HTTPS://Onshi.Example.JP/", "https://onshi.example.jp"),
            (
                "https://onshi.example.jp:443/v1",
                "https://onshi.example.jp",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("https://[::1]", "https://[::1]"),
            ("http://h:08080", "http://h:8080"),
        ] {
            assert_eq!(Origin::parse(input).unwrap().as_str(), want, "{input}");
        }
        for bad in [
            "onshi.example.jp",
            "ftp://onshi.example.jp",
            "https://",
            "https://user@onshi.example.jp",
            "https://h:99999",
            "https://h:-1",
            "https://h:",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
