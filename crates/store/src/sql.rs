//! The SQL shared by the SQLite and PostgreSQL backends. Both schemas use the same column names
//! and types as far as the store can tell (uuids, unix-millisecond integers, byte strings), and
//! every statement below is valid on both, so one implementation serves both: the macro stamps
//! it out for each backend's concrete types.

/// A query over records joined with their key slots (one row per slot), ending in `$tail`.
#[macro_export]
#[doc(hidden)]
macro_rules! select_records {
    ($tail:literal) => {
        concat!(
            "SELECT r.uuid, r.owner_id, r.name, r.kind, r.access, r.sealed, r.payload, ",
            "r.payload_version, r.expires_at, r.max_reads, r.reads, r.created_at, r.updated_at, ",
            "r.page_expires_at, r.page_max_views, r.page_views, r.policy, r.limits, r.version, ",
            "r.disabled_at, r.page_label, ",
            "s.kind AS slot_kind, s.version AS slot_version, s.wrapped AS slot_wrapped, ",
            "s.kdf AS slot_kdf, s.created_at AS slot_created_at FROM records r LEFT JOIN key_slots s ON s.record_uuid = r.uuid ",
            $tail
        )
    };
}

/// When each record matching `$filter` was last opened successfully (see
/// `AuditStore::last_used`). Both engines name a VALUES list's columns column1, column2.
#[macro_export]
#[doc(hidden)]
macro_rules! last_used {
    ($filter:literal) => {
        concat!(
            "SELECT u.uuid AS uuid, MAX(u.at) AS last_used FROM (",
            "SELECT r.uuid AS uuid, (SELECT MAX(e.at) FROM audit_events e ",
            "WHERE e.record_uuid = r.uuid AND e.channel = k.column1 AND e.outcome = k.column2) AS at ",
            "FROM records r CROSS JOIN (VALUES ('read', 'ok'), ('password', 'ok'), ",
            "('batch', 'ok'), ('bridge', 'ok'), ('secure_page', 'revealed')) AS k ",
            "WHERE ",
            $filter,
            ") AS u GROUP BY u.uuid"
        )
    };
}

pub(crate) fn opt_time(ms: Option<i64>) -> crate::Result<Option<time::OffsetDateTime>> {
    ms.map(crate::time_ms::from_ms).transpose()
}

