//! Where the health-ID MAC key lives: in process (development) or inside a PKCS#11 token.
//!
//! In process, one master key (file or environment, hex) yields a key per purpose and key version
//! by HKDF-SHA256 (salt `onshi/health-id/kdf`, info = length-prefixed `onshi/health-id/purpose-key`,
//! format version, purpose name, key version): a leaked purpose key reveals nothing of another
//! purpose's. With PKCS#11 the token's key computes `CKM_SHA256_HMAC` itself and never leaves it;
//! the token holds one key, and purpose and key version separate the IDs inside the MAC input
//! (every input is length-prefixed and tagged, so the outputs stay independent). Replacing the
//! token key itself means a new label and a rotation of every purpose.
//!
//! No type here prints key material: `Debug` is redacted, key bytes are zeroized on drop, and
//! error messages name files and labels, never values.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::derive::{put, FORMAT_VERSION};

/// The `[health_id]` settings (see `src/config.rs` for the table of all settings).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// A file holding the hex master key (development); `key` may be used instead.
    pub key_file: Option<PathBuf>,
    /// The hex master key itself (`ONSHI_HEALTH_ID_KEY`, environment only; development).
    pub key: Option<SecretString>,
    /// The PKCS#11 module (`.so`); when set, the token is used and no in-process key is read.
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token_label: Option<String>,
    /// A file holding the user PIN (never the PIN itself in settings).
    pub pkcs11_pin_file: Option<PathBuf>,
    pub pkcs11_key_label: Option<String>,
}

impl KeySettings {
    /// Opens the configured key source; `None` when none is configured (the health-ID
    /// endpoints then answer 503).
    ///
    /// # Errors
    /// An unreadable or short key, or a token that cannot be opened, logged into or lacks the key.
    pub fn open(&self) -> anyhow::Result<Option<KeySource>> {
        if let Some(module) = &self.pkcs11_module {
            let token = self
                .pkcs11_token_label
                .as_deref()
                .context("ONSHI_PKCS11_TOKEN_LABEL is required with ONSHI_PKCS11_MODULE")?;
            let pin_file = self
                .pkcs11_pin_file
                .as_ref()
                .context("ONSHI_PKCS11_PIN_FILE is required with ONSHI_PKCS11_MODULE")?;
            let label = self
                .pkcs11_key_label
                .as_deref()
                .unwrap_or("onshi-health-id");
            return Pkcs11Key::open(module, token, pin_file, label)
                .map(|k| Some(KeySource::Pkcs11(k)));
        }
        let hex_text =
            if let Some(path) = &self.key_file {
                Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("reading the health-ID key file {}", path.display())
                })?)
            } else if let Some(text) = &self.key {
                Zeroizing::new(text.expose_secret().to_owned())
            } else {
                return Ok(None);
            };
        let bytes = hex::decode(hex_text.trim())
            .map_err(|_| anyhow::anyhow!("the health-ID key must be hex digits"))?;
        MasterKey::from_bytes(bytes).map(|k| Some(KeySource::InProcess(k)))
    }
}

/// The in-process master key. Never printed, wiped on drop.
pub struct MasterKey(Zeroizing<Vec<u8>>);

impl MasterKey {
    /// # Errors
    /// Fewer than 32 bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(bytes);
        anyhow::ensure!(
            bytes.len() >= 32,
            "the health-ID master key must be at least 32 bytes"
        );
        Ok(MasterKey(bytes))
    }

    /// The purpose's key for a key version (HKDF-SHA256, see the module docs).
    pub fn purpose_key(&self, purpose: &str, key_version: u32) -> PurposeKey {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"onshi/health-id/kdf"), &self.0);
        let mut info = Vec::with_capacity(64 + purpose.len());
        put(&mut info, b"onshi/health-id/purpose-key");
        put(&mut info, &[FORMAT_VERSION]);
        put(&mut info, purpose.as_bytes());
        put(&mut info, &key_version.to_be_bytes());
        let mut okm = Zeroizing::new([0u8; 32]);
        hkdf.expand(&info, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        PurposeKey::from_raw(okm.as_ref())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A purpose key, held as the HMAC state already keyed with it, so that each ID costs only the
/// hashing of its message.
#[derive(Clone)]
pub struct PurposeKey(Hmac<Sha256>);

impl PurposeKey {
    pub fn from_raw(key: &[u8]) -> Self {
        PurposeKey(Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"))
    }

    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for PurposeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurposeKey(<redacted>)")
    }
}

/// The configured source of health-ID MACs.
#[derive(Debug)]
pub enum KeySource {
    InProcess(MasterKey),
    Pkcs11(Pkcs11Key),
}

/// A key ready to MAC for one purpose and key version.
pub enum Keyed<'a> {
    InProcess(PurposeKey),
    Pkcs11(&'a Pkcs11Key),
}

impl KeySource {
    pub fn keyed(&self, purpose: &str, key_version: u32) -> Keyed<'_> {
        match self {
            KeySource::InProcess(master) => {
                Keyed::InProcess(master.purpose_key(purpose, key_version))
            }
            KeySource::Pkcs11(token) => Keyed::Pkcs11(token),
        }
    }
}

