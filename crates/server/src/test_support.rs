//! For unit tests: a real SQLite store in a temporary directory, with one account and one
//! record (whose payload is not a real seal: enough for what touches only the database).

use std::sync::Arc;

use brine_core::{Access, Policy, RecordKind, RecordLimits};
use brine_store::{Account, PageLimits, Record, Store};
use uuid::Uuid;

use crate::clock::now_ms;

pub struct TempStore {
    pub store: Arc<dyn Store>,
    pub owner: Uuid,
    pub record: Uuid,
    _dir: tempfile::TempDir,
}

pub async fn temp_store() -> TempStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("unit.db").display());
    let store = brine_store::connect(&url).await.unwrap();
    let owner = Account {
        id: Uuid::new_v4(),
        email: "unit@example.com".into(),
        password_hash: "$argon2id$stub".into(),
        created_at: now_ms(),
        totp_secret: None,
        totp_key_version: 1,
    };
    store.create_account(&owner).await.unwrap();
    let now = now_ms();
    let record = Record {
        uuid: Uuid::new_v4(),
        owner_id: owner.id,
        name: "unit".into(),
        kind: RecordKind::Credential,
        access: Access::Private,
        sealed: true,
        payload: vec![0; 40],
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
        created_at: now,
        updated_at: now,
        slots: Vec::new(),
    };
    store.insert_record(&record).await.unwrap();
    TempStore {
        store,
        owner: owner.id,
        record: record.uuid,
        _dir: dir,
    }
}
