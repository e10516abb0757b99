//! Calls (PRODUCT.md §9): placing, answering, rejecting and hanging up calls on calling
//! lines, the other phone's side reported by the connector, the ring timeout on the business
//! clock, fair use, and the call's audio.
//!
//! Every change of a call goes through [`CallService::apply_event`]: the rules of
//! `wagate_domain::call` decide, and the call's row, its webhook event, its calling minutes
//! and its ring-timeout job are committed in one batch under the version read, so a racing
//! change (the other phone hanging up while the business does) is decided once.

pub mod media;
mod view;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use wagate_domain::billing::plan::Plan;
use wagate_domain::call::{
    apply, fair_use, seconds_by_utc_day, CallDirection, CallEvent, CallRuleError, CallStatus,
    FairUse, Side, FAIR_USE_WINDOW_DAYS, RING_TIMEOUT,
};
use wagate_domain::clock::Clock;
use wagate_domain::ids::{random_base62, CallId, LineId};
use wagate_domain::jobs::{Job, NewJob};
use wagate_domain::line::{utc_day, validate_e164, LineKind, LineStatus};
use wagate_domain::page::{Page, PageRequest};
use wagate_store::{Batch, CallRecord, CallWrite, Conflict, LineRecord, NewEvent, Store};

use crate::accounts::Principal;
use crate::connector::calling::{
    CallConnector, CallError, CallSignal, CallSink, LineCallAction, RemoteCallEvent,
};
use crate::connector::Connector;
use crate::error::{AppError, AppResult, RuleError};
use crate::lines::LineService;
use crate::scheduler::{JobHandler, Scheduler};
use crate::webhooks::new_event;

pub use media::MediaMetrics;
pub use view::call_json;

/// The job that watches a call on the business clock: it ends a call nobody answered
/// (`missed`) or one the connector never got to ring (`failed`) once [`RING_TIMEOUT`] has
/// passed, and checks an answered call every [`LIVE_CHECK_EVERY`]: a call whose line is no
/// longer ready, or that the connector no longer has (a restart), ends `failed` rather than
/// stay answered forever.
pub const WATCHDOG_JOB: &str = "call.watchdog";

/// How often an answered call's watchdog checks that the call still exists.
pub const LIVE_CHECK_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// How often a change of a call is tried again when the call moved meanwhile.
const MAX_TRIES: usize = 8;

/// Calls and their audio.
pub struct CallService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    scheduler: Scheduler,
    connector: Arc<dyn Connector>,
    lines: Arc<LineService>,
    /// Frames relayed and dropped by the media sockets (for `/metrics`).
    pub media: Arc<MediaMetrics>,
}

impl std::fmt::Debug for CallService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallService").finish_non_exhaustive()
    }
}

/// How a change of a call came out.
#[derive(Debug)]
pub enum Applied {
    /// The call after the change.
    Changed(CallRecord),
    /// The rules refused it (the call ended, or the event does not fit its state).
    Refused(CallRecord, CallRuleError),
}

