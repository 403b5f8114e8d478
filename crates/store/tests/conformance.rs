//! The storage conformance suite: every store method and error case, written once against
//! `dyn Store` and run on every backend (SQLite here; each new backend joins the list).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use brine_core::{Access, BridgePolicy, Policy, Quota, QuotaPeriod, RecordKind, RecordLimits};
use brine_store::{
    Account, Appended, EventFilter, Handoff, KeySlot, LockoutEdges, NewAuditEvent, NewServiceToken,
    NewSession, PageLimits, RecentFailures, Record, RecordChanges, Refresh, Settle, SlotKind,
    Store, StoreError,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A fresh SQLite database in a temporary directory (kept alive by the returned guard).
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    (brine_store::connect(&url).await.unwrap(), dir)
}

fn now() -> OffsetDateTime {
    // Millisecond precision is what every backend keeps.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap()
}

async fn account(store: &dyn Store, email: &str) -> Account {
    let account = Account {
        id: Uuid::new_v4(),
        email: email.into(),
        password_hash: "$argon2id$stub".into(),
        created_at: now(),
        totp_secret: None,
        totp_key_version: 1,
    };
    store.create_account(&account).await.unwrap();
    account
}

fn slot(kind: SlotKind, version: i64) -> KeySlot {
    KeySlot {
        kind,
        version,
        wrapped: vec![kind as u8; 60],
        kdf: (kind == SlotKind::Password).then(|| "argon2id$v=19$m=64,t=1,p=1$AAAA".into()),
        created_at: now(),
    }
}

fn record(owner: Uuid) -> Record {
    let t = now();
    Record {
        uuid: Uuid::new_v4(),
        owner_id: owner,
        name: "Stripe".into(),
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
        slots: vec![slot(SlotKind::Server, 1), slot(SlotKind::ApiKey, 1)],
    }
}

fn quota_of(requests: u32) -> RecordLimits {
    RecordLimits {
        rate_limit: None,
        quota: Some(Quota {
            requests,
            per: QuotaPeriod::Day,
        }),
    }
}

async fn meta(store: &dyn Store) {
    assert_eq!(store.meta("k").await.unwrap(), None);
    assert!(store.insert_meta_if_absent("k", b"v1").await.unwrap());
    assert!(!store.insert_meta_if_absent("k", b"v2").await.unwrap());
    assert_eq!(store.meta("k").await.unwrap(), Some(b"v1".to_vec()));
}

async fn accounts_and_sessions(store: &dyn Store) {
    let ana = account(store, "ana@example.com").await;
    let found = store
        .account_by_email("ana@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.created_at), (ana.id, ana.created_at));
    assert!(
        store
            .account_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let dup = Account {
        id: Uuid::new_v4(),
        ..ana.clone()
    };
    assert!(matches!(
        store.create_account(&dup).await,
        Err(StoreError::Conflict(_))
    ));

    let t = now();
    let live = Uuid::new_v4();
    let expired = Uuid::new_v4();
    let open = |id: Uuid, created_at: OffsetDateTime, kind: &'static str| NewSession {
        id,
        account: ana.id,
        kind,
        created_at,
        expires_at: created_at + Duration::hours(1),
        client_ip: Some("192.0.2.7"),
        user_agent: Some("curl/8"),
        refresh_digest: None,
    };
    store
        .create_session(&open(expired, t - Duration::hours(2), "api"))
        .await
        .unwrap();
    store
        .create_session(&open(live, t, "browser"))
        .await
        .unwrap();
    let got = store.session(live, t).await.unwrap().unwrap();
    assert_eq!(
        (got.account, got.kind.as_str(), got.client_ip.as_deref()),
        (ana.id, "browser", Some("192.0.2.7"))
    );
    assert_eq!(store.session(expired, t).await.unwrap(), None);
    assert_eq!(
        store.session(live, t + Duration::hours(2)).await.unwrap(),
        None
    );
    assert_eq!(store.session(Uuid::new_v4(), t).await.unwrap(), None);
    let listed: Vec<Uuid> = store
        .sessions_of(ana.id, t)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [live]);

    // Only the account's own sessions can be ended through it.
    let bob = account(store, "bob@example.com").await;
    assert!(!store.delete_session_of(bob.id, live).await.unwrap());
    assert!(store.delete_session_of(ana.id, live).await.unwrap());
    assert_eq!(store.session(live, t).await.unwrap(), None);
    assert!(!store.delete_session(live).await.unwrap());

    // A password change ends every session but the one kept.
    let (keep, other) = (Uuid::new_v4(), Uuid::new_v4());
    store
        .create_session(&open(keep, t, "browser"))
        .await
        .unwrap();
    store.create_session(&open(other, t, "api")).await.unwrap();
    assert!(
        store
            .set_password(ana.id, "$argon2id$new", Some(keep))
            .await
            .unwrap()
    );
    assert!(store.session(keep, t).await.unwrap().is_some());
    assert!(store.session(other, t).await.unwrap().is_none());
    assert!(
        store
            .set_password(ana.id, "$argon2id$newer", None)
            .await
            .unwrap()
    );
    assert!(store.session(keep, t).await.unwrap().is_none());
    let found = store.account(ana.id).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$argon2id$newer");

    // Account events, newest first.
    for kind in ["signed_in", "password_changed"] {
        store
            .append_account_event(ana.id, t, kind, Some("192.0.2.7"), None)
            .await
            .unwrap();
    }
    let kinds: Vec<String> = store
        .account_events(ana.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["password_changed", "signed_in"]);
    assert!(store.account_events(bob.id, 10).await.unwrap().is_empty());
}

async fn two_factor(store: &dyn Store) {
    let ana = account(store, "ana-2fa@example.com").await;
    assert_eq!(store.totp_pending(ana.id).await.unwrap(), None);
    store
        .set_totp_pending(ana.id, Some(b"pending"), 2)
        .await
        .unwrap();
    assert_eq!(
        store.totp_pending(ana.id).await.unwrap(),
        Some((b"pending".to_vec(), 2))
    );
    let digests = vec![vec![1u8; 32], vec![2u8; 32]];
    store
        .enable_totp(ana.id, b"pending", 2, &digests)
        .await
        .unwrap();
    assert_eq!(store.totp_pending(ana.id).await.unwrap(), None);
    let found = store.account(ana.id).await.unwrap().unwrap();
    assert_eq!(found.totp_secret.as_deref(), Some(&b"pending"[..]));
    assert_eq!(found.totp_key_version, 2);
    assert_eq!(store.recovery_codes(ana.id).await.unwrap(), digests);

    // Each time step's code works once, and never an older one.
    assert!(store.take_totp_step(ana.id, 100).await.unwrap());
    assert!(!store.take_totp_step(ana.id, 100).await.unwrap());
    assert!(!store.take_totp_step(ana.id, 99).await.unwrap());
    assert!(store.take_totp_step(ana.id, 101).await.unwrap());

    // Each recovery code works once.
    assert!(store.use_recovery_code(ana.id, &[1u8; 32]).await.unwrap());
    assert!(!store.use_recovery_code(ana.id, &[1u8; 32]).await.unwrap());
    assert_eq!(store.recovery_codes(ana.id).await.unwrap(), [vec![2u8; 32]]);

    store.disable_totp(ana.id).await.unwrap();
    let found = store.account(ana.id).await.unwrap().unwrap();
    assert_eq!(found.totp_secret, None);
    assert!(store.recovery_codes(ana.id).await.unwrap().is_empty());
}

