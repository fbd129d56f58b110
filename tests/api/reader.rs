//! The whole card path as a reception desk runs it: the virtual JPKI card on a vpcd reader of
//! the real pcscd, the `onshi-reader` binary (`link` from the card's signed data, `check`, and
//! `access-log` and `unlink` for the card holder), and the real onshi server.

use std::ffi::CString;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use card_reader::reader::Presence;
use card_reader::virtual_card::{CardProfile, RunningCard, VirtualCard, DEFAULT_PORT};
use card_reader::Readers;
use onshi::parties::Role;
use serde_json::{json, Value};

use crate::card::{linked_before, pki, spawn_card_app_with};
use crate::helpers::{my_number, Csv, TestApp, INSURER};

const FIX: &str =
    "the card tests need pcscd with vsmartcard-vpcd: run ops/card-stack (ops/test does)";
pub(crate) const PIN: &str = "1234";

/// One of the two virtual readers, held exclusively (the card-reader tests use the same locks),
/// with the virtual card of the PKI's valid person on it; removed (and EMPTY awaited) on drop.
pub(crate) struct Desk {
    _lock: File,
    pub(crate) name: String,
    readers: Readers,
    card: Option<RunningCard>,
}

impl Desk {
    /// A desk with the valid person's card (no input-assistance application).
    fn open() -> Desk {
        let p = pki();
        Desk::open_with(p.pki.card_profile(&p.pki.person_valid, *b"1234"))
    }

    /// A desk with the card of `profile` on its reader.
    fn open_with(profile: CardProfile) -> Desk {
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
                        let mut desk = Desk {
                            _lock: file,
                            name: format!("Virtual PCD 00 0{i}"),
                            readers,
                            card: None,
                        };
                        desk.wait(Presence::Empty);
                        let card = VirtualCard::new(profile.clone());
                        let addr = SocketAddr::from(([127, 0, 0, 1], *port));
                        desk.card =
                            Some(RunningCard::spawn(card, addr).expect("start the virtual card"));
                        desk.wait(Presence::Present);
                        return desk;
                    }
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(e)) => panic!("lock the reader: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait(&self, want: Presence) {
        let name = CString::new(self.name.clone()).unwrap();
        self.readers
            .wait_for(&[name], want, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{} did not become {want:?}: {e}: {FIX}", self.name));
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            card.stop().expect("stop the virtual card");
            self.wait(Presence::Empty);
        }
    }
}

