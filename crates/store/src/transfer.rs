//! Moving a whole installation between databases (`brine export` / `brine import`), still
//! encrypted: payloads and key slots travel as the ciphertext they are, account passwords as
//! their Argon2 hashes. The master key never travels; the importing server must use the same one,
//! and the key's check value travels to enforce that.
//!
//! Format: JSON Lines. A header, then each account followed by its records, each record followed
//! by its webhook (if any) and its audit events (oldest first), then a trailer with the counts,
//! so that a truncated file is detected. Sessions are not exported: people sign in again after a
//! move; nor are queued webhook deliveries.

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brine_core::{Access, Policy, RecordKind, RecordLimits};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time_ms::{from_ms, to_ms};
use crate::{Account, KeySlot, NewAuditEvent, PageLimits, Record, SlotKind, Store, StoreError};

const FORMAT: &str = "brine-export";
const VERSION: u32 = 1;
const CHECK_VALUE_KEY: &str = "master_key_check";

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
    #[error("{0}")]
    Refused(String),
}

/// What was moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub accounts: u64,
    pub records: u64,
    pub key_slots: u64,
    pub events: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        version: u32,
        master_key_check: Option<String>,
        /// The other master-key versions' check values and retirement marks (meta key →
        /// base64), so the target refuses a wrong key of any version too.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        master_key_meta: std::collections::BTreeMap<String, String>,
    },
    Account {
        id: Uuid,
        email: String,
        password_hash: String,
        created_at_ms: i64,
        /// Two-factor sign-in moves with the account: the sealed secret (base64; it opens only
        /// with the same master key) and the unused recovery codes' digests (base64).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        totp_secret: Option<String>,
        /// The master-key version that sealed it (files from before rotation existed: 1).
        #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
        totp_key_version: i64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recovery_codes: Vec<String>,
    },
    Record(RecordLine),
    /// The record's webhook, after its record: URL and secret still sealed (base64; they open
    /// only with the same master key). Queued deliveries do not move.
    Webhook {
        record: Uuid,
        url: String,
        secret: String,
        #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
        url_key_version: i64,
        #[serde(default = "first_version", skip_serializing_if = "is_first_version")]
        secret_key_version: i64,
        events: String,
        burst_threshold: i64,
        burst_window_secs: i64,
        created_at_ms: i64,
        updated_at_ms: i64,
    },
    Event {
        record: Uuid,
        at_ms: i64,
        channel: String,
        outcome: String,
        client_ip: Option<String>,
        user_agent: Option<String>,
        #[serde(default)]
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        country: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        city: Option<String>,
    },
    End(Counts),
}

#[derive(Serialize, Deserialize)]
struct RecordLine {
    uuid: Uuid,
    owner_id: Uuid,
    name: String,
    kind: RecordKind,
    access: Access,
    sealed: bool,
    payload: String,
    payload_version: i64,
    expires_at_ms: Option<i64>,
    max_reads: Option<i64>,
    reads: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
    #[serde(default)]
    page_expires_at_ms: Option<i64>,
    #[serde(default)]
    page_max_views: Option<i64>,
    #[serde(default)]
    page_views: i64,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    limits: Option<String>,
    /// Absent in exports made before records could be disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_label: Option<String>,
    slots: Vec<SlotLine>,
}

#[derive(Serialize, Deserialize)]
struct SlotLine {
    kind: String,
    version: i64,
    wrapped: String,
    kdf: Option<String>,
    /// Unix milliseconds; absent in exports made before it was recorded.
    #[serde(default, rename = "created_at_ms")]
    created_at: i64,
}

fn first_version() -> i64 {
    1
}