impl CallService {
    /// The service; [`CallService::register`] wires its job and the connector's signals.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        scheduler: Scheduler,
        connector: Arc<dyn Connector>,
        lines: Arc<LineService>,
    ) -> Arc<Self> {
        Arc::new(CallService {
            store,
            clock,
            scheduler,
            connector,
            lines,
            media: Arc::default(),
        })
    }

    /// Registers the ring-timeout job and attaches this service as the connector's call sink.
    pub fn register(self: &Arc<Self>) {
        self.scheduler
            .register(WATCHDOG_JOB, Arc::new(Watchdog(self.clone())));
        if let Some(calls) = self.connector.calls() {
            let sink: Arc<dyn CallSink> = self.clone();
            calls.attach_calls(Arc::downgrade(&sink));
        }
    }

    fn calling(&self) -> AppResult<&dyn CallConnector> {
        self.connector.calls().ok_or_else(|| {
            RuleError::CallingUnavailable(crate::connector::calling::CALLING_UNSUPPORTED.to_owned())
                .into()
        })
    }

    /// The public base URL (media sockets are under it).
    pub fn public_url(&self) -> String {
        self.lines.public_url()
    }

    /// The call object.
    pub fn json(&self, c: &CallRecord) -> serde_json::Value {
        call_json(c, &self.public_url())
    }

    /// Places a call from a ready calling line to `to` (E.164). The call rings at once in
    /// the sandbox; otherwise `call.ringing` follows when WhatsApp reports it.
    pub async fn place(
        &self,
        who: &Principal,
        line_id: &LineId,
        to: &str,
    ) -> AppResult<CallRecord> {
        validate_e164("to", to).map_err(|e| AppError::invalid(e.param, e.message))?;
        let (line, days) = self.lines.get_with_days(&who.account.id, line_id).await?;
        can_call(&line)?;
        self.lines.check_paid(days.as_ref())?;
        let calls = self.calling()?;
        let now = self.clock.now();
        let call = CallRecord {
            id: CallId::generate(),
            account_id: who.account.id.clone(),
            line_id: line_id.clone(),
            version: 0,
            direction: CallDirection::Outbound,
            from: line.phone_number.clone(),
            to: Some(to.to_owned()),
            status: CallStatus::Initiated,
            end_reason: None,
            provider_id: None,
            media_token: random_base62(32),
            created_at: now,
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            updated_at: now,
        };
        // The call is written before WhatsApp is asked, so a second call on the line is
        // refused by the store; its watchdog fails it if this server dies before it rings.
        let batch = Batch {
            calls: Some(Box::new(CallWrite {
                insert: Some(call.clone()),
                ..CallWrite::default()
            })),
            jobs: vec![timeout_job(&call, "placed", now)],
            ..Batch::default()
        };
        match self.store.commit(batch, now).await? {
            Ok(()) => {}
            Err(Conflict::LineBusy) => return Err(RuleError::LineBusy.into()),
            Err(c) => return Err(anyhow::anyhow!("placing a call: {c}").into()),
        }
        let outcome = match calls.place_call(line_id, to, now).await {
            Ok(placed) => {
                let provider = placed.provider_id;
                let out = if placed.ringing {
                    self.apply_event(&call.id, CallEvent::Ring, Some(provider.clone()))
                        .await?
                } else {
                    self.set_provider(&call.id, provider.clone()).await?
                };
                // The call ended while WhatsApp was placing it (hung up, or the watchdog gave
                // up): record whose call it was and stop it there too, or the other phone
                // would ring for a call nobody can reach.
                let out = match out {
                    Applied::Refused(..) => self.set_provider(&call.id, provider.clone()).await?,
                    changed => changed,
                };
                let (Applied::Changed(c) | Applied::Refused(c, _)) = &out;
                if c.status == CallStatus::Ended {
                    let _ = calls
                        .call_action(line_id, &provider, LineCallAction::Hangup)
                        .await;
                }
                out
            }
            Err(e) => {
                tracing::info!(call = %call.id, error = %e, "the connector could not place the call");
                self.apply_event(&call.id, CallEvent::Fail, None).await?
            }
        };
        Ok(match outcome {
            Applied::Changed(c) | Applied::Refused(c, _) => c,
        })
    }

    /// Hangs up a call on the line's side: `completed` after an answer, `canceled` before.
    pub async fn hangup(&self, who: &Principal, id: &CallId) -> AppResult<CallRecord> {
        self.line_side(who, id, LineCallAction::Hangup).await
    }

    /// Answers an inbound call that rings.
    pub async fn accept(&self, who: &Principal, id: &CallId) -> AppResult<CallRecord> {
        self.line_side(who, id, LineCallAction::Accept).await
    }

    /// Refuses an inbound call that rings (`rejected`).
    pub async fn reject(&self, who: &Principal, id: &CallId) -> AppResult<CallRecord> {
        self.line_side(who, id, LineCallAction::Reject).await
    }

    async fn line_side(
        &self,
        who: &Principal,
        id: &CallId,
        action: LineCallAction,
    ) -> AppResult<CallRecord> {
        let call = self.get(who, id).await?;
        let event = match action {
            LineCallAction::Hangup => CallEvent::Hangup(Side::Line),
            LineCallAction::Accept => CallEvent::Answer,
            LineCallAction::Reject => CallEvent::Reject,
        };
        if action != LineCallAction::Hangup && call.direction != CallDirection::Inbound {
            return Err(RuleError::CallNotNow(
                "only an inbound call can be accepted or rejected; hang up an outbound call"
                    .to_owned(),
            )
            .into());
        }
        // Asked before WhatsApp is told, so a refused request changes nothing anywhere.
        apply(&call.times(), call.direction, event, self.clock.now()).map_err(rule_error)?;
        let calls = self.calling()?;
        let told = match &call.provider_id {
            Some(p) => calls.call_action(&call.line_id, p, action).await,
            None => Err(CallError::NotLive),
        };
        let event = match (told, action) {
            (Ok(()), _) => event,
            // The connector no longer has the call (it ended on WhatsApp's side, or this
            // server restarted): hanging up or rejecting ends it as asked; an answer fails.
            (Err(CallError::NotLive), LineCallAction::Hangup | LineCallAction::Reject) => event,
            (Err(e), _) => {
                tracing::info!(call = %call.id, error = %e, "the connector could not act on the call");
                CallEvent::Fail
            }
        };
        match self.apply_event(&call.id, event, None).await? {
            Applied::Changed(c) => Ok(c),
            Applied::Refused(_, e) => Err(rule_error(e)),
        }
    }

    /// One call of the account.
    pub async fn get(&self, who: &Principal, id: &CallId) -> AppResult<CallRecord> {
        self.store
            .get_call(&who.account.id, id)
            .await?
            .ok_or(AppError::NotFound("call"))
    }

    /// A line's calls, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        line_id: &LineId,
        page: &PageRequest,
    ) -> AppResult<Page<CallRecord>> {
        self.lines.get(&who.account.id, line_id).await?;
        Ok(self
            .store
            .list_calls(&who.account.id, line_id, page)
            .await?)
    }

    /// The sandbox as the other phone: `event` on the account's call. Answer, reject and
    /// busy are for outbound calls (an inbound call is answered on the line's side); any call
    /// may be hung up.
    pub async fn sandbox_remote(
        &self,
        who: &Principal,
        id: &CallId,
        event: RemoteCallEvent,
    ) -> AppResult<CallRecord> {
        let sim = self.connector.simulator().ok_or_else(|| {
            AppError::Forbidden("sandbox controls exist only in the sandbox".into())
        })?;
        let call = self.get(who, id).await?;
        let rule_event = remote_event(event);
        if call.direction == CallDirection::Inbound && event != RemoteCallEvent::Hangup {
            return Err(RuleError::CallNotNow(
                "the caller of an inbound call can only hang up; answer it on the line's side"
                    .to_owned(),
            )
            .into());
        }
        apply(&call.times(), call.direction, rule_event, self.clock.now()).map_err(rule_error)?;
        let provider = call
            .provider_id
            .clone()
            .ok_or_else(|| RuleError::CallNotNow("the call has not rung yet".to_owned()))?;
        sim.remote_call(&call.line_id, &provider, event)
            .await
            .map_err(sink_error)?;
        self.get(who, id).await
    }

    /// The sandbox rings `line` from `from`: an inbound call, `ringing`.
    pub async fn sandbox_incoming(
        &self,
        who: &Principal,
        line_id: &LineId,
        from: &str,
    ) -> AppResult<CallRecord> {
        validate_e164("from", from).map_err(|e| AppError::invalid(e.param, e.message))?;
        let sim = self.connector.simulator().ok_or_else(|| {
            AppError::Forbidden("sandbox controls exist only in the sandbox".into())
        })?;
        let line = self.lines.get(&who.account.id, line_id).await?;
        can_call(&line)?;
        let provider = sim
            .incoming_call(line_id, from.to_owned())
            .await
            .map_err(sink_error)?;
        self.store
            .call_by_provider(line_id, &provider)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the incoming call was not recorded").into())
    }

    /// The fair-use readings of these lines at the current business time (calling lines
    /// only; others are absent).
    pub async fn fair_use(
        &self,
        lines: &[&LineRecord],
    ) -> AppResult<std::collections::HashMap<LineId, FairUse>> {
        let calling: Vec<LineId> = lines
            .iter()
            .filter(|l| l.plan == Some(Plan::Calling))
            .map(|l| l.id.clone())
            .collect();
        let now = self.clock.now();
        let from_day = utc_day(now) - (FAIR_USE_WINDOW_DAYS - 1);
        let rows = self.store.call_seconds(&calling, from_day).await?;
        Ok(calling
            .into_iter()
            .map(|id| {
                let days: Vec<(i64, u64)> = rows
                    .iter()
                    .filter(|(l, _, _)| *l == id)
                    .map(|(_, d, s)| (*d, *s))
                    .collect();
                (id, fair_use(&days, now))
            })
            .collect())
    }

    async fn set_provider(&self, id: &CallId, provider_id: String) -> AppResult<Applied> {
        for _ in 0..MAX_TRIES {
            let mut call = self.read(id).await?;
            let now = self.clock.now();
            call.provider_id = Some(provider_id.clone());
            call.updated_at = now;
            let batch = Batch {
                calls: Some(Box::new(CallWrite {
                    update: Some(call.clone()),
                    ..CallWrite::default()
                })),
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    call.version += 1;
                    return Ok(Applied::Changed(call));
                }
                Err(Conflict::CallChanged) => continue,
                Err(c) => return Err(anyhow::anyhow!("recording a call's provider id: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the call kept changing").into())
    }

    async fn read(&self, id: &CallId) -> AppResult<CallRecord> {
        self.store
            .call_by_id(id)
            .await?
            .ok_or(AppError::NotFound("call"))
    }

    /// Applies `event` to the call at the business time, with everything the change causes:
    /// its webhook event, the ring timeout when it starts ringing, the minutes talked and the
    /// fair-use flag when it ends. `provider_id` is recorded with it when given.
    pub async fn apply_event(
        &self,
        id: &CallId,
        event: CallEvent,
        provider_id: Option<String>,
    ) -> AppResult<Applied> {
        for _ in 0..MAX_TRIES {
            let call = self.read(id).await?;
            let now = self.clock.now();
            let times = match apply(&call.times(), call.direction, event, now) {
                Ok(t) => t,
                Err(e) => return Ok(Applied::Refused(call, e)),
            };
            let mut next = call.with_times(times, now);
            if provider_id.is_some() {
                next.provider_id = provider_id.clone();
            }
            let batch = self.change_batch(&call, &next, now).await?;
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    // Every change carries a webhook event: deliver it now, not at the poll.
                    self.scheduler.wake();
                    next.version += 1;
                    return Ok(Applied::Changed(next));
                }
                Err(Conflict::CallChanged) => continue,
                Err(c) => return Err(anyhow::anyhow!("changing a call: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the call kept changing").into())
    }

    /// The batch that moves `call` (as read) to `next`.
    async fn change_batch(
        &self,
        call: &CallRecord,
        next: &CallRecord,
        now: Timestamp,
    ) -> AppResult<Batch> {
        let mut write = CallWrite {
            update: Some(next.clone()),
            ..CallWrite::default()
        };
        let mut batch = Batch::default();
        let url = self.public_url();
        let event = |kind: &str| -> NewEvent {
            new_event(
                &next.account_id,
                kind,
                Some(next.line_id.as_str()),
                json!({ "call": call_json(next, &url) }),
                now,
            )
        };
        match (call.status, next.status) {
            (a, CallStatus::Ringing) if a != CallStatus::Ringing => {
                batch.events.push(event("call.ringing"));
                batch.jobs.push(timeout_job(next, "ringing", now));
            }
            (a, CallStatus::Answered) if a != CallStatus::Answered => {
                batch.events.push(event("call.answered"));
                batch.jobs.push(live_check_job(next, now));
            }
            (a, CallStatus::Ended) if a != CallStatus::Ended => {
                batch.events.push(event("call.ended"));
                if let Some(from) = next.answered_at {
                    // Counted from the whole seconds the call object shows, so minutes and
                    // durations never disagree by a rounding.
                    let talked = next.times().duration_seconds();
                    let to = from
                        .checked_add(jiff::SignedDuration::from_secs(
                            i64::try_from(talked).unwrap_or(i64::MAX),
                        ))
                        .unwrap_or(from);
                    let days = seconds_by_utc_day(from, to);
                    batch
                        .events
                        .extend(self.fair_use_event(next, &days, now).await?);
                    write.add_seconds = days
                        .into_iter()
                        .map(|(d, s)| (next.line_id.clone(), d, s))
                        .collect();
                }
            }
            _ => {}
        }
        batch.calls = Some(Box::new(write));
        Ok(batch)
    }

    /// `line.fair_use_exceeded` when adding `days` to the line's calling is what flags it.
    /// The line object's reading is computed live, so "before" is too: a window that slid
    /// below the level since the last call counts as unflagged, and the next climb is a new
    /// flagging with its own event.
    async fn fair_use_event(
        &self,
        call: &CallRecord,
        days: &[(i64, u64)],
        now: Timestamp,
    ) -> AppResult<Option<NewEvent>> {
        let from_day = utc_day(now) - (FAIR_USE_WINDOW_DAYS - 1);
        let mut seconds: Vec<(i64, u64)> = self
            .store
            .call_seconds(std::slice::from_ref(&call.line_id), from_day)
            .await?
            .into_iter()
            .map(|(_, d, s)| (d, s))
            .collect();
        let was = fair_use(&seconds, now).flagged;
        seconds.extend_from_slice(days);
        let reading = fair_use(&seconds, now);
        if was || !reading.flagged {
            return Ok(None);
        }
        let Some(line) = self.store.line_by_id(&call.line_id).await? else {
            return Ok(None);
        };
        let mut line_json = self.lines.line_json(&line);
        line_json["fair_use"] = fair_use_json(&reading);
        let event = new_event(
            &call.account_id,
            "line.fair_use_exceeded",
            Some(call.line_id.as_str()),
            json!({ "line": line_json, "fair_use": fair_use_json(&reading) }),
            now,
        );
        Ok(Some(event))
    }

    async fn on_incoming(
        &self,
        line_id: &LineId,
        from: String,
        provider_id: String,
    ) -> AppResult<()> {
        // WhatsApp resends an offer it did not see acknowledged: the call is recorded once.
        if self
            .store
            .call_by_provider(line_id, &provider_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let line = self
            .store
            .line_by_id(line_id)
            .await?
            .ok_or(AppError::NotFound("line"))?;
        let refuse = |e: AppError| async {
            if let Some(calls) = self.connector.calls() {
                let _ = calls
                    .call_action(line_id, &provider_id, LineCallAction::Reject)
                    .await;
            }
            Err(e)
        };
        if let Err(e) = can_call(&line) {
            return refuse(e).await;
        }
        let now = self.clock.now();
        let mut call = CallRecord {
            id: CallId::generate(),
            account_id: line.account_id.clone(),
            line_id: line_id.clone(),
            version: 0,
            direction: CallDirection::Inbound,
            from: Some(from),
            to: line.phone_number.clone(),
            status: CallStatus::Initiated,
            end_reason: None,
            provider_id: Some(provider_id.clone()),
            media_token: random_base62(32),
            created_at: now,
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            updated_at: now,
        };
        let times =
            apply(&call.times(), call.direction, CallEvent::Ring, now).map_err(rule_error)?;
        call = call.with_times(times, now);
        let url = self.public_url();
        let batch = Batch {
            calls: Some(Box::new(CallWrite {
                insert: Some(call.clone()),
                ..CallWrite::default()
            })),
            events: vec![new_event(
                &call.account_id,
                "call.ringing",
                Some(call.line_id.as_str()),
                json!({ "call": call_json(&call, &url) }),
                now,
            )],
            jobs: vec![timeout_job(&call, "ringing", now)],
            ..Batch::default()
        };
        match self.store.commit(batch, now).await? {
            Ok(()) => Ok(()),
            // A resent offer that raced the first: recorded once already.
            Err(Conflict::LineBusy)
                if self
                    .store
                    .call_by_provider(line_id, &provider_id)
                    .await?
                    .is_some() =>
            {
                Ok(())
            }
            // The line is in another call: the call is refused, and nothing is recorded.
            Err(Conflict::LineBusy) => refuse(RuleError::LineBusy.into()).await,
            Err(c) => Err(anyhow::anyhow!("recording an incoming call: {c}").into()),
        }
    }

    async fn on_remote(
        &self,
        line: &LineId,
        provider_id: &str,
        event: RemoteCallEvent,
    ) -> AppResult<()> {
        let Some(call) = self.store.call_by_provider(line, provider_id).await? else {
            tracing::warn!(line = %line, provider_id, "a call signal for an unknown call");
            return Ok(());
        };
        match self
            .apply_event(&call.id, remote_event(event), None)
            .await?
        {
            Applied::Changed(_) => Ok(()),
            // Repeated or late signals (a hangup after the ring timeout) change nothing.
            Applied::Refused(c, e) => {
                tracing::debug!(call = %c.id, error = %e, "a call signal that changes nothing");
                Ok(())
            }
        }
    }

    async fn on_watchdog(&self, id: &CallId) -> AppResult<()> {
        let Some(call) = self.store.call_by_id(id).await? else {
            return Ok(());
        };
        let now = self.clock.now();
        let event = match call.status {
            CallStatus::Initiated => CallEvent::Fail,
            CallStatus::Ringing
                if call
                    .ringing_at
                    .and_then(|r| r.checked_add(RING_TIMEOUT).ok())
                    .is_some_and(|due| due <= now) =>
            {
                CallEvent::RingTimeout
            }
            CallStatus::Answered => {
                if self.still_live(&call).await? {
                    let next = live_check_job(&call, now);
                    self.store.schedule_jobs(&[next], now).await?;
                    return Ok(());
                }
                tracing::info!(call = %call.id, "an answered call's line or connection is gone: it fails");
                CallEvent::Fail
            }
            _ => return Ok(()),
        };
        if let Applied::Changed(c) = self.apply_event(id, event, None).await? {
            // Stop the ringing on WhatsApp's side; a connector that lost the call has nothing
            // to stop.
            if let (Some(calls), Some(p)) = (self.connector.calls(), &c.provider_id) {
                let _ = calls
                    .call_action(&c.line_id, p, LineCallAction::Hangup)
                    .await;
            }
        }
        Ok(())
    }
}

impl CallService {
    /// Whether an answered call can still be going on: its line is ready and the connector
    /// has not lost it.
    async fn still_live(&self, call: &CallRecord) -> AppResult<bool> {
        let ready = self
            .store
            .line_by_id(&call.line_id)
            .await?
            .is_some_and(|l| l.status == LineStatus::Ready);
        let known = match (self.connector.calls(), &call.provider_id) {
            (Some(calls), Some(p)) => calls.call_is_live(&call.line_id, p).unwrap_or(true),
            _ => false,
        };
        Ok(ready && known)
    }
}

/// The watchdog job.
struct Watchdog(Arc<CallService>);

#[derive(Deserialize)]
struct WatchdogPayload {
    call: CallId,
}

#[async_trait]
impl JobHandler for Watchdog {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: WatchdogPayload = serde_json::from_value(job.payload.clone())?;
        self.0.on_watchdog(&p.call).await?;
        Ok(())
    }
}

