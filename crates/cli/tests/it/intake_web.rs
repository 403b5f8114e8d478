//! Intake links in a real headless Chromium: the owner makes a link in the dashboard, a person
//! with no account sends the value on the link's page, the owner sees it arrive. Fields are
//! found by their labels, buttons by their names; every page is checked with axe-core.

use reqwest::StatusCode;

use crate::common::*;
use crate::dashboard::{check_page, key_in_modal, sign_up};
use crate::web::{Driver, chromedriver_path};

const VALUE: &str = "postgres://app:canary-intake-web@db.internal/staging";

each_backend! {
async fn an_owner_requests_a_secret_and_a_person_sends_it_once() {
    let Some(chromedriver) = chromedriver_path() else { return };
    let s = TestServer::start().await;
    let driver = Driver::start(&chromedriver);
    let owner = driver.browser(&s.base).await;
    sign_up(&owner, "ana@example.com").await;
    owner.follow("Intake links").await;
    owner.wait_for_text("No intake links yet").await;
    check_page(&owner, "intake-links-empty").await;

    // The owner asks for the staging database URL, with a password.
    owner.fill("What are you asking for?", "the staging database URL").await;
    owner.tick("A new private credential").await;
    owner.fill("Password (optional)", "read-it-to-me 7").await;
    owner.choose("The link closes", "In 7 days").await;
    owner.press("Make the link").await;

    // The key window first (the key opens the value once it arrives), then the link and the
    // password in boxes of their own.
    owner.wait_for_text("only time it is shown").await;
    let key = key_in_modal(&owner).await;
    check_page(&owner, "intake-link-made").await;
    owner.click("Copy").await;
    assert_eq!(owner.clipboard().await, key);
    owner.click("Done").await;
    assert_eq!(owner.path().await, "/intake-links", "a reload does not post again");
    let link = owner.client.find(fantoccini::Locator::Id("intake-url")).await.unwrap().text().await.unwrap();
    let password = owner.client.find(fantoccini::Locator::Id("intake-password")).await.unwrap().text().await.unwrap();
    assert_eq!(password, "read-it-to-me 7");
    assert!(link.starts_with(&s.url("/intake/")), "{link}");
    owner.click("Copy the link").await;
    assert_eq!(owner.clipboard().await, link);
    check_page(&owner, "intake-links").await;

    // The person opens the link (no account, another browser), sees what is asked for.
    let person = driver.browser(&s.base).await;
    person.goto(link.trim_start_matches(&s.base)).await;
    let page = person.wait_for_text("You are asked for").await;
    assert!(page.contains("the staging database URL"), "{page}");
    check_page(&person, "intake-page").await;
    // A wrong password: nothing sent, the form again.
    person.fill("Password", "not the password").await;
    person.fill("Value", VALUE).await;
    person.press("Send").await;
    let page = person.wait_for_text("That password is not right").await;
    assert!(!page.contains("canary-intake-web"));
    // The right one: a receipt, never the value.
    person.fill("Password", "read-it-to-me 7").await;
    person.fill("Value", VALUE).await;
    person.press("Send").await;
    let receipt = person.wait_for_text("Received").await;
    assert!(receipt.contains("the staging database URL"), "{receipt}");
    assert!(!receipt.contains("canary-intake-web"), "{receipt}");
    check_page(&person, "intake-received").await;
    // Opening the link again: it is used up, like a link that never existed.
    person.goto(link.trim_start_matches(&s.base)).await;
    person.wait_for_text("This link cannot be used").await;

    // The owner sees it used, and the secret it became; code reads it with the key.
    owner.goto("/intake-links").await;
    let list = owner.wait_for_text("used").await;
    assert!(!list.contains("canary-intake-web"));
    owner.follow("New credential \"the staging database URL\"").await;
    owner.wait_for_text("Received through an intake link").await;
    let res = s.read(owner.path().await.trim_start_matches("/records/"), Some(&key)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["data"], VALUE);

    // Another link, revoked before it is used.
    owner.goto("/intake-links").await;
    owner.fill("What are you asking for?", "a key never sent").await;
    owner.press("Make the link").await;
    owner.wait_for_text("only time it is shown").await;
    // Closing the key window without copying the key asks first.
    owner.click("Done").await;
    owner.wait_for_text("You have not copied or downloaded this key").await;
    owner.click("Close without saving it").await;
    let unused = owner.client.find(fantoccini::Locator::Id("intake-url")).await.unwrap().text().await.unwrap();
    owner.click("Revoke").await;
    owner.press("Revoke").await;
    let list = owner.wait_for_text("revoked").await;
    assert!(list.contains("a key never sent"), "{list}");
    person.goto(unused.trim_start_matches(&s.base)).await;
    person.wait_for_text("This link cannot be used").await;

    person.close().await;
    owner.close().await;
}
}
