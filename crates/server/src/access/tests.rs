//! The gate's order, without a server: a real SQLite store in a temporary directory, records
//! built with the vault, and the stages called as the routes call them.

use std::sync::Arc;

use brine_core::{Access, Policy, Quota, QuotaPeriod, RecordKind, RecordLimits, RecordPassword};
use brine_crypto::{ApiKey, Argon2Settings, DataKey, MasterKey};
use brine_store::{Account, PageLimits, Record, RecordChanges, SlotKind, Store};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::*;
use crate::audit::AuditLog;
use crate::kdf::KdfPool;
use crate::lockout::{Lockout, LockoutSettings};
use crate::metrics::Metrics;
use crate::throttle::{Limits, RateLimitSettings};

struct World {
    gate: Gate,
    store: Arc<dyn Store>,
    kdf: KdfPool,
    owner: Uuid,
    _dir: tempfile::TempDir,
}

async fn world(lockout: LockoutSettings) -> World {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gate.db").display());
    let store = brine_store::connect(&url).await.unwrap();
    let owner = Account {
        id: Uuid::new_v4(),
        email: "ana@example.com".into(),
        password_hash: "$argon2id$stub".into(),
        created_at: now_ms(),
        totp_secret: None,
        totp_key_version: 1,
    };
    store.create_account(&owner).await.unwrap();
    let kdf = KdfPool::new(1).unwrap();
    let fast = Argon2Settings {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let vault = Vault::new(
        Arc::new(brine_crypto::Keyring::single(
            MasterKey::generate().unwrap(),
        )),
        kdf.clone(),
        fast,
    );
    let metrics = Metrics::default();
    let audit = AuditLog::start(store.clone(), metrics.clone());
    let limits = Limits::new(
        RateLimitSettings::default(),
        None,
        store.clone(),
        metrics.clone(),
        b"k",
    )
    .unwrap();
    let gate = Gate::new(
        Records::new(store.clone(), 1024 * 1024, metrics.clone()),
        vault,
        audit.clone(),
        limits,
        Lockout::new(store.clone(), audit, lockout, metrics),
    );
    World {
        gate,
        store,
        kdf,
        owner: owner.id,
        _dir: dir,
    }
}

impl World {
    /// A credential with a server slot and an X-API-Key (and a record password, if given).
    async fn credential(
        &self,
        access: Access,
        limits: RecordLimits,
        password: Option<&str>,
    ) -> (Uuid, ApiKey) {
        let vault = self.gate.vault();
        let uuid = Uuid::new_v4();
        let dek = DataKey::generate().unwrap();
        let (key_slot, key) = vault.api_key_slot(uuid, 1, &dek).unwrap();
        let mut slots = vec![vault.server_slot(uuid, &dek).unwrap(), key_slot];
        if let Some(password) = password {
            let password = RecordPassword::parse(password.into()).unwrap();
            let slot = vault
                .password_slot(SlotKind::Password, uuid, 1, password, &dek)
                .await
                .unwrap();
            slots.push(slot);
        }
        let now = now_ms();
        let record = Record {
            uuid,
            owner_id: self.owner,
            name: "gate".into(),
            kind: RecordKind::Credential,
            access,
            sealed: false,
            payload: vault.seal(uuid, 1, &dek, b"sk_live_gate").unwrap(),
            payload_version: 1,
            expires_at: None,
            max_reads: None,
            reads: 0,
            page: PageLimits::default(),
            policy: Policy::Credential(Default::default()),
            limits,
            disabled_at: None,
            page_label: None,
            version: 1,
            created_at: now,
            updated_at: now,
            slots,
        };
        self.store.insert_record(&record).await.unwrap();
        (uuid, key)
    }

    async fn outcomes(&self, uuid: Uuid) -> Vec<String> {
        self.gate.audit().flush().await.unwrap();
        let events = self
            .store
            .events(uuid, 100, &Default::default())
            .await
            .unwrap();
        events.into_iter().map(|e| e.outcome).collect()
    }

    /// One read through every stage, as `/r/{uuid}` makes it.
    async fn read(
        &self,
        uuid: Uuid,
        credential: Credential,
        attempt: Try,
    ) -> Result<(), GateError> {
        let found = self
            .gate
            .find(uuid, &ClientInfo::default(), attempt)
            .await?;
        let channel = match credential {
            Credential::Password(_) => Channel::Password,
            _ => Channel::Read,
        };
        let charged = found
            .via(channel)
            .admit()
            .await?
            .unlock(credential)
            .await?
            .charge()
            .await?;
        assert_eq!(*charged.value().unwrap(), "sk_live_gate");
        charged.finish(Outcome::Ok).await
    }
}

fn quota(requests: u32) -> RecordLimits {
    RecordLimits {
        rate_limit: None,
        quota: Some(Quota {
            requests,
            per: QuotaPeriod::Day,
        }),
    }
}

fn refused(result: Result<(), GateError>) -> Refusal {
    match result {
        Err(GateError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_key_never_spends_quota() {
    let w = world(LockoutSettings::default()).await;
    let (uuid, key) = w.credential(Access::Private, quota(1), None).await;
    let wrong = Credential::ApiKey("brk_not_the_key".into());
    assert!(matches!(
        refused(w.read(uuid, wrong, Try::FIRST).await),
        Refusal::KeyRequired
    ));
    let (period, _) = QuotaPeriod::Day.bounds(now_ms());
    assert_eq!(w.store.quota_used(uuid, period).await.unwrap(), 0);
    let right = Credential::ApiKey(key.expose().to_owned());
    w.read(uuid, right, Try::FIRST).await.unwrap();
    assert_eq!(w.store.quota_used(uuid, period).await.unwrap(), 1);
    assert_eq!(w.outcomes(uuid).await, ["ok", "denied"]);
}

#[tokio::test]
async fn a_locked_out_attempt_never_runs_argon2() {
    let lockout = LockoutSettings {
        per_client: 1,
        per_record: 1,
        window_secs: 600,
    };
    let w = world(lockout).await;
    let (uuid, _) = w
        .credential(
            Access::Private,
            RecordLimits::default(),
            Some("right password"),
        )
        .await;
    let guess = || Credential::Password(Zeroizing::new("wrong password".into()));
    let before = w.kdf.started();
    assert!(matches!(
        refused(w.read(uuid, guess(), Try::FIRST).await),
        Refusal::WrongPassword
    ));
    assert_eq!(w.kdf.started(), before + 1, "the first guess is checked");
    assert!(matches!(
        refused(w.read(uuid, guess(), Try::FIRST).await),
        Refusal::Locked(_)
    ));
    assert_eq!(
        w.kdf.started(),
        before + 1,
        "a locked-out guess is never checked"
    );
    assert_eq!(w.outcomes(uuid).await, ["rate_limited", "denied"]);
}

#[tokio::test]
async fn an_owner_only_record_never_reaches_the_key_check() {
    let w = world(LockoutSettings::default()).await;
    let (uuid, key) = w
        .credential(
            Access::OwnerOnly,
            RecordLimits::default(),
            Some("a password"),
        )
        .await;
    let before = w.kdf.started();
    let by_key = Credential::ApiKey(key.expose().to_owned());
    assert!(matches!(
        refused(w.read(uuid, by_key, Try::FIRST).await),
        Refusal::OwnerOnly
    ));
    let by_password = Credential::Password(Zeroizing::new("a password".into()));
    assert!(matches!(
        refused(w.read(uuid, by_password, Try::FIRST).await),
        Refusal::OwnerOnly
    ));
    assert_eq!(w.kdf.started(), before, "no password was checked");
    assert_eq!(w.outcomes(uuid).await, ["forbidden", "forbidden"]);
}

#[tokio::test]
async fn a_copy_from_memory_that_changed_is_read_again_from_the_database() {
    let w = world(LockoutSettings::default()).await;
    let (uuid, key) = w
        .credential(Access::Private, RecordLimits::default(), None)
        .await;
    let read = |attempt| w.read(uuid, Credential::ApiKey(key.expose().to_owned()), attempt);
    read(Try::FIRST).await.unwrap();
    // Another node turns the key off: this node's copy in memory does not know.
    let off = RecordChanges {
        remove_slots: vec![SlotKind::ApiKey],
        ..RecordChanges::default()
    };
    assert!(w.store.update_record(uuid, w.owner, &off).await.unwrap());
    let first = read(Try::FIRST).await;
    assert!(
        matches!(first, Err(GateError::Fault(Fault::Stale))),
        "{first:?}"
    );
    let next = Try::FIRST.after(&first).expect("a second try");
    assert!(matches!(refused(read(next).await), Refusal::KeyRequired));
    assert_eq!(
        w.outcomes(uuid).await,
        ["denied", "ok"],
        "the stale answer left no event"
    );
}
