//! Lines (PRODUCT.md §3): provisioning, the state machine driven by connector events,
//! self-healing reconnects, release, and messages with per-line daily limits.
//!
//! Every change is committed as one [`Batch`]: the line's new state (guarded by its version),
//! its messages, the webhook events it causes and the jobs it schedules. A batch refused
//! because the line moved meanwhile is recomputed from a fresh read.

pub mod days;
pub mod jobs;
pub mod messages;
pub mod ownership;
pub mod pairing;
pub mod view;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_domain::billing::plan::{validate_line_flags, LineFlagsError, Plan, PlanPrices};
use wagate_domain::billing::schedule::{first_charge, ChargeReason};
use wagate_domain::clock::Clock;
use wagate_domain::ids::{random_base62, AccountId, LineId};
use wagate_domain::jobs::NewJob;
use wagate_domain::line::{
    reconnect_delay, validate_label, validate_metadata, BillingStatus, BlockedReason, DailyLimits,
    LineStatus, MessageKind, MessageStatus, ReleaseReason, DISCONNECT_NOTICE_AFTER,
};
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::{rfc3339, to_micros};
use wagate_store::{
    Batch, Direction, LineRecord, MessageRecord, MessageUpdate, NewEvent, Store, StoreResult,
};

use crate::accounts::Principal;
use crate::connector::{ConnectorEvent, ConnectorSink};
use crate::error::{AppError, AppResult, RuleError};
use crate::scheduler::Scheduler;
use crate::webhooks::new_event;

/// Job: try to reconnect a dropped line.
pub const RECONNECT_JOB: &str = "line.reconnect";
/// Job: tell the business a drop has lasted over a minute.
pub const DISCONNECT_NOTICE_JOB: &str = "line.disconnect_notice";
/// Job: send a line's queued messages, oldest first.
pub const SEND_JOB: &str = "message.send";
/// Job: unlink a released line's WhatsApp session.
pub const UNLINK_JOB: &str = "line.unlink";
/// Job: apply a connector event at its business time (simulated receipts).
pub const CONNECTOR_EVENT_JOB: &str = "connector.event";
/// Job: ask the line's pairing client for a pairing code (see [`pairing`]).
pub const PAIR_CODE_JOB: &str = "line.pair_code";
/// Job: publish the line's current QR code for other servers' connect pages (see [`pairing`]).
pub const PAIRING_QR_JOB: &str = "line.pairing_qr";
/// Job: charge a line for one period (see `crate::billing`).
pub const CHARGE_JOB: &str = "billing.charge_line";

/// How many times a use case re-reads and recomputes after a concurrent change.
const MAX_CONFLICT_RETRIES: usize = 16;

/// Line configuration (server settings).
#[derive(Debug, Clone)]
pub struct LinesConfig {
    /// Plan prices.
    pub prices: PlanPrices,
    /// Per-line daily outbound limits.
    pub limits: DailyLimits,
    /// The public base URL connect links are built on; set once the server knows its address.
    pub public_url: Arc<RwLock<String>>,
}

impl Default for LinesConfig {
    fn default() -> Self {
        LinesConfig {
            prices: PlanPrices::default(),
            limits: DailyLimits::default(),
            public_url: Arc::new(RwLock::new("http://127.0.0.1:8080".into())),
        }
    }
}

/// `POST /wa/lines`.
#[derive(Debug, Clone, Default)]
pub struct CreateLine {
    /// Calling on from the start.
    pub calling_enabled: bool,
    /// Offer the calling toggle on the connect page.
    pub allow_calling: bool,
    /// The business's label.
    pub label: Option<String>,
    /// The business's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// The line use cases. Shared behind an `Arc`; it is also the connector's event sink.
pub struct LineService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) scheduler: Scheduler,
    pub(crate) config: LinesConfig,
}

impl std::fmt::Debug for LineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineService").finish_non_exhaustive()
    }
}

fn job(kind: &str, account: &AccountId, payload: Value, due: Timestamp, key: String) -> NewJob {
    let line_id = runs_on_owner(kind)
        .then(|| payload.get("line").and_then(Value::as_str))
        .flatten()
        .and_then(|l| LineId::try_from(l.to_owned()).ok());
    NewJob {
        kind: kind.to_owned(),
        account_id: Some(account.clone()),
        payload,
        due_at: due,
        dedupe_key: Some(key),
        line_id,
    }
}

