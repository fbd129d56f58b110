//! The audit key: it keys the record chain and the checkpoint signatures.
//!
//! The key lives in a file (development) or, in production, in the PKCS#11 token that also holds
//! the health-ID key, generated there and never extractable (`ops/softhsm` makes one labelled
//! `onshi-audit`). The token computes `CKM_SHA256_HMAC` itself, through the same
//! [`Pkcs11Key`] the health IDs use.
//!
//! **Per-record cost.** A token operation per record would put a token call under a lock on every
//! answer, and the group append would lose its point: `benches/audit.rs` measured 40 µs per
//! `CKM_SHA256_HMAC` in SoftHSM2 (a network HSM takes far longer) against 0.3 µs for an
//! in-process HMAC of a record (0.28 µs for the unkeyed SHA-256 link it replaced), so a group of
//! 4,096 records would wait 160 ms for the token alone. Instead a writer asks the token once, when it claims a lane,
//! for that session's chain key: `HMAC(audit key, "onshi/audit/lane-key/v2\0" || lane || epoch)`,
//! with a fresh random epoch per claim stored in every record of the session. Each record is then
//! one in-process HMAC-SHA256 (well under a microsecond). What a memory dump of a running server
//! yields is the chain keys of its current sessions: enough to forge records of those sessions
//! only, and none that a checkpoint has already witnessed; the audit key itself stays in the token.
//!
//! The checkpoint signing key is an Ed25519 key pair. With the token, the pair is generated in
//! the token (`ops/softhsm` makes `onshi-audit-checkpoint`; the private half sensitive and never
//! extractable) and every checkpoint is signed there with `CKM_EDDSA`: a memory dump of a server
//! yields no key that could sign a checkpoint. With a key file (development only), the pair's
//! seed is an HMAC under the file's key (`"onshi/audit/checkpoint-key/v1\0"`). Either way a
//! checkpoint is checked with the public key alone (`onshi audit public-key` prints it).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::chain::ChainKey;
use crate::health_id::keys::{KeySettings, Pkcs11Key};

/// The `[audit]` settings (see `src/config.rs` for the table of all settings).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// A file holding the audit key (hex, at least 32 bytes; development). When unset, the key
    /// is read from the PKCS#11 token configured in `[health_id]`.
    pub key_file: Option<PathBuf>,
    /// The label of the audit key in the token.
    pub pkcs11_key_label: String,
    /// The label of the checkpoint signing key pair (Ed25519) in the token.
    pub checkpoint_pkcs11_key_label: String,
    /// The append-only directory the signed checkpoints go to.
    pub witness_dir: Option<PathBuf>,
    /// How often a server signs the heads of its lanes (when they moved).
    #[serde(deserialize_with = "crate::config::layers::seconds")]
    pub checkpoint_seconds: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            key_file: None,
            pkcs11_key_label: "onshi-audit".into(),
            checkpoint_pkcs11_key_label: "onshi-audit-checkpoint".into(),
            witness_dir: None,
            checkpoint_seconds: Duration::from_secs(60),
        }
    }
}

impl AuditSettings {
    /// Opens the audit key: the key file if set, else the token.
    ///
    /// # Errors
    /// Neither is configured, the file is unreadable, readable by everyone or short, or the token
    /// lacks the key.
    pub fn open_key(&self, token: &KeySettings) -> anyhow::Result<AuditKey> {
        if let Some(path) = &self.key_file {
            let raw = crate::secret_file::read(path, "audit key file")?;
            return AuditKey::from_bytes(decode_hex_or_raw(&raw));
        }
        let Some(module) = &token.pkcs11_module else {
            anyhow::bail!(
                "no audit key configured: set ONSHI_AUDIT_KEY_FILE (development) or the PKCS#11 \
                 token (ONSHI_PKCS11_MODULE ...) holding the key {}",
                self.pkcs11_key_label
            );
        };
        let token_label = token
            .pkcs11_token_label
            .as_deref()
            .context("ONSHI_PKCS11_TOKEN_LABEL is required with ONSHI_PKCS11_MODULE")?;
        let pin_file = token
            .pkcs11_pin_file
            .as_ref()
            .context("ONSHI_PKCS11_PIN_FILE is required with ONSHI_PKCS11_MODULE")?;
        let key = Pkcs11Key::open(module, token_label, pin_file, &self.pkcs11_key_label)
            .context("opening the audit key in the PKCS#11 token")?;
        let checkpoint = TokenSigner::open(
            module,
            token_label,
            pin_file,
            &self.checkpoint_pkcs11_key_label,
            1,
        )
        .context("opening the checkpoint signing key in the PKCS#11 token")?;
        Ok(AuditKey::Pkcs11 {
            chain: key,
            checkpoint: std::sync::Arc::new(checkpoint),
        })
    }
}

/// A key file holds hex text or raw bytes.
pub(crate) fn decode_hex_or_raw(raw: &[u8]) -> Zeroizing<Vec<u8>> {
    let text = String::from_utf8_lossy(raw);
    let trimmed = text.trim();
    if trimmed.len() >= 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(bytes) = hex::decode(trimmed) {
            return Zeroizing::new(bytes);
        }
    }
    Zeroizing::new(raw.to_vec())
}

