//! Webhook secrets, endpoints, the event outbox, deliveries and attempts.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use wagate_domain::ids::{AccountId, DeliveryId, EndpointId, EventId, JobId};
use wagate_domain::jobs::NewJob;
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::to_micros;

use super::jobs::{insert_jobs, push_insert_owned_jobs};
use super::lines::push_insert_events_only;
use super::script::{Arg, Script};
use super::{
    count, id, int, opt_text, opt_ts, param_list, text, ts, Backend, SqlStore, MAX_PARAMS,
};
use crate::error::corrupt;
use crate::{
    AttemptFollowUp, AttemptRecord, DeliveryRecord, DeliveryTask, EndpointLimitReached,
    EndpointPatch, EndpointRecord, EventFilter, EventRecord, NewEndpoint, NewEvent, SecretRecord,
    StoreResult, WebhookStore,
};

/// The job kind of a delivery attempt.
pub const DELIVER_JOB: &str = "webhook.deliver";

const ENDPOINT_COLS: &str = "id, account_id, url, events, enabled, description, disabled_reason, \
     disabled_at, failing_since, created_at, updated_at";
const ACTIVE_SECRETS: &str = "SELECT secret, created_at, expires_at FROM webhook_secrets
     WHERE account_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY seq DESC";
const DELIVERY_COLS: &str = "id, event_id, endpoint_id, status, attempts, next_attempt_at";

/// Reads an endpoint's event-type list (stored as a JSON array).
fn event_types(row: &AnyRow, col: &'static str) -> StoreResult<Vec<String>> {
    serde_json::from_str(&text(row, col)?).map_err(|e| corrupt("webhook_endpoints.events", e))
}

fn endpoint(row: &AnyRow) -> StoreResult<EndpointRecord> {
    let events = event_types(row, "events")?;
    Ok(EndpointRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        url: text(row, "url")?,
        events,
        enabled: int(row, "enabled")? != 0,
        description: opt_text(row, "description")?,
        disabled_reason: opt_text(row, "disabled_reason")?,
        disabled_at: opt_ts(row, "disabled_at")?,
        failing_since: opt_ts(row, "failing_since")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn delivery(row: &AnyRow) -> StoreResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: id(row, "id")?,
        event_id: id(row, "event_id")?,
        endpoint_id: id(row, "endpoint_id")?,
        status: text(row, "status")?,
        attempts: count(row, "attempts")?,
        next_attempt_at: opt_ts(row, "next_attempt_at")?,
    })
}

fn event(row: &AnyRow) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        id: id(row, "id")?,
        event_type: text(row, "type")?,
        line_id: opt_text(row, "line_id")?,
        body: text(row, "body")?,
        created_at: ts(row, "created_at")?,
    })
}

fn secret(row: &AnyRow) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        secret: text(row, "secret")?,
        created_at: ts(row, "created_at")?,
        expires_at: opt_ts(row, "expires_at")?,
    })
}

/// A row of the delivery-task join (see `delivery_tasks`).
fn delivery_task(row: &AnyRow) -> StoreResult<DeliveryTask> {
    let d = delivery(row)?;
    let account_id: AccountId = id(row, "account_id")?;
    // Only what an attempt needs of the endpoint; the rest is not read on this hot path.
    let endpoint = match opt_text(row, "ep_id")? {
        None => None,
        Some(_) => Some(EndpointRecord {
            id: id(row, "ep_id")?,
            account_id: account_id.clone(),
            url: text(row, "ep_url")?,
            events: event_types(row, "ep_events")?,
            enabled: int(row, "ep_enabled")? != 0,
            description: None,
            disabled_reason: None,
            disabled_at: None,
            failing_since: opt_ts(row, "ep_failing_since")?,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        }),
    };
    Ok(DeliveryTask {
        delivery: d,
        account_id,
        body: text(row, "body")?,
        endpoint,
    })
}

fn subscribes(events: &[String], event_type: &str) -> bool {
    events.iter().any(|e| e == "*" || e == event_type)
}

/// The job that makes attempt number `attempt` of a delivery at `due`. The dedupe key makes
/// scheduling the same attempt twice harmless; a redelivery moves it to `due` instead.
fn attempt_job(account: &AccountId, delivery: &DeliveryId, attempt: u32, due: Timestamp) -> NewJob {
    NewJob {
        kind: DELIVER_JOB.to_owned(),
        account_id: Some(account.clone()),
        payload: serde_json::json!({ "delivery": delivery }),
        due_at: due,
        dedupe_key: Some(format!("{delivery}:{attempt}")),
        line_id: None,
    }
}

