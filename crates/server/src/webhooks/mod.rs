//! Webhooks: per record, a signed POST to the owner's URL on the first reveal of a secure page,
//! the first use after a rotation, and a burst of failed attempts.
//!
//! Three parts. The owner's operations (set, show, remove, rotate the secret) in [`owner`].
//! The triggers ([`trigger`]): the audit writer hands each committed event of a watched record
//! to a task of their own, off the request's path, which decides "first" conditions in the
//! database (one node wins) and queues a delivery. The delivery worker ([`deliver`]): claims
//! due deliveries from the queue in the database, signs and sends them, retries with backoff,
//! and records each attempt in the record's timeline.

mod deliver;
mod owner;
mod trigger;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use brine_crypto::{Binding, Keyring, Subkeys, open, random_bytes, seal};
use brine_store::{Store, WebhookWatch};
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::Records;
use crate::audit::AuditLog;
use crate::fault::Fault;
use crate::loop_guard::LoopGuard;
use crate::vault::VaultError;

/// What a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    FirstReveal,
    FirstUseAfterRotation,
    FailedAttemptsBurst,
    /// A value arrived through an intake link (a bridge's header was set from it).
    IntakeReceived,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::FirstReveal,
        EventType::FirstUseAfterRotation,
        EventType::FailedAttemptsBurst,
        EventType::IntakeReceived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::FirstReveal => "secure_page.first_reveal",
            EventType::FirstUseAfterRotation => "record.first_use_after_rotation",
            EventType::FailedAttemptsBurst => "record.failed_attempts_burst",
            EventType::IntakeReceived => "record.intake_received",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Its name in `webhook_marks` (the "first" and "once per window" decisions).
    fn mark_kind(self) -> &'static str {
        match self {
            EventType::FirstReveal => "first_reveal",
            EventType::FirstUseAfterRotation => "first_use",
            EventType::FailedAttemptsBurst => "burst",
            EventType::IntakeReceived => "intake",
        }
    }
}

/// How deliveries are sent and retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Wait before the first retry, in milliseconds; each later retry waits twice as long.
    pub retry_base_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// Attempts before a delivery is given up (and shown as failed).
    pub max_attempts: u32,
    /// Time to open a connection to the receiver, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time for the whole attempt (connect, send, the receiver's answer), in milliseconds.
    pub timeout_ms: u64,
    /// How often each node looks for due deliveries, in milliseconds (deliveries queued on the
    /// node itself are sent at once).
    pub poll_ms: u64,
    /// How often each node reloads which records have webhooks (changes made on the node itself
    /// apply at once), in milliseconds.
    pub refresh_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_base_ms: 10_000,
            retry_max_ms: 3_600_000,
            max_attempts: 12,
            connect_timeout_ms: 5_000,
            timeout_ms: 10_000,
            poll_ms: 1_000,
            refresh_ms: 5_000,
        }
    }
}