#[async_trait]
impl CallSink for CallService {
    async fn signal(&self, signal: CallSignal) -> anyhow::Result<()> {
        let outcome = match signal {
            CallSignal::Remote {
                line,
                provider_id,
                event,
            } => self.on_remote(&line, &provider_id, event).await,
            CallSignal::Incoming {
                line,
                from,
                provider_id,
            } => self.on_incoming(&line, from, provider_id).await,
        };
        outcome.map_err(anyhow::Error::from)
    }
}

/// The ring-timeout job for a call, due [`RING_TIMEOUT`] after `from` (`stage` keeps the
/// watchdog of a placed call apart from the timeout of its ringing).
fn timeout_job(call: &CallRecord, stage: &str, from: Timestamp) -> NewJob {
    NewJob {
        kind: WATCHDOG_JOB.to_owned(),
        account_id: Some(call.account_id.clone()),
        payload: json!({ "call": call.id }),
        due_at: from.checked_add(RING_TIMEOUT).unwrap_or(from),
        dedupe_key: Some(format!("{}:{stage}", call.id)),
        line_id: None,
    }
}

/// The next check of an answered call, [`LIVE_CHECK_EVERY`] after `now`.
fn live_check_job(call: &CallRecord, now: Timestamp) -> NewJob {
    let due = now.checked_add(LIVE_CHECK_EVERY).unwrap_or(now);
    NewJob {
        kind: WATCHDOG_JOB.to_owned(),
        account_id: Some(call.account_id.clone()),
        payload: json!({ "call": call.id }),
        due_at: due,
        dedupe_key: Some(format!("{}:live:{}", call.id, due.as_second())),
        line_id: None,
    }
}

