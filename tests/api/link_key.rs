//! The link key: from a private file, or inside the PKCS#11 token; the same links either way.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use onshi::config::Settings;
use onshi::domain::IndividualNumber;

use crate::helpers::{my_number, spawn_app_with, Csv, INSURER};

/// The key every test server's link key file holds (helpers.rs writes it as hex).
const FILE_KEY: [u8; 32] = [0x5a; 32];

fn token_settings() -> onshi::health_id::keys::KeySettings {
    let mut settings = onshi::config::Settings::load_from(None, |name| std::env::var(name).ok())
        .expect("the settings in the environment are valid")
        .health_id;
    assert!(
        settings.pkcs11_module.is_some() && std::env::var_os("SOFTHSM2_CONF").is_some(),
        "the PKCS#11 tests need a SoftHSM2 token: run eval \"$(ops/softhsm)\" (ops/test does)"
    );
    settings.key_file = None;
    settings
}

/// Imports `key` into the token as a sensitive, non-extractable HMAC key (as an operator moving
/// an existing link key into the token would) and returns a guard that removes it again.
struct ImportedKey {
    session: cryptoki::session::Session,
    object: cryptoki::object::ObjectHandle,
    label: String,
}

impl ImportedKey {
    fn import(token: &onshi::health_id::keys::KeySettings, key: &[u8]) -> Self {
        let context = Pkcs11::new(token.pkcs11_module.as_ref().unwrap()).unwrap();
        let _ = context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let slot = context
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                context.get_token_info(*s).unwrap().label().trim()
                    == token.pkcs11_token_label.as_deref().unwrap()
            })
            .unwrap();
        let session = context.open_rw_session(slot).unwrap();
        let pin = std::fs::read_to_string(token.pkcs11_pin_file.as_ref().unwrap()).unwrap();
        let _ = session.login(UserType::User, Some(&AuthPin::from(pin.trim())));
        let label = format!("onshi-link-test-{}", uuid::Uuid::new_v4().simple());
        let object = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Value(key.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ])
            .unwrap();
        ImportedKey {
            session,
            object,
            label,
        }
    }
}

impl Drop for ImportedKey {
    fn drop(&mut self) {
        let _ = self.session.destroy_object(self.object);
    }
}

fn link_of(key: &onshi::domain::LinkKey, person: u64) -> [u8; 32] {
    *IndividualNumber::parse(&my_number(person))
        .unwrap()
        .link(key)
        .unwrap()
        .as_bytes()
}

#[tokio::test]
async fn the_token_and_the_file_give_the_same_links_for_the_same_key() {
    let token = token_settings();
    let imported = ImportedKey::import(&token, &FILE_KEY);
    let in_token = Settings {
        health_id: token.clone(),
        link_key_pkcs11_label: Some(imported.label.clone()),
        ..Settings::default()
    }
    .link_key()
    .unwrap();
    assert_eq!(format!("{in_token:?}"), "LinkKey(<in token>)");
    let in_file = onshi::domain::LinkKey::from_bytes(FILE_KEY.to_vec()).unwrap();
    assert_eq!(link_of(&in_token, 1), link_of(&in_file, 1));
    assert_ne!(link_of(&in_token, 1), link_of(&in_token, 2));

    // Enrolment through a server whose link key is in the token stores the same link.
    let label = imported.label.clone();
    let app = spawn_app_with(move |s| {
        s.health_id = token;
        s.link_key_pkcs11_label = Some(label);
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let stored: Vec<u8> = app
        .db()
        .await
        .query_one("select link from persons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, link_of(&in_file, 1).to_vec());
}

#[tokio::test]
async fn a_link_key_file_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("onshi-link-{}", uuid::Uuid::new_v4()));
    onshi::secret_file::write_new(&path, hex::encode(FILE_KEY).as_bytes()).unwrap();
    let settings = Settings {
        link_key_file: Some(path.clone()),
        ..Settings::default()
    };
    assert!(settings.link_key().is_ok());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = format!("{:#}", settings.link_key().unwrap_err());
    std::fs::remove_file(&path).unwrap();
    assert!(error.contains("chmod 600"), "{error}");
    assert!(!error.contains("5a5a"), "{error}");
}

/// `ONSHI_LINK_KEY` is read once and removed from the environment (checked in a child process,
/// so the test does not change its own environment under the other tests).
#[test]
fn the_link_key_variable_is_removed_after_reading() {
    if std::env::var_os("ONSHI_LINK_KEY_CHILD").is_some() {
        let key = Settings::load().unwrap().link_key().unwrap();
        assert!(std::env::var_os("ONSHI_LINK_KEY").is_none());
        assert_eq!(link_of(&key, 3).len(), 32);
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "link_key::the_link_key_variable_is_removed_after_reading",
            "--exact",
            "--nocapture",
        ])
        .env("ONSHI_LINK_KEY_CHILD", "1")
        .env("ONSHI_LINK_KEY", hex::encode(FILE_KEY))
        .status()
        .unwrap();
    assert!(status.success());
}

/// `onshi link-key import` moves an existing key file into the token; the token then gives the
/// same links, and a second import under the same label is refused.
#[tokio::test]
async fn the_import_command_moves_a_key_file_into_the_token() {
    let token = token_settings();
    let key: [u8; 32] = rand::random();
    let path = std::env::temp_dir().join(format!("onshi-import-{}", uuid::Uuid::new_v4()));
    onshi::secret_file::write_new(&path, hex::encode(key).as_bytes()).unwrap();
    let label = format!("onshi-link-import-{}", uuid::Uuid::new_v4().simple());
    let import = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_onshi"))
            .args(["link-key", "import", "--label", &label])
            .env("ONSHI_LINK_KEY_FILE", &path)
            .env_remove("ONSHI_CONFIG")
            .output()
            .unwrap()
    };
    let first = import();
    let second = import();
    // Removes the imported key whatever the assertions below say.
    let guard = ImportedKey::import(&token, &[0; 32]);
    let mut found = guard
        .session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap();
    let in_token = Settings {
        health_id: token.clone(),
        link_key_pkcs11_label: Some(label.clone()),
        ..Settings::default()
    }
    .link_key();
    let links = in_token.map(|k| link_of(&k, 5));
    for object in found.drain(..) {
        guard.session.destroy_object(object).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(!second.status.success(), "the label is taken now");
    let in_file = onshi::domain::LinkKey::from_bytes(key.to_vec()).unwrap();
    assert_eq!(links.unwrap(), link_of(&in_file, 5));
}
