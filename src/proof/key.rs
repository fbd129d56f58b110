//! The proof signing key: where it lives and how it signs.
//!
//! With the token (production) the Ed25519 key pair is generated there (`ops/softhsm` makes
//! `onshi-proof`, the private half sensitive and never extractable) and every proof is signed
//! there with `CKM_EDDSA`, like the audit checkpoints. With a key file (development only) the
//! pair's seed is an HMAC under the file's key (`"onshi/proof/signing-key/v1\0"`), so the file
//! can be made like the other development keys (`head -c 32 /dev/urandom | xxd -p`).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use hmac::{Hmac, Mac};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::jws;
use crate::audit::key::TokenSigner;
use crate::health_id::keys::KeySettings;

/// The `[proof]` settings (see `src/config.rs` for the table of all settings).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProofSettings {
    /// A file holding the key the signing pair derives from (hex or raw, at least 32 bytes,
    /// mode 600; development). When unset, the pair is the token's (`[health_id]` settings).
    pub key_file: Option<PathBuf>,
    /// The label of the Ed25519 key pair in the token.
    pub pkcs11_key_label: String,
    /// The token sessions proofs are signed in, each signing one proof at a time: as many as
    /// the token signs in parallel (a network HSM: more than the cores; SoftHSM: the cores).
    pub pkcs11_sessions: std::num::NonZeroUsize,
}

impl Default for ProofSettings {
    fn default() -> Self {
        ProofSettings {
            key_file: None,
            pkcs11_key_label: "onshi-proof".into(),
            pkcs11_sessions: std::num::NonZeroUsize::new(2).expect("not zero"),
        }
    }
}

const SEED_CONTEXT: &[u8] = b"onshi/proof/signing-key/v1\0";

impl ProofSettings {
    /// Opens the signing key: the key file if set, else the token's pair.
    ///
    /// # Errors
    /// Neither is configured, the file is unreadable, readable by others or short, the token
    /// lacks the pair, or the token's signature does not verify under its public key.
    pub fn open(&self, token: &KeySettings) -> anyhow::Result<ProofKey> {
        if let Some(path) = &self.key_file {
            let raw = crate::secret_file::read(path, "proof key file")?;
            return ProofKey::from_file_key(&crate::audit::key::decode_hex_or_raw(&raw));
        }
        let Some(module) = &token.pkcs11_module else {
            anyhow::bail!(
                "no proof signing key configured: set ONSHI_PROOF_KEY_FILE (development) or the \
                 PKCS#11 token (ONSHI_PKCS11_MODULE ...) holding the Ed25519 key pair {}",
                self.pkcs11_key_label
            );
        };
        let signer = TokenSigner::open(
            module,
            token
                .pkcs11_token_label
                .as_deref()
                .context("ONSHI_PKCS11_TOKEN_LABEL is required with ONSHI_PKCS11_MODULE")?,
            token
                .pkcs11_pin_file
                .as_ref()
                .context("ONSHI_PKCS11_PIN_FILE is required with ONSHI_PKCS11_MODULE")?,
            &self.pkcs11_key_label,
            self.pkcs11_sessions.get(),
        )
        .context("opening the proof signing key in the PKCS#11 token")?;
        ProofKey::of_token(signer)
    }
}

enum Signer {
    InProcess(Ed25519KeyPair),
    Token(TokenSigner),
}

/// The key that signs proofs, with its public half, its `kid` and the encoded header every
/// proof of it carries. Never printed.
pub struct ProofKey {
    signer: Signer,
    public_key: [u8; 32],
    kid: String,
    header: String,
}

impl ProofKey {
    /// The pair derived from a development key file's key.
    ///
    /// # Errors
    /// Fewer than 32 bytes.
    pub fn from_file_key(key: &[u8]) -> anyhow::Result<ProofKey> {
        anyhow::ensure!(key.len() >= 32, "the proof key must be at least 32 bytes");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(SEED_CONTEXT);
        let seed = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| anyhow::anyhow!("deriving the proof signing key"))?;
        let public_key = pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("an Ed25519 public key is 32 bytes");
        Ok(ProofKey::new(Signer::InProcess(pair), public_key))
    }

    /// The token's pair, once it has shown that it signs under the public key it publishes.
    ///
    /// # Errors
    /// The token failed, or its signature does not verify.
    fn of_token(signer: TokenSigner) -> anyhow::Result<ProofKey> {
        let public_key = signer.public_key();
        let key = ProofKey::new(Signer::Token(signer), public_key);
        let probe = b"onshi/proof/probe";
        let signature = key.raw_sign(probe)?;
        anyhow::ensure!(
            UnparsedPublicKey::new(&ED25519, public_key)
                .verify(probe, &signature)
                .is_ok(),
            "the token's proof signature does not verify under the pair's public key"
        );
        Ok(key)
    }

    fn new(signer: Signer, public_key: [u8; 32]) -> ProofKey {
        let kid = jws::thumbprint(&public_key);
        ProofKey {
            header: jws::encoded_header(&kid),
            signer,
            public_key,
            kid,
        }
    }

    /// The key's id: its RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// How many signatures are worth running at once: the token's sessions, or none apart for
    /// a key in process (a signature there costs less than handing it to another thread).
    pub fn parallel_signers(&self) -> usize {
        match &self.signer {
            Signer::InProcess(_) => 1,
            Signer::Token(token) => token.sessions(),
        }
    }

    /// Whether a signature leaves the process (a token): then it never runs on a request's
    /// thread.
    pub fn in_token(&self) -> bool {
        matches!(self.signer, Signer::Token(_))
    }

    fn raw_sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        match &self.signer {
            Signer::InProcess(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::Token(token) => token.sign(message),
        }
    }

    /// The compact JWS of `payload` (a JSON object's bytes).
    ///
    /// # Errors
    /// The token refused or failed (in process never fails).
    pub fn sign(&self, payload: &[u8]) -> anyhow::Result<String> {
        let input = jws::signing_input(&self.header, payload);
        let signature = self.raw_sign(input.as_bytes())?;
        Ok(jws::compact(input, &signature))
    }
}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.signer {
            Signer::InProcess(_) => "<redacted>",
            Signer::Token(_) => "<in token>",
        };
        write!(f, "ProofKey({source}, kid {})", self.kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_give_distinct_stable_pairs_that_never_print() {
        let a = ProofKey::from_file_key(&[1; 32]).unwrap();
        assert_eq!(a.kid(), ProofKey::from_file_key(&[1; 32]).unwrap().kid());
        assert_ne!(a.kid(), ProofKey::from_file_key(&[2; 32]).unwrap().kid());
        assert!(ProofKey::from_file_key(&[1; 31]).is_err());
        assert_eq!(
            format!("{a:?}"),
            format!("ProofKey(<redacted>, kid {})", a.kid())
        );
        let jwks = jws::Jwks {
            keys: vec![jws::Jwk::ed25519(&a.public_key())],
        };
        let token = a.sign(b"{}").unwrap();
        assert_eq!(jws::verify(&token, &jwks).unwrap().1, b"{}");
    }
}