async fn deleting_an_account_removes_everything_in_it(store: &dyn Store) {
    let ana = account(store, "ana-gone@example.com").await;
    let bob = account(store, "bob-stays@example.com").await;
    let (mine, theirs) = (record(ana.id), record(bob.id));
    store.insert_record(&mine).await.unwrap();
    store.insert_record(&theirs).await.unwrap();
    let t = now();
    let session = Uuid::new_v4();
    store
        .create_session(&NewSession {
            id: session,
            account: ana.id,
            kind: "browser",
            created_at: t,
            expires_at: t + Duration::hours(1),
            client_ip: None,
            user_agent: None,
            refresh_digest: None,
        })
        .await
        .unwrap();
    store
        .append_account_event(ana.id, t, "signed_in", None, None)
        .await
        .unwrap();
    assert!(store.delete_account(ana.id).await.unwrap());
    assert!(store.account(ana.id).await.unwrap().is_none());
    assert!(store.record(mine.uuid).await.unwrap().is_none());
    assert!(store.session(session, t).await.unwrap().is_none());
    assert!(store.account_events(ana.id, 10).await.unwrap().is_empty());
    assert!(store.record(theirs.uuid).await.unwrap().is_some());
    assert!(!store.delete_account(ana.id).await.unwrap());
}

async fn records_round_trip(store: &dyn Store) {
    let ana = account(store, "ana2@example.com").await;
    let bob = account(store, "bob2@example.com").await;
    let mut r = record(ana.id);
    r.expires_at = Some(now() + Duration::days(1));
    r.max_reads = Some(3);
    store.insert_record(&r).await.unwrap();
    assert!(matches!(
        store.insert_record(&r).await,
        Err(StoreError::Conflict(_))
    ));

    let got = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!(got.name, r.name);
    assert_eq!(got.access, Access::Private);
    assert_eq!(got.payload, r.payload);
    assert_eq!(got.expires_at, r.expires_at);
    assert_eq!(got.max_reads, Some(3));
    assert_eq!(got.created_at, r.created_at);
    let mut kinds: Vec<_> = got.slots.iter().map(|s| s.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["api_key", "server"]);
    assert_eq!(got.slot(SlotKind::ApiKey), r.slot(SlotKind::ApiKey));
    assert!(store.record(Uuid::new_v4()).await.unwrap().is_none());

    let second = record(ana.id);
    store
        .insert_record(&Record {
            slots: vec![],
            ..second.clone()
        })
        .await
        .unwrap();
    let listed = store.records_of(ana.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|x| x.uuid == second.uuid && x.slots.is_empty())
    );
    assert!(store.records_of(bob.id).await.unwrap().is_empty());
}

async fn updates_are_atomic_and_owner_checked(store: &dyn Store) {
    let ana = account(store, "ana3@example.com").await;
    let bob = account(store, "bob3@example.com").await;
    let r = record(ana.id);
    store.insert_record(&r).await.unwrap();

    let changes = RecordChanges {
        name: Some("Renamed".into()),
        access: Some(Access::Public),
        payload: Some((vec![9, 9], 2)),
        expires_at: Some(Some(now() + Duration::hours(1))),
        max_reads: Some(Some(10)),
        page: None,
        policy: Some(Policy::Credential(
            brine_core::CredentialPolicy::new(vec!["db".into()]).unwrap(),
        )),
        limits: Some(quota_of(5)),
        disabled_at: None,
        page_label: None,
        put_slots: vec![slot(SlotKind::ApiKey, 2), slot(SlotKind::Password, 1)],
        remove_slots: vec![SlotKind::Server],
        updated_at: Some(now() + Duration::seconds(1)),
    };
    assert!(!store.update_record(r.uuid, bob.id, &changes).await.unwrap());
    assert_eq!(store.record(r.uuid).await.unwrap().unwrap().name, "Stripe");
    assert!(
        !store
            .update_record(Uuid::new_v4(), ana.id, &changes)
            .await
            .unwrap()
    );

    assert!(store.update_record(r.uuid, ana.id, &changes).await.unwrap());
    let got = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!(got.name, "Renamed");
    assert_eq!(got.access, Access::Public);
    assert_eq!((got.payload.clone(), got.payload_version), (vec![9, 9], 2));
    assert_eq!(got.max_reads, Some(10));
    assert_eq!(got.policy.credential().unwrap().params, ["db"]);
    assert_eq!(got.limits, quota_of(5));
    assert_eq!(got.version, r.version + 1, "every change bumps the version");
    assert!(got.slot(SlotKind::Server).is_none());
    assert_eq!(got.slot(SlotKind::ApiKey).unwrap().version, 2);
    assert!(got.slot(SlotKind::Password).unwrap().kdf.is_some());

    // Clearing optional fields; leaving others alone.
    let clear = RecordChanges {
        expires_at: Some(None),
        max_reads: Some(None),
        ..RecordChanges::default()
    };
    assert!(store.update_record(r.uuid, ana.id, &clear).await.unwrap());
    let got = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!((got.expires_at, got.max_reads), (None, None));
    assert_eq!(got.name, "Renamed");
    assert_eq!(got.limits, quota_of(5), "limits stay unless changed");
    // Empty limits and params remove them.
    let none = RecordChanges {
        limits: Some(RecordLimits::default()),
        policy: Some(Policy::Credential(Default::default())),
        ..RecordChanges::default()
    };
    assert!(store.update_record(r.uuid, ana.id, &none).await.unwrap());
    let got = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!(got.limits, RecordLimits::default());
    assert!(got.policy.credential().unwrap().params.is_empty());
    assert_eq!(got.version, r.version + 3);
    // A bridge's policy comes back decoded and checked.
    let mut policy = BridgePolicy::default();
    policy.allowed_methods = vec!["post".into()];
    let mut b = record(ana.id);
    b.kind = RecordKind::Bridge;
    b.policy = Policy::Bridge(policy.checked().unwrap());
    store.insert_record(&b).await.unwrap();
    let got_bridge = store.record(b.uuid).await.unwrap().unwrap();
    assert_eq!(
        got_bridge.policy.bridge().unwrap().methods(),
        [http::Method::POST]
    );
    // The read counter is not a change of the record.
    assert!(store.claim_read(r.uuid, now()).await.unwrap());
    assert_eq!(
        store.record(r.uuid).await.unwrap().unwrap().version,
        r.version + 3
    );

    assert!(!store.delete_record(r.uuid, bob.id).await.unwrap());
    assert!(store.delete_record(r.uuid, ana.id).await.unwrap());
    assert!(store.record(r.uuid).await.unwrap().is_none());
    assert!(!store.delete_record(r.uuid, ana.id).await.unwrap());
}

