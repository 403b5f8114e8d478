use brine_core::{Access, Policy, RecordKind, RecordLimits};
use time::OffsetDateTime;
use uuid::Uuid;

/// Which way of opening a record a key slot serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// Wrapped under the master key. Absent on sealed records.
    Server,
    /// Wrapped under a key derived from the record's X-API-Key.
    ApiKey,
    /// Wrapped under Argon2id of the record password.
    Password,
    /// Wrapped under Argon2id of the secure page's password (`/secure/{uuid}`).
    SecurePage,
}

impl SlotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Server => "server",
            SlotKind::ApiKey => "api_key",
            SlotKind::Password => "password",
            SlotKind::SecurePage => "secure_page",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "server" => Some(SlotKind::Server),
            "api_key" => Some(SlotKind::ApiKey),
            "password" => Some(SlotKind::Password),
            "secure_page" => Some(SlotKind::SecurePage),
            _ => None,
        }
    }
}

/// A record's data key, wrapped under one key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySlot {
    pub kind: SlotKind,
    /// Bound into the wrap's associated data; bumped on every rotation.
    pub version: i64,
    pub wrapped: Vec<u8>,
    /// KDF parameters and salt (password and secure-page slots).
    pub kdf: Option<String>,
    /// When the slot was written (its password or key set); the epoch for slots stored before
    /// this was recorded.
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub uuid: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub kind: RecordKind,
    pub access: Access,
    pub sealed: bool,
    /// AES-256-GCM of the secret under the record's data key.
    pub payload: Vec<u8>,
    pub payload_version: i64,
    pub expires_at: Option<OffsetDateTime>,
    pub max_reads: Option<i64>,
    /// Reads granted so far (counted only while `max_reads` is set).
    pub reads: i64,
    /// Limits of the secure page, which has its own slot and its own counter.
    pub page: PageLimits,
    /// Settings that are not secret: a bridge's policy (its URL and headers are in `payload`),
    /// or a credential's declared `{{param}}` names. Its kind is always `kind`.
    pub policy: Policy,
    /// The owner's rate limit and quota.
    pub limits: RecordLimits,
    /// When its owner disabled it (`None`: enabled). A disabled record answers every public
    /// channel as an unknown uuid would; its keys and passwords are kept.
    pub disabled_at: Option<OffsetDateTime>,
    /// What the secure page shows before its password, when the owner chose to (plain text).
    pub page_label: Option<String>,
    /// Bumped by every change to the record (not by the read and view counters): a copy of the
    /// record at another version is out of date.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub slots: Vec<KeySlot>,
}

/// A secure page's own expiry and reveal limit (on top of the record's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageLimits {
    pub expires_at: Option<OffsetDateTime>,
    pub max_views: Option<i64>,
    /// Reveals so far (reset when the page gets a new password or limits).
    pub views: i64,
}

impl Record {
    pub fn slot(&self, kind: SlotKind) -> Option<&KeySlot> {
        self.slots.iter().find(|s| s.kind == kind)
    }
}

/// A set of changes applied to one record in one transaction. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RecordChanges {
    pub name: Option<String>,
    pub access: Option<Access>,
    /// New payload and the version it was sealed with.
    pub payload: Option<(Vec<u8>, i64)>,
    pub expires_at: Option<Option<OffsetDateTime>>,
    pub max_reads: Option<Option<i64>>,
    /// New secure-page limits; the view count starts again at the given `views`.
    pub page: Option<PageLimits>,
    /// A new policy (of the record's kind).
    pub policy: Option<Policy>,
    /// New limits (empty limits remove them).
    pub limits: Option<RecordLimits>,
    /// Disables (`Some(Some(at))`) or enables (`Some(None)`) the record.
    pub disabled_at: Option<Option<OffsetDateTime>>,
    /// A new secure-page label (`Some(None)` removes it).
    pub page_label: Option<Option<String>>,
    /// Slots to insert or replace.
    pub put_slots: Vec<KeySlot>,
    pub remove_slots: Vec<SlotKind>,
    pub updated_at: Option<OffsetDateTime>,
}

/// One attempt on a record, as written to the audit log. Never holds a secret.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub record: Uuid,
    pub at: OffsetDateTime,
    pub channel: &'a str,
    pub outcome: &'a str,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Details of a proxied call, as JSON.
    pub detail: Option<&'a str>,
    /// Where the client is, from the operator's GeoIP database (if any).
    pub country: Option<&'a str>,
    pub city: Option<&'a str>,
    /// Store the event only if the record is still at this version: the event describes an
    /// answer made from that version, which must not leave if the record has changed since.
    pub expect_version: Option<i64>,
}

/// What became of one event of a group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored, with this id.
    Stored(i64),
    /// Not stored: the record is gone, or no longer at the expected version.
    Stale,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i64,
    pub record: Uuid,
    pub at: OffsetDateTime,
    pub channel: String,
    pub outcome: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
}

/// The final outcome (and details) of an event recorded before its attempt finished.
#[derive(Debug, Clone, Copy)]
pub struct Settle<'a> {
    pub id: i64,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

/// The failures a lockout counts: events on one record and channel, with one of two outcomes,
/// newer than `since`.
#[derive(Debug, Clone)]
pub struct RecentFailures<'a> {
    pub record: Uuid,
    pub channel: &'a str,
    pub outcomes: [&'a str; 2],
    pub since: OffsetDateTime,
    /// The client whose own failures are counted too.
    pub client_ip: Option<&'a str>,
    /// Failures allowed from the client, and from everyone.
    pub per_client: i64,
    pub per_record: i64,
}

/// Where each lockout tier's count passes its limit: the time of the oldest failure that puts
/// it over (the `limit + 1`-th newest), if there are that many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutEdges {
    pub client: Option<OffsetDateTime>,
    pub record: Option<OffsetDateTime>,
}