/// A LIKE pattern that matches `text` anywhere, in lower case, with `%`, `_` and `\\` taken as
/// themselves (both engines use `ESCAPE '\\'`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Implements every store trait for `$store` (holding `pool`), over database `$db` with rows
/// of type `$row`.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $row:ty) => {
        mod sql_impl {
            use async_trait::async_trait;
            use brine_core::{Access, Policy, RecordKind, RecordLimits};
            use sqlx::{Row, Transaction};
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::sql::{is_unique_violation, opt_time};
            use crate::time_ms::{from_ms, to_ms};
            use crate::{
                Appended, AuditEvent, AuditStore, KeySlot, Lifecycle, LockoutEdges,
                EventFilter, MetaStore, NewAuditEvent, PageLimits, RecentFailures, Record, RecordChanges, RecordStore,
                Result, Settle, SlotKind, StoreError,
            };

        /// Folds joined record/slot rows (ordered by record) into records with their slots.
        fn fold_records(rows: &[$row]) -> Result<Vec<Record>> {
            let mut records: Vec<Record> = Vec::new();
            for row in rows {
                let uuid = row.try_get::<Uuid, _>("uuid")?;
                if records.last().is_none_or(|r| r.uuid != uuid) {
                    let kind: String = row.try_get("kind")?;
                    let access: String = row.try_get("access")?;
                    let kind = RecordKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("record kind {kind}")))?;
                    // Decoded once here: a policy or limits that cannot be read are a storage
                    // error for every reader alike.
                    let policy = Policy::from_stored(kind, row.try_get::<Option<String>, _>("policy")?.as_deref())
                        .map_err(|e| StoreError::Corrupt(format!("record {uuid}: {e}")))?;
                    let limits = RecordLimits::from_stored(row.try_get::<Option<String>, _>("limits")?.as_deref())
                        .map_err(|e| StoreError::Corrupt(format!("record {uuid}: {e}")))?;
                    records.push(Record {
                        uuid,
                        owner_id: row.try_get::<Uuid, _>("owner_id")?,
                        name: row.try_get("name")?,
                        kind,
                        access: Access::parse(&access)
                            .ok_or_else(|| StoreError::Corrupt(format!("record access {access}")))?,
                        sealed: row.try_get("sealed")?,
                        payload: row.try_get("payload")?,
                        payload_version: row.try_get("payload_version")?,
                        expires_at: opt_time(row.try_get("expires_at")?)?,
                        max_reads: row.try_get("max_reads")?,
                        reads: row.try_get("reads")?,
                        page: PageLimits {
                            expires_at: opt_time(row.try_get("page_expires_at")?)?,
                            max_views: row.try_get("page_max_views")?,
                            views: row.try_get("page_views")?,
                        },
                        policy,
                        limits,
                        disabled_at: opt_time(row.try_get("disabled_at")?)?,
                        page_label: row.try_get("page_label")?,
                        version: row.try_get("version")?,
                        created_at: from_ms(row.try_get("created_at")?)?,
                        updated_at: from_ms(row.try_get("updated_at")?)?,
                        slots: Vec::new(),
                    });
                }
                let slot_kind: Option<String> = row.try_get("slot_kind")?;
                if let (Some(kind), Some(record)) = (slot_kind, records.last_mut()) {
                    record.slots.push(KeySlot {
                        kind: SlotKind::parse(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("slot kind {kind}")))?,
                        version: row.try_get("slot_version")?,
                        wrapped: row.try_get("slot_wrapped")?,
                        kdf: row.try_get("slot_kdf")?,
                        created_at: from_ms(row.try_get::<Option<i64>, _>("slot_created_at")?.unwrap_or(0))?,
                    });
                }
            }
            Ok(records)
        }

        async fn put_slot(tx: &mut Transaction<'_, $db>, record: Uuid, slot: &KeySlot) -> Result<()> {
            sqlx::query(
                "INSERT INTO key_slots (record_uuid, kind, version, wrapped, kdf, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (record_uuid, kind) DO UPDATE SET \
                 version = excluded.version, wrapped = excluded.wrapped, kdf = excluded.kdf, \
                 created_at = excluded.created_at",
            )
            .bind(record)
            .bind(slot.kind.as_str())
            .bind(slot.version)
            .bind(&slot.wrapped)
            .bind(&slot.kdf)
            .bind(to_ms(slot.created_at))
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        #[async_trait]
        impl Lifecycle for $store {
            async fn close(&self) {
                self.close_writer().await;
                self.pool.close().await;
            }
        }

        #[async_trait]
        impl MetaStore for $store {
            async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn insert_meta_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
                let done =
                    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(key)
                        .bind(value)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl RecordStore for $store {
            async fn insert_record(&self, record: &Record) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO records (uuid, owner_id, name, kind, access, sealed, payload, \
                     payload_version, expires_at, max_reads, reads, created_at, updated_at, \
                     page_expires_at, page_max_views, page_views, policy, limits, version, \
                     disabled_at, page_label) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
                )
                .bind(record.uuid)
                .bind(record.owner_id)
                .bind(&record.name)
                .bind(record.kind.as_str())
                .bind(record.access.as_str())
                .bind(record.sealed)
                .bind(&record.payload)
                .bind(record.payload_version)
                .bind(record.expires_at.map(to_ms))
                .bind(record.max_reads)
                .bind(record.reads)
                .bind(to_ms(record.created_at))
                .bind(to_ms(record.updated_at))
                .bind(record.page.expires_at.map(to_ms))
                .bind(record.page.max_views)
                .bind(record.page.views)
                .bind(record.policy.to_stored())
                .bind(record.limits.to_stored())
                .bind(record.version)
                .bind(record.disabled_at.map(to_ms))
                .bind(&record.page_label)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict("record uuid already exists")
                    } else {
                        e.into()
                    }
                })?;
                for slot in &record.slots {
                    put_slot(&mut tx, record.uuid, slot).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn record(&self, uuid: Uuid) -> Result<Option<Record>> {
                let rows = sqlx::query($crate::select_records!("WHERE r.uuid = $1"))
                    .bind(uuid)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(fold_records(&rows)?.pop())
            }

            async fn records_of(&self, owner: Uuid) -> Result<Vec<Record>> {
                let rows = sqlx::query($crate::select_records!(
                    "WHERE r.owner_id = $1 ORDER BY r.created_at DESC, r.uuid"
                ))
                .bind(owner)
                .fetch_all(&self.pool)
                .await?;
                fold_records(&rows)
            }

            async fn update_record(
                &self,
                uuid: Uuid,
                owner: Uuid,
                changes: &RecordChanges,
            ) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let (payload, payload_version) = match &changes.payload {
                    Some((p, v)) => (Some(p.as_slice()), Some(*v)),
                    None => (None, None),
                };
                let done = sqlx::query(
                    "UPDATE records SET \
                     name = COALESCE($1, name), \
                     access = COALESCE($2, access), \
                     payload = COALESCE($3, payload), \
                     payload_version = COALESCE($4, payload_version), \
                     expires_at = CASE WHEN $5 THEN $6 ELSE expires_at END, \
                     max_reads = CASE WHEN $7 THEN $8 ELSE max_reads END, \
                     updated_at = COALESCE($9, updated_at), \
                     page_expires_at = CASE WHEN $10 THEN $11 ELSE page_expires_at END, \
                     page_max_views = CASE WHEN $10 THEN $12 ELSE page_max_views END, \
                     page_views = CASE WHEN $10 THEN $13 ELSE page_views END, \
                     policy = CASE WHEN $14 THEN $18 ELSE policy END, \
                     limits = CASE WHEN $17 THEN $19 ELSE limits END, \
                     disabled_at = CASE WHEN $20 THEN $21 ELSE disabled_at END, \
                     page_label = CASE WHEN $22 THEN $23 ELSE page_label END, \
                     version = version + 1 \
                     WHERE uuid = $15 AND owner_id = $16",
                )
                .bind(changes.name.as_deref())
                .bind(changes.access.map(Access::as_str))
                .bind(payload)
                .bind(payload_version)
                .bind(changes.expires_at.is_some())
                .bind(changes.expires_at.flatten().map(to_ms))
                .bind(changes.max_reads.is_some())
                .bind(changes.max_reads.flatten())
                .bind(changes.updated_at.map(to_ms))
                .bind(changes.page.is_some())
                .bind(changes.page.and_then(|p| p.expires_at).map(to_ms))
                .bind(changes.page.and_then(|p| p.max_views))
                .bind(changes.page.map_or(0, |p| p.views))
                .bind(changes.policy.is_some())
                .bind(uuid)
                .bind(owner)
                .bind(changes.limits.is_some())
                .bind(changes.policy.as_ref().and_then(Policy::to_stored))
                .bind(changes.limits.as_ref().and_then(RecordLimits::to_stored))
                .bind(changes.disabled_at.is_some())
                .bind(changes.disabled_at.flatten().map(to_ms))
                .bind(changes.page_label.is_some())
                .bind(changes.page_label.clone().flatten())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                for kind in &changes.remove_slots {
                    sqlx::query("DELETE FROM key_slots WHERE record_uuid = $1 AND kind = $2")
                        .bind(uuid)
                        .bind(kind.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                for slot in &changes.put_slots {
                    put_slot(&mut tx, uuid, slot).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_record(&self, uuid: Uuid, owner: Uuid) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO deleted_records (uuid, owner_id, name, kind, deleted_at) \
                     SELECT uuid, owner_id, name, kind, $3 FROM records \
                     WHERE uuid = $1 AND owner_id = $2 \
                     ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, \
                     kind = excluded.kind, deleted_at = excluded.deleted_at",
                )
                .bind(uuid)
                .bind(owner)
                .bind(to_ms(OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await?;
                let done = sqlx::query("DELETE FROM records WHERE uuid = $1 AND owner_id = $2")
                    .bind(uuid)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn claim_read(&self, uuid: Uuid, now: OffsetDateTime) -> Result<bool> {
                // One conditional UPDATE: concurrent readers can never both take the last read.
                let done = sqlx::query(
                    "UPDATE records SET reads = reads + 1 WHERE uuid = $1 \
                     AND (max_reads IS NULL OR reads < max_reads) \
                     AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(uuid)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
                    async fn claim_view(&self, uuid: Uuid, now: OffsetDateTime) -> Result<bool> {
                // The same single conditional UPDATE as reads, on the page's own counter.
                let done = sqlx::query(
                    "UPDATE records SET page_views = page_views + 1 WHERE uuid = $1 \
                     AND (page_max_views IS NULL OR page_views < page_max_views) \
                     AND (page_expires_at IS NULL OR page_expires_at > $2) \
                     AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(uuid)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn take_quota(&self, uuid: Uuid, period: OffsetDateTime, limit: i64) -> Result<bool> {
                // One conditional upsert: the row lock (or SQLite's single writer) serialises
                // concurrent takers, so the count can never pass `limit`.
                let used: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO quota_usage (record_uuid, period_start, used) VALUES ($1, $2, 1) \
                     ON CONFLICT (record_uuid, period_start) DO UPDATE SET used = quota_usage.used + 1 \
                     WHERE quota_usage.used < $3 RETURNING used",
                )
                .bind(uuid)
                .bind(to_ms(period))
                .bind(limit)
                .fetch_optional(&self.pool)
                .await?;
                if used == Some(1) {
                    // The period's first request: earlier periods are history.
                    sqlx::query("DELETE FROM quota_usage WHERE record_uuid = $1 AND period_start < $2")
                        .bind(uuid)
                        .bind(to_ms(period))
                        .execute(&self.pool)
                        .await?;
                }
                Ok(used.is_some())
            }

            async fn quota_used(&self, uuid: Uuid, period: OffsetDateTime) -> Result<i64> {
                let used: Option<i64> = sqlx::query_scalar(
                    "SELECT used FROM quota_usage WHERE record_uuid = $1 AND period_start = $2",
                )
                .bind(uuid)
                .bind(to_ms(period))
                .fetch_optional(&self.pool)
                .await?;
                Ok(used.unwrap_or(0))
            }
}

        #[async_trait]
        impl AuditStore for $store {
            async fn append_events(
                &self,
                events: &[NewAuditEvent<'_>],
                settles: &[Settle<'_>],
            ) -> Result<Vec<Appended>> {
                // Each engine writes groups its own way (see `write_events`).
                self.write_events(events, settles).await
            }

            fn keep_rollups(&self, on: bool) {
                self.rollups.store(on, std::sync::atomic::Ordering::Relaxed);
            }

            async fn recent_failures(&self, query: &RecentFailures<'_>) -> Result<LockoutEdges> {
                // Both tiers in one round trip: the (limit + 1)-th newest failure of each.
                let row = sqlx::query(
                    "SELECT \
                     (SELECT at FROM audit_events WHERE record_uuid = $1 AND channel = $2 \
                      AND outcome IN ($3, $4) AND at > $5 AND client_ip = $6 \
                      ORDER BY at DESC LIMIT 1 OFFSET $7) AS client_edge, \
                     (SELECT at FROM audit_events WHERE record_uuid = $1 AND channel = $2 \
                      AND outcome IN ($3, $4) AND at > $5 \
                      ORDER BY at DESC LIMIT 1 OFFSET $8) AS record_edge",
                )
                .bind(query.record)
                .bind(query.channel)
                .bind(query.outcomes[0])
                .bind(query.outcomes[1])
                .bind(to_ms(query.since))
                .bind(query.client_ip)
                .bind(query.per_client)
                .bind(query.per_record)
                .fetch_one(&self.pool)
                .await?;
                Ok(LockoutEdges {
                    client: opt_time(row.try_get("client_edge")?)?,
                    record: opt_time(row.try_get("record_edge")?)?,
                })
            }

            async fn last_used(
                &self,
                owner: Uuid,
                only: Option<Uuid>,
            ) -> Result<Vec<(Uuid, OffsetDateTime)>> {
                // One seek per record and (channel, outcome) pair in audit_events_failures
                // (record_uuid, channel, outcome, at): the newest `at` of each pair, then the
                // newest of those. One MAX over `outcome IN (...)` would read every success.
                let rows = match only {
                    None => sqlx::query($crate::last_used!("r.owner_id = $1")).bind(owner),
                    Some(uuid) => sqlx::query($crate::last_used!("r.owner_id = $1 AND r.uuid = $2"))
                        .bind(owner)
                        .bind(uuid),
                }
                .fetch_all(&self.pool)
                .await?;
                // Successful uses whose events retention has deleted are still in the hourly
                // roll-ups.
                let rolled = sqlx::query(
                    "SELECT record_uuid AS uuid, MAX(last_ok_at) AS last_used FROM usage_rollups \
                     WHERE owner_id = $1 AND span = $2 AND ($3 IS NULL OR record_uuid = $3) \
                     GROUP BY record_uuid",
                )
                .bind(owner)
                .bind(crate::usage::HOUR)
                .bind(only)
                .fetch_all(&self.pool)
                .await?;
                let mut newest: std::collections::HashMap<Uuid, i64> = Default::default();
                for row in rows.iter().chain(&rolled) {
                    if let Some(at) = row.try_get::<Option<i64>, _>("last_used")? {
                        let entry = newest.entry(row.try_get::<Uuid, _>("uuid")?).or_insert(at);
                        *entry = (*entry).max(at);
                    }
                }
                let mut used = Vec::with_capacity(newest.len());
                for (uuid, at) in newest {
                    used.push((uuid, from_ms(at)?));
                }
                Ok(used)
            }

            async fn delete_events_before(&self, cutoff: OffsetDateTime, limit: u32) -> Result<u64> {
                // In id order, which is time order: the scan stops at the first `limit` old
                // events rather than sorting the table by time (there is no index on `at` alone,
                // which every audit write would have to maintain).
                let done = sqlx::query(
                    "DELETE FROM audit_events WHERE id IN \
                     (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)",
                )
                .bind(to_ms(cutoff))
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn events(
                &self,
                record: Uuid,
                limit: u32,
                filter: &EventFilter<'_>,
            ) -> Result<Vec<AuditEvent>> {
                // One statement for every filter: a filter left out binds NULL and matches all.
                // The text is matched in lower case on both sides so both engines ignore case.
                let text = filter.text.map(crate::sql::like_pattern);
                let rows = sqlx::query(
                    "SELECT id, record_uuid, at, channel, outcome, client_ip, user_agent, detail, \
                     country, city FROM audit_events WHERE record_uuid = $1 AND id < $2 \
                     AND ($3 IS NULL OR channel = $3) AND ($4 IS NULL OR outcome = $4) \
                     AND ($5 IS NULL OR client_ip = $5) \
                     AND ($6 IS NULL OR LOWER(COALESCE(user_agent, '')) LIKE $6 ESCAPE '\\' \
                          OR LOWER(COALESCE(detail, '')) LIKE $6 ESCAPE '\\') \
                     AND ($7 IS NULL OR at >= $7) AND ($8 IS NULL OR at < $8) \
                     ORDER BY id DESC LIMIT $9",
                )
                .bind(record)
                .bind(filter.before.unwrap_or(i64::MAX))
                .bind(filter.channel)
                .bind(filter.outcome)
                .bind(filter.client_ip)
                .bind(text)
                .bind(filter.from.map(to_ms))
                .bind(filter.to.map(to_ms))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(super::log_sql::event).collect()
            }
        }
        }
    };
}

pub(crate) use impl_sql_store;
