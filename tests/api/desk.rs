//! The reception page (`GET /desk/`) in Debian's headless Chromium, driven through chromedriver
//! (W3C WebDriver) against the real server: sign in, checks by number (by mouse and by keyboard
//! alone), the token's place (this tab's sessionStorage only), sign out; and (in `card`) the
//! card check through a real `onshi-reader serve` with pcscd and the virtual card, the PIN typed
//! on the agent's standard input. Screenshots go to `target/test-artifacts/desk-*.png`.

mod browser;
mod card;

use onshi::parties::Role;
use serde_json::{json, Value};
use thirtyfour::prelude::*;

use crate::helpers::{spawn_app, Csv, INSURER};
use browser::Browser;

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

    // Typed without its final slash, the address still leads to the page.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = app.send(bare.get(format!("{}/desk", app.address))).await;
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/desk/");

    let browser = Browser::at_desk(&app.address).await;
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
