//! The secure page in a real headless Chromium, driven over WebDriver as a person would use it:
//! typing, clicking, reading the screen.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `BRINE_TEST_CHROMEDRIVER` pointing at a
//! chromedriver). Without them the test is skipped, unless `BRINE_TEST_REQUIRE_BROWSER=1` (as CI
//! sets) makes that a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::json;

use crate::common::*;

fn chromedriver_path() -> Option<PathBuf> {
    let path = std::env::var_os("BRINE_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("BRINE_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "BRINE_TEST_REQUIRE_BROWSER=1 but there is no chromedriver at {}",
        path.display()
    );
    None
}

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start(path: &PathBuf) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            _profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn session(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
            },
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{}", self.port);
        // chromedriver needs a moment to listen; try for a bounded while.
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("chromedriver did not answer on {url}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Types into the password field, presses Reveal, and returns the text of the page that loads.
async fn type_password_and_submit(browser: &Client, password: &str) -> String {
    let before = browser.find(Locator::Css("main")).await.unwrap();
    let field = browser.find(Locator::Id("password")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(password).await.unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The answer is a new page: wait until the old one is gone (bounded), then read the new one.
    for _ in 0..100 {
        if before.text().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser
        .wait()
        .for_element(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_unlocks_the_secure_page_in_a_real_browser() {
    let Some(chromedriver) = chromedriver_path() else {
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({
                "name": "Stripe for the contractor",
                "access": "private",
                "api_key": false,
                "data": "sk_live_browser_test",
                "secure_page": {"enabled": true, "password": "first password", "max_views": 5,
                                "expires_at": "2099-01-31T18:00:00Z",
                                "label": "Stripe test key <for checkout> — from Ana at Acme"},
            }),
        )
        .await;
    let uuid = uuid_of(&created);
    let link = s.url(&format!("/secure/{uuid}"));

    let driver = Driver::start(&chromedriver);
    let browser = driver.session().await;
    browser.goto(&link).await.unwrap();
    let form = browser
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("Enter the password"), "{form}");
    assert!(!form.contains("sk_live_browser_test"));
    // The owner's label is shown before the password, as text (escaped, not markup).
    let label = browser.find(Locator::Id("label")).await.unwrap();
    assert_eq!(
        label.text().await.unwrap(),
        "Stripe test key <for checkout> — from Ana at Acme"
    );

    // Show password: a real toggle button that turns the field into plain text and back.
    let field = browser.find(Locator::Id("password")).await.unwrap();
    let toggle = browser
        .find(Locator::Css("button[type=button][aria-pressed]"))
        .await
        .unwrap();
    assert_eq!(toggle.text().await.unwrap(), "Show password");
    assert_eq!(
        field.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    toggle.click().await.unwrap();
    assert_eq!(field.prop("type").await.unwrap().as_deref(), Some("text"));
    assert_eq!(
        toggle.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    field.send_keys("visible").await.unwrap();
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some("visible")
    );
    toggle.click().await.unwrap();
    assert_eq!(
        field.prop("type").await.unwrap().as_deref(),
        Some("password")
    );
    assert_eq!(
        toggle.attr("aria-pressed").await.unwrap().as_deref(),
        Some("false")
    );

    // A wrong password: a plain failure message, no value.
    let failed = type_password_and_submit(&browser, "not the password").await;
    assert!(failed.contains("That did not work"), "{failed}");
    assert!(
        failed.contains("— from Ana at Acme"),
        "the label stays: {failed}"
    );
    assert!(!failed.contains("sk_live_browser_test"));

    // The right one: the value, a Copy button that works, and the rotation reminder.
    let shown = type_password_and_submit(&browser, "first password").await;
    assert!(shown.contains("sk_live_browser_test"), "{shown}");
    assert!(shown.contains("rotate"), "{shown}");
    // After the password: the label, until when the link works, and the reveals left.
    assert!(
        shown.contains("Stripe test key <for checkout> — from Ana at Acme"),
        "{shown}"
    );
    let expires = browser.find(Locator::Id("expires")).await.unwrap();
    assert_eq!(expires.text().await.unwrap(), "2099-01-31T18:00:00Z");
    let left = browser.find(Locator::Id("views-left")).await.unwrap();
    assert_eq!(left.text().await.unwrap(), "4");
    let copy = browser.find(Locator::Id("copy")).await.unwrap();
    copy.click().await.unwrap();
    let mut label = String::new();
    for _ in 0..50 {
        label = copy.text().await.unwrap();
        if label != "Copy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(label, "Copied");

    // The owner changes the password: the old one no longer opens the page in the browser.
    let res = s
        .request(Method::PUT, &format!("/api/v1/records/{uuid}/secure-page"))
        .bearer_auth(&token)
        .json(&json!({"enabled": true, "password": "second password"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    browser.goto(&link).await.unwrap();
    // The new settings have no label: the page shows none (the same form as any uuid's).
    assert!(browser.find(Locator::Id("label")).await.is_err());
    let refused = type_password_and_submit(&browser, "first password").await;
    assert!(refused.contains("That did not work"), "{refused}");
    assert!(!refused.contains("sk_live_browser_test"));
    let shown = type_password_and_submit(&browser, "second password").await;
    assert!(shown.contains("sk_live_browser_test"));

    browser.close().await.unwrap();
}