/// Whether `line` can call now: a web line on the calling plan, linked and ready.
fn can_call(line: &LineRecord) -> AppResult<()> {
    if line.status == LineStatus::Released {
        return Err(RuleError::LineReleased.into());
    }
    let calling = line.kind == LineKind::Web
        && match line.plan {
            Some(plan) => plan == Plan::Calling,
            None => line.calling_enabled || line.allow_calling,
        };
    if !calling {
        return Err(RuleError::CallingNotEnabled.into());
    }
    if line.status != LineStatus::Ready {
        return Err(RuleError::LineNotReady(line.status.as_str()).into());
    }
    Ok(())
}

fn remote_event(event: RemoteCallEvent) -> CallEvent {
    match event {
        RemoteCallEvent::Ring => CallEvent::Ring,
        RemoteCallEvent::Answer => CallEvent::Answer,
        RemoteCallEvent::Hangup => CallEvent::Hangup(Side::Remote),
        RemoteCallEvent::Reject => CallEvent::Reject,
        RemoteCallEvent::Busy => CallEvent::Busy,
        RemoteCallEvent::Fail => CallEvent::Fail,
    }
}

fn rule_error(e: CallRuleError) -> AppError {
    match e {
        CallRuleError::Ended => RuleError::CallEnded.into(),
        e @ CallRuleError::NotNow { .. } => RuleError::CallNotNow(e.to_string()).into(),
    }
}

/// A use-case error that travelled through a connector's sink comes back as itself.
fn sink_error(e: anyhow::Error) -> AppError {
    match e.downcast::<AppError>() {
        Ok(app) => app,
        Err(other) => AppError::Internal(other),
    }
}

/// The `fair_use` object of a line.
pub fn fair_use_json(f: &FairUse) -> serde_json::Value {
    json!({ "avg_minutes_30d": f.avg_minutes_30d, "flagged": f.flagged })
}
