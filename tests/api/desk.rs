//! The reception page (`GET /desk/`) in Debian's headless Chromium, driven through chromedriver
//! (W3C WebDriver) against the real server: sign in, checks by number (by mouse and by keyboard
//! alone), the token's place (this tab's sessionStorage only), sign out; and the card check
//! through a real `onshi-reader serve` with pcscd and the virtual card, the PIN typed on the
//! agent's standard input. Screenshots go to `target/test-artifacts/desk-*.png`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onshi::parties::Role;
use serde_json::{json, Value};
use thirtyfour::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{spawn_app, Csv, TestApp, INSURER};
use crate::reader::{close_desk, linked_app, open_desk, reader_binary, PIN};

/// Where `ops/common.sh` (`ensure_chromium`) says Chromium and its driver are, or Debian's.
fn installed(variable: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(variable).unwrap_or_else(|_| default.to_owned()));
    assert!(
        path.exists(),
        "{} ({variable}) is missing: the reception page's test needs Debian's chromium and \
         chromium-driver; run ops/test, which installs them (or `source ops/common.sh && \
         ensure_chromium`)",
        path.display()
    );
    path
}

/// A headless Chromium of its own (fresh profile), through a chromedriver of its own.
struct Browser {
    driver: WebDriver,
    _chromedriver: Child,
    profile: PathBuf,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = installed("ONSHI_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = installed("ONSHI_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                let status: Value = r.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver on port {port} did not become ready");
        let profile =
            std::env::temp_dir().join(format!("onshi-desk-{}", uuid::Uuid::new_v4().simple()));
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(chromium.to_str().unwrap()).unwrap();
        for arg in [
            "--headless=new",
            // The tests run as root, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--lang=ja",
            "--window-size=1280,1200",
            &format!("--user-data-dir={}", profile.display()),
        ] {
            caps.add_arg(arg).unwrap();
        }
        let driver = WebDriver::new(url, caps)
            .await
            .expect("a Chromium session through chromedriver");
        Browser {
            driver,
            _chromedriver: child,
            profile,
        }
    }