/// Whether jobs of `kind` work on the line's WhatsApp connection, so only the server that owns
/// the line may run them (see [`ownership`]): sending keeps a line's messages in order and each
/// sent once, and a reconnect, unlink or pairing code acts on the connection that server holds.
pub fn runs_on_owner(kind: &str) -> bool {
    matches!(
        kind,
        SEND_JOB | RECONNECT_JOB | UNLINK_JOB | PAIR_CODE_JOB | PAIRING_QR_JOB
    )
}

/// The line as it will be after `batch` commits (its version bumped).
fn committed(mut l: LineRecord) -> LineRecord {
    l.version += 1;
    l
}

impl LineService {
    /// The line service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        scheduler: Scheduler,
        config: LinesConfig,
    ) -> Self {
        LineService {
            store,
            clock,
            scheduler,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinesConfig {
        &self.config
    }

    /// The public base URL of connect links.
    pub fn public_url(&self) -> String {
        self.config
            .public_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The line object at the current business time.
    pub fn line_json(&self, l: &LineRecord) -> Value {
        view::line_json(l, &self.public_url(), &self.config.limits, self.clock.now())
    }

    /// A `line.*` event: `data` is `{"line": <line object>, ...extra}`.
    pub(crate) fn line_event(&self, l: &LineRecord, event_type: &str, extra: Value) -> NewEvent {
        self.line_event_at(l, event_type, extra, self.clock.now())
    }

    /// A `line.*` event at business time `now` (a job of a batch runs at its own time).
    pub(crate) fn line_event_at(
        &self,
        l: &LineRecord,
        event_type: &str,
        extra: Value,
        now: Timestamp,
    ) -> NewEvent {
        let line = view::line_json(l, &self.public_url(), &self.config.limits, now);
        let mut data = json!({ "line": line });
        if let (Some(d), Value::Object(extra)) = (data.as_object_mut(), extra) {
            d.extend(extra);
        }
        new_event(&l.account_id, event_type, Some(l.id.as_str()), data, now)
    }

    /// A `message.*` event.
    fn message_event(&self, m: &MessageRecord, event_type: &str) -> NewEvent {
        new_event(
            &m.account_id,
            event_type,
            Some(m.line_id.as_str()),
            json!({ "message": view::message_json(m) }),
            self.clock.now(),
        )
    }

    /// Moves `m` to `status` (keeping its error and provider id unless new ones are given):
    /// the guarded row update and its `message.status` event, to commit together.
    pub(crate) fn move_message(
        &self,
        m: &mut MessageRecord,
        status: MessageStatus,
        error: Option<String>,
        provider_id: Option<String>,
        now: Timestamp,
    ) -> (MessageUpdate, NewEvent) {
        let update = MessageUpdate {
            id: m.id.clone(),
            from_status: m.status,
            status,
            error: error.clone(),
            provider_id: provider_id.clone(),
            at: now,
        };
        m.status = status;
        m.error = error.or(m.error.take());
        m.provider_id = provider_id.or(m.provider_id.take());
        m.updated_at = now;
        (update, self.message_event(m, "message.status"))
    }

    /// Provisions a line: checks the calling flags against the rollout and that a card is on
    /// file, then creates it `pending` with its connect page.
    pub async fn create(&self, who: &Principal, req: CreateLine) -> AppResult<LineRecord> {
        match validate_line_flags(
            req.calling_enabled,
            req.allow_calling,
            who.account.calling_enabled,
        ) {
            Err(LineFlagsError::BothCallingFlags) => {
                return Err(AppError::invalid(
                    "allow_calling",
                    "calling_enabled and allow_calling cannot both be true",
                ))
            }
            Err(LineFlagsError::CallingNotAvailable) => {
                return Err(RuleError::CallingNotAvailable.into())
            }
            Ok(()) => {}
        }
        if let Some(label) = &req.label {
            validate_label(label).map_err(|e| AppError::invalid(e.param, e.message))?;
        }
        validate_metadata(&req.metadata).map_err(|e| AppError::invalid(e.param, e.message))?;
        // An account billed in days pays by invoice: its lines need no card.
        if self.days_billing(&who.account.id).await?.is_none() {
            let billing = self.store.billing_account(&who.account.id).await?;
            if billing.card.is_none() {
                return Err(RuleError::CardRequired.into());
            }
        }
        let now = self.clock.now();
        // 32 base-62 characters: ~190 random bits.
        let mut line = LineRecord::pending(
            who.account.id.clone(),
            req.calling_enabled,
            req.allow_calling,
            random_base62(32),
            now,
        );
        line.label = req.label;
        line.metadata = req.metadata;
        let batch = Batch {
            insert_line: Some(line.clone()),
            ..Batch::default()
        };
        self.store
            .commit(batch, now)
            .await?
            .map_err(|c| AppError::Internal(c.into()))?;
        Ok(line)
    }

    /// One line of the account.
    pub async fn get(&self, account: &AccountId, id: &LineId) -> AppResult<LineRecord> {
        self.store
            .get_line(account, id)
            .await?
            .ok_or(AppError::NotFound("line"))
    }

    /// The account's lines, newest first.
    pub async fn list(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> AppResult<Page<LineRecord>> {
        Ok(self.store.list_lines(account, page).await?)
    }

    /// Re-reads a line and applies `change` until it commits without a concurrent change in
    /// between. `change` returns `None` when there is nothing to do.
    pub(crate) async fn change_line<F>(
        &self,
        id: &LineId,
        change: F,
    ) -> AppResult<Option<LineRecord>>
    where
        F: Fn(&LineRecord, Timestamp) -> Option<(LineRecord, Batch)>,
    {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(current) = self.store.line_by_id(id).await? else {
                return Ok(None);
            };
            let now = self.clock.now();
            let Some((next, mut batch)) = change(&current, now) else {
                return Ok(Some(current));
            };
            batch.update_line = Some(next.clone());
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    self.scheduler.wake();
                    return Ok(Some(committed(next)));
                }
                Err(conflict) => tracing::debug!(line = %id, %conflict, "retrying a line change"),
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "line {id} kept changing; gave up after {MAX_CONFLICT_RETRIES} tries"
        )))
    }

    /// Fails every queued message of a line (it was logged out or released), with events.
    async fn fail_queued(
        &self,
        line: &LineId,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<(Vec<MessageUpdate>, Vec<NewEvent>)> {
        // All of them in one read: the batch that fails them is committed at once, so a
        // paged read would only see the same first page again.
        let queued = self.store.queued_messages(line, u32::MAX).await?;
        let mut updates = Vec::with_capacity(queued.len());
        let mut events = Vec::with_capacity(queued.len());
        for mut m in queued {
            let (update, event) = self.move_message(
                &mut m,
                MessageStatus::Failed,
                Some(reason.into()),
                None,
                now,
            );
            updates.push(update);
            events.push(event);
        }
        Ok((updates, events))
    }

    /// Changes a line's label and metadata, the business's own fields (released lines
    /// included, for the business's bookkeeping). `label`: `Some(None)` clears it.
    /// `metadata` merges key by key, as Stripe's does: a key set to `None` is removed; the
    /// result must still be valid metadata.
    pub async fn update(
        &self,
        account: &AccountId,
        id: &LineId,
        label: Option<Option<String>>,
        metadata: Option<BTreeMap<String, Option<String>>>,
    ) -> AppResult<LineRecord> {
        let current = self.get(account, id).await?;
        if let Some(Some(label)) = &label {
            validate_label(label).map_err(|e| AppError::invalid(e.param, e.message))?;
        }
        let merged = |base: &BTreeMap<String, String>| {
            let mut m = base.clone();
            for (k, v) in metadata.iter().flatten() {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
            m
        };
        // Checked on the current line; a concurrent change is merged into below.
        validate_metadata(&merged(&current.metadata))
            .map_err(|e| AppError::invalid(e.param, e.message))?;
        let changed = self
            .change_line(id, |l, now| {
                let mut next = l.clone();
                if let Some(label) = &label {
                    next.label = label.clone();
                }
                next.metadata = merged(&l.metadata);
                if next.label == l.label && next.metadata == l.metadata {
                    return None;
                }
                next.updated_at = now;
                Some((next, Batch::default()))
            })
            .await?
            .ok_or(AppError::NotFound("line"))?;
        Ok(changed)
    }

    /// Releases a line (any time; terminal). A line never linked costs nothing; a linked one
    /// is not refunded for its running period and never charged again.
    pub async fn release(
        &self,
        account: &AccountId,
        id: &LineId,
        reason: ReleaseReason,
    ) -> AppResult<LineRecord> {
        let existing = self.get(account, id).await?;
        if existing.status == LineStatus::Released {
            return Ok(existing);
        }
        for _ in 0..MAX_CONFLICT_RETRIES {
            let current = self.get(account, id).await?;
            if current.status == LineStatus::Released {
                return Ok(current);
            }
            let now = self.clock.now();
            let (updates, mut events) = self.fail_queued(id, "line_released", now).await?;
            let mut next = current.clone();
            next.status = LineStatus::Released;
            next.billing_status = BillingStatus::Canceled;
            next.connect_token = None;
            next.released_at = Some(now);
            next.release_reason = Some(reason.as_str().to_owned());
            next.grace_ends_at = None;
            next.disconnected_at = None;
            next.updated_at = now;
            let after = committed(next.clone());
            events.push(self.line_event(
                &after,
                "line.released",
                json!({ "reason": reason.as_str() }),
            ));
            let cloud = current.kind == wagate_domain::line::LineKind::Cloud;
            let days = self.release_days(&current, now).await?;
            let mut jobs = if cloud {
                Vec::new()
            } else {
                vec![job(
                    UNLINK_JOB,
                    account,
                    json!({ "line": id }),
                    now,
                    id.to_string(),
                )]
            };
            // A line paid by a Stripe subscription: Stripe must stop charging for it.
            if let Some(sub) = self.store.line_subscription(id).await? {
                if crate::billing::subscriptions::live(&sub.status) {
                    jobs.push(NewJob {
                        kind: crate::billing::subscriptions::CANCEL_JOB.to_owned(),
                        account_id: Some(account.clone()),
                        payload: json!({ "line": id }),
                        due_at: now,
                        dedupe_key: Some(format!("{id}:{}", sub.subscription_id)),
                        line_id: None,
                    });
                }
            }
            let batch = Batch {
                days: days.map(Box::new),
                update_line: Some(next),
                update_messages: updates,
                // A message sent meanwhile must not be announced as failed: start over.
                messages_must_move: true,
                events,
                // A cloud line has no linked device to unlink: its Meta number is freed for
                // a new line instead.
                jobs,
                meta: cloud.then(|| {
                    Box::new(wagate_store::MetaWrite {
                        release_cloud_line: Some(id.clone()),
                        ..wagate_store::MetaWrite::default()
                    })
                }),
                ..Batch::default()
            };
            if self.store.commit(batch, now).await?.is_ok() {
                self.scheduler.wake();
                return Ok(after);
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "line {id} kept changing"
        )))
    }

    /// The end customer's calling toggle on the connect page (before the scan).
    pub async fn set_calling_choice(&self, token: &str, calling: bool) -> AppResult<LineRecord> {
        let line = self
            .store
            .line_by_token(token)
            .await?
            .ok_or(AppError::NotFound("connect link"))?;
        if !line.allow_calling {
            return Err(AppError::invalid(
                "calling",
                "this line does not offer a calling choice",
            ));
        }
        if line.link_count > 0 {
            return Err(RuleError::CallingLocked.into());
        }
        let changed = self
            .change_line(&line.id, |l, now| {
                if l.link_count > 0 || l.calling_choice == calling {
                    return None;
                }
                let mut next = l.clone();
                next.calling_choice = calling;
                next.updated_at = now;
                Some((next, Batch::default()))
            })
            .await?
            .ok_or(AppError::NotFound("connect link"))?;
        if changed.link_count > 0 && changed.calling_choice != calling {
            return Err(RuleError::CallingLocked.into());
        }
        Ok(changed)
    }

    /// A scan: the first links the line (plan fixed, billing starts); a later one (after a
    /// logout) relinks the same line. Each link sends `line.ready` once.
    async fn on_scanned(
        &self,
        id: &LineId,
        phone_number: String,
        calling: Option<bool>,
    ) -> AppResult<()> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(l) = self.store.line_by_id(id).await? else {
                return Ok(());
            };
            if !l.status.awaits_scan() {
                return Ok(());
            }
            let now = self.clock.now();
            let mut next = l.clone();
            let mut batch = Batch::default();
            next.status = LineStatus::Ready;
            next.phone_number = Some(phone_number.clone());
            next.link_count += 1;
            next.linked_at = Some(now);
            next.disconnected_at = None;
            next.reconnect_attempt = 0;
            next.disconnect_notified = false;
            next.updated_at = now;
            let first_link = l.ready_at.is_none();
            let mut trial = false;
            if first_link {
                let choice = if l.allow_calling {
                    calling.unwrap_or(l.calling_choice)
                } else {
                    false
                };
                let plan = Plan::at_scan(l.calling_enabled, l.allow_calling, choice);
                next.calling_choice = plan == Plan::Calling;
                next.plan = Some(plan);
                next.ready_at = Some(now);
                if self.days_billing(&l.account_id).await?.is_some() {
                    // Billed in days: no flat price, trial or charge; the line sends while
                    // its days last (`extend`).
                    next.price = None;
                } else {
                    next.price = Some(plan.price(&self.config.prices));
                    let billing = self.store.billing_account(&l.account_id).await?;
                    trial = !billing.trial_used;
                    let (anchor, reason) = first_charge(now, trial);
                    next.anchor_at = Some(anchor);
                    if trial {
                        next.billing_status = BillingStatus::Trialing;
                        next.trial_ends_at = Some(anchor);
                        next.current_period_start = Some(now);
                        next.current_period_end = Some(anchor);
                        batch.billing_account = Some(l.account_id.clone());
                        batch.claim_trial = true;
                    }
                    batch
                        .jobs
                        .push(charge_job(&l.account_id, id, 0, 0, anchor, reason));
                }
            }
            let after = committed(next.clone());
            batch.events.push(self.line_event(
                &after,
                "line.ready",
                json!({
                    "plan": after.plan.map(|p| p.as_str()),
                    "price": after.price.map(|p| p.to_string()),
                    "trial": after.billing_status == BillingStatus::Trialing,
                    "trial_ends_at": after.trial_ends_at.map(rfc3339),
                    "current_period_end": after.current_period_end.map(rfc3339),
                    "relinked": !first_link,
                }),
            ));
            let _ = trial;
            batch.update_line = Some(next);
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    self.scheduler.wake();
                    return Ok(());
                }
                Err(c) => tracing::debug!(line = %id, %c, "retrying a scan"),
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "line {id} kept changing"
        )))
    }

    /// A transient drop: the line goes `reconnecting` and heals itself with backoff.
    async fn on_dropped(&self, id: &LineId) -> AppResult<()> {
        self.start_reconnecting(id, LineStatus::Ready).await
    }

    /// A block ended: the line reconnects as after a drop, and says `line.reconnected` once
    /// it is back (the business was told `line.blocked`, so it hears of the return).
    async fn on_unblocked(&self, id: &LineId) -> AppResult<()> {
        self.start_reconnecting(id, LineStatus::Blocked).await
    }

    /// Moves a line that is `from` to `reconnecting`, with its reconnect and notice jobs.
    async fn start_reconnecting(&self, id: &LineId, from: LineStatus) -> AppResult<()> {
        self.change_line(id, |l, now| {
            if l.status != from {
                return None;
            }
            let mut next = l.clone();
            next.status = LineStatus::Reconnecting;
            next.disconnected_at = Some(now);
            next.reconnect_attempt = 0;
            next.disconnect_notified = from == LineStatus::Blocked;
            next.blocked_reason = None;
            next.updated_at = now;
            let since = to_micros(now);
            let batch = Batch {
                jobs: vec![
                    job(
                        RECONNECT_JOB,
                        &l.account_id,
                        json!({ "line": id, "since": since, "attempt": 0 }),
                        now.saturating_add(reconnect_delay(0)).unwrap_or(now),
                        format!("{id}:{since}:0"),
                    ),
                    job(
                        DISCONNECT_NOTICE_JOB,
                        &l.account_id,
                        json!({ "line": id, "since": since }),
                        now.saturating_add(DISCONNECT_NOTICE_AFTER).unwrap_or(now),
                        format!("{id}:{since}"),
                    ),
                ],
                ..Batch::default()
            };
            Some((next, batch))
        })
        .await?;
        Ok(())
    }

    /// WhatsApp blocked the line: queued messages fail, `line.blocked` says why.
    async fn on_blocked(&self, id: &LineId, reason: BlockedReason) -> AppResult<()> {
        self.lose_link(
            id,
            |l| {
                l.status != LineStatus::Released
                    && !(l.status == LineStatus::Blocked
                        && l.blocked_reason.as_deref() == Some(reason.as_str()))
            },
            "line_blocked",
            |next, _now| {
                next.status = LineStatus::Blocked;
                next.blocked_reason = Some(reason.as_str().to_owned());
            },
            ("line.blocked", json!({ "reason": reason.as_str() })),
        )
        .await
    }

    /// The phone unlinked the device: queued messages fail, the connect page shows a new QR.
    async fn on_logged_out(&self, id: &LineId) -> AppResult<()> {
        self.lose_link(
            id,
            |l| l.status.is_linked(),
            "line_logged_out",
            |next, now| {
                next.status = LineStatus::LoggedOut;
                next.pairing_started_at = now;
            },
            ("line.logged_out", json!({})),
        )
        .await
    }

    /// The line lost its WhatsApp link (if `applies` to it as it is now): its queued messages
    /// fail with `fail_reason`, `change` sets its new status, any running drop ends, and
    /// `event` announces it — in one strict batch, retried when something moved meanwhile.
    async fn lose_link(
        &self,
        id: &LineId,
        applies: impl Fn(&LineRecord) -> bool,
        fail_reason: &str,
        change: impl Fn(&mut LineRecord, Timestamp),
        event: (&str, Value),
    ) -> AppResult<()> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(l) = self.store.line_by_id(id).await? else {
                return Ok(());
            };
            if !applies(&l) {
                return Ok(());
            }
            let now = self.clock.now();
            let (updates, mut events) = self.fail_queued(id, fail_reason, now).await?;
            let mut next = l.clone();
            change(&mut next, now);
            next.disconnected_at = None;
            next.reconnect_attempt = 0;
            next.disconnect_notified = false;
            next.updated_at = now;
            let after = committed(next.clone());
            events.push(self.line_event(&after, event.0, event.1.clone()));
            let batch = Batch {
                update_line: Some(next),
                update_messages: updates,
                // A message sent meanwhile must not be announced as failed: start over.
                messages_must_move: true,
                events,
                ..Batch::default()
            };
            if self.store.commit(batch, now).await?.is_ok() {
                return Ok(());
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "line {id} kept changing"
        )))
    }

    /// A receipt for an outbound message.
    async fn on_message_status(
        &self,
        line: &LineId,
        message: &wagate_domain::ids::MessageId,
        status: MessageStatus,
        error: Option<String>,
    ) -> AppResult<()> {
        let Some(l) = self.store.line_by_id(line).await? else {
            return Ok(());
        };
        // Two receipts of one message may be applied at once (overdue receipts run side by
        // side): the change must apply for its event to be written, and the loser reads
        // again and decides again — its status may no longer be an advance.
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(mut m) = self.store.get_message(&l.account_id, message).await? else {
                return Ok(());
            };
            if !m.status.advances_to(status) {
                return Ok(());
            }
            let now = self.clock.now();
            let (update, event) = self.move_message(&mut m, status, error.clone(), None, now);
            let batch = Batch {
                update_messages: vec![update],
                messages_must_move: true,
                events: vec![event],
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => return Ok(()),
                Err(conflict) => {
                    tracing::debug!(%message, %conflict, "retrying a message status change")
                }
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "message {message} kept changing; gave up after {MAX_CONFLICT_RETRIES} tries"
        )))
    }

    /// An inbound message (inbound is never limited).
    async fn on_inbound(
        &self,
        line: &LineId,
        from: String,
        kind: MessageKind,
        text: String,
        provider_id: String,
    ) -> AppResult<()> {
        let Some(l) = self.store.line_by_id(line).await? else {
            return Ok(());
        };
        if l.status == LineStatus::Released {
            return Ok(());
        }
        if self
            .store
            .inbound_message(line, &provider_id)
            .await?
            .is_some()
        {
            // A redelivery of a message stored before its acknowledgement was lost.
            return Ok(());
        }
        let now = self.clock.now();
        let m = MessageRecord {
            id: wagate_domain::ids::MessageId::generate(),
            account_id: l.account_id.clone(),
            line_id: l.id.clone(),
            direction: Direction::Inbound,
            kind,
            from: Some(from),
            to: l.phone_number.clone(),
            text,
            status: MessageStatus::Received,
            error: None,
            provider_id: Some(provider_id),
            created_at: now,
            updated_at: now,
        };
        let batch = Batch {
            events: vec![self.message_event(&m, "message.received")],
            insert_messages: vec![m],
            ..Batch::default()
        };
        self.store
            .commit(batch, now)
            .await?
            .map_err(|c| AppError::Internal(c.into()))?;
        Ok(())
    }

    /// WhatsApp asked `line` to slow down: no send before `retry_after` from now (new sends
    /// answer 429 `rate_limited` until then; queued messages leave after it, in order).
    pub(crate) async fn pause_for_rate_limit(
        &self,
        line_id: &LineId,
        retry_after: jiff::SignedDuration,
    ) -> AppResult<()> {
        tracing::warn!(line = %line_id, %retry_after, "WhatsApp rate-limited the line");
        self.change_line(line_id, |l, now| {
            let until = now.saturating_add(retry_after).unwrap_or(now);
            if l.rate_limited_until.is_some_and(|u| u >= until) {
                return None;
            }
            let mut next = l.clone();
            next.rate_limited_until = Some(until);
            next.updated_at = now;
            let batch = Batch {
                jobs: vec![job(
                    SEND_JOB,
                    &l.account_id,
                    json!({ "line": l.id }),
                    until,
                    format!("ratelimit:{}:{}", l.id, to_micros(until)),
                )],
                ..Batch::default()
            };
            Some((next, batch))
        })
        .await?;
        Ok(())
    }

    /// Applies one connector event.
    pub async fn apply(&self, event: ConnectorEvent) -> AppResult<()> {
        match event {
            ConnectorEvent::Scanned {
                line,
                phone_number,
                calling,
            } => self.on_scanned(&line, phone_number, calling).await,
            ConnectorEvent::MessageStatus {
                line,
                message,
                status,
                error,
            } => self.on_message_status(&line, &message, status, error).await,
            ConnectorEvent::Inbound {
                line,
                from,
                kind,
                text,
                provider_id,
            } => self.on_inbound(&line, from, kind, text, provider_id).await,
            ConnectorEvent::Dropped { line } => self.on_dropped(&line).await,
            ConnectorEvent::LoggedOut { line } => self.on_logged_out(&line).await,
            ConnectorEvent::Blocked { line, reason } => self.on_blocked(&line, reason).await,
            ConnectorEvent::Unblocked { line } => self.on_unblocked(&line).await,
            ConnectorEvent::RateLimited {
                line,
                retry_after_seconds,
            } => {
                let wait = jiff::SignedDuration::from_secs(
                    i64::try_from(retry_after_seconds).unwrap_or(i64::MAX),
                );
                self.pause_for_rate_limit(&line, wait).await
            }
        }
    }
}