/// Writes events and fans each out to the account's matching, enabled endpoints, inside the
/// caller's transaction: the outbox. Every use case that causes events calls this in the
/// transaction of its change, so an event exists if and only if its change does.
pub(crate) async fn insert_events(
    conn: &mut AnyConnection,
    events: &[NewEvent],
    now: Timestamp,
) -> StoreResult<()> {
    let backend = Backend::of(conn);
    let events: Vec<(&NewEvent, Timestamp)> = events.iter().map(|e| (e, now)).collect();
    let mut script = Script::new(backend);
    push_insert_events(conn, &mut script, &events).await?;
    script.run(conn).await
}

/// Adds to `script` the inserts of `events` (each with the time its deliveries are due):
/// the events, one delivery per matching enabled endpoint of their accounts, and a
/// `webhook.deliver` job per delivery, in multi-row statements. The endpoints are read
/// here, in one query per [`MAX_PARAMS`] accounts, so a group of events costs two round
/// trips however many they are.
pub(crate) async fn push_insert_events<'a>(
    conn: &mut AnyConnection,
    script: &mut Script<'a>,
    events: &[(&'a NewEvent, Timestamp)],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let backend = script.backend();
    let only: Vec<&'a NewEvent> = events.iter().map(|(e, _)| *e).collect();
    push_insert_events_only(script, &only);
    let mut accounts: Vec<&str> = Vec::new();
    for (e, _) in events {
        // Events addressed to one endpoint still go only to an enabled one of their account.
        if !accounts.contains(&e.account_id.as_str()) {
            accounts.push(e.account_id.as_str());
        }
    }
    let mut endpoints_of: HashMap<String, Vec<(String, Vec<String>)>> = HashMap::new();
    for chunk in accounts.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT id, account_id, events FROM webhook_endpoints
             WHERE account_id IN ({}) AND enabled = 1 AND deleted_at IS NULL ORDER BY seq",
            param_list(backend, chunk.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q.bind(*a);
        }
        for r in q.fetch_all(&mut *conn).await? {
            endpoints_of
                .entry(text(&r, "account_id")?)
                .or_default()
                .push((text(&r, "id")?, event_types(&r, "events")?));
        }
    }
    let mut deliveries: Vec<[Arg<'a>; 5]> = Vec::new();
    let mut jobs: Vec<(NewJob, Timestamp)> = Vec::new();
    for (ev, due) in events {
        let Some(endpoints) = endpoints_of.get(ev.account_id.as_str()) else {
            continue;
        };
        let targets = endpoints
            .iter()
            .filter(|(ep, types)| match &ev.only_endpoint {
                Some(only) => ep == only.as_str(),
                None => subscribes(types, &ev.event_type),
            });
        for (ep, _) in targets {
            let dlv = DeliveryId::generate();
            jobs.push((attempt_job(&ev.account_id, &dlv, 1, *due), *due));
            deliveries.push([
                dlv.to_string().into(),
                ev.account_id.as_str().into(),
                ev.id.as_str().into(),
                ep.clone().into(),
                to_micros(*due).into(),
            ]);
        }
    }
    script.push_owned_rows(deliveries, |values| {
        format!(
            "WITH v (id, account_id, event_id, endpoint_id, at) AS (VALUES {values})
                 INSERT INTO deliveries (id, account_id, event_id, endpoint_id, status, attempts,
                     next_attempt_at, created_at, updated_at)
                 SELECT id, account_id, event_id, endpoint_id, 'pending', 0, at, at, at FROM v"
        )
    });
    push_insert_owned_jobs(script, jobs);
    Ok(())
}

/// Keyset pagination: `seq < (seq of starting_after)` when a cursor is given.
fn cursor_clause(table: &str, page: &PageRequest, next_param: usize) -> String {
    match page.starting_after {
        Some(_) => format!(
            " AND seq < (SELECT seq FROM {table} WHERE id = ${next_param} AND account_id = $1)"
        ),
        None => String::new(),
    }
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn webhook_secrets(
        &self,
        account: &AccountId,
        initial: &str,
        wall_now: Timestamp,
    ) -> StoreResult<Vec<SecretRecord>> {
        let rows = sqlx::query(ACTIVE_SECRETS)
            .bind(account.as_str())
            .bind(to_micros(wall_now))
            .fetch_all(&self.read)
            .await?;
        if !rows.is_empty() {
            return rows.iter().map(secret).collect();
        }
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query(
            "SELECT 1 AS one FROM webhook_secrets WHERE account_id = $1 AND expires_at IS NULL",
        )
        .bind(account.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            sqlx::query(
                "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES ($1, $2, $3)",
            )
            .bind(account.as_str())
            .bind(initial)
            .bind(to_micros(wall_now))
            .execute(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(ACTIVE_SECRETS)
            .bind(account.as_str())
            .bind(to_micros(wall_now))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(secret).collect()
    }

    async fn rotate_webhook_secret(
        &self,
        account: &AccountId,
        new_secret: &str,
        wall_now: Timestamp,
        old_until: Timestamp,
    ) -> StoreResult<Vec<SecretRecord>> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE webhook_secrets SET expires_at = $1 WHERE account_id = $2 AND expires_at IS NULL")
            .bind(to_micros(old_until))
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO webhook_secrets (account_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .bind(account.as_str())
        .bind(new_secret)
        .bind(to_micros(wall_now))
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(ACTIVE_SECRETS)
            .bind(account.as_str())
            .bind(to_micros(wall_now))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(secret).collect()
    }

    async fn create_endpoint(
        &self,
        account: &AccountId,
        new: NewEndpoint,
        now: Timestamp,
        max: u32,
    ) -> StoreResult<Result<EndpointRecord, EndpointLimitReached>> {
        let mut tx = self.begin_write().await?;
        let count = sqlx::query(
            "SELECT COUNT(*) AS n FROM webhook_endpoints WHERE account_id = $1 AND deleted_at IS NULL",
        )
        .bind(account.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if int(&count, "n")? >= i64::from(max) {
            return Ok(Err(EndpointLimitReached));
        }
        let ep = EndpointRecord {
            id: EndpointId::generate(),
            account_id: account.clone(),
            url: new.url,
            events: new.events,
            enabled: new.enabled,
            description: new.description,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, account_id, url, events, enabled, description,
                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(ep.id.as_str())
        .bind(account.as_str())
        .bind(&ep.url)
        .bind(serde_json::to_string(&ep.events).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(ep.enabled))
        .bind(ep.description.as_deref())
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(ep))
    }

    async fn list_endpoints(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<EndpointRecord>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
             WHERE account_id = $1 AND deleted_at IS NULL{} ORDER BY seq DESC LIMIT $2",
            cursor_clause("webhook_endpoints", page, 3)
        );
        let mut q = sqlx::query(&sql)
            .bind(account.as_str())
            .bind(i64::from(page.limit) + 1);
        if let Some(after) = &page.starting_after {
            q = q.bind(after.as_str());
        }
        let rows = q.fetch_all(&self.read).await?;
        let items = rows.iter().map(endpoint).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn get_endpoint(
        &self,
        account: &AccountId,
        ep: &EndpointId,
    ) -> StoreResult<Option<EndpointRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
             WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
        ))
        .bind(ep.as_str())
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(endpoint).transpose()
    }

    async fn update_endpoint(
        &self,
        account: &AccountId,
        ep: &EndpointId,
        patch: EndpointPatch,
        now: Timestamp,
    ) -> StoreResult<Option<EndpointRecord>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
             WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
        ))
        .bind(ep.as_str())
        .bind(account.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut cur) = row.as_ref().map(endpoint).transpose()? else {
            return Ok(None);
        };
        if let Some(url) = patch.url {
            cur.url = url;
        }
        if let Some(events) = patch.events {
            cur.events = events;
        }
        if let Some(d) = patch.description {
            cur.description = d;
        }
        if let Some(enabled) = patch.enabled {
            if enabled && !cur.enabled {
                // Re-enabling starts afresh: the failure streak and the reason are cleared.
                cur.disabled_reason = None;
                cur.disabled_at = None;
                cur.failing_since = None;
            }
            cur.enabled = enabled;
        }
        cur.updated_at = now;
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, events = $2, enabled = $3, description = $4,
                 disabled_reason = $5, disabled_at = $6, failing_since = $7, updated_at = $8
             WHERE id = $9 AND account_id = $10",
        )
        .bind(&cur.url)
        .bind(serde_json::to_string(&cur.events).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(cur.enabled))
        .bind(cur.description.as_deref())
        .bind(cur.disabled_reason.as_deref())
        .bind(cur.disabled_at.map(to_micros))
        .bind(cur.failing_since.map(to_micros))
        .bind(to_micros(now))
        .bind(ep.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(cur))
    }

    async fn delete_endpoint(
        &self,
        account: &AccountId,
        ep: &EndpointId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = $1, enabled = 0, updated_at = $1
             WHERE id = $2 AND account_id = $3 AND deleted_at IS NULL",
        )
        .bind(to_micros(now))
        .bind(ep.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn emit_events(&self, events: &[NewEvent], now: Timestamp) -> StoreResult<()> {
        // Events emitted together share a group transaction: SQLite has one writer, and on
        // PostgreSQL a transaction per event cost more CPU (statements, commits) than the
        // event itself (bench_e2e, BENCHMARKS.md).
        let batch = crate::Batch {
            events: events.to_vec(),
            ..crate::Batch::default()
        };
        super::group::WriteGroup::commit(self, batch, now).await
    }

    async fn list_events(
        &self,
        account: &AccountId,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EventRecord>> {
        let mut sql = String::from(
            "SELECT id, type, line_id, body, created_at FROM events WHERE account_id = $1",
        );
        let mut n = 2;
        let mut binds: Vec<String> = Vec::new();
        if let Some(t) = &filter.event_type {
            sql.push_str(&format!(" AND type = ${n}"));
            binds.push(t.clone());
            n += 1;
        }
        if let Some(l) = &filter.line_id {
            sql.push_str(&format!(" AND line_id = ${n}"));
            binds.push(l.clone());
            n += 1;
        }
        if let Some(after) = &page.starting_after {
            sql.push_str(&format!(
                " AND seq < (SELECT seq FROM events WHERE id = ${n} AND account_id = $1)"
            ));
            binds.push(after.clone());
            n += 1;
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${n}"));
        let mut q = sqlx::query(&sql).bind(account.as_str());
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.read)
            .await?;
        let items = rows.iter().map(event).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn get_event(
        &self,
        account: &AccountId,
        ev: &EventId,
    ) -> StoreResult<Option<(EventRecord, Vec<DeliveryRecord>, Vec<AttemptRecord>)>> {
        let row = sqlx::query(
            "SELECT id, type, line_id, body, created_at FROM events WHERE id = $1 AND account_id = $2",
        )
        .bind(ev.as_str())
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        let Some(found) = row.as_ref().map(event).transpose()? else {
            return Ok(None);
        };
        let deliveries = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = $1 AND account_id = $2 ORDER BY seq"
        ))
        .bind(ev.as_str())
        .bind(account.as_str())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(delivery)
        .collect::<StoreResult<Vec<_>>>()?;
        let attempts = sqlx::query(
            "SELECT delivery_id, endpoint_id, attempt, attempted_at, status_code, latency_ms, error
             FROM delivery_attempts WHERE event_id = $1 ORDER BY seq",
        )
        .bind(ev.as_str())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(AttemptRecord {
                delivery_id: id(r, "delivery_id")?,
                endpoint_id: id(r, "endpoint_id")?,
                attempt: count(r, "attempt")?,
                attempted_at: ts(r, "attempted_at")?,
                status_code: super::opt_int(r, "status_code")?.map(|c| c.clamp(0, 999) as u16),
                latency_ms: int(r, "latency_ms")?,
                error: opt_text(r, "error")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((found, deliveries, attempts)))
    }

    async fn redeliver_event(
        &self,
        account: &AccountId,
        ev: &EventId,
        now: Timestamp,
    ) -> StoreResult<Option<EventRecord>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT id, type, line_id, body, created_at FROM events WHERE id = $1 AND account_id = $2",
        )
        .bind(ev.as_str())
        .bind(account.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(found) = row.as_ref().map(event).transpose()? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT d.id, d.attempts FROM deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id
             WHERE d.event_id = $1 AND d.account_id = $2 AND e.enabled = 1 AND e.deleted_at IS NULL",
        )
        .bind(ev.as_str())
        .bind(account.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            let dlv: DeliveryId = id(r, "id")?;
            let next = int(r, "attempts")?.clamp(0, u32::MAX as i64 - 1) as u32 + 1;
            sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 WHERE id = $2",
            )
            .bind(to_micros(now))
            .bind(dlv.as_str())
            .execute(&mut *tx)
            .await?;
            let job = attempt_job(account, &dlv, next, now);
            // If that attempt is already scheduled for later, bring it forward to now.
            sqlx::query(
                "INSERT INTO jobs (id, kind, account_id, payload, due_at, dedupe_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $5)
                 ON CONFLICT (kind, dedupe_key) DO UPDATE SET due_at = excluded.due_at",
            )
            .bind(wagate_domain::ids::JobId::generate().as_str())
            .bind(&job.kind)
            .bind(account.as_str())
            .bind(job.payload.to_string())
            .bind(to_micros(now))
            .bind(job.dedupe_key.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(found))
    }

    async fn delivery_task(&self, dlv: &DeliveryId) -> StoreResult<Option<DeliveryTask>> {
        Ok(self
            .delivery_tasks(std::slice::from_ref(dlv))
            .await?
            .into_iter()
            .next())
    }

    async fn delivery_tasks(&self, ids: &[DeliveryId]) -> StoreResult<Vec<DeliveryTask>> {
        let mut tasks = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT d.id, d.event_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
                        d.account_id, e.body, w.id AS ep_id, w.url AS ep_url,
                        w.events AS ep_events, w.enabled AS ep_enabled,
                        w.failing_since AS ep_failing_since
                 FROM deliveries d
                 JOIN events e ON e.id = d.event_id
                 LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.deleted_at IS NULL
                 WHERE d.id IN ({})",
                param_list(self.backend, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for row in q.fetch_all(&self.read).await? {
                tasks.push(delivery_task(&row)?);
            }
        }
        Ok(tasks)
    }

    async fn record_attempt(
        &self,
        job: &JobId,
        event_id: &EventId,
        account: &AccountId,
        a: &AttemptRecord,
        follow_up: AttemptFollowUp,
        now: Timestamp,
    ) -> StoreResult<()> {
        let write = AttemptWrite {
            job: job.clone(),
            event_id: event_id.clone(),
            account: account.clone(),
            attempt: a.clone(),
            follow_up,
            now,
        };
        // Attempts finishing together share a group transaction (see `emit_events`).
        super::group::WriteGroup::attempt(self, write).await
    }

    async fn abandon_delivery(&self, dlv: &DeliveryId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = $1
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(to_micros(now))
        .bind(dlv.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A finished delivery attempt to record, with what follows it.
#[derive(Debug)]
pub(crate) struct AttemptWrite {
    pub(crate) job: JobId,
    pub(crate) event_id: EventId,
    pub(crate) account: AccountId,
    pub(crate) attempt: AttemptRecord,
    pub(crate) follow_up: AttemptFollowUp,
    pub(crate) now: Timestamp,
}

/// Records an attempt inside the caller's transaction: removes the job that made it, writes
/// the attempt (once: a rerun of the same job finds it and changes nothing else), and applies
/// its follow-up to the delivery and the endpoint.
pub(crate) async fn record_attempt_in(
    tx: &mut sqlx::AnyConnection,
    w: &AttemptWrite,
) -> StoreResult<()> {
    let (job, event_id, account, a, now) = (&w.job, &w.event_id, &w.account, &w.attempt, w.now);
    // The job that made this attempt goes with it, in the same transaction.
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(job.as_str())
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, event_id, endpoint_id, attempt, attempted_at,
                 status_code, latency_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (delivery_id, attempt) DO NOTHING",
    )
    .bind(a.delivery_id.as_str())
    .bind(event_id.as_str())
    .bind(a.endpoint_id.as_str())
    .bind(i64::from(a.attempt))
    .bind(to_micros(a.attempted_at))
    .bind(a.status_code.map(i64::from))
    .bind(a.latency_ms)
    .bind(a.error.as_deref())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // This attempt was recorded by an earlier run of the same job.
        return Ok(());
    }
    let set_delivery = |status: &'static str, next: Option<Timestamp>| {
        sqlx::query(
                "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, updated_at = $4
                 WHERE id = $5",
            )
            .bind(status)
            .bind(i64::from(a.attempt))
            .bind(next.map(to_micros))
            .bind(to_micros(now))
            .bind(a.delivery_id.as_str())
    };
    // Both endpoint updates touch the row only when the streak changes: every delivery to
    // an endpoint would otherwise lock and rewrite that one row, serialising its deliveries.
    let mark_failing = sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL",
    )
    .bind(to_micros(now))
    .bind(a.endpoint_id.as_str());
    match &w.follow_up {
        AttemptFollowUp::Delivered => {
            set_delivery("delivered", None).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL
                     WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(a.endpoint_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        &AttemptFollowUp::RetryAt(at) => {
            set_delivery("pending", Some(at)).execute(&mut *tx).await?;
            mark_failing.execute(&mut *tx).await?;
            let job = attempt_job(account, &a.delivery_id, a.attempt + 1, at);
            insert_jobs(&mut *tx, &[job], now).await?;
        }
        AttemptFollowUp::GiveUp => {
            set_delivery("failed", None).execute(&mut *tx).await?;
            mark_failing.execute(&mut *tx).await?;
        }
        AttemptFollowUp::DisableEndpoint { reason, event } => {
            set_delivery("failed", None).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, disabled_at = $2,
                         updated_at = $2 WHERE id = $3 AND enabled = 1",
            )
            .bind(reason)
            .bind(to_micros(now))
            .bind(a.endpoint_id.as_str())
            .execute(&mut *tx)
            .await?;
            insert_events(&mut *tx, std::slice::from_ref(event), now).await?;
        }
    }
    Ok(())
}
