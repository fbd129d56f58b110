//! The virtual card's APDUs, answered without pcscd.
use super::*;
use crate::apdu::{self as a, StatusWord as Sw};

fn card(tries: u8, jpki: bool) -> VirtualCard {
    // A small key keeps the unit tests fast; the size does not matter to the APDUs.
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).expect("key");
    VirtualCard::new(CardProfile {
        jpki,
        pin: *b"1234",
        tries,
        auth_cert: vec![0x30, 0x82, 0x01, 0x00]
            .into_iter()
            .chain([7u8; 0x100])
            .collect(),
        auth_ca_cert: vec![0x30, 0x00],
        auth_key: key,
        surface: None,
    })
}

fn sw(resp: &[u8]) -> Sw {
    a::split_response(resp).expect("at least a status word").1
}

#[test]
fn select_and_read() {
    let mut c = card(3, true);
    assert_eq!(
        sw(&c.process(&a::select_ef(a::EF_AUTH_CERT))),
        Sw::NOT_FOUND,
        "no app yet"
    );
    assert_eq!(sw(&c.process(&a::select_jpki_app())), Sw::OK);
    assert_eq!(sw(&c.process(&a::select_ef([0x12, 0x34]))), Sw::NOT_FOUND);
    assert_eq!(sw(&c.process(&a::select_ef(a::EF_AUTH_CERT))), Sw::OK);
    let head = c.process(&a::read_binary(0, 7));
    assert_eq!(head, [0x30, 0x82, 0x01, 0x00, 7, 7, 7, 0x90, 0x00]);
    let all = c.process(&a::read_binary(4, 256));
    assert_eq!(all.len(), 258);
    assert_eq!(sw(&c.process(&a::read_binary(0x104, 1))), Sw::END_OF_FILE);
    assert_eq!(
        sw(&c.process(&[0x00, 0xB0, 0x02, 0x00, 0x01])),
        Sw::WRONG_P1P2
    );
    assert_eq!(sw(&c.process(&[0x00, 0xB0, 0x00, 0x00])), Sw::WRONG_LENGTH);
    assert_eq!(
        sw(&c.process(&[0x00, 0x99, 0x00, 0x00])),
        Sw::INS_NOT_SUPPORTED
    );
    assert_eq!(sw(&c.process(&[0x00, 0xA4])), Sw::WRONG_LENGTH);
    assert_eq!(
        sw(&c.process(&[0x00, 0xA4, 0x02, 0x0C, 0x03, 0x00, 0x0A])),
        Sw::WRONG_LENGTH
    );
}

#[test]
fn not_jpki_answers_6a82() {
    let mut c = card(3, false);
    assert_eq!(sw(&c.process(&a::select_jpki_app())), Sw::NOT_FOUND);
}

#[test]
fn pin_counter_and_blocking() {
    let mut c = card(3, true);
    c.process(&a::select_jpki_app());
    c.process(&a::select_ef(a::EF_AUTH_PIN));
    let mut cmd = [0u8; 9];
    assert_eq!(sw(&c.process(&a::pin_status())), Sw::tries_left(3));
    for left in [2, 1, 0] {
        a::verify_pin(b"0000", &mut cmd);
        assert_eq!(sw(&c.process(&cmd)), Sw::tries_left(left));
    }
    assert_eq!(sw(&c.process(&a::pin_status())), Sw::BLOCKED);
    a::verify_pin(b"1234", &mut cmd);
    assert_eq!(sw(&c.process(&cmd)), Sw::BLOCKED);
    assert_eq!(
        sw(&c.process(&[0x00, 0x20, 0x00, 0x80, 0x03, b'1', b'2', b'3'])),
        Sw::WRONG_LENGTH
    );
}

#[test]
fn signing_needs_the_pin_and_pads_without_hashing() {
    let mut c = card(3, true);
    let public = rsa::RsaPublicKey::from(&c.profile.auth_key);
    c.process(&a::select_jpki_app());
    c.process(&a::select_ef(a::EF_AUTH_KEY));
    let hash = [0x5A; 32];
    assert_eq!(sw(&c.process(&a::sign(&hash))), Sw::SECURITY_NOT_SATISFIED);
    c.process(&a::select_ef(a::EF_AUTH_PIN));
    let mut cmd = [0u8; 9];
    a::verify_pin(b"1234", &mut cmd);
    assert_eq!(sw(&c.process(&cmd)), Sw::OK);
    c.process(&a::select_ef(a::EF_AUTH_KEY));
    let resp = c.process(&a::sign(&hash));
    let (sig, status) = a::split_response(&resp).expect("response");
    assert_eq!(status, Sw::OK);
    public
        .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, sig)
        .expect("PKCS#1 v1.5 SHA-256 verifies");
    // Reset clears the security state, the counter stays.
    c.reset();
    c.process(&a::select_jpki_app());
    c.process(&a::select_ef(a::EF_AUTH_KEY));
    assert_eq!(sw(&c.process(&a::sign(&hash))), Sw::SECURITY_NOT_SATISFIED);
}