/// The job that charges `line` for `period` (try `attempt`, 0 = first) at `due`.
pub(crate) fn charge_job(
    account: &AccountId,
    line: &LineId,
    period: u32,
    attempt: u32,
    due: Timestamp,
    reason: ChargeReason,
) -> NewJob {
    job(
        CHARGE_JOB,
        account,
        json!({ "line": line, "period": period, "attempt": attempt, "reason": reason.as_str() }),
        due,
        format!("{line}:{period}:{attempt}"),
    )
}

/// The job that applies a connector event at business time `at`.
pub(crate) fn connector_event_job(
    account: Option<AccountId>,
    at: Timestamp,
    event: &ConnectorEvent,
) -> serde_json::Result<NewJob> {
    Ok(NewJob {
        kind: CONNECTOR_EVENT_JOB.to_owned(),
        account_id: account,
        payload: serde_json::to_value(event)?,
        due_at: at,
        dedupe_key: None,
        line_id: None,
    })
}

#[async_trait]
impl ConnectorSink for LineService {
    async fn deliver(&self, event: ConnectorEvent) -> anyhow::Result<()> {
        self.apply(event).await.map_err(anyhow::Error::from)
    }

    async fn deliver_at(&self, at: Timestamp, event: ConnectorEvent) -> anyhow::Result<()> {
        let account = self
            .store
            .line_by_id(event.line())
            .await?
            .map(|l| l.account_id);
        let job = connector_event_job(account, at, &event)?;
        self.store.schedule_jobs(&[job], self.clock.now()).await?;
        self.scheduler.wake();
        Ok(())
    }
}