    async fn id(&self, id: &str) -> WebElement {
        self.driver
            .find(By::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    async fn js(&self, script: &str) -> Value {
        self.driver
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .json()
            .clone()
    }

    async fn text(&self, id: &str) -> String {
        self.id(id).await.text().await.unwrap()
    }

    /// The result once the page has finished the check it started (the result region says
    /// `aria-busy="false"` again), as the person at the desk reads it.
    async fn result(&self) -> String {
        for _ in 0..600 {
            let busy = self
                .js("return document.getElementById('result').getAttribute('aria-busy')")
                .await;
            if busy == "false" {
                return self.text("result-body").await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the page never finished its check: {}",
            self.text("result-body").await
        );
    }

    async fn fill(&self, id: &str, value: &str) {
        let input = self.id(id).await;
        input.clear().await.unwrap();
        if !value.is_empty() {
            input.send_keys(value).await.unwrap();
        }
    }

    async fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.driver.screenshot_as_png().await.unwrap();
        std::fs::write(dir.join(format!("desk-{name}.png")), png).unwrap();
    }

    async fn quit(self) {
        self.driver.quit().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Fills the number form and submits it with the button.
async fn check_by_number(browser: &Browser, birth: &str, insurer: &str) -> String {
    for (id, value) in [
        ("insurer_number", insurer),
        ("symbol", "12"),
        ("number", "3456"),
        ("branch", "01"),
        ("birth_date", birth),
        ("date_of_care", "2026-11-24"),
    ] {
        browser.fill(id, value).await;
    }
    browser.id("number-button").await.click().await.unwrap();
    browser.result().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_signs_in_checks_by_number_and_signs_out() {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire_with(
                1,
                (INSURER, "12", "3456", "01"),
                "1980-04-01",
                "2020-04-01",
                &[("limit_classification", "01"), ("limit_category", "A03")],
            )
            .build(),
    )
    .await;
    let token = app.party(Role::Facility, &[]).await;

    // The page and its files, with the headers that keep it to itself.
    for (path, media) in [
        ("/desk/", "text/html"),
        ("/desk/desk.js", "text/javascript"),
        ("/desk/desk.css", "text/css"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let h = response.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(media));
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("connect-src 'self' http://127.0.0.1:*"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
    }

    let browser = Browser::start().await;
    browser
        .driver
        .goto(format!("{}/desk/", app.address))
        .await
        .unwrap();
    assert_eq!(
        browser.js("return document.documentElement.lang").await,
        "ja"
    );
    assert_eq!(browser.text("signed-state").await, "未サインイン");

    // Sign in with the keyboard: the token and Enter.
    let field = browser.id("token").await;
    field.send_keys(token.clone() + Key::Enter).await.unwrap();
    assert_eq!(browser.text("signed-state").await, "サインイン中");
    let stored = browser
        .js("return [sessionStorage.getItem('onshi.desk.token'), localStorage.length, document.cookie]")
        .await;
    assert_eq!(
        stored,
        json!([token, 0, ""]),
        "the token is in sessionStorage only"
    );
    assert!(browser.driver.get_all_cookies().await.unwrap().is_empty());

    // Covered: 有効, the copay in 割, the limit certificate withheld without consent.
    let text = check_by_number(&browser, "1980-04-01", INSURER).await;
    assert_eq!(browser.text("validity").await, "有効", "{text}");
    assert_eq!(browser.text("copay").await, "3割");
    for want in [
        "架空 太郎（カクウ タロウ）",
        "架空健康保険組合（33120015）",
        "限度額適用認定証",
        "患者の同意がないため表示していません",
        "確認ID",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    // With the consent, the certificate itself.
    browser
        .id("limit_certificate_consent")
        .await
        .click()
        .await
        .unwrap();
    let text = check_by_number(&browser, "1980-04-01", INSURER).await;
    assert!(text.contains("区分 ウ"), "{text}");
    browser.screenshot("number").await;

    // Another birth date: no such coverage, in the clerk's words.
    check_by_number(&browser, "1980-04-02", INSURER).await;
    assert_eq!(browser.text("validity").await, "該当資格なし");
    // A mistyped insurer number: the error's remedy and its code.
    let text = check_by_number(&browser, "1980-04-01", "33120016").await;
    assert_eq!(
        browser.text("error-code").await,
        "insurer_number.check_digit"
    );
    assert!(
        browser
            .text("error-remedy")
            .await
            .contains("番号の検証番号が合いません"),
        "{text}"
    );
    browser.screenshot("error").await;

    // By keyboard alone, after a reload (the tab keeps its sign-in): Tab to the first field,
    // type, Tab on, Enter submits.
    browser.driver.refresh().await.unwrap();
    assert_eq!(browser.text("signed-state").await, "サインイン中");
    browser
        .driver
        .action_chain()
        .send_keys(Key::Tab + Key::Tab)
        .perform()
        .await
        .unwrap();
    assert_eq!(
        browser.js("return document.activeElement.id").await,
        "insurer_number"
    );
    browser
        .driver
        .action_chain()
        .send_keys(
            INSURER.to_owned()
                + Key::Tab
                + "12"
                + Key::Tab
                + "3456"
                + Key::Tab
                + "01"
                + Key::Tab
                + "19800401"
                + Key::Enter,
        )
        .perform()
        .await
        .unwrap();
    let text = browser.result().await;
    assert_eq!(browser.text("validity").await, "有効", "{text}");

    // Nothing of the token anywhere but the tab's session storage; signing out removes it.
    let url = browser.driver.current_url().await.unwrap().to_string();
    assert!(!url.contains(&token), "{url}");
    browser.id("signout-button").await.click().await.unwrap();
    assert_eq!(browser.text("signed-state").await, "未サインイン");
    assert_eq!(
        browser
            .js("return sessionStorage.getItem('onshi.desk.token')")
            .await,
        Value::Null
    );
    assert!(browser
        .text("result-body")
        .await
        .contains("サインアウトしました"));
    assert_eq!(
        browser
            .id("number-button")
            .await
            .prop("disabled")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    browser.quit().await;
    let kinds = app.count("disclosures").await;
    assert_eq!(
        kinds, 4,
        "every check the page made was answered and recorded"
    );
}

/// `onshi-reader serve` on a port of its own, for the desk's reader, reading PINs from its
/// standard input; what it writes to standard error is kept.
struct Agent {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl Agent {
    async fn start(app: &TestApp, token_file: &Path, reader: &str) -> Agent {
        let mut child = Command::new(reader_binary())
            .args(["serve", "--server", &app.address, "--token-file"])
            .arg(token_file)
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

    let browser = Browser::start().await;
    browser
        .driver
        .goto(format!("{}/desk/", app.address))
        .await
        .unwrap();
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
    let mut agent = Agent::start(&app, &token_file, &desk.name).await;
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

    let log = agent.log();
    assert!(!log.contains(PIN) && !log.contains(token.trim()), "{log}");
    let kinds: Vec<String> = app
        .db()
        .await
        .query("select kind from disclosures order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["eligibility.card", "eligibility.card"]);
    browser.quit().await;
    drop(agent);
    close_desk(desk).await;
    let _ = std::fs::remove_file(token_file);
}
