//! The fingerprint of a party's TLS client certificate (as the real system's facility
//! certificates): what a registration stores and what a handshake's certificate is compared with.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::Invalid;

/// SHA-256 of a certificate's DER encoding. A certificate is public, so the fingerprint is not a
/// secret: it may be logged and printed (as 64 lower-case hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint([u8; 32]);

impl CertFingerprint {
    /// The fingerprint of a certificate the TLS handshake has already verified.
    pub fn of_der(der: &[u8]) -> Self {
        CertFingerprint(Sha256::digest(der).into())
    }

    /// Parses PEM text holding exactly one certificate (as an operator registers it).
    ///
    /// # Errors
    /// `format` when the text holds no certificate, more than one, a damaged PEM block, or a
    /// block that is not an X.509 certificate. Messages never repeat the input.
    pub fn from_pem(text: &str) -> Result<Self, Invalid> {
        const NONE: &str = "no certificate found: give the certificate (not its key) as PEM \
                            text ('-----BEGIN CERTIFICATE-----' ...)";
        const DAMAGED: &str =
            "the PEM certificate is damaged; copy it again, with its BEGIN and END lines";
        const SEVERAL: &str =
            "give only the party's own certificate, not a chain or several certificates";
        const NOT_X509: &str = "the PEM block does not hold an X.509 certificate";
        let mut blocks = CertificateDer::pem_slice_iter(text.as_bytes());
        let der = match blocks.next() {
            None => return Err(Invalid::format(NONE)),
            Some(Err(_)) => return Err(Invalid::format(DAMAGED)),
            Some(Ok(der)) => der,
        };
        if blocks.next().is_some() {
            return Err(Invalid::format(SEVERAL));
        }
        // The client CA decides which certificates are accepted at the handshake; parsing here
        // only catches a block that could never match anything (junk under the label).
        <x509_cert::Certificate as der::Decode>::from_der(&der)
            .map_err(|_| Invalid::format(NOT_X509))?;
        Ok(Self::of_der(&der))
    }

    /// Rebuilds a fingerprint read back from the database.
    ///
    /// # Errors
    /// A value that is not 32 bytes (the schema's check forbids it).
    pub fn from_stored(bytes: &[u8]) -> Result<Self, Invalid> {
        bytes
            .try_into()
            .map(CertFingerprint)
            .map_err(|_| Invalid::format("a certificate fingerprint is 32 bytes"))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

impl serde::Serialize for CertFingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A self-signed P-256 certificate made with `openssl req -x509`; its fingerprint below is
    /// what `openssl x509 -noout -fingerprint -sha256` prints for it.
    const KNOWN: &str = "-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUbJOhUtRIe9tXDXKhqcvd8lJ1fvEwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXb25zaGkga25vd24tYW5zd2VyIHRlc3QwIBcNMjYxMTI0MTQx
NzMwWhgPMjEyNjEwMzExNDE3MzBaMCIxIDAeBgNVBAMMF29uc2hpIGtub3duLWFu
c3dlciB0ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEChF/8reahyTb104g
1Xf6BSXXO5rO7tiuVcdjfP3BMAJXIZQFiHPxlibfGpxZIOdnCDzU7x4xj2lig9Oh
eeXtDaNTMFEwHQYDVR0OBBYEFAHdXAE7TNqvy4SV2RIqzd+3gm5eMB8GA1UdIwQY
MBaAFAHdXAE7TNqvy4SV2RIqzd+3gm5eMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI
zj0EAwIDSAAwRQIhANF2pEnBRw13hg8USUh6Eq6ymLWzBplbj+hg7m/w/oRyAiBm
wNGOabdM7VtqL4Mqz9rC7sGS8lGKWPGjBYhSe3JVbw==
-----END CERTIFICATE-----
";
    const KNOWN_SHA256: &str = "9d7c44101860bb790548b6045c14f2701ae4f959c98d71ac19d852e03c036f94";

    #[test]
    fn known_certificate_has_openssls_fingerprint() {
        let fingerprint = CertFingerprint::from_pem(KNOWN).unwrap();
        assert_eq!(fingerprint.to_string(), KNOWN_SHA256);
        // Text around the block (as `openssl x509 -text` leaves it) is ignored.
        let annotated = format!("subject=CN = onshi known-answer test\n{KNOWN}\n");
        assert_eq!(CertFingerprint::from_pem(&annotated).unwrap(), fingerprint);
        assert_eq!(
            CertFingerprint::from_stored(fingerprint.as_bytes()).unwrap(),
            fingerprint
        );
    }

    #[test]
    fn bad_pem_is_rejected_with_a_reason() {
        let damaged = KNOWN.replace("MIIBmzCC", "MIIB*zCC");
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let cases = [
            ("", "PEM text"),
            ("hello", "PEM text"),
            (key, "PEM text"),
            (damaged.as_str(), "damaged"),
            (not_x509, "X.509"),
            (&format!("{KNOWN}{KNOWN}"), "only the party's own"),
        ];
        for (text, reason) in cases {
            let err = CertFingerprint::from_pem(text).unwrap_err();
            assert_eq!(err.kind, "format", "{text}");
            assert!(err.message.contains(reason), "{text}: {}", err.message);
        }
        assert!(CertFingerprint::from_stored(&[0; 31]).is_err());
    }

    proptest! {
        /// Any one changed character of the encoding either fails to parse or is another
        /// certificate: a tampered copy never passes for the registered one.
        #[test]
        fn a_changed_character_never_keeps_the_fingerprint(
            // The body has 554 base64 characters before its `==`; the last of them carries
            // padding bits a lenient decoder may ignore, so it is left out.
            at in 0usize..553,
            replacement in proptest::sample::select(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()
            ),
        ) {
            let body_start = KNOWN.find('\n').unwrap() + 1;
            // Index among the base64 characters only, skipping the line breaks.
            let position = KNOWN[body_start..]
                .char_indices()
                .filter(|(_, c)| *c != '\n')
                .nth(at)
                .map(|(i, _)| body_start + i)
                .unwrap();
            prop_assume!(KNOWN.as_bytes()[position] != replacement);
            let mut tampered = KNOWN.as_bytes().to_vec();
            tampered[position] = replacement;
            let tampered = String::from_utf8(tampered).unwrap();
            if let Ok(fingerprint) = CertFingerprint::from_pem(&tampered) {
                prop_assert_ne!(fingerprint.to_string(), KNOWN_SHA256);
            }
        }
    }
}