pub(crate) fn reader_binary() -> PathBuf {
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

/// An app where the PKI's valid person (My Number 3) is insured, and a facility token file.
async fn insured_app() -> (TestApp, PathBuf) {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    app.load(
        &Csv::new()
            .acquire(3, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let token_file = std::env::temp_dir().join(format!("{}.token", app.db_name));
    std::fs::write(&token_file, app.party(Role::Facility, &[]).await).unwrap();
    (app, token_file)
}

/// [`insured_app`] with the person's card linked before.
pub(crate) async fn linked_app() -> (TestApp, PathBuf) {
    let (app, token_file) = insured_app().await;
    linked_before(&app, &pki().pki.person_valid, 3).await;
    (app, token_file)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn check(desk: &Desk, server: &str, token_file: &Path, pin: &str, extra: &[&str]) -> Run {
    let token_file = token_file.to_str().unwrap();
    let mut args = vec!["check", "--server", server, "--token-file", token_file];
    args.extend_from_slice(extra);
    run_reader(desk, &args, pin).await
}

/// Runs `onshi-reader` on the desk's reader with `args`, typing `pin` on standard input.
async fn run_reader(desk: &Desk, args: &[&str], pin: &str) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(reader_binary())
        .args(args)
        .args(["--reader", &desk.name, "--timeout", "5", "--pin-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pin}\n").as_bytes())
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub(crate) async fn open_desk() -> Desk {
    tokio::task::spawn_blocking(Desk::open).await.unwrap()
}

async fn open_desk_with(profile: CardProfile) -> Desk {
    tokio::task::spawn_blocking(move || Desk::open_with(profile))
        .await
        .unwrap()
}

pub(crate) async fn close_desk(desk: Desk) {
    tokio::task::spawn_blocking(move || drop(desk))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_checks_eligibility_with_the_card_through_pcscd() {
    let (app, token_file) = linked_app().await;
    let desk = open_desk().await;
    let extra = [
        "--json",
        "--date-of-care",
        "2026-11-24",
        "--consent",
        "medication,checkups",
    ];
    let run = check(&desk, &app.address, &token_file, PIN, &extra).await;
    assert_eq!(
        run.code,
        Some(0),
        "onshi-reader failed: {}\n{}",
        run.stderr,
        run.stdout
    );
    let answer: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|_| panic!("JSON answer: {}", run.stdout));
    assert_eq!(answer["validity"], 1, "{answer:#}");
    assert_eq!(answer["coverage"]["number"], "3456");
    let row = app
        .db()
        .await
        .query_one("select medication, checkups, surgery from consents", &[])
        .await
        .unwrap();
    assert_eq!((row.get(0), row.get(1), row.get(2)), (true, true, false));

    // Without --json: what the person at the desk reads.
    let run = check(&desk, &app.address, &token_file, PIN, &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for want in ["VALID (有効)", "架空 太郎", "30 %", "Check id"] {
        assert!(
            run.stdout.contains(want),
            "{want:?} missing in {}",
            run.stdout
        );
    }
    assert!(run.stderr.contains("3 tries left"), "{}", run.stderr);
    let token = std::fs::read_to_string(&token_file).unwrap();
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains(token.trim()), "the token is never printed");
        // As a number of its own: a check id's hex digits may hold the PIN's.
        assert!(
            !output
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == PIN),
            "the PIN is never printed"
        );
    }
    close_desk(desk).await;
    let _ = std::fs::remove_file(token_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_at_the_desk_has_its_exit_code() {
    let (app, token_file) = linked_app().await;
    let desk = open_desk().await;

    let wrong_pin = check(&desk, &app.address, &token_file, "0000", &[]).await;
    assert_eq!(wrong_pin.code, Some(7), "{}", wrong_pin.stderr);
    assert!(
        wrong_pin.stderr.contains("2 tries left"),
        "{}",
        wrong_pin.stderr
    );

    let bad_format = check(&desk, &app.address, &token_file, "12345", &[]).await;
    assert_eq!(bad_format.code, Some(2), "{}", bad_format.stderr);

    let bad_token = std::env::temp_dir().join(format!("{}.bad-token", app.db_name));
    std::fs::write(&bad_token, "onshi_not-the-token\n").unwrap();
    let refused = check(&desk, &app.address, &bad_token, PIN, &[]).await;
    assert_eq!(refused.code, Some(13), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("401") && refused.stderr.contains("auth.invalid"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("not-the-token"));

    // A port nobody listens on.
    let url = crate::helpers::closed_port_url();
    let unreachable = check(&desk, &url, &token_file, PIN, &[]).await;
    assert_eq!(unreachable.code, Some(12), "{}", unreachable.stderr);
    assert_eq!(app.count("disclosures").await, 0, "no check was answered");

    close_desk(desk).await;
    let _ = std::fs::remove_file(token_file);
    let _ = std::fs::remove_file(bad_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_holder_reads_their_access_log_through_pcscd() {
    let (app, token_file) = linked_app().await;
    let token = std::fs::read_to_string(&token_file).unwrap();
    let q = json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
                   "birth_date": "1980-04-01"});
    let checked: Value = app
        .post_json("/v1/eligibility", &token, &q)
        .await
        .json()
        .await
        .unwrap();
    let desk = open_desk().await;

    let run = run_reader(
        &desk,
        &["access-log", "--server", &app.address, "--json"],
        PIN,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, run.stdout);
    let page: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|_| panic!("JSON answer: {}", run.stdout));
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page:#}");
    assert_eq!(page["entries"][0]["check_id"], checked["check_id"]);
    assert_eq!(page["entries"][0]["party"]["name"], "test facility");

    // The list as the person reads it, the first read now at its top.
    let run = run_reader(&desk, &["access-log", "--server", &app.address], PIN).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[1].contains("access_log.self") && lines[1].contains("you, with your card"));
    assert!(lines[2].contains("eligibility.number") && lines[2].contains("test facility"));
    close_desk(desk).await;
    let _ = std::fs::remove_file(token_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_links_the_card_from_its_signed_data_and_the_holder_unlinks_it() {
    let (app, token_file) = insured_app().await;
    let p = &pki().pki;
    let profile = p
        .linking_card_profile(&p.person_valid, *b"1234", &my_number(3))
        .unwrap();
    let desk = open_desk_with(profile).await;
    let server = app.address.clone();
    let token = token_file.to_str().unwrap().to_owned();
    let link = |extra: &'static [&'static str], pins: &'static str| {
        let (server, token) = (server.clone(), token.clone());
        let desk = &desk;
        async move {
            let mut args = vec!["link", "--server", &server, "--token-file", &token];
            args.extend_from_slice(extra);
            run_reader(desk, &args, pins).await
        }
    };

    // Not linked yet: the check says so.
    let run = check(&desk, &app.address, &token_file, PIN, &[]).await;
    assert_eq!(run.code, Some(13), "{}", run.stderr);
    assert!(run.stderr.contains("card.not_linked"), "{}", run.stderr);

    // Both PINs on standard input, one line each; the tries left of both are shown.
    let run = link(&[], "1234\n1234").await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, run.stdout);
    assert!(run.stdout.contains("linked"), "{}", run.stdout);
    assert!(run.stderr.contains("PIN: 3 tries left"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Input-assistance PIN (券面事項入力補助用): 3 tries left"),
        "{}",
        run.stderr
    );
    for output in [&run.stdout, &run.stderr] {
        assert!(
            !output.contains(&my_number(3)),
            "the number is never printed"
        );
    }
    let run = check(&desk, &app.address, &token_file, PIN, &["--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let answer: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(answer["coverage"]["number"], "3456");

    // The holder unlinks with card and PIN; the card no longer checks.
    let run = run_reader(&desk, &["unlink", "--server", &app.address], PIN).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = check(&desk, &app.address, &token_file, PIN, &[]).await;
    assert!(run.stderr.contains("card.not_linked"), "{}", run.stderr);

    // Relinked with one PIN for both applications.
    let run = link(&["--same-pin", "--json"], PIN).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let answer: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(answer["linked"], true);
    assert_eq!(
        check(&desk, &app.address, &token_file, PIN, &[]).await.code,
        Some(0)
    );

    // A wrong input-assistance PIN costs a try of that PIN and links nothing.
    let run = link(&[], "1234\n0000").await;
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert!(run.stderr.contains("2 tries left"), "{}", run.stderr);

    let kinds = app.disclosure_kinds().await;
    assert_eq!(
        kinds,
        [
            "card.link",
            "eligibility.card",
            "card.unlink",
            "card.link",
            "eligibility.card"
        ]
    );
    close_desk(desk).await;
    let _ = std::fs::remove_file(token_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_check_with_face_writes_the_real_systems_face_file() {
    let (app, token_file) = linked_app().await;
    let desk = open_desk().await;
    let face = std::env::temp_dir().join(format!("{}-face", app.db_name));
    std::fs::create_dir_all(&face).unwrap();
    let face_arg = face.to_str().unwrap();
    let run = check(
        &desk,
        &app.address,
        &token_file,
        PIN,
        &["--json", "--date-of-care", "2026-11-24", "--face", face_arg],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, run.stdout);
    let answer: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    // A second check at the same desk is a second file, never a replacement.
    let utf8 = ["--face", face_arg, "--face-encoding", "utf-8"];
    let run = check(&desk, &app.address, &token_file, PIN, &utf8).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    close_desk(desk).await;

    let mut names: Vec<String> = std::fs::read_dir(&face)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let mut encodings = Vec::new();
    for name in &names {
        let prefix = format!("OQSsiquc01res_face_{}", crate::helpers::FACILITY_CODE);
        assert!(
            name.starts_with(&prefix) && name.ends_with(".xml"),
            "{name}"
        );
        let (declared, f) = crate::bridge::read_answer(&face.join(name));
        encodings.push(declared);
        let h = |m: &str| f[&format!("XmlMsg/MessageHeader/{m}")].clone();
        let r = |m: &str| {
            f[&format!("XmlMsg/MessageBody/ResultList/ResultOfQualificationConfirmation/{m}")]
                .clone()
        };
        assert_eq!(h("ReferenceClassification"), "1", "{f:#?}");
        assert_eq!(h("SegmentOfResult"), "1");
        assert_eq!(h("MedicalInstitutionCode"), crate::helpers::FACILITY_CODE);
        assert_eq!(f["XmlMsg/MessageBody/QualificationValidity"], "1");
        assert_eq!(r("InsuredIdentificationNumber"), "3456");
        assert_eq!(r("Name"), answer["coverage"]["name"]);
        assert_eq!(r("InsurerNumber"), INSURER);
    }
    encodings.sort();
    assert_eq!(encodings, ["Shift_JIS", "UTF-8"]);
    // The first check named its day of care; it is the header's confirmation date.
    let dated = names
        .iter()
        .map(|n| crate::bridge::read_answer(&face.join(n)).1)
        .filter(|f| {
            f.get("XmlMsg/MessageHeader/QualificationConfirmationDate") == Some(&json!("20261124"))
        })
        .count();
    assert_eq!(dated, 1);
    let _ = std::fs::remove_dir_all(face);
    let _ = std::fs::remove_file(token_file);
}