/// The audit key, in process or in the token (with the token's checkpoint key pair). Never
/// printed.
pub enum AuditKey {
    InProcess(Zeroizing<Vec<u8>>),
    Pkcs11 {
        chain: Pkcs11Key,
        checkpoint: std::sync::Arc<TokenSigner>,
    },
}

const LANE_KEY_CONTEXT: &[u8] = b"onshi/audit/lane-key/v2\0";
const SIGNING_SEED_CONTEXT: &[u8] = b"onshi/audit/checkpoint-key/v1\0";
const CHECKPOINT_CONTEXT: &[u8] = b"onshi/audit/checkpoint/v1\0";

impl AuditKey {
    /// # Errors
    /// Fewer than 32 bytes.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> anyhow::Result<Self> {
        anyhow::ensure!(bytes.len() >= 32, "the audit key must be at least 32 bytes");
        Ok(AuditKey::InProcess(bytes))
    }

    fn mac(&self, message: &[u8]) -> anyhow::Result<Zeroizing<[u8; 32]>> {
        match self {
            AuditKey::InProcess(key) => Ok(Zeroizing::new(ChainKey::new(key).mac(message))),
            AuditKey::Pkcs11 { chain, .. } => chain.mac(message).map(Zeroizing::new),
        }
    }

    /// The chain key of one writer session (see the module docs).
    ///
    /// # Errors
    /// The token failed.
    pub fn lane_key(&self, lane: i16, epoch: i64) -> anyhow::Result<ChainKey> {
        let mut message = Vec::with_capacity(LANE_KEY_CONTEXT.len() + 10);
        message.extend_from_slice(LANE_KEY_CONTEXT);
        message.extend_from_slice(&lane.to_be_bytes());
        message.extend_from_slice(&epoch.to_be_bytes());
        let key = self.mac(&message)?;
        Ok(ChainKey::new(key.as_ref()))
    }

    /// The checkpoint signing key.
    ///
    /// # Errors
    /// The token failed.
    pub fn checkpoint_signer(&self) -> anyhow::Result<CheckpointSigner> {
        match self {
            AuditKey::InProcess(_) => {
                let seed = self.mac(SIGNING_SEED_CONTEXT)?;
                let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
                    .map_err(|_| anyhow::anyhow!("deriving the checkpoint signing key"))?;
                Ok(CheckpointSigner::InProcess(pair))
            }
            AuditKey::Pkcs11 { checkpoint, .. } => Ok(CheckpointSigner::Token(checkpoint.clone())),
        }
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditKey::InProcess(_) => "AuditKey(<redacted>)",
            AuditKey::Pkcs11 { .. } => "AuditKey(<in token>)",
        })
    }
}

/// Signs checkpoints (Ed25519): in process (development) or in the token.
pub enum CheckpointSigner {
    InProcess(Ed25519KeyPair),
    Token(std::sync::Arc<TokenSigner>),
}

impl CheckpointSigner {
    /// # Errors
    /// The token refused or failed (in process never fails).
    pub fn sign(&self, payload: &[u8]) -> anyhow::Result<[u8; 64]> {
        let mut message = CHECKPOINT_CONTEXT.to_vec();
        message.extend_from_slice(payload);
        let signature = match self {
            CheckpointSigner::InProcess(pair) => pair.sign(&message).as_ref().to_vec(),
            CheckpointSigner::Token(token) => token.sign(&message)?,
        };
        let signature: [u8; 64] = signature
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("a checkpoint signature of {} bytes", signature.len()))?;
        // A token that signs with another key than the one it publishes must not go unnoticed
        // until the next verify.
        anyhow::ensure!(
            self.verifier().verify(payload, &signature),
            "the checkpoint signature does not verify under the signing key's public key"
        );
        Ok(signature)
    }

    pub fn verifier(&self) -> CheckpointVerifier {
        match self {
            CheckpointSigner::InProcess(pair) => CheckpointVerifier(
                pair.public_key()
                    .as_ref()
                    .try_into()
                    .expect("an Ed25519 public key is 32 bytes"),
            ),
            CheckpointSigner::Token(token) => CheckpointVerifier(token.public_key),
        }
    }
}

/// An Ed25519 key pair in a PKCS#11 token: the private key signs there (`CKM_EDDSA`), the public
/// key is read once from the public-key object's `CKA_EC_POINT`. The checkpoints and the proofs
/// of check each have their own pair.
pub struct TokenSigner {
    /// Signatures run in parallel, one per session; a signer takes a free one.
    sessions: Vec<std::sync::Mutex<cryptoki::session::Session>>,
    next: std::sync::atomic::AtomicUsize,
    private: cryptoki::object::ObjectHandle,
    public_key: [u8; 32],
}

