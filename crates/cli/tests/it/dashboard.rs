//! The dashboard in a real headless Chromium, as an owner uses it: signing up, adding secrets,
//! handing them out, rotating, watching the timeline. Fields are found by their labels, buttons
//! and links by their names. Every page is checked with axe-core, in light and dark mode, and
//! at a phone's width.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;
use crate::upstream::Upstream;
use crate::web::{Driver, Web, chromedriver_path};

const VALUE: &str = "sk_live_dashboard_canary_51H";
const PAGE_PASSWORD: &str = "tulip orbit canal 92";

/// Checks the page as it is now: axe-core in light and dark mode, and no sideways scrolling at
/// a phone's width; keeps screenshots (desktop and phone) when asked to.
async fn check_page(web: &Web, name: &str) {
    web.assert_accessible(name).await;
    web.screenshot(&format!("{name}-desktop")).await;
    web.dark(true).await;
    web.assert_accessible(&format!("{name} (dark)")).await;
    web.screenshot(&format!("{name}-dark")).await;
    web.dark(false).await;
    web.phone(true).await;
    assert!(web.fits_width().await, "{name}: wider than a phone");
    web.screenshot(&format!("{name}-phone")).await;
    web.phone(false).await;
}

async fn sign_up(web: &Web, email: &str) {
    web.goto("/").await;
    assert_eq!(web.path().await, "/signin");
    web.follow("Create an account").await;
    web.fill("Email", email).await;
    web.fill("Password", PASSWORD).await;
    web.press("Create account").await;
    assert_eq!(web.path().await, "/");
}