impl Keyed<'_> {
    /// HMAC-SHA256 of the message under the purpose's key.
    ///
    /// # Errors
    /// The token failed (in-process never fails).
    pub fn mac(&self, message: &[u8]) -> anyhow::Result<[u8; 32]> {
        match self {
            Keyed::InProcess(key) => Ok(key.mac(message)),
            Keyed::Pkcs11(token) => token.mac(message),
        }
    }
}

/// A logged-in session on a PKCS#11 token and the handle of its HMAC key.
///
/// One session, used by one caller at a time: a token MAC takes microseconds, and a session may
/// not be shared between threads. The context is never finalized, so several of these may live
/// in one process (as in the tests).
pub struct Pkcs11Key {
    session: Mutex<Session>,
    key: ObjectHandle,
}

/// Opens a session on the token labelled `token_label` and logs in with the PIN in `pin_file`
/// (read-write when `read_write`, to create objects). Shared by every key kept in the token.
///
/// # Errors
/// The module does not load, no token has the label, or the PIN is refused.
pub(crate) fn token_session(
    module: &std::path::Path,
    token_label: &str,
    pin_file: &std::path::Path,
    read_write: bool,
) -> anyhow::Result<Session> {
    let mut sessions = token_sessions(module, token_label, pin_file, read_write, 1)?;
    sessions
        .pop()
        .context("the PKCS#11 module opened no session")
}

/// `count` logged-in sessions of one module context on the token labelled `token_label`: work
/// that may run in parallel (a signature per answer) takes a free one.
///
/// # Errors
/// The module does not load, no token has the label, or the PIN is refused.
pub(crate) fn token_sessions(
    module: &std::path::Path,
    token_label: &str,
    pin_file: &std::path::Path,
    read_write: bool,
    count: usize,
) -> anyhow::Result<Vec<Session>> {
    let context = Pkcs11::new(module)
        .with_context(|| format!("loading the PKCS#11 module {}", module.display()))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(e).context("initializing the PKCS#11 module"),
    }
    let mut slot = None;
    for candidate in context.get_slots_with_token()? {
        if context.get_token_info(candidate)?.label().trim() == token_label {
            slot = Some(candidate);
            break;
        }
    }
    let slot = slot.with_context(|| format!("no PKCS#11 token labelled {token_label}"))?;
    let pin = Zeroizing::new(
        std::fs::read_to_string(pin_file)
            .with_context(|| format!("reading the PIN file {}", pin_file.display()))?,
    );
    let mut sessions = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        let session = if read_write {
            context.open_rw_session(slot)?
        } else {
            context.open_ro_session(slot)?
        };
        // A login holds for every session of the application: the second one is told so.
        match session.login(UserType::User, Some(&AuthPin::from(pin.trim()))) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(e).context("logging in to the PKCS#11 token"),
        }
        sessions.push(session);
    }
    Ok(sessions)
}

impl Pkcs11Key {
    /// # Errors
    /// The module does not load, no token has the label, the PIN is refused, or not exactly one
    /// secret key has the key label.
    pub fn open(
        module: &std::path::Path,
        token_label: &str,
        pin_file: &std::path::Path,
        key_label: &str,
    ) -> anyhow::Result<Self> {
        let session = token_session(module, token_label, pin_file, false)?;
        let keys = session.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ])?;
        let [key] = keys[..] else {
            anyhow::bail!(
                "expected one secret key labelled {key_label} on the token, found {}",
                keys.len()
            );
        };
        Ok(Pkcs11Key {
            session: Mutex::new(session),
            key,
        })
    }

    /// `CKM_SHA256_HMAC` computed inside the token.
    ///
    /// # Errors
    /// The token refused or failed.
    pub fn mac(&self, message: &[u8]) -> anyhow::Result<[u8; 32]> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let out = session
            .sign(&Mechanism::Sha256Hmac, self.key, message)
            .context("HMAC in the PKCS#11 token")?;
        out.as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("the token returned a MAC of {} bytes", out.len()))
    }
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pkcs11Key(<in token>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_print_and_short_keys_are_refused() {
        let master = MasterKey::from_bytes(vec![0x42; 32]).unwrap();
        assert_eq!(format!("{master:?}"), "MasterKey(<redacted>)");
        let key = master.purpose_key("p", 1);
        assert!(!format!("{key:?}").contains("42"));
        let error = MasterKey::from_bytes(vec![0x42; 31]).unwrap_err();
        assert!(!format!("{error:#}").contains("42"));
    }

    #[test]
    fn purpose_keys_differ_by_purpose_and_version() {
        let master = MasterKey::from_bytes(vec![7; 32]).unwrap();
        let m = b"same message";
        let a = master.purpose_key("a", 1).mac(m);
        assert_ne!(a, master.purpose_key("b", 1).mac(m));
        assert_ne!(a, master.purpose_key("a", 2).mac(m));
        assert_eq!(a, master.purpose_key("a", 1).mac(m));
    }
}