async fn read_claims_are_exact(store: Arc<dyn Store>) {
    let ana = account(store.as_ref(), "ana4@example.com").await;
    let mut r = record(ana.id);
    r.max_reads = Some(5);
    store.insert_record(&r).await.unwrap();
    let t = now();
    let claims = claim_concurrently(&store, r.uuid, t, 40).await;
    assert_eq!(claims, 5);
    assert_eq!(store.record(r.uuid).await.unwrap().unwrap().reads, 5);

    let mut expiring = record(ana.id);
    expiring.max_reads = Some(5);
    expiring.expires_at = Some(t + Duration::seconds(10));
    store.insert_record(&expiring).await.unwrap();
    assert!(store.claim_read(expiring.uuid, t).await.unwrap());
    assert!(
        !store
            .claim_read(expiring.uuid, t + Duration::seconds(11))
            .await
            .unwrap()
    );
    assert!(!store.claim_read(Uuid::new_v4(), t).await.unwrap());
}

async fn claim_concurrently(
    store: &Arc<dyn Store>,
    uuid: Uuid,
    t: OffsetDateTime,
    n: usize,
) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_read(uuid, t).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    granted
}

async fn quotas_are_exact_per_period(store: Arc<dyn Store>) {
    let ana = account(store.as_ref(), "ana9@example.com").await;
    let r = record(ana.id);
    store.insert_record(&r).await.unwrap();
    let june = now();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_quota(r.uuid, june, 7).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 7);
    assert_eq!(store.quota_used(r.uuid, june).await.unwrap(), 7);
    assert!(!store.take_quota(r.uuid, june, 7).await.unwrap());
    // A raised limit gives room at once; a new period starts from zero and drops the old one.
    assert!(store.take_quota(r.uuid, june, 8).await.unwrap());
    let july = june + Duration::days(30);
    assert!(store.take_quota(r.uuid, july, 1).await.unwrap());
    assert!(!store.take_quota(r.uuid, july, 1).await.unwrap());
    assert_eq!(store.quota_used(r.uuid, july).await.unwrap(), 1);
    assert_eq!(store.quota_used(r.uuid, june).await.unwrap(), 0);
    assert_eq!(store.quota_used(Uuid::new_v4(), july).await.unwrap(), 0);
    // Usage goes with its record.
    assert!(store.delete_record(r.uuid, ana.id).await.unwrap());
    assert_eq!(store.quota_used(r.uuid, july).await.unwrap(), 0);
}

async fn page_views_are_exact_and_limits_reset(store: Arc<dyn Store>) {
    let ana = account(store.as_ref(), "ana6@example.com").await;
    let t = now();
    let mut r = record(ana.id);
    r.page = PageLimits {
        expires_at: Some(t + Duration::hours(1)),
        max_views: Some(3),
        views: 0,
    };
    r.slots.push(slot(SlotKind::SecurePage, 1));
    store.insert_record(&r).await.unwrap();
    let got = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!(got.page, r.page);
    assert!(got.slot(SlotKind::SecurePage).is_some());

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_view(r.uuid, t).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 3);
    // Views do not touch reads, and the other way round.
    let got = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!((got.page.views, got.reads), (3, 0));

    // New limits start a fresh count; the page's expiry and the record's both stop views.
    let fresh = RecordChanges {
        page: Some(PageLimits {
            expires_at: Some(t + Duration::seconds(5)),
            max_views: None,
            views: 0,
        }),
        ..RecordChanges::default()
    };
    assert!(store.update_record(r.uuid, ana.id, &fresh).await.unwrap());
    assert!(store.claim_view(r.uuid, t).await.unwrap());
    assert!(
        !store
            .claim_view(r.uuid, t + Duration::seconds(6))
            .await
            .unwrap()
    );
    let mut expired = record(ana.id);
    expired.expires_at = Some(t + Duration::seconds(1));
    store.insert_record(&expired).await.unwrap();
    assert!(store.claim_view(expired.uuid, t).await.unwrap());
    assert!(
        !store
            .claim_view(expired.uuid, t + Duration::seconds(2))
            .await
            .unwrap()
    );
}

