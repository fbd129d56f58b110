//! OpenSC's own JPKI driver accepts the virtual card: `pkcs15-tool` reads the same
//! certificate and `pkcs11-tool` (through opensc-pkcs11.so) signs with the
//! user-authentication key, and the signature verifies. This keeps the virtual card
//! honest against an independent implementation of the card's protocol.

mod support;

use std::process::{Command, Output};

use der::Decode;
use rand::RngCore;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use support::{pki, profile, Slot};

const PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const AUTH_TOKEN_LABEL: &str = "JPKI (User Authentication PIN)";

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} not runnable ({e}): run `sudo ops/card-stack`"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The PKCS#11 slot id of the user-authentication token on `reader`, from
/// `pkcs11-tool --list-slots` ("Slot 0 (0x0): Virtual PCD 00 00" then its token label).
fn auth_slot(reader: &str) -> String {
    let out = run("pkcs11-tool", &["--module", PKCS11_MODULE, "--list-slots"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Slot ") {
            current = rest
                .split_once("): ")
                .filter(|(_, name)| name.trim() == reader)
                .and_then(|(head, _)| head.split_once("(0x"))
                .map(|(_, id)| format!("0x{id}"));
        } else if line.contains(AUTH_TOKEN_LABEL) {
            if let Some(id) = &current {
                return id.clone();
            }
        }
    }
    panic!("no {AUTH_TOKEN_LABEL:?} token on {reader} in:\n{text}");
}

#[test]
fn opensc_jpki_driver_reads_and_signs() {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let person = &pki().person_valid;
    let reader_index = (slot.port - card_reader::virtual_card::DEFAULT_PORT).to_string();

    // pkcs15-tool: certificate id 01 is the user-authentication certificate.
    let out = run(
        "pkcs15-tool",
        &["--reader", &reader_index, "--read-certificate", "01"],
    );
    let pem = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        pem.trim(),
        card_reader::pem::encode("CERTIFICATE", &person.cert_der).trim()
    );

    // pkcs11-tool: SHA256-RSA-PKCS hashes on the host and has the card sign the
    // DigestInfo, exactly what onshi-reader does.
    let dir = std::env::temp_dir().join(format!("onshi-opensc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (input, output) = (dir.join("nonce"), dir.join("signature"));
    let mut nonce = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut nonce);
    std::fs::write(&input, nonce).expect("write nonce");
    let slot_id = auth_slot(&slot.name);
    let (input_s, output_s) = (input.to_string_lossy(), output.to_string_lossy());
    run(
        "pkcs11-tool",
        &[
            "--module",
            PKCS11_MODULE,
            "--slot",
            &slot_id,
            "--login",
            "--pin",
            "1234",
            "--sign",
            "--mechanism",
            "SHA256-RSA-PKCS",
            "--id",
            "01",
            "--input-file",
            &input_s,
            "--output-file",
            &output_s,
        ],
    );
    let signature = std::fs::read(&output).expect("read signature");
    std::fs::remove_dir_all(&dir).ok();

    let cert = x509_cert::Certificate::from_der(&person.cert_der).expect("certificate");
    let spk = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    RsaPublicKey::from_pkcs1_der(spk)
        .expect("RSA key")
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(nonce),
            &signature,
        )
        .expect("OpenSC's signature verifies");
}
