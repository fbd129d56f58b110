//! The whole card path as a reception desk runs it: the virtual JPKI card on a vpcd reader of
//! the real pcscd, the `onshi-reader check` binary, and the real onshi server.

use std::ffi::CString;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use card_reader::reader::Presence;
use card_reader::virtual_card::{RunningCard, TestPki, VirtualCard, DEFAULT_PORT};
use card_reader::Readers;
use onshi::parties::Role;
use serde_json::{json, Value};

use crate::helpers::{my_number, spawn_app_with_pki, Csv, INSURER};

const FIX: &str =
    "the card tests need pcscd with vsmartcard-vpcd: run ops/card-stack (ops/test does)";

/// One of the two virtual readers, held exclusively (the card-reader tests use the same locks).
struct Slot {
    _lock: File,
    port: u16,
    name: String,
}

fn acquire_slot() -> (Slot, Readers) {
    let readers = Readers::establish().unwrap_or_else(|e| panic!("{e}: {FIX}"));
    let ports = [DEFAULT_PORT, DEFAULT_PORT + 1];
    loop {
        for (i, port) in ports.iter().enumerate() {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(format!("/tmp/onshi-card-reader-vpcd-{port}.lock"))
                .expect("open the reader lock file");
            match file.try_lock() {
                Ok(()) => {
                    let slot = Slot {
                        _lock: file,
                        port: *port,
                        name: format!("Virtual PCD 00 0{i}"),
                    };
                    wait(&readers, &slot, Presence::Empty);
                    return (slot, readers);
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => panic!("lock the reader: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait(readers: &Readers, slot: &Slot, want: Presence) {
    let name = CString::new(slot.name.clone()).unwrap();
    readers
        .wait_for(&[name], want, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{} did not become {want:?}: {e}: {FIX}", slot.name));
}

fn reader_binary() -> std::path::PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join("onshi-reader");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (cargo test --workspace)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_checks_eligibility_with_the_card_through_pcscd() {
    let pki = tokio::task::spawn_blocking(|| TestPki::generate().unwrap())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "onshi-reader-pki-{}",
        uuid::Uuid::new_v4().simple()
    ));
    crate::card::trust_dir(&pki, &dir);
    let app = spawn_app_with_pki(&dir).await;
    app.load(
        &Csv::new()
            .acquire(3, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let admin = app.party(Role::Admin, &[]).await;
    let linked = app
        .post_json(
            "/v1/card-links",
            &admin,
            &json!({"certificate": B64.encode(&pki.person_valid.cert_der), "individual_number": my_number(3)}),
        )
        .await;
    assert_eq!(linked.status(), 201);
    let token_file = dir.join("facility.token");
    std::fs::write(&token_file, app.party(Role::Facility, &[]).await).unwrap();

    let profile = pki.card_profile(&pki.person_valid, *b"1234");
    let (slot, running, readers) = tokio::task::spawn_blocking(move || {
        let (slot, readers) = acquire_slot();
        let card = VirtualCard::new(profile);
        let running = RunningCard::spawn(card, SocketAddr::from(([127, 0, 0, 1], slot.port)))
            .expect("start the virtual card");
        wait(&readers, &slot, Presence::Present);
        (slot, running, readers)
    })
    .await
    .unwrap();

    let mut child = tokio::process::Command::new(reader_binary())
        .args([
            "check",
            "--server",
            &app.address,
            "--reader",
            &slot.name,
            "--pin-stdin",
            "--json",
        ])
        .args([
            "--date-of-care",
            "2026-11-24",
            "--consent",
            "medication,checkups",
        ])
        .arg("--token-file")
        .arg(&token_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"1234\n")
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "onshi-reader failed: {stderr}\n{stdout}"
    );
    assert!(
        !stdout.contains("1234") || stdout.contains("3456"),
        "the PIN is never printed"
    );
    let answer: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("JSON answer: {stdout}"));
    assert_eq!(answer["validity"], 1, "{answer:#}");
    assert_eq!(answer["coverage"]["number"], "3456");
    let consents: (bool, bool) = {
        let row = app
            .db()
            .await
            .query_one("select medication, checkups from consents", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(consents, (true, true));

    tokio::task::spawn_blocking(move || {
        running.stop().expect("stop the virtual card");
        wait(&readers, &slot, Presence::Empty);
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
