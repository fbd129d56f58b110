//! The card path through the real pcscd and vpcd, with the virtual JPKI card: reading
//! the certificate, PIN states, signing, and every failure the desk can meet.
//!
//! Needs pcscd with vsmartcard-vpcd (`sudo ops/card-stack`); fails, not skips, without.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use card_reader::{Error, JpkiCard, Pin, PinStatus, Readers};
use rand::RngCore;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use support::{pki, profile, Slot, PIN};

fn pin(s: &str) -> Pin {
    Pin::parse(s).expect("a 4-digit test PIN")
}

fn open(slot: &Slot) -> JpkiCard {
    JpkiCard::open(&slot.readers, &slot.c_name()).expect("open the JPKI application")
}

fn public_key(cert_der: &[u8]) -> RsaPublicKey {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(cert_der).expect("a certificate");
    let spk = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    RsaPublicKey::from_pkcs1_der(spk).expect("an RSA key")
}

#[test]
fn reads_the_certificate_as_on_file() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let der = open(&slot)
        .read_auth_certificate()
        .expect("read the certificate");
    assert_eq!(der, pki().person_valid.cert_der);
}

#[test]
fn waits_for_the_card_through_pcscd() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let found = slot
        .readers
        .wait_for_card(Some(&slot.name), Duration::from_secs(2))
        .expect("card present");
    assert_eq!(found.to_str().ok(), Some(slot.name.as_str()));
}

#[test]
fn cert_command_prints_pem() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let out = Command::new(env!("CARGO_BIN_EXE_onshi-reader"))
        .args(["cert", "--reader", &slot.name, "--timeout", "5"])
        .output()
        .expect("run onshi-reader");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = card_reader::pem::encode("CERTIFICATE", &pki().person_valid.cert_der);
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    assert!(want.starts_with("-----BEGIN CERTIFICATE-----\n"));
}

#[test]
fn reports_pin_tries_left() {
    let slot = Slot::acquire();
    let mut p = profile();
    p.tries = 2;
    let _card = slot.insert(p);
    let mut card = open(&slot);
    assert_eq!(
        card.pin_status().expect("PIN state"),
        PinStatus::TriesLeft(2)
    );
    card.verify_pin(pin("1234")).expect("right PIN");
    assert_eq!(card.pin_status().expect("PIN state"), PinStatus::Verified);
}

#[test]
fn wrong_pin_says_how_many_tries_are_left() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let mut card = open(&slot);
    assert_eq!(
        card.pin_status().expect("PIN state"),
        PinStatus::TriesLeft(3)
    );
    let err = card.verify_pin(pin("0000")).expect_err("wrong PIN");
    assert!(matches!(err, Error::WrongPin { tries_left: 2 }), "{err:?}");
    assert_eq!(
        card.pin_status().expect("PIN state"),
        PinStatus::TriesLeft(2)
    );
    // The right PIN resets the counter.
    card.verify_pin(pin("1234")).expect("right PIN");
    drop(card);
    assert_eq!(
        open(&slot).pin_status().expect("PIN state"),
        PinStatus::TriesLeft(3)
    );
}

#[test]
fn pin_blocks_after_the_last_wrong_try() {
    let slot = Slot::acquire();
    let mut p = profile();
    p.tries = 1;
    let _card = slot.insert(p);
    let mut card = open(&slot);
    let err = card.verify_pin(pin("9999")).expect_err("wrong PIN");
    assert!(matches!(err, Error::PinBlocked), "{err:?}");
    assert!(matches!(card.pin_status(), Err(Error::PinBlocked)));
    let err = card
        .verify_pin(pin("1234"))
        .expect_err("blocked even with the right PIN");
    assert!(matches!(err, Error::PinBlocked), "{err:?}");
}

#[test]
fn signing_without_the_pin_is_refused() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let err = open(&slot).sign_message(b"nonce").expect_err("no PIN");
    assert!(matches!(err, Error::PinNotVerified), "{err:?}");
}

#[test]
fn verified_pin_does_not_outlive_the_session() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let mut card = open(&slot);
    card.verify_pin(pin("1234")).expect("right PIN");
    drop(card); // resets the card
    let err = open(&slot)
        .sign_message(b"nonce")
        .expect_err("PIN state cleared");
    assert!(matches!(err, Error::PinNotVerified), "{err:?}");
}

#[test]
fn signature_verifies_with_the_certificate_key() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let mut nonce = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut nonce);

    let started = Instant::now();
    let mut card = open(&slot);
    let cert = card.read_auth_certificate().expect("certificate");
    card.verify_pin(Pin::parse(std::str::from_utf8(&PIN).expect("ASCII")).expect("PIN"))
        .expect("right PIN");
    let signature = card.sign_message(&nonce).expect("signature");
    let elapsed = started.elapsed();
    println!("read certificate + verify PIN + sign against the virtual card: {elapsed:?}");

    assert_eq!(signature.len(), 256);
    public_key(&cert)
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(nonce),
            &signature,
        )
        .expect("RSASSA-PKCS1-v1_5 SHA-256 signature verifies");
}

#[test]
fn a_card_without_jpki_is_not_a_my_number_card() {
    let slot = Slot::acquire();
    let mut p = profile();
    p.jpki = false;
    let _card = slot.insert(p);
    let err = JpkiCard::open(&slot.readers, &slot.c_name())
        .err()
        .expect("not JPKI");
    assert!(matches!(err, Error::NotMyNumberCard), "{err:?}");
}

#[test]
fn no_card_times_out() {
    let slot = Slot::acquire();
    let started = Instant::now();
    let err = slot
        .readers
        .wait_for_card(Some(&slot.name), Duration::from_millis(800))
        .expect_err("no card");
    assert!(matches!(err, Error::NoCard { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[test]
fn card_removed_mid_operation() {
    let slot = Slot::acquire();
    let inserted = slot.insert(profile());
    let mut card = open(&slot);
    card.read_auth_certificate().expect("certificate");
    inserted.remove();
    let err = card.verify_pin(pin("1234")).expect_err("card gone");
    assert!(matches!(err, Error::CardRemoved), "{err:?}");
}

#[test]
fn unknown_reader_name_is_no_reader() {
    let readers = support::require_stack();
    let err = readers
        .wait_for_card(Some("No Such Reader 99"), Duration::from_secs(1))
        .expect_err("no such reader");
    assert!(
        matches!(err, Error::NoReader { wanted: Some(_) }),
        "{err:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_onshi-reader"))
        .args(["cert", "--reader", "No Such Reader 99", "--timeout", "1"])
        .output()
        .expect("run onshi-reader");
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn readers_lists_both_virtual_readers() {
    let _ = Readers::establish();
    let out = Command::new(env!("CARGO_BIN_EXE_onshi-reader"))
        .arg("readers")
        .output()
        .expect("run onshi-reader");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Virtual PCD 00 00") && text.contains("Virtual PCD 00 01"),
        "{text}"
    );
}

#[test]
fn a_missing_face_folder_is_refused_before_the_card_is_read() {
    let missing = std::env::temp_dir().join(format!("onshi-no-face-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_onshi-reader"))
        .args(["check", "--server", "http://127.0.0.1:9", "--face"])
        .arg(&missing)
        .output()
        .expect("run onshi-reader");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("is not a folder"), "{text}");
    assert!(!missing.exists());
}
