//! Conformance of the intake-link store on every backend: links found by their token's hash,
//! spent once (never twice, even by two connections racing), revoked only while open, expired
//! links not spendable, and password attempts counted per client and per link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use brine_store::{Account, IntakeLink, IntakeTarget, Store};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap()
}

async fn account(store: &dyn Store) -> Uuid {
    let account = Account {
        id: Uuid::new_v4(),
        email: format!("{}@example.com", Uuid::new_v4()),
        password_hash: "$argon2id$stub".into(),
        created_at: now(),
        totp_secret: None,
        totp_key_version: 1,
    };
    store.create_account(&account).await.unwrap();
    account.id
}

fn link(owner: Uuid, target: IntakeTarget, expires_at: Option<OffsetDateTime>) -> IntakeLink {
    IntakeLink {
        id: Uuid::new_v4(),
        token_hash: Uuid::new_v4().as_bytes().repeat(2),
        owner_id: owner,
        asked_for: "the staging database URL".into(),
        record: Uuid::new_v4(),
        target,
        password_hash: Some("$argon2id$v=19$stub".into()),
        expires_at,
        created_at: now(),
        used_at: None,
        revoked_at: None,
    }
}

fn credential() -> IntakeTarget {
    IntakeTarget::Credential {
        name: "Staging DB".into(),
        server_slot: vec![1; 60],
        server_slot_version: 1,
        api_key_slot: vec![2; 60],
    }
}

fn header() -> IntakeTarget {
    IntakeTarget::BridgeHeader {
        header: "Authorization".into(),
        template: "Bearer {{value}}".into(),
    }
}

async fn conformance(store: Arc<dyn Store>, other_node: Arc<dyn Store>) {
    let owner = account(store.as_ref()).await;
    let stranger = account(store.as_ref()).await;
    let a = link(owner, credential(), None);
    let mut b = link(owner, header(), Some(now() + Duration::days(7)));
    b.password_hash = None;
    b.created_at = a.created_at + Duration::milliseconds(5);
    store.insert_intake(&a).await.unwrap();
    store.insert_intake(&b).await.unwrap();

    // Found by the token's hash, whole; by id only by its owner; listed newest first.
    assert_eq!(
        store.intake_by_token(&a.token_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.intake_by_token(b"no such hash").await.unwrap(), None);
    assert_eq!(store.intake(b.id, owner).await.unwrap(), Some(b.clone()));
    assert_eq!(store.intake(b.id, stranger).await.unwrap(), None);
    let listed = store.intakes_of(owner).await.unwrap();
    assert_eq!(
        listed.iter().map(|l| l.id).collect::<Vec<_>>(),
        [b.id, a.id]
    );
    assert!(store.intakes_of(stranger).await.unwrap().is_empty());

    // Spent once, even by two nodes racing for it.
    let t = now();
    let (x, y) = tokio::join!(
        store.claim_intake(a.id, t),
        other_node.claim_intake(a.id, t)
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one claim wins");
    assert!(!store.claim_intake(a.id, now()).await.unwrap());
    let spent = store.intake(a.id, owner).await.unwrap().unwrap();
    assert_eq!(spent.used_at, Some(t));
    // A used link cannot be revoked; a release (the value could not be stored) opens it again.
    assert!(!store.revoke_intake(a.id, owner, now()).await.unwrap());
    store.release_intake(a.id, t).await.unwrap();
    assert_eq!(
        store.intake(a.id, owner).await.unwrap().unwrap().used_at,
        None
    );

    // Revoked: only by its owner, once, and then it cannot be spent.
    assert!(!store.revoke_intake(a.id, stranger, now()).await.unwrap());
    assert!(store.revoke_intake(a.id, owner, now()).await.unwrap());
    assert!(!store.revoke_intake(a.id, owner, now()).await.unwrap());
    assert!(!store.claim_intake(a.id, now()).await.unwrap());

    // Expired: not spendable after its time, spendable before.
    assert!(
        !store
            .claim_intake(b.id, now() + Duration::days(8))
            .await
            .unwrap()
    );
    assert!(store.claim_intake(b.id, now()).await.unwrap());

    // Attempts: counted per client and in all, within the window.
    let since = now() - Duration::minutes(10);
    let one = store
        .note_intake_attempt(b.id, Some("192.0.2.0/24 #1"), now(), since)
        .await
        .unwrap();
    assert_eq!((one.client, one.all), (1, 1));
    store
        .note_intake_attempt(b.id, Some("192.0.2.0/24 #2"), now(), since)
        .await
        .unwrap();
    store
        .note_intake_attempt(b.id, None, now(), since)
        .await
        .unwrap();
    let again = store
        .note_intake_attempt(b.id, Some("192.0.2.0/24 #1"), now(), since)
        .await
        .unwrap();
    assert_eq!((again.client, again.all), (2, 4));
    let later = store
        .note_intake_attempt(b.id, None, now(), now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        (later.client, later.all),
        (0, 0),
        "outside the window nothing counts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_intake_links_conform() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = brine_store::connect(&url).await.unwrap();
    let other = brine_store::connect(&url).await.unwrap();
    conformance(store, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_intake_links_conform() {
    use brine_store::testing::{PostgresForTests, TempDatabase, postgres_for_tests};
    let PostgresForTests::Available(admin) = postgres_for_tests().unwrap() else {
        eprintln!("skipped: set BRINE_TEST_POSTGRES_URL to run the PostgreSQL suite");
        return;
    };
    let db = TempDatabase::create(&admin).await.unwrap();
    let store = brine_store::connect(&db.url).await.unwrap();
    let other = brine_store::connect(&db.url).await.unwrap();
    conformance(store, other).await;
}
