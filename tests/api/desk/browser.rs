//! A headless Chromium of the test's own, driven through chromedriver.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use thirtyfour::prelude::*;
use tokio::process::{Child, Command};

use crate::helpers::free_port;

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
pub struct Browser {
    pub driver: WebDriver,
    _chromedriver: Child,
    profile: PathBuf,
}

impl Browser {
    /// A browser on the reception page of the server at `address`.
    pub async fn at_desk(address: &str) -> Browser {
        let browser = Browser::start().await;
        browser
            .driver
            .goto(format!("{address}/desk/"))
            .await
            .unwrap();
        browser
    }

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

    pub async fn id(&self, id: &str) -> WebElement {
        self.driver
            .find(By::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    pub async fn js(&self, script: &str) -> Value {
        self.driver
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .json()
            .clone()
    }

    pub async fn text(&self, id: &str) -> String {
        self.id(id).await.text().await.unwrap()
    }

    /// The result once the page has finished the check it started (the result region says
    /// `aria-busy="false"` again), as the person at the desk reads it.
    pub async fn result(&self) -> String {
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

    pub async fn fill(&self, id: &str, value: &str) {
        let input = self.id(id).await;
        input.clear().await.unwrap();
        if !value.is_empty() {
            input.send_keys(value).await.unwrap();
        }
    }

    pub async fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.driver.screenshot_as_png().await.unwrap();
        std::fs::write(dir.join(format!("desk-{name}.png")), png).unwrap();
    }

    pub async fn quit(self) {
        self.driver.quit().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
