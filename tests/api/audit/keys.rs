//! Where the audit key lives: the token in production, never extractable; without a key or a
//! witness the server does not start.

use onshi::parties::Role;

use super::{audit_key, check};
use crate::helpers::TEST_AUDIT_KEY;

/// The PKCS#11 settings `ops/softhsm` prints; fails loudly when they are missing.
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

/// In production the audit key is in the token, generated there and never extractable: the
/// server keys its chain with it and verify needs the same token.
#[tokio::test]
async fn the_chain_is_keyed_by_the_token_which_never_reveals_the_key() {
    use cryptoki::object::{Attribute, AttributeType, ObjectClass};
    let token = token_settings();
    let app = crate::helpers::spawn_app_with(|s| {
        s.audit.key_file = None;
        s.health_id = token.clone();
    })
    .await;
    let facility = app.party(Role::Facility, &[]).await;
    check(&app, &facility, 3).await;
    app.audit.checkpoint().await.unwrap();
    let audit = onshi::audit::key::AuditSettings::default();
    let key = audit.open_key(&token).unwrap();
    assert_eq!(format!("{key:?}"), "AuditKey(<in token>)");
    let witness = onshi::audit::witness::DirWitness::open(&app.witness_dir).unwrap();
    let report = onshi::audit::verify::verify(&app.db().await, &key, Some(&witness))
        .await
        .unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.records, report.not_yet_witnessed), (3, 0));
    // The file key of the other tests is not the token's: nothing verifies under it.
    let report = onshi::audit::verify::verify(&app.db().await, &audit_key(), Some(&witness))
        .await
        .unwrap();
    assert!(!report.intact());

    let module = token.pkcs11_module.as_ref().unwrap();
    let context = cryptoki::context::Pkcs11::new(module).unwrap();
    let _ = context.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = context
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| {
            context.get_token_info(*s).unwrap().label().trim()
                == token.pkcs11_token_label.as_deref().unwrap()
        })
        .unwrap();
    let session = context.open_ro_session(slot).unwrap();
    let pin = std::fs::read_to_string(token.pkcs11_pin_file.as_ref().unwrap()).unwrap();
    let _ = session.login(
        cryptoki::session::UserType::User,
        Some(&cryptoki::types::AuthPin::from(pin.trim())),
    );
    // The HMAC key of the chain and the private half of the checkpoint key pair: generated in
    // the token, never extractable.
    for (class, label) in [
        (ObjectClass::SECRET_KEY, "onshi-audit"),
        (ObjectClass::PRIVATE_KEY, "onshi-audit-checkpoint"),
    ] {
        let [object] = session
            .find_objects(&[Attribute::Class(class), Attribute::Label(label.into())])
            .unwrap()[..]
        else {
            panic!("one {label} key in the token");
        };
        let attributes = session
            .get_attributes(
                object,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Local,
                ],
            )
            .unwrap();
        for expected in [
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Local(true),
        ] {
            assert!(attributes.contains(&expected), "{label}: {attributes:?}");
        }
    }
    // The checkpoints were signed by that pair: the public key `onshi audit public-key` prints
    // is the token's own point, and each witnessed file verifies under it.
    let [public] = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"onshi-audit-checkpoint".to_vec()),
        ])
        .unwrap()[..]
    else {
        panic!("one checkpoint public key in the token");
    };
    let point = match &session
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap()[..]
    {
        [Attribute::EcPoint(point)] => point.clone(),
        other => panic!("{other:?}"),
    };
    let printed = key.checkpoint_signer().unwrap().verifier();
    assert_eq!(&point[point.len() - 32..], &printed.0[..]);
    let in_process = onshi::audit::key::AuditKey::from_bytes(zeroize::Zeroizing::new(vec![0; 32]))
        .unwrap()
        .checkpoint_signer()
        .unwrap();
    assert_eq!(
        format!("{:?}", key.checkpoint_signer().unwrap()),
        "CheckpointSigner(<in token>)"
    );
    assert_ne!(in_process.verifier(), printed);
    let mut files = 0;
    for entry in std::fs::read_dir(&app.witness_dir).unwrap() {
        let file = std::fs::read(entry.unwrap().path()).unwrap();
        onshi::audit::checkpoint::Checkpoint::open(&file, &printed).unwrap();
        files += 1;
    }
    assert!(files > 0, "a checkpoint was witnessed");
}

/// Without an audit key or a witness the server does not start.
#[tokio::test]
async fn serve_refuses_to_start_without_an_audit_key_or_witness() {
    let base = onshi::config::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("{}/postgres", crate::helpers::pg_server()),
        link_key_file: None,
        ..Default::default()
    };
    let link_key = std::env::temp_dir().join(format!("onshi-link-{}", uuid::Uuid::new_v4()));
    onshi::secret_file::write_new(&link_key, "5a".repeat(32).as_bytes()).unwrap();
    let audit_key = std::env::temp_dir().join(format!("onshi-audit-{}", uuid::Uuid::new_v4()));
    onshi::secret_file::write_new(&audit_key, TEST_AUDIT_KEY.as_bytes()).unwrap();
    let mut no_key = onshi::config::Settings {
        link_key_file: Some(link_key.clone()),
        ..base.clone()
    };
    no_key.audit.witness_dir = Some(std::env::temp_dir());
    let error = onshi::startup::Application::build(&no_key)
        .await
        .err()
        .unwrap();
    assert!(format!("{error:#}").contains("no audit key"), "{error:#}");
    let mut no_witness = no_key.clone();
    no_witness.audit.witness_dir = None;
    no_witness.audit.key_file = Some(audit_key.clone());
    let error = onshi::startup::Application::build(&no_witness)
        .await
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("no audit witness"),
        "{error:#}"
    );
    std::fs::remove_file(link_key).unwrap();
    std::fs::remove_file(audit_key).unwrap();
}