fn is_first_version(v: &i64) -> bool {
    *v == 1
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), TransferError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes every account, record and event of `store`. `progress` is called after each account
/// with (accounts done, accounts in all).
pub async fn export(
    store: &dyn Store,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<Counts, TransferError> {
    let check = store.meta(CHECK_VALUE_KEY).await?;
    let master_key_meta = store
        .master_key_meta()
        .await?
        .into_iter()
        .filter(|(key, _)| key != CHECK_VALUE_KEY)
        .map(|(key, value)| (key, STANDARD.encode(value)))
        .collect();
    write_line(
        out,
        &Line::Header {
            format: FORMAT.into(),
            version: VERSION,
            master_key_check: check.map(|c| STANDARD.encode(c)),
            master_key_meta,
        },
    )?;
    let accounts = store.accounts().await?;
    let total = accounts.len() as u64;
    let mut counts = Counts::default();
    for account in accounts {
        let recovery_codes = store
            .recovery_codes(account.id)
            .await?
            .iter()
            .map(|d| STANDARD.encode(d))
            .collect();
        write_line(
            out,
            &Line::Account {
                id: account.id,
                email: account.email,
                password_hash: account.password_hash,
                created_at_ms: to_ms(account.created_at),
                totp_secret: account.totp_secret.map(|s| STANDARD.encode(s)),
                totp_key_version: account.totp_key_version,
                recovery_codes,
            },
        )?;
        counts.accounts += 1;
        for record in store.records_of(account.id).await? {
            counts.records += 1;
            counts.key_slots += record.slots.len() as u64;
            let uuid = record.uuid;
            write_line(out, &Line::Record(record_line(record)))?;
            if let Some(hook) = store.webhook(uuid).await? {
                write_line(
                    out,
                    &Line::Webhook {
                        record: uuid,
                        url: STANDARD.encode(&hook.url),
                        secret: STANDARD.encode(&hook.secret),
                        url_key_version: hook.url_key_version,
                        secret_key_version: hook.secret_key_version,
                        events: hook.events,
                        burst_threshold: hook.burst_threshold,
                        burst_window_secs: hook.burst_window_secs,
                        created_at_ms: to_ms(hook.created_at),
                        updated_at_ms: to_ms(hook.updated_at),
                    },
                )?;
            }
            for event in all_events_oldest_first(store, uuid).await? {
                counts.events += 1;
                write_line(
                    out,
                    &Line::Event {
                        record: uuid,
                        at_ms: to_ms(event.at),
                        channel: event.channel,
                        outcome: event.outcome,
                        client_ip: event.client_ip,
                        user_agent: event.user_agent,
                        detail: event.detail,
                        country: event.country,
                        city: event.city,
                    },
                )?;
            }
        }
        progress(counts.accounts, total);
    }
    write_line(out, &Line::End(counts))?;
    out.flush()?;
    Ok(counts)
}

async fn all_events_oldest_first(
    store: &dyn Store,
    record: Uuid,
) -> Result<Vec<crate::AuditEvent>, StoreError> {
    let mut events = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .events(
                record,
                1000,
                &crate::EventFilter {
                    before,
                    ..Default::default()
                },
            )
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        events.extend(page);
    }
    events.reverse();
    Ok(events)
}

fn record_line(r: Record) -> RecordLine {
    RecordLine {
        uuid: r.uuid,
        owner_id: r.owner_id,
        name: r.name,
        kind: r.kind,
        access: r.access,
        sealed: r.sealed,
        payload: STANDARD.encode(&r.payload),
        payload_version: r.payload_version,
        expires_at_ms: r.expires_at.map(to_ms),
        max_reads: r.max_reads,
        reads: r.reads,
        created_at_ms: to_ms(r.created_at),
        updated_at_ms: to_ms(r.updated_at),
        page_expires_at_ms: r.page.expires_at.map(to_ms),
        page_max_views: r.page.max_views,
        page_views: r.page.views,
        policy: r.policy.to_stored(),
        limits: r.limits.to_stored(),
        disabled_at_ms: r.disabled_at.map(to_ms),
        page_label: r.page_label,
        slots: r
            .slots
            .into_iter()
            .map(|s| SlotLine {
                kind: s.kind.as_str().into(),
                version: s.version,
                wrapped: STANDARD.encode(&s.wrapped),
                kdf: s.kdf,
                created_at: to_ms(s.created_at),
            })
            .collect(),
    }
}