impl WebhookSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.retry_base_ms == 0
            || self.retry_max_ms < self.retry_base_ms
            || self.max_attempts == 0
            || self.connect_timeout_ms == 0
            || self.timeout_ms == 0
            || self.poll_ms == 0
            || self.refresh_ms == 0
        {
            return Err(
                "webhooks: every time must be positive, retry_max_ms at least \
                        retry_base_ms, and max_attempts at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The default burst: 10 refused attempts within 5 minutes.
pub const DEFAULT_BURST: (i64, i64) = (10, 300);

/// Seals webhook URLs and signing secrets, each bound to its record, field and master-key
/// version: the current version seals, the version a value was sealed under opens it.
pub(crate) struct WebhookKey(Subkeys);

impl WebhookKey {
    pub(crate) fn new(ring: &Keyring) -> Result<Self, brine_crypto::CryptoError> {
        Ok(Self(ring.subkeys("brine webhooks v1")?))
    }

    /// The sealed value and the master-key version that sealed it.
    pub(crate) fn seal(
        &self,
        record: Uuid,
        field: &str,
        plain: &[u8],
    ) -> Result<(Vec<u8>, i64), Fault> {
        let (version, key) = self.0.current();
        let sealed =
            seal(key, Binding::new(record, field, version), plain).map_err(crypto_fault)?;
        Ok((sealed, i64::from(version)))
    }

    pub(crate) fn open(
        &self,
        record: Uuid,
        field: &str,
        version: i64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Fault> {
        let version = u32::try_from(version).map_err(|_| Fault::from(VaultError::Version))?;
        let key = self
            .0
            .get(version)
            .ok_or(Fault::from(VaultError::MissingVersion(version)))?;
        open(key, Binding::new(record, field, version), sealed).map_err(crypto_fault)
    }
}

fn crypto_fault(e: brine_crypto::CryptoError) -> Fault {
    Fault::from(VaultError::from(e))
}

pub(crate) const URL_FIELD: &str = "webhook_url";
pub(crate) const SECRET_FIELD: &str = "webhook_secret";

/// A signing secret: `whsec_` and 32 random bytes in base64url. Its bytes, prefix included, are
/// the HMAC key. No `Debug`: it never reaches a log line.
pub struct SigningSecret(Zeroizing<String>);

impl SigningSecret {
    fn generate() -> Result<Self, Fault> {
        use base64::Engine;
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(random_bytes().map_err(crypto_fault)?);
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice());
        Ok(Self(Zeroizing::new(format!("whsec_{text}"))))
    }

    fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Result<Self, Fault> {
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| Fault::Internal("a webhook secret that is not text"))?;
        Ok(Self(Zeroizing::new(text)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Which events a watched record's webhook wants, as each node keeps it in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub first_reveal: bool,
    pub first_use: bool,
    pub burst: Option<(i64, i64)>,
    pub intake: bool,
}

impl Watch {
    fn of(w: &WebhookWatch) -> Self {
        let has = |e: EventType| w.events.split(',').any(|s| s == e.as_str());
        Self {
            first_reveal: has(EventType::FirstReveal),
            first_use: has(EventType::FirstUseAfterRotation),
            burst: has(EventType::FailedAttemptsBurst)
                .then_some((w.burst_threshold, w.burst_window_secs)),
            intake: has(EventType::IntakeReceived),
        }
    }
}

type Watches = Arc<RwLock<HashMap<Uuid, Watch>>>;

/// The webhooks' handle: cheap to clone.
#[derive(Clone)]
pub struct Webhooks(Arc<Parts>);

impl std::ops::Deref for Webhooks {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

pub struct Parts {
    store: Arc<dyn Store>,
    key: WebhookKey,
    watches: Watches,
    /// Wakes the delivery worker when this node queued a delivery.
    wake: Notify,
    settings: WebhookSettings,
    allow_private: bool,
    audit: AuditLog,
    records: Records,
    loops: LoopGuard,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Webhooks {
    pub fn new(
        master: &Keyring,
        settings: WebhookSettings,
        allow_private: bool,
        audit: AuditLog,
        records: Records,
        loops: LoopGuard,
    ) -> Result<Self, brine_crypto::CryptoError> {
        Ok(Self(Arc::new(Parts {
            store: records.store().clone(),
            key: WebhookKey::new(master)?,
            watches: Arc::default(),
            wake: Notify::new(),
            settings,
            allow_private,
            audit,
            records,
            loops,
            tasks: std::sync::Mutex::default(),
            stop: watch::channel(false).0,
        })))
    }

    /// Loads which records have webhooks, installs the audit tap and starts the tasks: the
    /// trigger, the delivery worker, the periodic reload of the watches.
    pub async fn start(&self) -> Result<(), Fault> {
        self.reload().await?;
        let client = deliver::client(&self.settings, self.allow_private)
            .map_err(|_| Fault::Internal("cannot build the webhook client"))?;
        let (tap, seen) = trigger::tap(self.watches.clone());
        self.audit.set_tap(Arc::new(tap));
        let tasks = vec![
            tokio::spawn(trigger::run(self.clone(), seen)),
            tokio::spawn(deliver::run(self.clone(), client, self.stop.subscribe())),
            tokio::spawn(refresh(self.clone())),
        ];
        if let Ok(mut held) = self.tasks.lock() {
            held.extend(tasks);
        }
        Ok(())
    }

    /// Stops the tasks: the worker finishes the attempts under way (within their timeout) so
    /// that none is left claimed.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = match self.tasks.lock() {
            Ok(mut held) => std::mem::take(&mut *held),
            Err(_) => Vec::new(),
        };
        // The worker is second; the others only wait for work.
        let grace = Duration::from_millis(self.settings.timeout_ms + 1_000);
        for (i, task) in tasks.into_iter().enumerate() {
            if i == 1 {
                let abort = task.abort_handle();
                if tokio::time::timeout(grace, task).await.is_err() {
                    abort.abort();
                }
            } else {
                task.abort();
            }
        }
    }

    /// Reads every webhook's record and events again.
    async fn reload(&self) -> Result<(), Fault> {
        let watches = self.store.webhook_watches().await?;
        let fresh: HashMap<Uuid, Watch> =
            watches.iter().map(|w| (w.record, Watch::of(w))).collect();
        if let Ok(mut held) = self.watches.write() {
            *held = fresh;
        }
        Ok(())
    }

    fn watch(&self, record: Uuid) -> Option<Watch> {
        self.watches.read().ok()?.get(&record).copied()
    }
}

/// Other nodes' changes reach this node's watches within `refresh_ms`.
async fn refresh(hooks: Webhooks) {
    let mut every = tokio::time::interval(Duration::from_millis(hooks.settings.refresh_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = hooks.reload().await {
            tracing::warn!(%error, "cannot reload the webhooks");
        }
    }
}
