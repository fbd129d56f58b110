//! `onshi link-key import`: moves an existing link key into the PKCS#11 token.
//!
//! A deployment that already has persons must keep their links, so its key is imported rather
//! than generated in the token (`ops/softhsm` generates one for a new deployment). The key is
//! stored as a sensitive, non-extractable generic secret usable only for signing (HMAC), and the
//! import is accepted only when the token gives the same link as the file for a test number.
//! Common tools cannot do this for every token (OpenSC's `pkcs11-tool` writes no generic secret
//! keys), hence this command.
#![forbid(unsafe_code)]

use anyhow::Context;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::domain::{IndividualNumber, LinkKey};

/// A synthetic, checksum-valid number used only to compare the two sources.
const PROBE: &str = "983205673214";

/// Imports the key of `link_key_file` into the token under `label`.
///
/// # Errors
/// No key file, no token settings, a label already taken, or a token whose links differ.
pub fn import(settings: &Settings, label: &str) -> anyhow::Result<()> {
    let file_settings = Settings {
        link_key_pkcs11_label: None,
        ..settings.clone()
    };
    anyhow::ensure!(
        file_settings.link_key_file.is_some(),
        "set ONSHI_LINK_KEY_FILE to the key to import"
    );
    let in_file = file_settings.link_key()?;
    let path = file_settings
        .link_key_file
        .as_ref()
        .context("checked above")?;
    let raw = crate::secret_file::read(path, "link key file")?;
    let bytes = Zeroizing::new(crate::audit::key::decode_hex_or_raw(&raw).to_vec());

    let token = &settings.health_id;
    let module = token
        .pkcs11_module
        .as_ref()
        .context("set ONSHI_PKCS11_MODULE (and its token label and PIN file)")?;
    let token_label = token
        .pkcs11_token_label
        .as_deref()
        .context("ONSHI_PKCS11_TOKEN_LABEL is required")?;
    let pin_file = token
        .pkcs11_pin_file
        .as_ref()
        .context("ONSHI_PKCS11_PIN_FILE is required")?;
    let session = crate::health_id::keys::token_session(module, token_label, pin_file, true)?;
    let taken = session.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])?;
    anyhow::ensure!(
        taken.is_empty(),
        "the token already holds an object labelled {label}"
    );
    let object = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(bytes.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ])
        .context("storing the key in the token")?;
    let in_token = Settings {
        link_key_pkcs11_label: Some(label.to_owned()),
        ..settings.clone()
    }
    .link_key()?;
    let probe = IndividualNumber::parse(PROBE).map_err(|e| anyhow::anyhow!(e.message))?;
    if !same_link(&probe, &in_file, &in_token)? {
        let _ = session.destroy_object(object);
        anyhow::bail!("the token computes other links than the file; the import was undone");
    }
    Ok(())
}

fn same_link(n: &IndividualNumber, a: &LinkKey, b: &LinkKey) -> anyhow::Result<bool> {
    Ok(n.link(a)? == n.link(b)?)
}