/// Loads an export into an empty database. `progress` is called with the bytes read so far.
pub async fn import(
    store: &dyn Store,
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<Counts, TransferError> {
    if !store.accounts().await?.is_empty() {
        return Err(TransferError::Refused(
            "the target database already has accounts; import only into an empty database".into(),
        ));
    }
    let mut counts = Counts::default();
    let mut bytes = 0u64;
    let mut ended = None;
    let mut saw_header = false;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line?;
        bytes += line.len() as u64 + 1;
        let bad = |message: String| TransferError::Format {
            line: number,
            message,
        };
        if ended.is_some() {
            return Err(bad("content after the end marker".into()));
        }
        let parsed: Line = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        match parsed {
            Line::Header {
                format,
                version,
                master_key_check,
                master_key_meta,
            } if !saw_header => {
                if format != FORMAT || version != VERSION {
                    return Err(bad(format!("not a {FORMAT} v{VERSION} file")));
                }
                saw_header = true;
                adopt_check_value(store, CHECK_VALUE_KEY, master_key_check).await?;
                for (key, value) in master_key_meta {
                    if !key.starts_with("master_key_") {
                        return Err(bad(format!("unexpected header entry {key}")));
                    }
                    adopt_check_value(store, &key, Some(value)).await?;
                }
            }
            _ if !saw_header => return Err(bad("the file does not start with a header".into())),
            Line::Header { .. } => return Err(bad("a second header".into())),
            Line::Account {
                id,
                email,
                password_hash,
                created_at_ms,
                totp_secret,
                totp_key_version,
                recovery_codes,
            } => {
                let decode = |b64: &str| {
                    STANDARD
                        .decode(b64)
                        .map_err(|_| bad("an account's two-factor data is not base64".into()))
                };
                let totp_secret = totp_secret.as_deref().map(decode).transpose()?;
                store
                    .create_account(&Account {
                        id,
                        email,
                        password_hash,
                        created_at: from_ms(created_at_ms)?,
                        totp_secret: None,
                        totp_key_version: 1,
                    })
                    .await?;
                if let Some(secret) = totp_secret {
                    let digests = recovery_codes
                        .iter()
                        .map(|c| decode(c))
                        .collect::<Result<Vec<_>, _>>()?;
                    store
                        .enable_totp(id, &secret, totp_key_version, &digests)
                        .await?;
                }
                counts.accounts += 1;
            }
            Line::Record(line) => {
                let record = record_from_line(line).map_err(bad)?;
                counts.records += 1;
                counts.key_slots += record.slots.len() as u64;
                store.insert_record(&record).await?;
            }
            Line::Webhook {
                record,
                url,
                secret,
                url_key_version,
                secret_key_version,
                events,
                burst_threshold,
                burst_window_secs,
                created_at_ms,
                updated_at_ms,
            } => {
                let decode = |b64: &str| {
                    STANDARD
                        .decode(b64)
                        .map_err(|_| bad("a webhook's sealed data is not base64".into()))
                };
                store
                    .put_webhook(&crate::Webhook {
                        record,
                        url: decode(&url)?,
                        secret: decode(&secret)?,
                        url_key_version,
                        secret_key_version,
                        events,
                        burst_threshold,
                        burst_window_secs,
                        created_at: from_ms(created_at_ms)?,
                        updated_at: from_ms(updated_at_ms)?,
                    })
                    .await?;
            }
            Line::Event {
                record,
                at_ms,
                channel,
                outcome,
                client_ip,
                user_agent,
                detail,
                country,
                city,
            } => {
                store
                    .append_event(&NewAuditEvent {
                        record,
                        at: from_ms(at_ms)?,
                        channel: &channel,
                        outcome: &outcome,
                        client_ip: client_ip.as_deref(),
                        user_agent: user_agent.as_deref(),
                        detail: detail.as_deref(),
                        country: country.as_deref(),
                        city: city.as_deref(),
                        expect_version: None,
                    })
                    .await?;
                counts.events += 1;
            }
            Line::End(expected) => ended = Some(expected),
        }
        progress(bytes);
    }
    match ended {
        Some(expected) if expected == counts => Ok(counts),
        Some(expected) => Err(TransferError::Refused(format!(
            "the file announces {expected:?} but holds {counts:?}"
        ))),
        None => Err(TransferError::Refused(
            "the file has no end marker: it is truncated".into(),
        )),
    }
}

/// The target takes the source's master-key check value (of one version, under meta `key`), or
/// must already have the same one.
async fn adopt_check_value(
    store: &dyn Store,
    key: &str,
    check: Option<String>,
) -> Result<(), TransferError> {
    let Some(encoded) = check else { return Ok(()) };
    let check = STANDARD
        .decode(encoded)
        .map_err(|_| TransferError::Refused("malformed master key check value".into()))?;
    if !store.insert_meta_if_absent(key, &check).await?
        && store.meta(key).await?.as_deref() != Some(check.as_slice())
    {
        return Err(TransferError::Refused(
            "the target database belongs to another master key".into(),
        ));
    }
    Ok(())
}

fn record_from_line(line: RecordLine) -> Result<Record, String> {
    let decode = |s: &str| STANDARD.decode(s).map_err(|_| "bad base64".to_owned());
    let time = |ms: i64| from_ms(ms).map_err(|e| e.to_string());
    let slots = line
        .slots
        .iter()
        .map(|s| {
            Ok(KeySlot {
                kind: SlotKind::parse(&s.kind).ok_or_else(|| format!("slot kind {}", s.kind))?,
                version: s.version,
                wrapped: decode(&s.wrapped)?,
                kdf: s.kdf.clone(),
                created_at: time(s.created_at)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Record {
        uuid: line.uuid,
        owner_id: line.owner_id,
        name: line.name,
        kind: line.kind,
        access: line.access,
        sealed: line.sealed,
        payload: decode(&line.payload)?,
        payload_version: line.payload_version,
        expires_at: line.expires_at_ms.map(time).transpose()?,
        max_reads: line.max_reads,
        reads: line.reads,
        created_at: time(line.created_at_ms)?,
        updated_at: time(line.updated_at_ms)?,
        page: PageLimits {
            expires_at: line.page_expires_at_ms.map(time).transpose()?,
            max_views: line.page_max_views,
            views: line.page_views,
        },
        policy: Policy::from_stored(line.kind, line.policy.as_deref())?,
        limits: RecordLimits::from_stored(line.limits.as_deref())?,
        disabled_at: line.disabled_at_ms.map(time).transpose()?,
        page_label: line.page_label,
        version: 1,
        slots,
    })
}
