//! A real headless Chromium for page tests, driven as a person would: fields found by their
//! visible labels, buttons and links by their names; plus what only a browser can check (the
//! clipboard, downloads, a phone's width, axe-core's accessibility rules).
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `BRINE_TEST_CHROMEDRIVER` pointing at a
//! chromedriver). Without them a test is skipped, unless `BRINE_TEST_REQUIRE_BROWSER=1` (as CI
//! sets) makes that a failure. Screenshots are written only when `BRINE_SCREENSHOTS` names a
//! folder.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const AXE: &str = include_str!("../fixtures/axe-core/axe.min.js");

pub fn chromedriver_path() -> Option<PathBuf> {
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
    eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
    None
}

/// A chromedriver process on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start(path: &Path) -> Self {
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
        Self { child, port }
    }

    /// A browser with a profile of its own (cookies, storage): a separate person.
    pub async fn browser(&self, base: &str) -> Web {
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{}", self.port);
        // chromedriver needs a moment to listen; try for a bounded while.
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            if let Ok(client) = ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                let web = Web {
                    client,
                    base: base.to_owned(),
                    _profile: profile,
                    downloads,
                };
                web.cdp(
                    "Browser.setDownloadBehavior",
                    json!({"behavior": "allow", "downloadPath": web.downloads.path()}),
                )
                .await;
                return web;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
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

/// A chromedriver command that runs a Chrome DevTools Protocol method.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or("")
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

pub struct Web {
    pub client: Client,
    base: String,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

/// An XPath string literal for `text` (which may hold either kind of quote).
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

impl Web {
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The text of the page's main region, as a person reads it.
    pub async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits (bounded) until the page shows `text` somewhere in its main region.
    pub async fn wait_for_text(&self, text: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(main) = self.client.find(Locator::Css("main")).await
                && let Ok(t) = main.text().await
            {
                if t.contains(text) {
                    return t;
                }
                last = t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never showed {text:?}; it shows:\n{last}");
    }

    /// The form control that the visible label `label` names: by its `for`, or the control
    /// inside the label.
    pub async fn field(&self, label: &str) -> Element {
        let literal = xpath_literal(label);
        let xpath = format!(
            "//label[normalize-space(.)={literal} or ./span[normalize-space(text())={literal}] \
             or normalize-space(text())={literal}]"
        );
        let mut labels = self.client.find_all(Locator::XPath(&xpath)).await.unwrap();
        let mut shown = Vec::new();
        for l in labels.drain(..) {
            if l.is_displayed().await.unwrap_or(false) {
                shown.push(l);
            }
        }
        let label_el = shown
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no visible label {label:?}"));
        if let Some(id) = label_el.attr("for").await.unwrap() {
            return self.client.find(Locator::Id(&id)).await.unwrap();
        }
        // An aria-label names a control that has no visible label (a header row's inputs).
        label_el
            .find(Locator::Css("input, select, textarea"))
            .await
            .unwrap_or_else(|_| panic!("label {label:?} names no control"))
    }

    /// A control named by its `aria-label`, the n-th on the page (0-based).
    pub async fn labelled(&self, name: &str, n: usize) -> Element {
        let all = self
            .client
            .find_all(Locator::XPath(&format!(
                "//*[@aria-label={}]",
                xpath_literal(name)
            )))
            .await
            .unwrap();
        all.into_iter()
            .nth(n)
            .unwrap_or_else(|| panic!("no control labelled {name:?} (#{n})"))
    }

    pub async fn fill(&self, label: &str, text: &str) {
        let lower = label.to_lowercase();
        if ["password", "secret", "value", "key"]
            .iter()
            .any(|word| lower.contains(word))
        {
            crate::canary::register(text);
        }
        let field = self.field(label).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Ticks a checkbox or picks a radio button by its label (no change when already so).
    pub async fn tick(&self, label: &str) {
        let field = self.field(label).await;
        if !field.is_selected().await.unwrap() {
            field.click().await.unwrap();
        }
    }

    /// Opens a collapsed section (`<details>`) by its summary, as a person clicks it.
    pub async fn expand(&self, summary: &str) {
        let xpath = format!(
            "//details[not(@open)]/summary[normalize-space(.)={}]",
            xpath_literal(summary)
        );
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|_| panic!("no closed section {summary:?}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn choose(&self, label: &str, option: &str) {
        let field = self.field(label).await;
        field.select_by_label(option).await.unwrap();
    }

    /// The visible button named `name`, the n-th when several are (0-based).
    pub async fn button_n(&self, name: &str, n: usize) -> Element {
        let literal = xpath_literal(name);
        let button = format!("button[normalize-space(.)={literal} or @aria-label={literal}]");
        // While a modal dialog is open, only its buttons can be reached, as for a person.
        let mut shown = Vec::new();
        for scope in ["//dialog[@open]//", "//"] {
            for b in self
                .client
                .find_all(Locator::XPath(&format!("{scope}{button}")))
                .await
                .unwrap()
            {
                if b.is_displayed().await.unwrap_or(false) {
                    shown.push(b);
                }
            }
            if !shown.is_empty() {
                break;
            }
        }
        shown
            .into_iter()
            .nth(n)
            .unwrap_or_else(|| panic!("no visible button {name:?} (#{n})"))
    }

    pub async fn button(&self, name: &str) -> Element {
        self.button_n(name, 0).await
    }

    /// Presses a button and, when it submits a form, waits for the next page.
    pub async fn press(&self, name: &str) {
        let before = self.client.find(Locator::Css("main")).await.unwrap();
        self.button(name).await.click().await.unwrap();
        self.wait_for_next_page(before).await;
    }

    /// Presses a button that opens or changes something on the same page.
    pub async fn click(&self, name: &str) {
        self.button(name).await.click().await.unwrap();
    }

    pub async fn follow(&self, link: &str) {
        let before = self.client.find(Locator::Css("main")).await.unwrap();
        self.client
            .find(Locator::LinkText(link))
            .await
            .unwrap_or_else(|_| panic!("no link {link:?}"))
            .click()
            .await
            .unwrap();
        self.wait_for_next_page(before).await;
    }

    pub async fn wait_for_next_page(&self, before: Element) {
        for _ in 0..200 {
            if before.text().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.client
            .wait()
            .for_element(Locator::Css("main"))
            .await
            .unwrap();
    }

    /// The accessible name of the focused element, roughly as a screen reader says it: its
    /// label, its `aria-label`, or its text.
    pub async fn focused_name(&self) -> String {
        let name = self
            .run(
                "const e = document.activeElement; if (!e) return ''; \
                 const l = e.labels && e.labels[0]; \
                 if (e === document.body) return ''; \
                 return (e.getAttribute('aria-label') || (l && l.innerText) || e.innerText || '').trim();",
            )
            .await;
        name.as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Types keys into whatever has the focus, as a keyboard would (WebDriver key actions).
    pub async fn keys(&self, keys: &str) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut actions = KeyActions::new("keyboard".into());
        for value in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client.perform_actions(actions).await.unwrap();
    }

    /// Presses Tab (bounded) until the focused element is named `name` (or its label starts
    /// with it).
    pub async fn tab_to(&self, name: &str) {
        let tab: char = fantoccini::key::Key::Tab.into();
        let mut seen = Vec::new();
        for _ in 0..80 {
            self.keys(&tab.to_string()).await;
            let focused = self.focused_name().await;
            // A choice's label may go on with a hint ("Private Opens only with ...").
            if focused == name || focused.starts_with(&format!("{name} ")) {
                return;
            }
            seen.push(focused);
        }
        panic!("Tab never reached {name:?}; it went through {seen:?}");
    }

    pub async fn run(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Lets the page read the clipboard, then reads it as a page would.
    pub async fn clipboard(&self) -> String {
        let origin = self.base.clone();
        self.cdp(
            "Browser.grantPermissions",
            json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        )
        .await;
        let text = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 navigator.clipboard.readText().then(done, e => done('error: ' + e));",
                vec![],
            )
            .await
            .unwrap();
        text.as_str().unwrap_or_default().to_owned()
    }

    /// The one file downloaded so far: its name and content (waits, bounded).
    pub async fn downloaded(&self) -> (String, String) {
        for _ in 0..100 {
            let files: Vec<_> = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".crdownload"))
                .collect();
            if let Some(file) = files.first() {
                let content = std::fs::read_to_string(file.path()).unwrap();
                if !content.is_empty() {
                    return (file.file_name().to_string_lossy().into_owned(), content);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nothing was downloaded");
    }

    /// A phone's width (390 CSS pixels) or back to a desktop's.
    pub async fn phone(&self, on: bool) {
        if on {
            self.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
            )
            .await;
        } else {
            self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                .await;
        }
    }

    pub async fn dark(&self, on: bool) {
        let value = if on { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )
        .await;
    }

    /// Whether the page fits its width: nothing to scroll sideways.
    pub async fn fits_width(&self) -> bool {
        self.run("return document.documentElement.scrollWidth <= window.innerWidth;")
            .await
            .as_bool()
            .unwrap()
    }

    /// Runs axe-core on the page and fails on any serious or critical violation.
    pub async fn assert_accessible(&self, page: &str) {
        self.client.execute(AXE, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']})\
                   .then(r => done(r.violations\
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                     .map(v => ({id: v.id, impact: v.impact, help: v.help,\
                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))),\
                     e => done([{id: 'axe failed', help: String(e)}]));",
                vec![],
            )
            .await
            .unwrap();
        let violations = result.as_array().cloned().unwrap_or_default();
        assert!(
            violations.is_empty(),
            "{page}: accessibility violations:\n{}",
            serde_json::to_string_pretty(&violations).unwrap()
        );
    }

    /// Saves a screenshot as `docs/screenshots/NAME.png`-style files in the folder that
    /// `BRINE_SCREENSHOTS` names; does nothing otherwise.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("BRINE_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