impl TokenSigner {
    /// # Errors
    /// The token cannot be opened, or it lacks exactly one Ed25519 private and public key under
    /// `label`.
    pub fn open(
        module: &std::path::Path,
        token_label: &str,
        pin_file: &std::path::Path,
        label: &str,
        sessions: usize,
    ) -> anyhow::Result<TokenSigner> {
        use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
        let sessions =
            crate::health_id::keys::token_sessions(module, token_label, pin_file, false, sessions)?;
        let session = sessions
            .first()
            .context("the PKCS#11 module opened no session")?;
        let find = |class| {
            session.find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
        };
        let (private, public) = (
            find(ObjectClass::PRIVATE_KEY)?,
            find(ObjectClass::PUBLIC_KEY)?,
        );
        let ([private], [public]) = (&private[..], &public[..]) else {
            anyhow::bail!(
                "expected one Ed25519 key pair labelled {label} on the token, found {} private \
                 and {} public keys (ops/softhsm shows how to generate it)",
                private.len(),
                public.len()
            );
        };
        let point = session
            .get_attributes(*public, &[AttributeType::EcPoint])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(point) => Some(point),
                _ => None,
            })
            .with_context(|| format!("the public key {label} has no CKA_EC_POINT"))?;
        let (private, public_key) = (*private, ed25519_point(&point)?);
        Ok(TokenSigner {
            sessions: sessions.into_iter().map(std::sync::Mutex::new).collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
            private,
            public_key,
        })
    }

    /// The pair's public key, as read from the token.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// How many signatures may run at once (its sessions).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Signs `message` in the token (`CKM_EDDSA`, pure Ed25519), in the first free session
    /// (or, when all are busy, waiting for one).
    ///
    /// # Errors
    /// The token refused or failed.
    pub(crate) fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
        use cryptoki::mechanism::Mechanism;
        use std::sync::TryLockError;
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let free = (0..n).find_map(|i| match self.sessions[(start + i) % n].try_lock() {
            Ok(session) => Some(session),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        });
        let session = match free {
            Some(session) => session,
            None => self.sessions[start % n]
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        };
        session
            .sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                self.private,
                message,
            )
            .context("signing in the PKCS#11 token")
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<in token>)")
    }
}

/// The 32 bytes of an Ed25519 `CKA_EC_POINT`: tokens store the DER OCTET STRING (`04 20 ...`),
/// a few the bare point.
fn ed25519_point(point: &[u8]) -> anyhow::Result<[u8; 32]> {
    let bare = match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        bare if bare.len() == 32 => bare,
        _ => anyhow::bail!("the public key is not an Ed25519 point"),
    };
    Ok(bare.try_into().expect("32 bytes"))
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckpointSigner::InProcess(_) => "CheckpointSigner(<redacted>)",
            CheckpointSigner::Token(_) => "CheckpointSigner(<in token>)",
        })
    }
}

/// Checks checkpoint signatures with the public key only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointVerifier(pub [u8; 32]);

impl CheckpointVerifier {
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> bool {
        let mut message = CHECKPOINT_CONTEXT.to_vec();
        message.extend_from_slice(payload);
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(&message, signature)
            .is_ok()
    }

    /// # Errors
    /// Not 64 hex digits.
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .context("a checkpoint public key is 64 hex digits")?;
        Ok(CheckpointVerifier(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AuditKey {
        AuditKey::from_bytes(Zeroizing::new(vec![byte; 32])).unwrap()
    }

    #[test]
    fn lane_keys_differ_by_lane_epoch_and_audit_key() {
        let m = b"record";
        let a = key(1).lane_key(0, 7).unwrap().mac(m);
        assert_eq!(a, key(1).lane_key(0, 7).unwrap().mac(m));
        assert_ne!(a, key(1).lane_key(1, 7).unwrap().mac(m));
        assert_ne!(a, key(1).lane_key(0, 8).unwrap().mac(m));
        assert_ne!(a, key(2).lane_key(0, 7).unwrap().mac(m));
    }

    #[test]
    fn checkpoint_signatures_verify_with_the_public_key_only() {
        let signer = key(1).checkpoint_signer().unwrap();
        let signature = signer.sign(b"payload").unwrap();
        let verifier = CheckpointVerifier::from_hex(&signer.verifier().to_hex()).unwrap();
        assert!(verifier.verify(b"payload", &signature));
        assert!(!verifier.verify(b"payloae", &signature));
        let other = key(2).checkpoint_signer().unwrap().verifier();
        assert!(!other.verify(b"payload", &signature));
    }

    #[test]
    fn ec_points_are_read_in_both_encodings() {
        let mut der = vec![0x04, 0x20];
        der.extend([7; 32]);
        assert_eq!(ed25519_point(&der).unwrap(), [7; 32]);
        assert_eq!(ed25519_point(&[7; 32]).unwrap(), [7; 32]);
        assert!(ed25519_point(&[0x04, 0x20, 1, 2]).is_err());
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert!(AuditKey::from_bytes(Zeroizing::new(vec![1; 31])).is_err());
        assert_eq!(format!("{:?}", key(0x42)), "AuditKey(<redacted>)");
        let signer = key(0x42).checkpoint_signer().unwrap();
        assert_eq!(format!("{signer:?}"), "CheckpointSigner(<redacted>)");
    }
}