async fn attempts_are_counted_and_settled(store: &dyn Store) {
    let ana = account(store, "ana7@example.com").await;
    let r = record(ana.id);
    store.insert_record(&r).await.unwrap();
    let t = now();
    let mut ids = Vec::new();
    for (i, ip) in ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1"]
        .iter()
        .enumerate()
    {
        let id = store
            .append_event(&NewAuditEvent {
                record: r.uuid,
                at: t - Duration::seconds(10 * i as i64),
                channel: "secure_page",
                outcome: "attempt",
                client_ip: Some(ip),
                user_agent: None,
                detail: None,
                country: None,
                city: None,
                expect_version: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow");
    let settles = [
        Settle {
            id: ids[0],
            outcome: "revealed",
            detail: None,
        },
        Settle {
            id: ids[1],
            outcome: "denied",
            detail: Some(r#"{"bytes":12}"#),
        },
    ];
    store.append_events(&[], &settles).await.unwrap();
    let failures = |ip: Option<&'static str>, since: OffsetDateTime, per: i64| RecentFailures {
        record: r.uuid,
        channel: "secure_page",
        outcomes: ["attempt", "denied"],
        since,
        client_ip: ip,
        per_client: per,
        per_record: per,
    };
    // Event 0 was settled as revealed and no longer counts: three failures remain, two of them
    // from 10.0.0.1 (at t-10s and t-30s) and one from 10.0.0.2 (at t-20s).
    let edges = store
        .recent_failures(&failures(Some("10.0.0.1"), t - Duration::minutes(1), 1))
        .await
        .unwrap();
    assert_eq!(
        edges,
        LockoutEdges {
            client: Some(t - Duration::seconds(30)),
            record: Some(t - Duration::seconds(20)),
        }
    );
    let edges = store
        .recent_failures(&failures(Some("10.0.0.1"), t - Duration::minutes(1), 2))
        .await
        .unwrap();
    assert_eq!(edges.client, None, "two from the client: not over two");
    assert_eq!(edges.record, Some(t - Duration::seconds(30)));
    let edges = store
        .recent_failures(&failures(None, t - Duration::seconds(15), 0))
        .await
        .unwrap();
    assert_eq!(
        edges,
        LockoutEdges {
            client: None,
            record: Some(t - Duration::seconds(10)),
        },
        "only failures since the window's start"
    );
    let events = store.events(r.uuid, 10, &Default::default()).await.unwrap();
    assert_eq!(events.last().unwrap().outcome, "revealed");
    assert_eq!(
        events[events.len() - 2].detail.as_deref(),
        Some(r#"{"bytes":12}"#)
    );
}

async fn retention_deletes_only_what_is_old_enough(store: &dyn Store) {
    let ana = account(store, "ana-retention@example.com").await;
    let r = record(ana.id);
    store.insert_record(&r).await.unwrap();
    let t = now();
    for days in [50, 40, 35, 1] {
        store
            .append_event(&NewAuditEvent {
                record: r.uuid,
                at: t - Duration::days(days),
                channel: "read",
                outcome: "ok",
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
    let cutoff = t - Duration::days(30);
    // In batches: at most `limit` a call, oldest first.
    assert_eq!(store.delete_events_before(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.delete_events_before(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.delete_events_before(cutoff, 2).await.unwrap(), 0);
    let left = store.events(r.uuid, 10, &Default::default()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at, t - Duration::days(1));
}

async fn audit_events(store: &dyn Store) {
    let ana = account(store, "ana5@example.com").await;
    let r = record(ana.id);
    store.insert_record(&r).await.unwrap();
    for (i, outcome) in ["ok", "denied", "gone"].iter().enumerate() {
        store
            .append_event(&NewAuditEvent {
                record: r.uuid,
                at: now() + Duration::milliseconds(i as i64),
                channel: "read",
                outcome,
                client_ip: Some("127.0.0.1"),
                user_agent: (i == 0).then_some("curl/8"),
                detail: None,
                country: None,
                city: None,
                expect_version: None,
            })
            .await
            .unwrap();
    }
    let events = store.events(r.uuid, 10, &Default::default()).await.unwrap();
    let outcomes: Vec<_> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["gone", "denied", "ok"]);

    // A group commit stores every event, in order, and returns each id.
    let group: Vec<NewAuditEvent> = ["g1", "g2", "g3"]
        .iter()
        .map(|outcome| NewAuditEvent {
            record: r.uuid,
            at: now(),
            channel: "read",
            outcome,
            client_ip: None,
            user_agent: None,
            detail: None,
            country: None,
            city: None,
            expect_version: None,
        })
        .collect();
    let settle = Settle {
        id: events[0].id,
        outcome: "settled",
        detail: Some("{}"),
    };
    let appended = store.append_events(&group, &[settle]).await.unwrap();
    let ids: Vec<i64> = appended
        .iter()
        .map(|a| match a {
            Appended::Stored(id) => *id,
            Appended::Stale => panic!("stored without a version to check"),
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > events[0].id);
    let newest = store.events(r.uuid, 3, &Default::default()).await.unwrap();
    assert_eq!(
        newest.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
    // Keep the checks below about the three original events (the newest was settled).
    let events: Vec<_> = store
        .events(r.uuid, 10, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .skip(3)
        .collect();
    assert_eq!(
        (events[0].outcome.as_str(), events[0].detail.as_deref()),
        ("settled", Some("{}"))
    );
    assert_eq!(events[2].user_agent.as_deref(), Some("curl/8"));
    assert_eq!(events[0].user_agent, None);
    let older = EventFilter {
        before: Some(events[0].id),
        ..Default::default()
    };
    let page = store.events(r.uuid, 1, &older).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].outcome, "denied");
    // Filters: by outcome, by address, by text in the user agent (any case), and a `%` that
    // is only a character.
    let only = |f: EventFilter<'static>| {
        let uuid = r.uuid;
        async move {
            store
                .events(uuid, 10, &f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.outcome)
                .collect::<Vec<_>>()
        }
    };
    let denied = EventFilter {
        outcome: Some("denied"),
        channel: Some("read"),
        ..Default::default()
    };
    assert_eq!(only(denied).await, ["denied"]);
    let curl = EventFilter {
        text: Some("CURL/"),
        client_ip: Some("127.0.0.1"),
        ..Default::default()
    };
    assert_eq!(only(curl).await, ["ok"]);
    let percent = EventFilter {
        text: Some("%"),
        ..Default::default()
    };
    assert!(only(percent).await.is_empty());
    assert!(
        store
            .events(Uuid::new_v4(), 10, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Two settles of one event in one group apply in order: a bridge call's status, then its
    // size.
    let call = store
        .append_event(&NewAuditEvent {
            record: r.uuid,
            at: now(),
            channel: "bridge",
            outcome: "attempt",
            client_ip: None,
            user_agent: None,
            detail: Some(r#"{"method":"GET"}"#),
            country: None,
            city: None,
            expect_version: None,
        })
        .await
        .unwrap();
    let settles = [
        Settle {
            id: call,
            outcome: "failed",
            detail: Some(r#"{"status":502}"#),
        },
        Settle {
            id: call,
            outcome: "ok",
            detail: None,
        },
        Settle {
            id: call,
            outcome: "ok",
            detail: Some(r#"{"status":200,"bytes":5}"#),
        },
        Settle {
            id: call,
            outcome: "ok",
            detail: None,
        },
    ];
    store.append_events(&[], &settles).await.unwrap();
    let settled = &store.events(r.uuid, 1, &Default::default()).await.unwrap()[0];
    assert_eq!(
        (
            settled.id,
            settled.outcome.as_str(),
            settled.detail.as_deref()
        ),
        (call, "ok", Some(r#"{"status":200,"bytes":5}"#))
    );

    // An event made from an older version of its record, or for a record that is gone, is not
    // stored; the rest of its group is.
    let version = store.record(r.uuid).await.unwrap().unwrap().version;
    store
        .update_record(
            r.uuid,
            ana.id,
            &RecordChanges {
                name: Some("New".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let event = |record: Uuid, expect_version: Option<i64>| NewAuditEvent {
        record,
        at: now(),
        channel: "read",
        outcome: "ok",
        client_ip: None,
        user_agent: None,
        detail: None,
        country: None,
        city: None,
        expect_version,
    };
    let appended = store
        .append_events(
            &[
                event(r.uuid, Some(version)),
                event(r.uuid, Some(version + 1)),
                event(Uuid::new_v4(), None),
                event(r.uuid, None),
            ],
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(
        appended[..],
        [
            Appended::Stale,
            Appended::Stored(_),
            Appended::Stale,
            Appended::Stored(_)
        ]
    ));

    // Events outlive their record (its history stays readable until retention removes it).
    store.delete_record(r.uuid, ana.id).await.unwrap();
    assert!(
        !store
            .events(r.uuid, 10, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Roll-ups equal the tallies of the events as they stand (settles included); the account's
/// log spans records; a deleted record keeps its events, roll-ups and name.
async fn usage_rollups_and_history(store: &dyn Store) {
    use brine_store::UsageRange;
    use brine_store::usage::{HOUR, MINUTE};
    let ana = account(store, "ana-usage@example.com").await;
    let bob = account(store, "bob-usage@example.com").await;
    let (r1, r2, other) = (record(ana.id), record(ana.id), record(bob.id));
    for r in [&r1, &r2, &other] {
        store.insert_record(r).await.unwrap();
    }
    let base = now().unix_timestamp() * 1000 / HOUR * HOUR + 10 * MINUTE;
    let at = |ms: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(base + ms) * 1_000_000).unwrap()
    };
    let event = |record: Uuid, ms: i64, channel: &'static str, outcome: &'static str, detail| {
        NewAuditEvent {
            record,
            at: at(ms),
            channel,
            outcome,
            client_ip: Some("192.0.2.7"),
            user_agent: Some("curl/8"),
            detail,
            country: Some("NL"),
            city: None,
            expect_version: None,
        }
    };
    let group = [
        event(r1.uuid, 0, "read", "ok", None),
        event(r1.uuid, 1, "read", "denied", None),
        event(r1.uuid, MINUTE, "read", "rate_limited", None),
        event(r2.uuid, 2, "bridge", "attempt", None),
        event(r2.uuid, 3, "owner", "rotated", None),
        event(other.uuid, 4, "read", "ok", None),
    ];
    let ids: Vec<i64> = store
        .append_events(&group, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|a| match a {
            Appended::Stored(id) => id,
            Appended::Stale => panic!("stored"),
        })
        .collect();
    // The bridge call ends with an upstream 502 after 30 ms, then its size is known.
    let settle = |detail| Settle {
        id: ids[3],
        outcome: "ok",
        detail: Some(detail),
    };
    store
        .append_events(&[], &[settle(r#"{"status":502,"latency_ms":30}"#)])
        .await
        .unwrap();
    store
        .append_events(
            &[],
            &[settle(r#"{"status":502,"latency_ms":30,"bytes":40}"#)],
        )
        .await
        .unwrap();

    let hours = UsageRange {
        span: HOUR,
        from: base - HOUR,
        to: base + HOUR,
    };
    let mut summary = store.usage_summary(ana.id, hours).await.unwrap();
    summary.sort_by_key(|u| u.counts.requests);
    assert_eq!(summary.len(), 2, "bob's record is not ana's");
    let (bridge, reads) = (&summary[0].counts, &summary[1].counts);
    assert_eq!((reads.requests, reads.denied, reads.limited), (3, 1, 1));
    assert_eq!(
        (bridge.requests, bridge.upstream_5xx, bridge.bytes),
        (1, 1, 40)
    );
    assert_eq!(bridge.latency_quantile_ms(0.5), Some(50));
    assert_eq!(summary[1].last_at, Some(at(MINUTE)));
    // The minute rows hold the same sums, split by minute.
    let minutes = UsageRange {
        span: MINUTE,
        ..hours
    };
    let series = store
        .usage_series(ana.id, Some(r1.uuid), minutes, MINUTE)
        .await
        .unwrap();
    let points: Vec<_> = series
        .iter()
        .map(|p| (p.start - base, p.requests, p.errors))
        .collect();
    assert_eq!(points, [(0, 2, 1), (MINUTE, 1, 1)]);
    let hourly = store.usage_series(ana.id, None, hours, HOUR).await.unwrap();
    assert_eq!(hourly.iter().map(|p| p.requests).sum::<i64>(), 4);

    // The account's log: every record of the owner, none of another's, with filters.
    let all = store
        .owner_events(ana.id, 100, &Default::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].country.as_deref(), Some("NL"));
    let filter = EventFilter {
        outcome: Some("denied"),
        ..Default::default()
    };
    let denied = store.owner_events(ana.id, 100, &filter).await.unwrap();
    assert_eq!(denied.len(), 1);
    let filter = EventFilter {
        from: Some(at(MINUTE)),
        ..Default::default()
    };
    assert_eq!(
        store
            .owner_events(ana.id, 100, &filter)
            .await
            .unwrap()
            .len(),
        1
    );

    // Deleting a record keeps its history under its name.
    assert!(store.delete_record(r1.uuid, ana.id).await.unwrap());
    let deleted = store.deleted_records(ana.id).await.unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        (deleted[0].uuid, deleted[0].name.as_str()),
        (r1.uuid, "Stripe")
    );
    assert_eq!(
        store
            .events(r1.uuid, 10, &Default::default())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.usage_summary(ana.id, hours).await.unwrap().len(), 2);
    let used = store.last_used(ana.id, Some(r1.uuid)).await.unwrap();
    assert_eq!(used, [(r1.uuid, at(0))]);

    // Retention: successes go first (their counts stay rolled up), then roll-ups, then names.
    let later = at(HOUR);
    assert!(store.delete_successes_before(later, 1_000).await.unwrap() >= 3);
    assert_eq!(
        store
            .owner_events(ana.id, 100, &Default::default())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.usage_summary(ana.id, hours).await.unwrap().len(), 2);
    assert!(
        store
            .delete_rollups_before(MINUTE, base + HOUR, 100)
            .await
            .unwrap()
            >= 3
    );
    assert_eq!(
        store
            .usage_series(ana.id, None, minutes, MINUTE)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(store.usage_summary(ana.id, hours).await.unwrap().len(), 2);
    store
        .delete_tombstones_before(now() + Duration::minutes(1))
        .await
        .unwrap();
    assert!(store.deleted_records(ana.id).await.unwrap().is_empty());

    // Deleting the account removes its history with it.
    store.delete_account(ana.id).await.unwrap();
    assert!(
        store
            .owner_events(ana.id, 100, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.usage_summary(ana.id, hours).await.unwrap().is_empty());
}

/// Every case, on one backend.
async fn conformance(store: Arc<dyn Store>) {
    meta(store.as_ref()).await;
    accounts_and_sessions(store.as_ref()).await;
    two_factor(store.as_ref()).await;
    deleting_an_account_removes_everything_in_it(store.as_ref()).await;
    records_round_trip(store.as_ref()).await;
    updates_are_atomic_and_owner_checked(store.as_ref()).await;
    read_claims_are_exact(store.clone()).await;
    quotas_are_exact_per_period(store.clone()).await;
    page_views_are_exact_and_limits_reset(store.clone()).await;
    attempts_are_counted_and_settled(store.as_ref()).await;
    audit_events(store.as_ref()).await;
    record_state_and_last_use(store.as_ref()).await;
    retention_deletes_only_what_is_old_enough(store.as_ref()).await;
    usage_rollups_and_history(store.as_ref()).await;
    handoffs_end_once_and_belong_to_their_owner(store.clone()).await;
    master_key_versions(store.as_ref()).await;
    refresh_tokens_rotate_once(store.as_ref()).await;
    service_tokens(store.as_ref()).await;
}

/// Values under each master-key version: counted, walked in id order past a version, and
/// replaced only while they are still what was read.
async fn master_key_versions(store: &dyn Store) {
    use brine_store::{SealedField, VersionCount};
    store
        .insert_meta_if_absent("master_key_check:2", b"two")
        .await
        .unwrap();
    let meta = store.master_key_meta().await.unwrap();
    assert!(meta.contains(&("master_key_check:2".to_owned(), b"two".to_vec())));
    assert!(meta.iter().all(|(k, _)| k.starts_with("master_key_")));

    let ana = account(store, "ana-keys@example.com").await;
    let before: i64 = store
        .sealed_counts(SealedField::ServerSlot)
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    let mut uuids = Vec::new();
    for _ in 0..3 {
        let r = record(ana.id);
        store.insert_record(&r).await.unwrap();
        uuids.push(r.uuid);
    }
    uuids.sort();
    assert!(!store.sealed_uses(SealedField::ServerSlot, 2).await.unwrap());
    assert!(store.sealed_uses(SealedField::ServerSlot, 1).await.unwrap());

    // A walk in batches of two, from the start, then after the last id seen.
    let first = store
        .sealed_not_under(SealedField::ServerSlot, 2, Uuid::nil(), 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0].id < first[1].id);
    let mine: Vec<_> = store
        .sealed_not_under(SealedField::ServerSlot, 2, Uuid::nil(), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| uuids.contains(&v.id))
        .collect();
    assert_eq!(mine.len(), 3);
    let next = store
        .sealed_not_under(SealedField::ServerSlot, 2, first[1].id, 1000)
        .await
        .unwrap();
    assert!(next.iter().all(|v| v.id > first[1].id));

    // A replacement applies once: the second, from the same old value, finds it changed.
    let old = mine[0].clone();
    assert_eq!(old.key_version, 1);
    assert!(store.reseal(&old, 2, &[42; 60]).await.unwrap());
    assert!(!store.reseal(&old, 2, &[43; 60]).await.unwrap());
    let slot = store
        .record(old.id)
        .await
        .unwrap()
        .unwrap()
        .slot(SlotKind::Server)
        .cloned()
        .unwrap();
    assert_eq!((slot.version, slot.wrapped), (2, vec![42; 60]));
    // The other slots of the record are untouched.
    let r = store.record(old.id).await.unwrap().unwrap();
    assert_eq!(r.slot(SlotKind::ApiKey).unwrap().version, 1);
    assert!(store.sealed_uses(SealedField::ServerSlot, 2).await.unwrap());
    let counts = store.sealed_counts(SealedField::ServerSlot).await.unwrap();
    assert!(counts.contains(&VersionCount {
        key_version: 2,
        count: 1
    }));
    assert_eq!(counts.iter().map(|c| c.count).sum::<i64>(), before + 3);

    // TOTP secrets, enabled and pending, and webhooks' sealed fields.
    store
        .enable_totp(ana.id, b"secret-v1", 1, &[])
        .await
        .unwrap();
    store
        .set_totp_pending(ana.id, Some(b"pending-v1"), 1)
        .await
        .unwrap();
    for field in [SealedField::TotpSecret, SealedField::TotpPending] {
        let found: Vec<_> = store
            .sealed_not_under(field, 2, Uuid::nil(), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.id == ana.id)
            .collect();
        assert_eq!(found.len(), 1, "{field:?}");
        assert!(store.reseal(&found[0], 2, b"resealed").await.unwrap());
    }
    let found = store.account(ana.id).await.unwrap().unwrap();
    assert_eq!(
        (found.totp_secret.as_deref(), found.totp_key_version),
        (Some(&b"resealed"[..]), 2)
    );
    assert_eq!(
        store.totp_pending(ana.id).await.unwrap(),
        Some((b"resealed".to_vec(), 2))
    );
    assert!(
        store
            .sealed_uses(SealedField::TotpPending, 2)
            .await
            .unwrap()
    );

    let hooked = uuids[1];
    store
        .put_webhook(&brine_store::Webhook {
            record: hooked,
            url: vec![7; 40],
            url_key_version: 1,
            secret: vec![9; 60],
            secret_key_version: 1,
            events: "record.first_reveal".into(),
            burst_threshold: 10,
            burst_window_secs: 300,
            created_at: now(),
            updated_at: now(),
        })
        .await
        .unwrap();
    for field in [SealedField::WebhookUrl, SealedField::WebhookSecret] {
        let found: Vec<_> = store
            .sealed_not_under(field, 2, Uuid::nil(), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.id == hooked)
            .collect();
        assert_eq!(found.len(), 1, "{field:?}");
        assert!(store.reseal(&found[0], 2, &[1; 50]).await.unwrap());
    }
    let hook = store.webhook(hooked).await.unwrap().unwrap();
    assert_eq!((hook.url_key_version, hook.secret_key_version), (2, 2));
    assert_eq!((hook.url, hook.secret), (vec![1; 50], vec![1; 50]));
    assert!(!store.sealed_uses(SealedField::WebhookUrl, 1).await.unwrap());
}

/// A renewable session's refresh digest is replaced once per use; an earlier digest ends the
/// session; an expired or ended session renews nothing.
async fn refresh_tokens_rotate_once(store: &dyn Store) {
    let ana = account(store, "ana-refresh@example.com").await;
    let t = now();
    let id = Uuid::new_v4();
    let open = |id: Uuid, digest: &'static [u8]| NewSession {
        id,
        account: ana.id,
        kind: "api",
        created_at: t,
        expires_at: t + Duration::days(30),
        client_ip: None,
        user_agent: None,
        refresh_digest: Some(digest),
    };
    store.create_session(&open(id, b"r1")).await.unwrap();
    assert!(store.session(id, t).await.unwrap().unwrap().refreshable);
    let later = t + Duration::days(40);
    match store
        .rotate_refresh(id, b"r1", b"r2", t, later)
        .await
        .unwrap()
    {
        Refresh::Rotated(row) => assert_eq!((row.id, row.expires_at), (id, later)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .rotate_refresh(id, b"r2", b"r3", t, later)
            .await
            .unwrap(),
        Refresh::Rotated(_)
    ));
    assert_eq!(
        store
            .rotate_refresh(id, b"r1", b"r4", t, later)
            .await
            .unwrap(),
        Refresh::Reused { account: ana.id }
    );
    assert_eq!(store.session(id, t).await.unwrap(), None);
    assert_eq!(
        store
            .rotate_refresh(id, b"r3", b"r5", t, later)
            .await
            .unwrap(),
        Refresh::Unknown
    );
    // Past its expiry, even the current digest renews nothing.
    let other = Uuid::new_v4();
    store.create_session(&open(other, b"s1")).await.unwrap();
    let after = t + Duration::days(31);
    assert_eq!(
        store
            .rotate_refresh(other, b"s1", b"s2", after, after + Duration::days(30))
            .await
            .unwrap(),
        Refresh::Unknown
    );
    // A session without a refresh token is never ended by one.
    let plain = Uuid::new_v4();
    store
        .create_session(&NewSession {
            refresh_digest: None,
            ..open(plain, b"")
        })
        .await
        .unwrap();
    assert!(!store.session(plain, t).await.unwrap().unwrap().refreshable);
    assert_eq!(
        store
            .rotate_refresh(plain, b"x", b"y", t, later)
            .await
            .unwrap(),
        Refresh::Unknown
    );
    assert!(store.session(plain, t).await.unwrap().is_some());
}

/// Service tokens: stored with their scope atomically, names unique per account, checked
/// against one record in one query, scopes shrink when records go, revoked by their owner only.
async fn service_tokens(store: &dyn Store) {
    let ana = account(store, "ana-tokens@example.com").await;
    let bob = account(store, "bob-tokens@example.com").await;
    let (a, b, c) = (record(ana.id), record(ana.id), record(ana.id));
    for r in [&a, &b, &c] {
        store.insert_record(r).await.unwrap();
    }
    let t = now();
    let id = Uuid::new_v4();
    let scope = [a.uuid, b.uuid];
    let new = NewServiceToken {
        id,
        account: ana.id,
        name: "ci",
        digest: b"digest",
        created_at: t,
        expires_at: t + Duration::days(90),
        records: &scope,
    };
    store.create_service_token(&new).await.unwrap();
    let twin = NewServiceToken {
        id: Uuid::new_v4(),
        ..new
    };
    assert!(matches!(
        store.create_service_token(&twin).await,
        Err(StoreError::Conflict(_))
    ));
    // The same name is free for another account.
    let bobs = NewServiceToken {
        id: Uuid::new_v4(),
        account: bob.id,
        records: &[],
        ..new
    };
    store.create_service_token(&bobs).await.unwrap();

    let check = store
        .check_service_token(id, a.uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            check.account,
            check.name.as_str(),
            check.digest.as_slice(),
            check.covers
        ),
        (ana.id, "ci", &b"digest"[..], true)
    );
    assert!(
        !store
            .check_service_token(id, c.uuid)
            .await
            .unwrap()
            .unwrap()
            .covers
    );
    assert_eq!(
        store
            .check_service_token(Uuid::new_v4(), a.uuid)
            .await
            .unwrap(),
        None
    );

    store
        .touch_service_token(id, t + Duration::minutes(5))
        .await
        .unwrap();
    let listed = store.service_tokens_of(ana.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    let mut expected = scope.to_vec();
    expected.sort();
    assert_eq!(listed[0].records, expected);
    assert_eq!(listed[0].last_used_at, Some(t + Duration::minutes(5)));
    assert_eq!(store.service_token(id).await.unwrap().unwrap().name, "ci");

    // A deleted record leaves every scope.
    assert!(store.delete_record(b.uuid, ana.id).await.unwrap());
    assert_eq!(
        store.service_token(id).await.unwrap().unwrap().records,
        [a.uuid]
    );

    assert!(!store.delete_service_token_of(bob.id, id).await.unwrap());
    assert!(store.delete_service_token_of(ana.id, id).await.unwrap());
    assert_eq!(store.check_service_token(id, a.uuid).await.unwrap(), None);
    assert!(!store.delete_service_token_of(ana.id, id).await.unwrap());
}

/// A handoff ends once however many callers race to end it, is seen only by its owner, keeps
/// going when one of its records is deleted, and goes with its account.
async fn handoffs_end_once_and_belong_to_their_owner(store: Arc<dyn Store>) {
    let ana = account(store.as_ref(), "ana-handoff@example.com").await;
    let bob = account(store.as_ref(), "bob-handoff@example.com").await;
    let (page, code) = (record(ana.id), record(ana.id));
    store.insert_record(&page).await.unwrap();
    store.insert_record(&code).await.unwrap();
    let t = now();
    let handoff = Handoff {
        id: Uuid::new_v4(),
        owner_id: ana.id,
        name: "Ana (contractor)".into(),
        page_record: Some(page.uuid),
        code_record: Some(code.uuid),
        created_at: t,
        ends_at: t + Duration::days(1),
        ended_at: None,
        ended_by: None,
        todo_done_at: None,
    };
    store.insert_handoff(&handoff).await.unwrap();
    assert_eq!(
        store.handoff(ana.id, handoff.id).await.unwrap(),
        Some(handoff.clone())
    );
    assert_eq!(store.handoff(bob.id, handoff.id).await.unwrap(), None);
    assert!(store.handoffs_of(bob.id).await.unwrap().is_empty());
    assert_eq!(
        store.handoffs_of(ana.id).await.unwrap(),
        vec![handoff.clone()]
    );

    // Not due before its end; due after; no to-do to tick before it ends.
    assert!(store.due_handoffs(t, 10).await.unwrap().is_empty());
    let later = t + Duration::days(2);
    assert_eq!(
        store.due_handoffs(later, 10).await.unwrap(),
        vec![handoff.clone()]
    );
    assert!(!store.tick_handoff(ana.id, handoff.id, later).await.unwrap());

    // Eight callers at once (nodes, the owner's "End now"): exactly one ends it.
    let racers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.end_handoff(handoff.id, later, "schedule").await })
    });
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    assert!(store.due_handoffs(later, 10).await.unwrap().is_empty());
    let ended = store.handoff(ana.id, handoff.id).await.unwrap().unwrap();
    assert_eq!(ended.ended_at, Some(later));
    assert_eq!(ended.ended_by.as_deref(), Some("schedule"));

    // Only its owner ticks the to-do, once.
    assert!(!store.tick_handoff(bob.id, handoff.id, later).await.unwrap());
    assert!(store.tick_handoff(ana.id, handoff.id, later).await.unwrap());
    assert!(
        !store
            .tick_handoff(ana.id, handoff.id, later + Duration::hours(1))
            .await
            .unwrap()
    );
    let ticked = store.handoff(ana.id, handoff.id).await.unwrap().unwrap();
    assert_eq!(ticked.todo_done_at, Some(later));

    // A deleted record leaves the handoff, without it; a deleted account takes it along.
    assert!(store.delete_record(code.uuid, ana.id).await.unwrap());
    let kept = store.handoff(ana.id, handoff.id).await.unwrap().unwrap();
    assert_eq!(
        (kept.page_record, kept.code_record),
        (Some(page.uuid), None)
    );
    assert!(store.delete_account(ana.id).await.unwrap());
    assert_eq!(store.handoff(ana.id, handoff.id).await.unwrap(), None);
}

/// A record's disabled time and page label round-trip and change like any field, and bump the
/// version; `last_used` is the newest success of the owner's records, by their callers only.
async fn record_state_and_last_use(store: &dyn Store) {
    let ana = account(store, "ana-state@example.com").await;
    let bo = account(store, "bo-state@example.com").await;
    let mut r = record(ana.id);
    r.page_label = Some("For Bo, from Ana".into());
    store.insert_record(&r).await.unwrap();
    let stored = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!(
        (stored.disabled_at, stored.page_label.as_deref()),
        (None, Some("For Bo, from Ana"))
    );

    let at = now();
    let disable = RecordChanges {
        disabled_at: Some(Some(at)),
        page_label: Some(None),
        ..Default::default()
    };
    assert!(store.update_record(r.uuid, ana.id, &disable).await.unwrap());
    let stored = store.record(r.uuid).await.unwrap().unwrap();
    assert_eq!((stored.disabled_at, stored.page_label), (Some(at), None));
    assert_eq!(
        stored.version,
        r.version + 1,
        "a disable is a change like any other"
    );
    let other = RecordChanges {
        name: Some("x".into()),
        ..Default::default()
    };
    store.update_record(r.uuid, ana.id, &other).await.unwrap();
    assert_eq!(
        store.record(r.uuid).await.unwrap().unwrap().disabled_at,
        Some(at),
        "kept"
    );
    let enable = RecordChanges {
        disabled_at: Some(None),
        ..Default::default()
    };
    store.update_record(r.uuid, ana.id, &enable).await.unwrap();
    assert_eq!(
        store.record(r.uuid).await.unwrap().unwrap().disabled_at,
        None
    );

    let unused = record(ana.id);
    store.insert_record(&unused).await.unwrap();
    let base = now();
    let event = |channel: &'static str, outcome: &'static str, ms: i64| NewAuditEvent {
        record: r.uuid,
        at: base + Duration::milliseconds(ms),
        channel,
        outcome,
        client_ip: None,
        user_agent: None,
        detail: None,
        country: None,
        city: None,
        expect_version: None,
    };
    store
        .append_events(
            &[
                event("read", "ok", 1),
                event("secure_page", "revealed", 5),
                event("bridge", "ok", 3),
                // Neither a failure nor the owner's own reveal is a use.
                event("read", "denied", 9),
                event("owner", "ok", 10),
                event("secure_page", "opened", 11),
            ],
            &[],
        )
        .await
        .unwrap();
    let used = store.last_used(ana.id, None).await.unwrap();
    assert_eq!(used, vec![(r.uuid, base + Duration::milliseconds(5))]);
    assert_eq!(store.last_used(ana.id, Some(r.uuid)).await.unwrap(), used);
    assert!(
        store
            .last_used(ana.id, Some(unused.uuid))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .last_used(bo.id, Some(r.uuid))
            .await
            .unwrap()
            .is_empty(),
        "only the owner's"
    );
    assert!(store.last_used(bo.id, None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_conforms() {
    let (store, _dir) = sqlite().await;
    conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    use brine_store::testing::{PostgresForTests, TempDatabase, postgres_for_tests};
    let PostgresForTests::Available(admin) = postgres_for_tests().unwrap() else {
        eprintln!("skipped: set BRINE_TEST_POSTGRES_URL to run the PostgreSQL suite");
        return;
    };
    let db = TempDatabase::create(&admin).await.unwrap();
    conformance(brine_store::connect(&db.url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrations_tolerate_nodes_starting_together() {
    use brine_store::testing::{PostgresForTests, TempDatabase, postgres_for_tests};
    let PostgresForTests::Available(admin) = postgres_for_tests().unwrap() else {
        eprintln!("skipped: set BRINE_TEST_POSTGRES_URL to run the PostgreSQL suite");
        return;
    };
    let db = TempDatabase::create(&admin).await.unwrap();
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { brine_store::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().unwrap();
    }
    let store = brine_store::connect(&db.url).await.unwrap();
    assert!(store.insert_meta_if_absent("k", b"v").await.unwrap());
}

#[tokio::test]
async fn unknown_database_urls_are_refused() {
    assert!(matches!(
        brine_store::connect("mysql://localhost/x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}

#[tokio::test]
async fn sqlite_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    {
        let store = brine_store::connect(&url).await.unwrap();
        store.insert_meta_if_absent("k", b"v").await.unwrap();
    }
    let store = brine_store::connect(&url).await.unwrap();
    assert_eq!(store.meta("k").await.unwrap(), Some(b"v".to_vec()));
}

/// Fills `src`, exports it, imports into `dst`, and compares everything that moved.
async fn transfer_round_trip(src: Arc<dyn Store>, dst: Arc<dyn Store>) {
    use brine_store::transfer::{export, import};
    src.insert_meta_if_absent("master_key_check", b"check-1")
        .await
        .unwrap();
    // Later versions' check values and retirement marks move too.
    src.insert_meta_if_absent("master_key_check:3", b"check-3")
        .await
        .unwrap();
    src.insert_meta_if_absent("master_key_retired:1", b"1700000000")
        .await
        .unwrap();
    let ana = account(src.as_ref(), "ana@example.com").await;
    let bob = account(src.as_ref(), "bob@example.com").await;
    // Two-factor sign-in moves with the account.
    let digests = vec![vec![5u8; 32]];
    src.enable_totp(bob.id, b"sealed-secret", 3, &digests)
        .await
        .unwrap();
    let mut limited = record(ana.id);
    limited.max_reads = Some(2);
    limited.reads = 1;
    limited.expires_at = Some(now() + Duration::days(3));
    limited.page = PageLimits {
        expires_at: Some(now() + Duration::days(1)),
        max_views: Some(4),
        views: 2,
    };
    let mut sealed = record(bob.id);
    sealed.sealed = true;
    sealed.slots = vec![slot(SlotKind::ApiKey, 3), slot(SlotKind::Password, 1)];
    for r in [&limited, &sealed] {
        src.insert_record(r).await.unwrap();
    }
    for outcome in ["ok", "denied"] {
        src.append_event(&NewAuditEvent {
            record: limited.uuid,
            at: now(),
            channel: "read",
            outcome,
            client_ip: Some("::1"),
            user_agent: None,
            detail: Some(r#"{"status":200}"#),
            country: None,
            city: None,
            expect_version: None,
        })
        .await
        .unwrap();
    }

    let mut file = Vec::new();
    let mut ticks = 0;
    let exported = export(src.as_ref(), &mut file, |_, _| ticks += 1)
        .await
        .unwrap();
    assert_eq!(
        (
            exported.accounts,
            exported.records,
            exported.key_slots,
            exported.events
        ),
        (2, 2, 4, 2)
    );
    assert_eq!(ticks, 2);

    // A truncated file is refused before it claims success.
    let cut = &file[..file.len() - 40];
    let scratch = sqlite().await;
    assert!(import(scratch.0.as_ref(), cut, |_| {}).await.is_err());

    let imported = import(dst.as_ref(), file.as_slice(), |_| {}).await.unwrap();
    assert_eq!(imported, exported);
    assert_eq!(
        dst.meta("master_key_check").await.unwrap(),
        Some(b"check-1".to_vec())
    );
    for r in [&limited, &sealed] {
        let got = dst.record(r.uuid).await.unwrap().unwrap();
        assert_eq!(
            (
                got.owner_id,
                &got.name,
                got.sealed,
                &got.payload,
                got.payload_version
            ),
            (r.owner_id, &r.name, r.sealed, &r.payload, r.payload_version)
        );
        assert_eq!(
            (got.expires_at, got.max_reads, got.reads),
            (r.expires_at, r.max_reads, r.reads)
        );
        for s in &r.slots {
            assert_eq!(got.slot(s.kind), Some(s));
        }
    }
    let login = dst
        .account_by_email("bob@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.password_hash, bob.password_hash);
    assert_eq!(login.totp_secret.as_deref(), Some(&b"sealed-secret"[..]));
    assert_eq!(login.totp_key_version, 3);
    assert_eq!(dst.recovery_codes(bob.id).await.unwrap(), digests);
    assert_eq!(
        dst.master_key_meta().await.unwrap(),
        src.master_key_meta().await.unwrap()
    );
    let events = dst
        .events(limited.uuid, 10, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        ["denied", "ok"]
    );

    // Never into a database that already has data.
    assert!(import(dst.as_ref(), file.as_slice(), |_| {}).await.is_err());
}

#[tokio::test]
async fn transfer_sqlite_to_sqlite() {
    let (src, _a) = sqlite().await;
    let (dst, _b) = sqlite().await;
    transfer_round_trip(src, dst).await;
}

#[tokio::test]
async fn import_refuses_another_master_key() {
    use brine_store::transfer::{export, import};
    let (src, _a) = sqlite().await;
    let (dst, _b) = sqlite().await;
    src.insert_meta_if_absent("master_key_check", b"one")
        .await
        .unwrap();
    dst.insert_meta_if_absent("master_key_check", b"two")
        .await
        .unwrap();
    let mut file = Vec::new();
    export(src.as_ref(), &mut file, |_, _| {}).await.unwrap();
    let err = import(dst.as_ref(), file.as_slice(), |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another master key"), "{err}");
}