/// The key in the modal that a create or a rotation shows.
async fn key_in_modal(web: &Web) -> String {
    let text = web
        .client
        .find(fantoccini::Locator::Id("new-key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("brk_"), "{text}");
    text
}

/// Waits (bounded) for the playground's selection preview to show `expected`.
async fn selected(web: &Web, expected: &str) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = web
            .client
            .find(fantoccini::Locator::Css("[data-pg-selected]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.trim() == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    text.trim().to_owned()
}

each_backend! {
async fn an_owner_adds_shares_watches_and_rotates_a_secret() {
    let Some(chromedriver) = chromedriver_path() else { return };
    let s = TestServer::start().await;
    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;

    web.goto("/").await;
    check_page(&web, "sign-in").await;
    web.follow("Create an account").await;
    check_page(&web, "sign-up").await;
    sign_up(&web, "ana@example.com").await;
    web.goto(&format!("/records/{}", uuid::Uuid::new_v4())).await;
    assert!(web.main_text().await.contains("no such secret"));
    check_page(&web, "not-found").await;
    web.goto("/").await;
    let empty = web.main_text().await;
    assert!(empty.contains("No secrets yet") && empty.contains("To a person"), "{empty}");
    check_page(&web, "secrets-empty").await;

    // Add secret: a private credential with a secure page.
    web.follow("Add secret").await;
    check_page(&web, "add-secret").await;
    web.fill("Name", "Stripe for the contractor").await;
    web.tick("Private").await;
    web.fill("Secret value", VALUE).await;
    web.tick("Enable Secure Page").await;
    web.fill("Page password", PAGE_PASSWORD).await;
    web.press("Save secret").await;

    // The key modal: shown once, copied, downloaded.
    let text = web.wait_for_text("only time it is shown").await;
    assert!(!text.contains(VALUE), "the value is not on the page");
    let key = key_in_modal(&web).await;
    let uuid = web.path().await.trim_start_matches("/records/").to_owned();
    assert_eq!(uuid.len(), 36, "the address bar shows the record, not the form");
    check_page(&web, "key-modal").await;
    web.click("Copy").await;
    assert_eq!(web.clipboard().await, key);
    web.click("Download .txt").await;
    let (file, content) = web.downloaded().await;
    assert_eq!(file, "stripe-for-the-contractor-api-key.txt");
    assert!(content.contains(&key) && content.contains(&uuid) && content.contains(&format!("/r/{uuid}")), "{content}");
    assert!(content.contains("curl -H"), "{content}");
    web.click("Done").await;

    // Code reads it with the key.
    let res = s.read(&uuid, Some(&key)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["data"], VALUE);

    // A person opens the secure page in another browser and reveals it.
    let person = driver.browser(&s.base).await;
    person.goto(&format!("/secure/{uuid}")).await;
    person.fill("Password", PAGE_PASSWORD).await;
    person.press("Reveal").await;
    assert!(person.main_text().await.contains(VALUE));
    person.close().await;

    // The timeline tells opened, revealed and used apart.
    web.goto(&format!("/records/{uuid}")).await;
    let page = web.main_text().await;
    for line in ["Opened: the secure page", "Revealed on the secure page", "Used: read by code"] {
        assert!(page.contains(line), "timeline lacks {line:?}:\n{page}");
    }
    assert!(page.contains("Prefer two records"), "the both-routes advice: {page}");
    check_page(&web, "record").await;
    // The timeline narrowed to what a person saw.
    web.choose("Show", "Revealed").await;
    web.press("Filter").await;
    let page = web.main_text().await;
    assert!(page.contains("Revealed on the secure page") && !page.contains("Used: read by code"), "{page}");

    // Rotate: a new key, once; the old one gets the exact 401.
    web.click("Rotate key").await; // asks first, in a dialog
    web.click("Rotate key").await; // the dialog's button
    web.wait_for_text("only time it is shown").await;
    let new_key = key_in_modal(&web).await;
    assert_ne!(new_key, key);
    web.click("Done").await;
    web.click("Close without saving it").await;
    assert_eq!(s.read(&uuid, Some(&key)).await.text().await.unwrap(), MISSING_KEY);
    assert_eq!(body(s.read(&uuid, Some(&new_key)).await).await["data"], VALUE);

    // A new page password: the old one stops.
    web.fill("New page password", "second page password").await;
    web.press("Change page password").await;
    let person = driver.browser(&s.base).await;
    person.goto(&format!("/secure/{uuid}")).await;
    person.fill("Password", PAGE_PASSWORD).await;
    person.press("Reveal").await;
    assert!(!person.main_text().await.contains(VALUE));
    person.close().await;

    // Disabled, it answers exactly like a secret that never existed; enabled, it is back.
    web.goto(&format!("/records/{uuid}")).await;
    web.click("Disable").await; // asks first, in a dialog
    web.click("Disable").await; // the dialog's button
    web.wait_for_text("Disabled: every route answers").await;
    let disabled = s.read(&uuid, Some(&new_key)).await;
    let unknown = s.read(&uuid::Uuid::new_v4().to_string(), Some(&new_key)).await;
    assert_eq!(disabled.status(), unknown.status());
    assert_eq!(disabled.text().await.unwrap(), unknown.text().await.unwrap());
    web.goto("/?status=disabled").await;
    assert!(web.main_text().await.contains("Stripe for the contractor"));
    web.goto(&format!("/records/{uuid}")).await;
    web.press("Enable").await;
    assert_eq!(body(s.read(&uuid, Some(&new_key)).await).await["data"], VALUE);
    let page = web.main_text().await;
    assert!(page.contains("You disabled the secret") && page.contains("You enabled the secret"), "{page}");

    // Signing out ends the session: the cookie no longer opens the dashboard.
    let cookie = web.client.get_named_cookie("brine_session").await.unwrap();
    web.press("Sign out").await;
    assert_eq!(web.path().await, "/signin");
    let res = no_redirects().get(s.url("/")).header("Cookie", format!("brine_session={}", cookie.value())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/signin");
    web.close().await;
}

async fn a_bridge_is_made_edited_and_tried_in_the_playground() {
    let Some(chromedriver) = chromedriver_path() else { return };
    let s = TestServer::start_with(|settings| settings.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    sign_up(&web, "ana@example.com").await;

    web.follow("Add secret").await;
    web.tick("Bridge").await;
    web.fill("Name", "Weather").await;
    web.tick("Public").await;
    web.fill("Upstream URL", &up.url("/weather")).await;
    web.labelled("Header name", 0).await.send_keys("Authorization").await.unwrap();
    web.labelled("Header value", 0).await.send_keys("Bearer stored-upstream-key").await.unwrap();
    web.fill("Allowed origins", "https://app.example.com").await;
    web.press("Save secret").await;
    let uuid = web.path().await.trim_start_matches("/records/").to_owned();
    assert_eq!(uuid.len(), 36, "{}", web.main_text().await);
    check_page(&web, "bridge").await;

    // Called: the upstream sees the stored key.
    let res = s.get(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.seen().last().unwrap().headers["authorization"], "Bearer stored-upstream-key");

    // One field edited: the others stay.
    web.tick("POST").await;
    web.press("Save bridge").await;
    let res = s.post(&format!("/r/{uuid}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.seen().last().unwrap().headers["authorization"], "Bearer stored-upstream-key");
    let res = s.get(&format!("/r/{uuid}")).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "the origins were kept");

    // The playground: send, pick a field from the tree, copy the URL, call it.
    web.click("Send").await;
    web.wait_for_text("Upstream answered 200").await;
    web.click("Transformation").await;
    web.click("Select current.temp_c").await;
    assert_eq!(selected(&web, "21.5").await, "21.5");
    web.click("Copy the call URL").await;
    let url = web.clipboard().await;
    assert!(url.ends_with(&format!("/r/{uuid}?select=current.temp_c")), "{url}");
    let res = s.http.get(&url).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "21.5");
    check_page(&web, "playground").await;
    web.close().await;
}
}

/// A client that shows redirects rather than following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser as plain HTTP: its session cookie and its form token, to test what no page shows
/// (cross-site posts, another account's addresses, headers).
struct Visitor<'s> {
    s: &'s TestServer,
    http: reqwest::Client,
    cookies: Vec<String>,
    token: String,
}

impl<'s> Visitor<'s> {
    /// Signs up through the sign-up form.
    async fn sign_up(s: &'s TestServer, email: &str) -> Self {
        let http = no_redirects();
        let form = LoadedForm::load(http.get(s.url("/signup"))).await;
        let res = form
            .post(
                &http,
                &s.url("/signup"),
                &[("email", email), ("password", PASSWORD)],
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let session = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("brine_session="))
            .expect("a session cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(session.contains(flag), "{session}");
        }
        let session = session.split(';').next().unwrap().to_owned();
        Self {
            s,
            http,
            cookies: vec![form.cookie.clone(), session],
            token: form.token,
        }
    }

    fn cookie(&self) -> String {
        self.cookies.join("; ")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.s.url(path))
            .header("Cookie", self.cookie())
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = fields.to_vec();
        all.push(("form_token", &self.token));
        self.http
            .post(self.s.url(path))
            .header("Cookie", self.cookie())
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    /// Adds a private credential through the form; returns its uuid and the key shown once.
    async fn add(&self, name: &str) -> (String, String) {
        let res = self
            .post(
                "/new",
                &[
                    ("kind", "credential"),
                    ("name", name),
                    ("access", "private"),
                    ("api_key", "on"),
                    ("data", VALUE),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert!(
            res.headers().get("location").is_none(),
            "no redirect carries the key"
        );
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        let key = html
            .split("id=\"new-key\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned();
        let uuid = html
            .split("data-canonical=\"/records/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        (uuid, key)
    }
}

each_backend! {
async fn forms_from_elsewhere_and_other_accounts_change_nothing() {
    let s = TestServer::start().await;
    let ana = Visitor::sign_up(&s, "ana@example.com").await;
    let (uuid, key) = ana.add("Ana's key").await;
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);

    // Pages carry the security headers.
    let res = ana.get(&format!("/records/{uuid}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(!html.contains(&key), "the key is shown once, not on later loads");
    assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style");

    // A form posted without its token, or from another site, changes nothing.
    let rotate = format!("/records/{uuid}/rotate");
    let http = no_redirects();
    let res = http.post(s.url(&rotate)).header("Cookie", ana.cookie()).form(&[("x", "y")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = http
        .post(s.url(&rotate))
        .header("Cookie", ana.cookie())
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("form_token", ana.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = ana.post(&format!("/records/{uuid}/delete"), &[]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "deleting needs its confirmation");
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK, "nothing changed");

    // Another account sees none of Ana's records or pages, and changes none.
    let bo = Visitor::sign_up(&s, "bo@example.com").await;
    let list = bo.get("/").await.text().await.unwrap();
    assert!(list.contains("No secrets yet") && !list.contains("Ana's key"));
    assert_eq!(bo.get(&format!("/records/{uuid}")).await.status(), StatusCode::NOT_FOUND);
    for action in ["rotate", "reveal", "delete", "state", "settings"] {
        let res = bo.post(&format!("/records/{uuid}/{action}"), &[("confirm", "yes"), ("state", "disable"), ("name", "mine")]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK, "nothing changed");

    // A bearer token is not a session cookie, nor the other way round.
    let res = s.post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send().await.unwrap();
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    let res = http.get(s.url("/")).header("Cookie", format!("brine_session={token}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session = ana.cookies[1].trim_start_matches("brine_session=").to_owned();
    let res = s.get("/api/v1/records").bearer_auth(&session).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Signed out: nothing opens.
    let res = http.get(s.url("/new")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/signin");
}
}

/// The code an authenticator app shows now for a base32 secret.
fn app_code(secret: &str) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .with_account_name("ana@example.com")
        .build()
        .unwrap()
        .generate_current()
        .to_string()
}

async fn sign_in(web: &Web, email: &str, password: &str) {
    web.goto("/signin").await;
    web.fill("Email", email).await;
    web.fill("Password", password).await;
    web.press("Sign in").await;
}

async fn text_of(web: &Web, id: &str) -> String {
    web.client
        .find(fantoccini::Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

each_backend! {
async fn an_owner_turns_on_two_factor_ends_a_session_and_deletes_the_account() {
    let Some(chromedriver) = chromedriver_path() else { return };
    let s = TestServer::start().await;
    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    sign_up(&web, "ana@example.com").await;
    web.follow("Account").await;
    check_page(&web, "account").await;

    // Two-factor sign-in: scan (here: read the secret), confirm with a code, keep the codes.
    web.press("Set up two-factor sign-in").await;
    check_page(&web, "two-factor-setup").await;
    let secret = text_of(&web, "tfa-secret").await;
    web.fill("Code from the app", "000000").await;
    web.press("Turn on two-factor sign-in").await;
    web.wait_for_text("not correct").await;
    web.fill("Code from the app", &app_code(&secret)).await;
    web.press("Turn on two-factor sign-in").await;
    web.wait_for_text("recovery codes, shown once").await;
    let codes: Vec<String> = text_of(&web, "recovery-codes").await.lines().map(str::to_owned).collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    web.click("Copy codes").await;
    assert_eq!(web.clipboard().await.lines().count(), 10);

    // Signing in now takes the password, then a code.
    web.press("Sign out").await;
    sign_in(&web, "ana@example.com", PASSWORD).await;
    web.wait_for_text("Enter your sign-in code").await;
    check_page(&web, "sign-in-code").await;
    web.fill("Code", "123456").await;
    web.press("Verify").await;
    web.wait_for_text("That code is not correct").await;
    web.fill("Code", &app_code(&secret)).await;
    web.press("Verify").await;
    assert_eq!(web.path().await, "/");

    // A second browser signs in with a recovery code; the first ends that session.
    let other = driver.browser(&s.base).await;
    sign_in(&other, "ana@example.com", PASSWORD).await;
    other.fill("Code", &codes[0]).await;
    other.press("Verify").await;
    assert_eq!(other.path().await, "/");
    web.goto("/account").await;
    let page = web.main_text().await;
    for line in ["Signed in with a recovery code", "Failed sign-in: wrong two-factor code", "Two-factor sign-in turned on"] {
        assert!(page.contains(line), "history lacks {line:?}:\n{page}");
    }
    web.press("End").await;
    other.goto("/").await;
    assert_eq!(other.path().await, "/signin", "the ended session opens nothing");
    other.close().await;

    // Deleting the account deletes its secrets.
    let ana = s.post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD, "code": codes[1]}))
        .send().await.unwrap();
    let token = body(ana).await["token"].as_str().unwrap().to_owned();
    let created = s.create(&token, json!({"name": "Doomed", "access": "private", "data": VALUE})).await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    web.goto("/account").await;
    web.fill("Password to delete", "not the password").await;
    web.tick("Yes, delete my account and all its secrets").await;
    web.press("Delete account").await;
    web.wait_for_text("The password is not correct").await;
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);
    web.fill("Password to delete", PASSWORD).await;
    web.tick("Yes, delete my account and all its secrets").await;
    web.press("Delete account").await;
    assert_eq!(web.path().await, "/signin");
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::NOT_FOUND);
    sign_in(&web, "ana@example.com", PASSWORD).await;
    web.wait_for_text("The email or password is not correct").await;
    web.close().await;
}

async fn a_secret_is_added_with_the_keyboard_alone_and_found_by_search() {
    let Some(chromedriver) = chromedriver_path() else { return };
    let s = TestServer::start().await;
    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    sign_up(&web, "ana@example.com").await;
    let enter: char = fantoccini::key::Key::Enter.into();
    let space = ' ';

    // From the list to a saved secret without the mouse.
    web.tab_to("Add secret").await;
    web.keys(&enter.to_string()).await;
    web.wait_for_text("What is it?").await;
    web.tab_to("Name").await;
    web.keys("Keyboard key").await;
    // The access radios are one Tab stop: the chosen one, Private unless changed.
    web.tab_to("Private").await;
    web.tab_to("Secret value").await;
    web.keys(VALUE).await;
    web.tab_to("Enable Secure Page").await;
    web.keys(&space.to_string()).await;
    web.tab_to("Page password").await;
    web.keys(PAGE_PASSWORD).await;
    web.tab_to("Save secret").await;
    web.keys(&enter.to_string()).await;
    web.wait_for_text("only time it is shown").await;
    let key = key_in_modal(&web).await;
    let uuid = web.path().await.trim_start_matches("/records/").to_owned();
    assert_eq!(body(s.read(&uuid, Some(&key)).await).await["data"], VALUE);
    // The modal holds the focus; Escape asks before closing without the key saved.
    assert_eq!(web.focused_name().await, "Copy");

    // A validation error is shown beside its field; what was typed stays, the secret does not.
    web.goto("/new").await;
    web.fill("Name", "Limited key").await;
    web.fill("Secret value", VALUE).await;
    web.expand("Expiry and limits").await;
    web.fill("Rate limit per address", "lots").await;
    web.press("Save secret").await;
    let error = text_of(&web, "rate-error").await;
    assert!(error.contains("rate_limit"), "{error}");
    let field = web.field("Rate limit per address").await;
    assert_eq!(field.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert_eq!(field.attr("aria-describedby").await.unwrap().as_deref(), Some("rate-error"));
    assert_eq!(field.prop("value").await.unwrap().unwrap(), "lots");
    assert_eq!(web.field("Name").await.prop("value").await.unwrap().unwrap(), "Limited key");
    assert_eq!(web.field("Secret value").await.prop("value").await.unwrap().unwrap(), "");

    // Search and filters.
    web.goto("/new").await;
    web.tick("Public").await;
    web.fill("Name", "Weather notes").await;
    web.fill("Secret value", "public text").await;
    web.press("Save secret").await;
    web.goto("/").await;
    check_page(&web, "secrets").await;
    web.fill("Search by name", "keyboard").await;
    web.press("Filter").await;
    let list = web.main_text().await;
    assert!(list.contains("Keyboard key") && !list.contains("Weather notes"), "{list}");
    web.fill("Search by name", "").await;
    web.choose("Access", "Public").await;
    web.press("Filter").await;
    let list = web.main_text().await;
    assert!(!list.contains("Keyboard key") && list.contains("Weather notes"), "{list}");
    web.close().await;
}
}

/// The Logs page after some traffic: the chart draws it, the table counts it per secret and
/// sorts, the event log narrows to refusals, the export downloads it.
#[tokio::test]
async fn the_logs_page_shows_the_traffic_of_every_secret() {
    let Some(chromedriver) = chromedriver_path() else {
        return;
    };
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let up = Upstream::start().await;
    let token = s.signup("ana@example.com").await;
    let stripe = s
        .create(
            &token,
            json!({"name": "Stripe live", "access": "private", "data": VALUE}),
        )
        .await;
    let weather = s
        .create(
            &token,
            json!({"name": "Weather bridge", "type": "bridge", "access": "public",
        "bridge": {"url": up.url("/v1")}}),
        )
        .await;
    for _ in 0..4 {
        assert_eq!(
            s.read(&uuid_of(&stripe), Some(&key_of(&stripe)))
                .await
                .status(),
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        assert_eq!(
            s.read(&uuid_of(&stripe), Some("wrong")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..9 {
        assert_eq!(
            s.get(&format!("/r/{}", uuid_of(&weather)))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }

    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    sign_in(&web, "ana@example.com", PASSWORD).await;
    web.follow("Logs").await;
    assert_eq!(web.path().await, "/logs");
    let text = web.wait_for_text("By secret").await;
    assert!(text.contains("Requests\n16"), "{text}");
    assert!(text.contains("Refused\n3"), "{text}");
    // The chart has a bar for the hour and says what it shows.
    let bars = web
        .client
        .find_all(fantoccini::Locator::Css("figure.chart rect.requests"))
        .await
        .unwrap();
    assert!(!bars.is_empty());
    let caption = content_of(&web, "traffic-chart-desc").await;
    assert!(caption.starts_with("16 requests and 3 errors"), "{caption}");
    // The table: most requests first, and sorted by errors on a click.
    let rows = web
        .client
        .find_all(fantoccini::Locator::Css("table.usage tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].text().await.unwrap().starts_with("Weather bridge"));
    assert!(rows[1].text().await.unwrap().contains("3 refused"));
    check_page(&web, "logs").await;
    web.follow("Errors").await;
    let rows = web
        .client
        .find_all(fantoccini::Locator::Css("table.usage tbody tr"))
        .await
        .unwrap();
    assert!(rows[0].text().await.unwrap().starts_with("Stripe live"));
    // The event log, narrowed to refusals of one secret.
    web.choose("Secret", "Stripe live").await;
    web.choose("Show", "Refused: key, password or rules").await;
    web.press("Search").await;
    let log = web.wait_for_text("Event log").await;
    assert_eq!(
        log.matches("401 Authentication required").count(),
        3,
        "{log}"
    );
    // The table's link leads to the secret, whose page has its own chart.
    web.follow("Stripe live").await;
    assert_eq!(web.path().await, format!("/records/{}", uuid_of(&stripe)));
    let caption = content_of(&web, "record-chart-desc").await;
    assert!(caption.starts_with("7 requests and 3 errors"), "{caption}");
    // The export downloads the log as CSV.
    web.goto("/logs").await;
    web.follow("Export CSV").await;
    let (name, csv) = web.downloaded().await;
    assert_eq!(name, "brine-events.csv");
    assert_eq!(
        csv.lines().filter(|l| l.contains(",read,denied,")).count(),
        3,
        "{csv}"
    );
    assert!(!csv.contains(VALUE));
    web.close().await;
}

/// The text content of an element that is not drawn (an SVG `<desc>`).
async fn content_of(web: &Web, id: &str) -> String {
    let script = format!("return document.getElementById('{id}').textContent");
    web.run(&script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_makes_a_service_token_for_ci_and_revokes_it() {
    let Some(chromedriver) = chromedriver_path() else {
        return;
    };
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let stripe = s
        .create(
            &token,
            json!({"name": "Stripe test", "access": "private", "data": VALUE}),
        )
        .await;
    s.create(
        &token,
        json!({"name": "Database URL", "access": "owner_only", "data": "postgres://x"}),
    )
    .await;

    let driver = Driver::start(&chromedriver);
    let web = driver.browser(&s.base).await;
    sign_in(&web, "ana@example.com", PASSWORD).await;
    web.follow("Tokens").await;
    assert_eq!(web.path().await, "/tokens");
    web.wait_for_text("No service tokens yet").await;
    check_page(&web, "tokens").await;

    // Nothing chosen: refused beside the form, nothing made.
    web.fill("Name", "GitHub Actions deploy").await;
    web.press("Make token").await;
    let text = web.wait_for_text("Name 1 to").await;
    assert!(text.contains("No service tokens yet"), "{text}");

    web.tick("Stripe test").await;
    web.choose("Expires after", "30 days").await;
    web.press("Make token").await;
    web.wait_for_text("only time it is shown").await;
    let secret = web
        .client
        .find(fantoccini::Locator::Id("new-key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("brst_"), "{secret}");
    check_page(&web, "token-modal").await;
    web.click("Copy").await;
    assert_eq!(web.clipboard().await, secret);
    web.click("Download .txt").await;
    let (file, content) = web.downloaded().await;
    assert_eq!(file, "brine-service-token.txt");
    assert!(
        content.contains(&secret) && content.contains("BRINE_SERVICE_TOKEN"),
        "{content}"
    );
    web.click("Done").await;

    // CI reads the chosen secret with it, and only that one.
    let res = s.read(&uuid_of(&stripe), Some(&secret)).await;
    assert_eq!(body(res).await["data"], VALUE);
    let text = web.main_text().await;
    assert!(
        text.contains("GitHub Actions deploy") && text.contains("Reads: Stripe test"),
        "{text}"
    );
    assert!(
        !text.contains(&secret[10..]),
        "the list never shows the token"
    );

    web.goto("/tokens").await;
    let text = web.wait_for_text("last used").await;
    assert!(
        text.contains("Expires in 29 days") || text.contains("Expires in 30 days"),
        "{text}"
    );
    web.click("Revoke GitHub Actions deploy").await;
    web.wait_for_text("No service tokens yet").await;
    let res = s.read(&uuid_of(&stripe), Some(&secret)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    web.close().await;
}
