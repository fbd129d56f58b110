//! The 券面事項入力補助AP of the virtual card through the real pcscd: its PIN, its records as
//! the issuer signed them, internal authentication, the security state across applications,
//! and the same answers to OpenSC's `opensc-tool` (an independent PC/SC client) where it can
//! speak to the application (raw APDUs: OpenSC has no driver for it).
//!
//! Needs pcscd with vsmartcard-vpcd (`sudo ops/card-stack`); fails, not skips, without.

mod support;

use std::process::Command;

use card_reader::{Error, JpkiCard, Pin, PinStatus};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use support::{pki, Slot, PIN};

const MY_NUMBER: &str = "900000000053";

fn linking_profile() -> card_reader::virtual_card::CardProfile {
    let p = pki();
    p.linking_card_profile(&p.person_valid, PIN, MY_NUMBER)
        .expect("the input-assistance records")
}

fn pin(s: &str) -> Pin {
    Pin::parse(s).expect("a 4-digit test PIN")
}

#[test]
fn reads_the_signed_records_and_authenticates_only_after_its_pin() {
    let slot = Slot::acquire();
    let profile = linking_profile();
    let surface = profile.surface.clone().expect("a surface application");
    let _card = slot.insert(profile);
    let mut card = JpkiCard::open(&slot.readers, &slot.c_name()).expect("open");
    card.select_surface()
        .expect("select the input-assistance application");
    assert_eq!(card.surface_pin_status().unwrap(), PinStatus::TriesLeft(3));
    assert!(matches!(
        card.read_surface_records(),
        Err(Error::PinNotVerified)
    ));
    let hash: [u8; 32] = Sha256::digest(b"a bound challenge").into();
    assert!(matches!(
        card.internal_authenticate(&hash),
        Err(Error::PinNotVerified)
    ));
    assert!(matches!(
        card.verify_surface_pin(pin("0000")),
        Err(Error::WrongPin { tries_left: 2 })
    ));
    card.verify_surface_pin(pin("1234")).expect("the right PIN");
    let records = card.read_surface_records().expect("the records");
    assert_eq!(records.my_number, surface.my_number);
    assert_eq!(&records.my_number[3..], MY_NUMBER.as_bytes());
    assert_eq!(records.basic_facts, surface.basic_facts);
    assert_eq!(records.signature, surface.signature);
    assert_eq!(records.issuer_certificate, pki().surface_issuer.cert_der);
    assert_eq!(records.auth_key, surface.auth_public);
    let signature = card
        .internal_authenticate(&hash)
        .expect("internal authentication");
    RsaPublicKey::from(&pki().surface_card_key)
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .expect("the card's internal-authentication key signed the hash");

    // Selecting the JPKI application clears the input-assistance PIN, and the other way round.
    card.select_jpki().expect("select JPKI");
    card.verify_pin(pin("1234"))
        .expect("the user-authentication PIN");
    card.select_surface().expect("select again");
    assert!(matches!(
        card.internal_authenticate(&hash),
        Err(Error::PinNotVerified)
    ));
    card.select_jpki().expect("select JPKI");
    assert!(matches!(
        card.sign_sha256(&hash),
        Err(Error::PinNotVerified)
    ));
}

#[test]
fn a_card_without_the_application_is_not_a_my_number_card_for_linking() {
    let slot = Slot::acquire();
    let _card = slot.insert(support::profile());
    let mut card = JpkiCard::open(&slot.readers, &slot.c_name()).expect("open");
    assert!(matches!(card.select_surface(), Err(Error::NotMyNumberCard)));
}

#[test]
fn opensc_tool_gets_the_same_answers() {
    let slot = Slot::acquire();
    let _card = slot.insert(linking_profile());
    let out = Command::new("opensc-tool")
        .args(["--reader", &slot.name])
        .args(["-s", "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08"])
        .args(["-s", "00 A4 02 0C 02 00 11", "-s", "00 20 00 80"])
        .args(["-s", "00 A4 02 0C 02 00 01", "-s", "00 B0 00 00 03"])
        .args(["-s", "00 A4 02 0C 02 00 04", "-s", "00 B0 00 00 02"])
        .output()
        .expect("opensc-tool runs (Debian opensc; ops/card-stack installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_uppercase();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // opensc-tool prints "Received (SW1=0x.., SW2=0x..)" for each command.
    let sws: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("RECEIVED (").nth(1))
        .collect();
    assert_eq!(sws.len(), 7, "{text}");
    assert!(sws[0].starts_with("SW1=0X90, SW2=0X00"), "select: {text}");
    assert!(
        sws[2].starts_with("SW1=0X63, SW2=0XC3"),
        "3 tries left: {text}"
    );
    assert!(
        sws[4].starts_with("SW1=0X69, SW2=0X82"),
        "the number needs the PIN: {text}"
    );
    assert!(
        sws[6].starts_with("SW1=0X90, SW2=0X00"),
        "the issuer certificate is free: {text}"
    );
    assert!(text.contains("30 82"), "a DER certificate: {text}");
}
