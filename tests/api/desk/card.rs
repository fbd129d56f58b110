//! The card check from the page, through a real `onshi-reader serve` on the desk's reader.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::browser::Browser;
use crate::helpers::{free_port, TestApp};
use crate::reader::{close_desk, linked_app, open_desk, reader_binary, PIN};

/// `onshi-reader serve` on a port of its own, for the desk's reader, reading PINs from its
/// standard input; what it writes to standard error is kept.
struct Agent {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl Agent {
    async fn start(app: &TestApp, token_file: &Path, reader: &str, face: &Path) -> Agent {
        let mut child = Command::new(reader_binary())
            .args(["serve", "--server", &app.address, "--token-file"])
            .arg(token_file)
            .arg("--face")
            .arg(face)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--reader",
                reader,
                "--timeout",
                "5",
                "--pin-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap_or_default();
        let address = first
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("the agent did not say where it listens: {first}"))
            .to_owned();
        let log = Arc::new(Mutex::new(first));
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = kept.lock().unwrap();
                log.push('\n');
                log.push_str(&line);
            }
        });
        Agent {
            child,
            address,
            log,
        }
    }

    /// Types the PIN at the agent's terminal (its standard input) for the next check.
    async fn type_pin(&mut self, pin: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{pin}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_checks_a_card_through_the_local_agent() {
    let (app, token_file) = linked_app().await;
    let token = std::fs::read_to_string(&token_file).unwrap();

    // The agent serves this PC only.
    let outside = Command::new(reader_binary())
        .args(["serve", "--server", &app.address, "--token-file"])
        .arg(&token_file)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .await
        .unwrap();
    assert_eq!(outside.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&outside.stderr).contains("not a loopback address"));

    let browser = Browser::at_desk(&app.address).await;
    // No agent yet: the clerk is told so, and what to do meanwhile.
    let closed = free_port();
    browser
        .fill("agent", &format!("http://127.0.0.1:{closed}"))
        .await;
    browser.id("card-button").await.click().await.unwrap();
    let text = browser.result().await;
    assert_eq!(
        browser.text("error-code").await,
        "desk.agent_unreachable",
        "{text}"
    );
    assert!(text.contains("起動していません"), "{text}");

    let desk = open_desk().await;
    // The agent also leaves each answer in the reception software's face folder.
    let face = std::env::temp_dir().join(format!("{}-desk-face", app.db_name));
    std::fs::create_dir_all(&face).unwrap();
    let face_files = || -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&face)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let mut agent = Agent::start(&app, &token_file, &desk.name, &face).await;
    let page_origin = app.address.clone();

    // Only the page's origin may call the agent; the preflight says so for it alone.
    let http = reqwest::Client::new();
    let evil = http
        .post(format!("{}/check", agent.address))
        .header("Origin", "http://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let body: Value = evil.json().await.unwrap();
    assert_eq!(body["error"]["code"], "agent.origin_forbidden");
    let no_origin = http
        .get(format!("{}/status", agent.address))
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{}/check", agent.address))
        .header("Origin", &page_origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Private-Network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        page_origin.as_str()
    );
    assert_eq!(
        preflight.headers()["access-control-allow-private-network"],
        "true"
    );
    let evil_preflight = http
        .request(reqwest::Method::OPTIONS, format!("{}/check", agent.address))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(evil_preflight.status(), 403);
    assert_eq!(
        app.count("disclosures").await,
        0,
        "no refused call read the card"
    );

    // The page asks for the reader's state, then for a check; the PIN is typed at the agent.
    browser.fill("agent", &agent.address).await;
    browser
        .id("agent-status-button")
        .await
        .click()
        .await
        .unwrap();
    let mut status = String::new();
    for _ in 0..200 {
        status = browser.text("agent-status").await;
        if status.contains("起動中") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(status.contains("カード: あり"), "{status}");
    agent.type_pin(PIN).await;
    browser.fill("card_date_of_care", "2026-11-24").await;
    browser.id("card_medication").await.click().await.unwrap();
    browser.id("card-button").await.click().await.unwrap();
    let text = browser.result().await;
    assert_eq!(
        browser.text("validity").await,
        "有効",
        "{text}\n{}",
        agent.log()
    );
    assert_eq!(browser.text("copay").await, "3割");
    assert!(
        text.contains("マイナンバーカードで確認") && text.contains("薬剤情報"),
        "{text}"
    );
    browser.screenshot("card").await;
    let files = face_files();
    assert_eq!(files.len(), 1, "{files:?}\n{}", agent.log());
    let (declared, fields) = crate::bridge::read_answer(&files[0]);
    assert_eq!(declared, "Shift_JIS");
    assert_eq!(fields["XmlMsg/MessageHeader/ReferenceClassification"], "1");
    assert_eq!(fields["XmlMsg/MessageBody/QualificationValidity"], "1");

    // A wrong PIN: the card's answer, with the tries left, in Japanese.
    agent.type_pin("0000").await;
    browser.id("card-button").await.click().await.unwrap();
    let text = browser.result().await;
    assert_eq!(
        browser.text("error-code").await,
        "reader.wrong_pin",
        "{text}"
    );
    assert!(text.contains("残り2回"), "{text}");
    // The right PIN checks again.
    agent.type_pin(PIN).await;
    browser.id("card-button").await.click().await.unwrap();
    browser.result().await;
    assert_eq!(browser.text("validity").await, "有効");
    assert_eq!(
        face_files().len(),
        2,
        "one face file per answered check, none for the refused one"
    );

    // One check at a time: while one waits for its PIN, another is refused.
    let check = format!("{}/check", agent.address);
    let first = tokio::spawn({
        let (http, check, origin) = (http.clone(), check.clone(), page_origin.clone());
        async move {
            let response = http
                .post(check)
                .header("Origin", origin)
                .json(&json!({"date_of_care": "2026-11-24"}))
                .send()
                .await
                .unwrap();
            response.status()
        }
    });
    let mut busy = false;
    for _ in 0..200 {
        let status: Value = http
            .get(format!("{}/status", agent.address))
            .header("Origin", &page_origin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["busy"] == true {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(busy, "the first check never started: {}", agent.log());
    let second = http
        .post(&check)
        .header("Origin", &page_origin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    assert_eq!(
        second.headers()["access-control-allow-origin"],
        page_origin.as_str()
    );
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "agent.busy");
    agent.type_pin(PIN).await;
    assert_eq!(first.await.unwrap(), 200, "{}", agent.log());

    // Past the first line, which names the addresses (whose ports could hold any digits).
    let log = agent.log();
    let said: Vec<&str> = log.lines().skip(1).collect();
    assert!(said.iter().any(|l| l.contains("tries left")), "{log}");
    for line in said {
        // The PIN as a number of its own (a face file's serial may hold its digits).
        let pin_shown = line
            .split(|c: char| !c.is_ascii_digit())
            .any(|digits| digits == PIN);
        assert!(!pin_shown && !line.contains(token.trim()), "{log}");
    }
    let kinds = app.disclosure_kinds().await;
    assert_eq!(kinds, ["eligibility.card"; 3]);
    assert_eq!(
        face_files().len(),
        3,
        "every answered check left its face file"
    );
    let _ = std::fs::remove_dir_all(&face);
    browser.quit().await;
    drop(agent);
    close_desk(desk).await;
    let _ = std::fs::remove_file(token_file);
}
