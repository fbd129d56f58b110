//! Compact JWS with Ed25519 (`alg` `EdDSA`, RFC 8037) and the JWK Set that publishes the keys:
//! the one format every JOSE library reads, so that anyone can check a proof without onshi.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `typ` of a proof's header (RFC 8725 §3.11: an explicit type, so that a proof is never
/// taken for another kind of token signed by the same key).
pub const TYPE: &str = "onshi-proof+jwt";

/// The protected header of every proof.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// An Ed25519 public key as a JWK (RFC 8037 §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    #[serde(default)]
    pub crv: Option<String>,
    /// The public key, base64url.
    #[serde(default)]
    pub x: Option<String>,
    /// The key's RFC 7638 thumbprint, as in the header of every proof it signed.
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The JWK of an Ed25519 public key, with its thumbprint as `kid`.
    pub fn ed25519(public_key: &[u8; 32]) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(B64URL.encode(public_key)),
            kid: Some(thumbprint(public_key)),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// The Ed25519 public key, if this is one.
    fn ed25519_key(&self) -> Option<[u8; 32]> {
        if self.kty != "OKP" || self.crv.as_deref() != Some("Ed25519") {
            return None;
        }
        B64URL.decode(self.x.as_deref()?).ok()?.try_into().ok()
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url of the SHA-256 of the required
/// members in lexicographic order, without white space. Stable for the key, whoever computes it.
pub fn thumbprint(public_key: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        B64URL.encode(public_key)
    );
    B64URL.encode(Sha256::digest(canonical.as_bytes()))
}

/// The part of a compact JWS that is signed: `base64url(header) "." base64url(payload)`.
pub fn signing_input(header_b64: &str, payload: &[u8]) -> String {
    let mut input = String::with_capacity(header_b64.len() + 1 + payload.len() * 4 / 3 + 4);
    input.push_str(header_b64);
    input.push('.');
    B64URL.encode_string(payload, &mut input);
    input
}

/// Appends the signature to a signing input, giving the compact form.
pub fn compact(mut signing_input: String, signature: &[u8]) -> String {
    signing_input.push('.');
    B64URL.encode_string(signature, &mut signing_input);
    signing_input
}

/// The protected header, base64url-encoded (the same for every proof of one key).
pub fn encoded_header(kid: &str) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        kid: kid.into(),
        typ: Some(TYPE.into()),
    };
    B64URL.encode(serde_json::to_vec(&header).expect("a header always serializes"))
}

/// Why a proof did not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("the algorithm is {0:?}, not EdDSA")]
    Algorithm(String),
    #[error("no key with kid {0:?} in the key set")]
    UnknownKey(String),
    #[error("the signature does not verify under the key {0:?}")]
    BadSignature(String),
}

/// Checks a compact JWS against the keys of `jwks` (the key named by its `kid`) and returns the
/// payload's bytes. Only `EdDSA` with Ed25519 keys is accepted: the algorithm is fixed, never
/// chosen by the token.
///
/// # Errors
/// A [`Refusal`].
pub fn verify(token: &str, jwks: &Jwks) -> Result<(Header, Vec<u8>), Refusal> {
    let mut parts = token.trim().split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("three dot-separated parts expected"));
    };
    let header: Header = B64URL
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(Refusal::Malformed("the header is not base64url JSON"))?;
    if header.alg != "EdDSA" {
        return Err(Refusal::Algorithm(header.alg));
    }
    let key = jwks
        .keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(header.kid.as_str()))
        .find_map(Jwk::ed25519_key)
        .ok_or_else(|| Refusal::UnknownKey(header.kid.clone()))?;
    let signature = B64URL
        .decode(signature_b64)
        .map_err(|_| Refusal::Malformed("the signature is not base64url"))?;
    let signed = &token.trim()[..header_b64.len() + 1 + payload_b64.len()];
    UnparsedPublicKey::new(&ED25519, key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| Refusal::BadSignature(header.kid.clone()))?;
    let payload = B64URL
        .decode(payload_b64)
        .map_err(|_| Refusal::Malformed("the payload is not base64url"))?;
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// RFC 8037 Appendix A.1: the example key pair.
    const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn rfc_pair() -> Ed25519KeyPair {
        let seed = B64URL.decode(RFC_D).unwrap();
        Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
    }

    fn rfc_public() -> [u8; 32] {
        rfc_pair().public_key().as_ref().try_into().unwrap()
    }

    #[test]
    fn the_thumbprint_is_rfc_8037s() {
        assert_eq!(B64URL.encode(rfc_public()), RFC_X);
        // RFC 8037 Appendix A.3.
        assert_eq!(
            thumbprint(&rfc_public()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn the_signature_is_rfc_8037s() {
        // RFC 8037 Appendix A.4: header {"alg":"EdDSA"}, payload "Example of Ed25519 signing".
        let input = signing_input("eyJhbGciOiJFZERTQSJ9", b"Example of Ed25519 signing");
        let signature = rfc_pair().sign(input.as_bytes());
        assert_eq!(
            compact(input, signature.as_ref()),
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7\
             -09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    fn signed(payload: &[u8]) -> (String, Jwks) {
        let pair = rfc_pair();
        let jwk = Jwk::ed25519(&rfc_public());
        let input = signing_input(&encoded_header(jwk.kid.as_deref().unwrap()), payload);
        let signature = pair.sign(input.as_bytes());
        (compact(input, signature.as_ref()), Jwks { keys: vec![jwk] })
    }

    #[test]
    fn a_proof_verifies_and_any_change_is_refused() {
        let (token, jwks) = signed(br#"{"validity":1}"#);
        let (header, payload) = verify(&token, &jwks).unwrap();
        assert_eq!(payload, br#"{"validity":1}"#);
        assert_eq!(header.typ.as_deref(), Some(TYPE));
        assert_eq!(verify(&format!("{token}\n"), &jwks).unwrap().1, payload);

        let (other, _) = signed(br#"{"validity":4}"#);
        let [h, _, s]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
        let other_payload = other.split('.').nth(1).unwrap();
        let swapped = format!("{h}.{other_payload}.{s}");
        assert!(matches!(
            verify(&swapped, &jwks),
            Err(Refusal::BadSignature(_))
        ));
        assert!(matches!(
            verify(&token, &Jwks::default()),
            Err(Refusal::UnknownKey(_))
        ));
        assert!(matches!(verify("a.b", &jwks), Err(Refusal::Malformed(_))));
        let none = format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none","kid":"k"}"#),
            "e30"
        );
        assert!(matches!(verify(&none, &jwks), Err(Refusal::Algorithm(a)) if a == "none"));
    }
}
