//! Conformance of the webhook store on every backend: webhooks, marks won once, and the
//! delivery queue's claims (never one delivery to two claimants, even from two connections
//! racing on PostgreSQL), leases, retries and pruning.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;

use brine_core::{Access, Policy, RecordKind, RecordLimits};
use brine_store::{
    Account, DeliveryEnd, NewAuditEvent, NewDelivery, PageLimits, Record, Store, Webhook,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap()
}

async fn record(store: &dyn Store) -> Uuid {
    let account = Account {
        id: Uuid::new_v4(),
        email: format!("{}@example.com", Uuid::new_v4()),
        password_hash: "$argon2id$stub".into(),
        created_at: now(),
        totp_secret: None,
        totp_key_version: 1,
    };
    store.create_account(&account).await.unwrap();
    let t = now();
    let record = Record {
        uuid: Uuid::new_v4(),
        owner_id: account.id,
        name: "Watched".into(),
        kind: RecordKind::Credential,
        access: Access::Private,
        sealed: false,
        payload: vec![1, 2, 3],
        payload_version: 1,
        expires_at: None,
        max_reads: None,
        reads: 0,
        page: PageLimits::default(),
        policy: Policy::Credential(Default::default()),
        limits: RecordLimits::default(),
        disabled_at: None,
        page_label: None,
        version: 1,
        created_at: t,
        updated_at: t,
        slots: Vec::new(),
    };
    store.insert_record(&record).await.unwrap();
    record.uuid
}

fn hook(record: Uuid) -> Webhook {
    Webhook {
        record,
        url: vec![7; 40],
        url_key_version: 1,
        secret: vec![9; 60],
        secret_key_version: 1,
        events: "record.failed_attempts_burst".into(),
        burst_threshold: 10,
        burst_window_secs: 300,
        created_at: now(),
        updated_at: now(),
    }
}

async fn enqueue(store: &dyn Store, record: Uuid, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = Uuid::new_v4();
        let queued = store
            .enqueue_delivery(&NewDelivery {
                event_id: id,
                record,
                event_type: "record.failed_attempts_burst",
                payload: "{}",
                created_at: now(),
            })
            .await
            .unwrap();
        assert!(queued);
        ids.push(id);
    }
    ids
}

