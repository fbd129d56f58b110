//! `onshi-reader check` end to end: virtual card through pcscd, PIN from stdin, a local
//! stand-in for the onshi server that verifies the signature; and its exit codes.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use support::{fake_server, profile, Slot};

fn check(slot: &Slot, server: &str, token: &str, pin: &str, extra: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("onshi-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token_file = dir.join(format!("token-{}", slot.port));
    std::fs::write(&token_file, format!("{token}\n")).expect("write token");
    let mut child = Command::new(env!("CARGO_BIN_EXE_onshi-reader"))
        .args([
            "check",
            "--server",
            server,
            "--reader",
            &slot.name,
            "--timeout",
            "5",
            "--pin-stdin",
        ])
        .arg("--token-file")
        .arg(&token_file)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run onshi-reader check");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{pin}").expect("write PIN");
    drop(stdin);
    child.wait_with_output().expect("wait for onshi-reader")
}

#[test]
fn check_prints_the_answer_for_the_desk() {
    let server = fake_server::start();
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let out = check(
        &slot,
        &server.url,
        fake_server::TOKEN,
        "1234",
        &[
            "--date-of-care",
            "2025-04-01",
            "--consent",
            "medication,surgery",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for want in [
        "VALID (有効)",
        "Shiken Hanako",
        "30 %",
        "expires within 3 months",
        "chk-for-",
    ] {
        assert!(stdout.contains(want), "{want:?} missing in {stdout}");
    }
    assert!(stderr.contains("3 tries left"), "{stderr}");
    assert!(!stdout.contains(fake_server::TOKEN) && !stderr.contains(fake_server::TOKEN));
    assert!(!stderr.contains("1234"), "the PIN must never be printed");
    let sent = server.checks.lock().expect("not poisoned")[0].clone();
    assert_eq!(sent["date_of_care"], "2025-04-01");
    assert_eq!(sent["consents"]["medication"], true);
    assert_eq!(sent["consents"]["checkups"], false);
    assert_eq!(sent["consents"]["surgery"], true);
}

#[test]
fn check_exit_codes_per_failure() {
    let server = fake_server::start();
    let slot = Slot::acquire();
    let _card = slot.insert(profile());

    let wrong_pin = check(&slot, &server.url, fake_server::TOKEN, "0000", &[]);
    assert_eq!(wrong_pin.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&wrong_pin.stderr).contains("2 tries left"));

    let bad_format = check(&slot, &server.url, fake_server::TOKEN, "12345", &[]);
    assert_eq!(bad_format.status.code(), Some(2));

    let refused = check(&slot, &server.url, "not-the-token", "1234", &[]);
    assert_eq!(refused.status.code(), Some(13));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("unauthenticated"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-token"));

    // A port nobody listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let unreachable = check(&slot, &url, fake_server::TOKEN, "1234", &[]);
    assert_eq!(unreachable.status.code(), Some(12));
}
