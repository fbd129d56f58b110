//! What the card signs for onshi, computed on the reader's side: SHA-256 over the length-prefixed
//! fields `onshi/v1`, the use of the card, the server origin, the challenge nonce and the
//! consents (the encoding and its vectors: `src/card/binding.md` of the server, which computes
//! the same bytes with its own code). The origin comes from the `--server` URL the reader was
//! given, never from the server, so a challenge relayed from another service is signed for
//! that other service's origin and is useless there and here.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::server::Consents;

/// The first field: the protocol and its version.
pub const DOMAIN: &[u8] = b"onshi/v1";

/// The use of the card a signature is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A facility's eligibility check (`eligibility.card`).
    Check,
    /// The holder's own access log (`access_log.self`).
    SelfView,
    /// Linking the card at a facility (`card.link`).
    Link,
    /// The holder unlinking the card (`card.unlink`).
    Unlink,
    /// The holder withdrawing the consents given at readers (`consent.withdraw`).
    WithdrawConsents,
}

impl Purpose {
    /// The `audience` field.
    pub fn audience(self) -> &'static str {
        match self {
            Purpose::Check => "eligibility.card",
            Purpose::SelfView => "access_log.self",
            Purpose::Link => "card.link",
            Purpose::Unlink => "card.unlink",
            Purpose::WithdrawConsents => "consent.withdraw",
        }
    }
}

/// The origin of a server URL: `scheme://host[:port]`, lower case, default port dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Origin(String);

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.0)
    }
}

impl Origin {
    /// The origin of `url` (`http://` or `https://`; path, query and fragment ignored).
    ///
    /// # Errors
    /// A message saying what is wrong with the URL.
    pub fn of_url(url: &str) -> Result<Origin, String> {
        let bad = || format!("{url:?} is not an http(s) URL like https://onshi.example.jp");
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port: u16 = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(bad()),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err(bad());
        }
        // The port is after the last colon that is not inside an IPv6 literal's brackets.
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => {
                let digits = &authority[i + 1..];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                (
                    &authority[..i],
                    Some(digits.parse::<u16>().map_err(|_| bad())?),
                )
            }
            _ => (authority, None),
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        let host = host.to_ascii_lowercase();
        Ok(Origin(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    /// As signed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 the card signs. `consents` is given for a check only.
pub fn digest(
    purpose: Purpose,
    origin: &Origin,
    nonce: &[u8],
    consents: Option<&Consents>,
) -> [u8; 32] {
    let consents: Vec<u8> = consents.map_or_else(Vec::new, |c| {
        vec![
            u8::from(c.medication),
            u8::from(c.checkups),
            u8::from(c.diagnosis),
            u8::from(c.surgery),
            u8::from(c.limit_certificate),
            u8::from(c.specific_diseases),
        ]
    });
    let mut hash = Sha256::new();
    for field in [
        DOMAIN,
        purpose.audience().as_bytes(),
        origin.as_str().as_bytes(),
        nonce,
        &consents,
    ] {
        // Each field is short (a nonce, a URL's authority): its length fits 4 bytes.
        hash.update((field.len() as u32).to_be_bytes());
        hash.update(field);
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The vectors of the server's `src/card/binding.md`.
    #[test]
    fn known_answers() {
        let origin = Origin::of_url("https://onshi.example.jp/").expect("origin");
        let nonce: Vec<u8> = (0u8..32).collect();
        let consents = Consents {
            medication: true,
            diagnosis: true,
            limit_certificate: true,
            ..Consents::default()
        };
        let cases = [
            (
                Purpose::Check,
                Some(&consents),
                "9c569472ab6166506ed6970e417547bdd6ceef8e01b6f07d2adbc7aa8728a27c",
            ),
            (
                Purpose::SelfView,
                None,
                "183ef67980b089e8ea50029f0b68144bb49311f4e73c6eed8fcbe028d5d26a52",
            ),
            (
                Purpose::Link,
                None,
                "ec39d75ee4fa821ef791a48ac33b6aa6db97aa27c822b934886ccccc54cc1c50",
            ),
            (
                Purpose::Unlink,
                None,
                "ff389b6e1294bbf578e3a2b65f8f520547ce66e3cec796353cc9f3c5878fad82",
            ),
        ];
        for (purpose, consents, want) in cases {
            assert_eq!(
                hex(&digest(purpose, &origin, &nonce, consents)),
                want,
                "{purpose:?}"
            );
        }
    }

    #[test]
    fn origins() {
        for (url, want) in [
            ("https://onshi.example.jp", "https://onshi.example.jp"),
            (
                "HTTPS://Onshi.Example.JP:443/v1/",
                "https://onshi.example.jp",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:80/", "http://127.0.0.1"),
            ("https://[::1]:8443", "https://[::1]:8443"),
        ] {
            assert_eq!(Origin::of_url(url).expect(url).as_str(), want);
        }
        for bad in [
            "onshi.example.jp",
            "ftp://x",
            "https://",
            "https://a@b",
            "https://h:x",
        ] {
            assert!(Origin::of_url(bad).is_err(), "{bad}");
        }
    }
}