async fn conformance(store: Arc<dyn Store>, other_node: Arc<dyn Store>) {
    let uuid = record(store.as_ref()).await;

    // Webhooks: set, replaced, re-keyed, listed, removed.
    assert!(store.webhook(uuid).await.unwrap().is_none());
    store.put_webhook(&hook(uuid)).await.unwrap();
    let mut changed = hook(uuid);
    changed.events = "secure_page.first_reveal".into();
    changed.burst_threshold = 3;
    store.put_webhook(&changed).await.unwrap();
    let stored = store.webhook(uuid).await.unwrap().unwrap();
    assert_eq!(stored.events, "secure_page.first_reveal");
    assert_eq!(stored.burst_threshold, 3);
    assert!(
        store
            .set_webhook_secret(uuid, &[5; 60], 2, now())
            .await
            .unwrap()
    );
    let stored = store.webhook(uuid).await.unwrap().unwrap();
    assert_eq!(stored.secret, vec![5; 60]);
    assert_eq!((stored.url_key_version, stored.secret_key_version), (1, 2));
    let watches = store.webhook_watches().await.unwrap();
    assert!(
        watches
            .iter()
            .any(|w| w.record == uuid && w.burst_threshold == 3)
    );
    assert!(
        !store
            .set_webhook_secret(Uuid::new_v4(), &[5], 1, now())
            .await
            .unwrap()
    );

    // A mark is won once, by one of two nodes.
    let (a, b) = tokio::join!(
        store.take_webhook_mark(uuid, "first_reveal", 42),
        other_node.take_webhook_mark(uuid, "first_reveal", 42),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one wins");
    assert!(
        store
            .take_webhook_mark(uuid, "first_reveal", 43)
            .await
            .unwrap()
    );
    assert!(store.take_webhook_mark(uuid, "burst", 42).await.unwrap());

    // Failures counted since a time.
    for (outcome, ago) in [
        ("denied", 10),
        ("forbidden", 20),
        ("ok", 5),
        ("denied", 4000),
    ] {
        store
            .append_event(&NewAuditEvent {
                record: uuid,
                at: now() - Duration::seconds(ago),
                channel: "read",
                outcome,
                client_ip: None,
                user_agent: None,
                detail: None,
                country: None,
                city: None,
                expect_version: None,
            })
            .await
            .unwrap();
    }
    let since = now() - Duration::seconds(60);
    assert_eq!(
        store
            .count_events_since(uuid, ["denied", "forbidden"], since)
            .await
            .unwrap(),
        2
    );

    // Nothing is queued for a record without a webhook.
    let bare = record(store.as_ref()).await;
    let queued = store
        .enqueue_delivery(&NewDelivery {
            event_id: Uuid::new_v4(),
            record: bare,
            event_type: "x",
            payload: "{}",
            created_at: now(),
        })
        .await
        .unwrap();
    assert!(!queued);

    // Two nodes claim at once: every delivery goes to exactly one of them.
    let ids = enqueue(store.as_ref(), uuid, 40).await;
    let t = now() + Duration::seconds(1);
    let lease = t + Duration::seconds(60);
    let (node_a, node_b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            store.claim_deliveries(t, lease, node_a, 4),
            other_node.claim_deliveries(t, lease, node_b, 4),
        );
        got_a.extend(a.unwrap());
        got_b.extend(b.unwrap());
    }
    let seen_a: HashSet<Uuid> = got_a.iter().map(|d| d.event_id).collect();
    let seen_b: HashSet<Uuid> = got_b.iter().map(|d| d.event_id).collect();
    assert!(seen_a.is_disjoint(&seen_b), "a delivery claimed twice");
    assert_eq!(seen_a.len() + seen_b.len(), ids.len());
    assert!(got_a.iter().chain(&got_b).all(|d| d.attempts == 1));

    // Leased: nothing is due until the lease ends; then another node may take it, and the
    // first claimant's late answer is refused.
    assert!(
        store
            .claim_deliveries(t, lease, node_b, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let first = &got_a[0];
    let after = lease + Duration::seconds(1);
    let retaken = other_node
        .claim_deliveries(after, after + Duration::seconds(60), node_b, 100)
        .await
        .unwrap();
    assert_eq!(retaken.len(), got_a.len() + got_b.len());
    assert!(retaken.iter().all(|d| d.attempts == 2));
    let end = DeliveryEnd::Delivered { status: 200 };
    assert!(
        !store
            .finish_delivery(first.id, node_a, end, after)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_delivery(first.id, node_b, end, after)
            .await
            .unwrap()
    );

    // A retry is due again at its time, not before; a give-up is final.
    let second = &retaken[1];
    let retry_at = after + Duration::seconds(30);
    let retry = DeliveryEnd::Retry {
        at: retry_at,
        status: Some(503),
        error: "the receiver did not answer 2xx",
    };
    assert!(
        store
            .finish_delivery(second.id, node_b, retry, after)
            .await
            .unwrap()
    );
    let third = &retaken[2];
    let gave_up = DeliveryEnd::GaveUp {
        status: None,
        error: "the receiver did not answer in time",
    };
    assert!(
        store
            .finish_delivery(third.id, node_b, gave_up, after)
            .await
            .unwrap()
    );
    // Every other delivery stays leased to node_b until `after + 60s`.
    let soon = after + Duration::seconds(29);
    assert!(
        store
            .claim_deliveries(soon, soon, node_a, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let due = retry_at;
    let again = store
        .claim_deliveries(due, due + Duration::seconds(60), node_a, 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event_id, second.event_id);
    assert_eq!(again[0].attempts, 3);

    // The owner's list: newest first, with states.
    let listed = store.deliveries(uuid, 100).await.unwrap();
    assert_eq!(listed.len(), ids.len());
    assert_eq!(listed[0].event_id, *ids.last().unwrap());
    let state = |id: Uuid| {
        listed
            .iter()
            .find(|d| d.event_id == id)
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(state(first.event_id), "delivered");
    assert_eq!(state(third.event_id), "failed");
    assert_eq!(state(second.event_id), "pending");

    // Finished deliveries are pruned; pending ones never.
    let pruned = store
        .prune_deliveries(after + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert_eq!(
        store.deliveries(uuid, 100).await.unwrap().len(),
        ids.len() - 2
    );

    // A move to another database (`brine export` / `brine import`) takes the webhook along,
    // still sealed.
    let mut file = Vec::new();
    brine_store::transfer::export(store.as_ref(), &mut file, |_, _| {})
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("moved.db").display());
    let moved = brine_store::connect(&url).await.unwrap();
    brine_store::transfer::import(moved.as_ref(), file.as_slice(), |_| {})
        .await
        .unwrap();
    let there = moved.webhook(uuid).await.unwrap().unwrap();
    let here = store.webhook(uuid).await.unwrap().unwrap();
    assert_eq!(
        (there.url, there.secret, there.events),
        (here.url, here.secret, here.events)
    );
    assert_eq!(there.burst_threshold, 3);
    moved.close().await;

    // Removing the webhook drops its queue.
    assert!(store.delete_webhook(uuid).await.unwrap());
    assert!(!store.delete_webhook(uuid).await.unwrap());
    assert!(store.deliveries(uuid, 100).await.unwrap().is_empty());
    assert!(
        !store
            .webhook_watches()
            .await
            .unwrap()
            .iter()
            .any(|w| w.record == uuid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_webhooks_conform() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = brine_store::connect(&url).await.unwrap();
    let other = brine_store::connect(&url).await.unwrap();
    conformance(store, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_webhooks_conform() {
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
