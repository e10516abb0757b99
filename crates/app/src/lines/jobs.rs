//! The line jobs: reconnect with backoff, the one-minute disconnect notice, sending queued
//! messages in order, unlinking released lines, and connector events due later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use wagate_domain::ids::{JobId, LineId};
use wagate_domain::jobs::Job;
use wagate_domain::line::{reconnect_delay, LineStatus, MessageStatus};
use wagate_domain::time::to_micros;
use wagate_store::Batch;

use super::ownership::LineOwnership;
use super::{connector_event_job, job, LineService, RECONNECT_JOB, SEND_JOB};
use crate::connector::{Connector, ConnectorEvent, ReconnectError, SendError};
use crate::scheduler::{JobHandler, NotHere};

/// How many queued messages a sender reads at a time.
const SEND_PAGE: u32 = 100;

#[derive(Deserialize)]
struct LinePayload {
    line: LineId,
}

#[derive(Deserialize)]
struct DropPayload {
    line: LineId,
    since: i64,
    #[serde(default)]
    attempt: u32,
}

fn payload<T: for<'de> Deserialize<'de>>(job: &Job) -> anyhow::Result<T> {
    Ok(serde_json::from_value(job.payload.clone())?)
}

/// Runs the line jobs that need the connector.
pub struct LineJobs {
    lines: Arc<LineService>,
    connector: Arc<dyn Connector>,
    /// Which lines this server serves: only the owner of a line sends its messages.
    ownership: Arc<LineOwnership>,
    /// One sender per line at a time within this server, so a line's messages leave in the
    /// order they came (across servers, [`LineOwnership`] keeps one server per line).
    send_locks: Mutex<HashMap<LineId, Arc<tokio::sync::Mutex<()>>>>,
    /// When this server last sent on each line (wall time), for the connector's pacing.
    last_send: Mutex<HashMap<LineId, std::time::Instant>>,
}

impl LineJobs {
    /// The handlers over `lines` and `connector`, run for the lines `ownership` serves.
    pub fn new(
        lines: Arc<LineService>,
        connector: Arc<dyn Connector>,
        ownership: Arc<LineOwnership>,
    ) -> Arc<Self> {
        Arc::new(LineJobs {
            lines,
            connector,
            ownership,
            send_locks: Mutex::new(HashMap::new()),
            last_send: Mutex::new(HashMap::new()),
        })
    }

    /// Fails with [`NotHere`] unless this server serves `line` (taking it if nobody does).
    async fn own(&self, line: &LineId) -> anyhow::Result<()> {
        if self.ownership.ensure(line).await? {
            Ok(())
        } else {
            Err(NotHere.into())
        }
    }

    /// Registers every line job kind with the scheduler.
    pub fn register(self: &Arc<Self>) {
        let s = &self.lines.scheduler;
        s.register(RECONNECT_JOB, Arc::new(Reconnect(self.clone())));
        s.register(SEND_JOB, Arc::new(Send(self.clone())));
        s.register(super::UNLINK_JOB, Arc::new(Unlink(self.clone())));
        s.register(
            super::days::UNPAID_RELEASE_JOB,
            Arc::new(super::days::UnpaidRelease(self.lines.clone())),
        );
        s.register(
            super::DISCONNECT_NOTICE_JOB,
            Arc::new(DisconnectNotice(self.lines.clone())),
        );
        s.register(
            super::CONNECTOR_EVENT_JOB,
            Arc::new(DueConnectorEvent(self.lines.clone())),
        );
    }

    /// Sends the line's queued messages, oldest first, while the line is ready; each is
    /// recorded with its event and the receipts the connector announced. The run's own `job`
    /// is removed with the last message of a read that reached the end of the queue (a message
    /// queued after that read has a job of its own, or the heal's); returns whether it was.
    async fn send_queued(&self, line_id: &LineId, job: &JobId) -> anyhow::Result<bool> {
        let lock = self
            .send_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(line_id.clone())
            .or_default()
            .clone();
        let _one_sender = lock.lock().await;
        let store = &self.lines.store;
        let mut job_removed = false;
        loop {
            let Some(line) = store.line_by_id(line_id).await? else {
                break;
            };
            if line.status != LineStatus::Ready {
                // Kept queued: the heal (or a failure on logout/release) takes care of them.
                break;
            }
            if line
                .rate_limited_until
                .is_some_and(|until| until > self.lines.clock.now())
            {
                // Kept queued: the send job scheduled for the end of the limit resumes.
                break;
            }
            let queued = store.queued_messages(line_id, SEND_PAGE).await?;
            let read_to_end = queued.len() < SEND_PAGE as usize;
            let last = queued.len().saturating_sub(1);
            if queued.is_empty() {
                break;
            }
            for (i, mut m) in queued.into_iter().enumerate() {
                let to = m.to.clone().unwrap_or_default();
                self.pace(line_id, &to).await;
                let now = self.lines.clock.now();
                let sent = self
                    .connector
                    .send_text(line_id, &m.id, &to, &m.text, now)
                    .await;
                if sent.is_ok() {
                    self.last_send
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(line_id.clone(), std::time::Instant::now());
                }
                let (status, error, provider_id, later) = match sent {
                    Ok(s) => (MessageStatus::Sent, None, Some(s.provider_id), s.later),
                    Err(SendError::Rejected(reason)) => {
                        (MessageStatus::Failed, Some(reason), None, Vec::new())
                    }
                    Err(SendError::RateLimited { retry_after }) => {
                        self.rate_limited(line_id, retry_after).await?;
                        return Ok(job_removed);
                    }
                    Err(SendError::Disconnected) => {
                        // Kept queued: the drop makes the line reconnect, and the heal sends.
                        self.lines
                            .apply(ConnectorEvent::Dropped {
                                line: line_id.clone(),
                            })
                            .await?;
                        return Ok(job_removed);
                    }
                };
                m.from = line.phone_number.clone();
                let (update, event) =
                    self.lines
                        .move_message(&mut m, status, error, provider_id, now);
                let account = Some(line.account_id.clone());
                let finish = read_to_end && i == last && !job_removed;
                let batch = Batch {
                    // Recorded only if the message was still queued: a sender that lost the
                    // line meanwhile must not announce a second send.
                    messages_must_move: true,
                    update_messages: vec![update],
                    events: vec![event],
                    jobs: later
                        .iter()
                        .map(|(at, e)| connector_event_job(account.clone(), *at, e))
                        .collect::<Result<_, _>>()?,
                    finish_job: finish.then(|| job.clone()),
                    ..Batch::default()
                };
                match store.commit(batch, now).await? {
                    Ok(()) => job_removed |= finish,
                    Err(wagate_store::Conflict::MessageChanged) => {
                        tracing::warn!(message = %m.id, "message recorded by another sender; not announcing it twice");
                    }
                    Err(c) => anyhow::bail!("could not record message {}: {c}", m.id),
                }
            }
        }
        Ok(job_removed)
    }

    /// Waits out the connector's pacing before a send on `line`: the typing indicator
    /// first, then whatever is left of a random gap since the line's last send (wall time:
    /// this is how a person types, not business time).
    async fn pace(&self, line: &LineId, to: &str) {
        let Some(pacing) = self.connector.pacing() else {
            return;
        };
        self.connector.typing(line, to).await;
        let gap = if pacing.max > pacing.min {
            use rand::Rng;
            rand::thread_rng().gen_range(pacing.min..=pacing.max)
        } else {
            pacing.min
        };
        let last = self
            .last_send
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(line)
            .copied();
        let wait = match last {
            Some(at) => gap.saturating_sub(at.elapsed()),
            None => pacing.min,
        };
        tokio::time::sleep(wait).await;
    }

    /// WhatsApp answered with its rate limit: the line sends nothing until it passes (new
    /// messages get 429 meanwhile), then a send job resumes the queue in order.
    async fn rate_limited(
        &self,
        line_id: &LineId,
        retry_after: jiff::SignedDuration,
    ) -> anyhow::Result<()> {
        Ok(self
            .lines
            .pause_for_rate_limit(line_id, retry_after)
            .await?)
    }

    /// One reconnect attempt of a drop that began at `since`.
    async fn reconnect(&self, p: DropPayload) -> anyhow::Result<()> {
        let lines = &self.lines;
        let Some(line) = lines.store.line_by_id(&p.line).await? else {
            return Ok(());
        };
        let same_drop = line.status == LineStatus::Reconnecting
            && line.disconnected_at.map(to_micros) == Some(p.since)
            && line.reconnect_attempt == p.attempt;
        if !same_drop {
            return Ok(());
        }
        let now = lines.clock.now();
        match self.connector.reconnect(&p.line, now).await {
            Ok(()) => {
                let healed = lines
                    .change_line(&p.line, |l, now| {
                        if l.status != LineStatus::Reconnecting
                            || l.disconnected_at.map(to_micros) != Some(p.since)
                        {
                            return None;
                        }
                        let mut next = l.clone();
                        next.status = LineStatus::Ready;
                        next.disconnected_at = None;
                        next.reconnect_attempt = 0;
                        next.disconnect_notified = false;
                        next.updated_at = now;
                        let mut batch = Batch {
                            jobs: vec![job(
                                SEND_JOB,
                                &l.account_id,
                                json!({ "line": l.id }),
                                now,
                                format!("heal:{}:{}", l.id, p.since),
                            )],
                            ..Batch::default()
                        };
                        if l.disconnect_notified {
                            let mut after = next.clone();
                            after.version += 1;
                            let down_for =
                                now.duration_since(wagate_domain::time::from_micros(p.since));
                            batch.events.push(lines.line_event(
                                &after,
                                "line.reconnected",
                                json!({ "disconnected_seconds": down_for.as_secs() }),
                            ));
                        }
                        Some((next, batch))
                    })
                    .await?;
                drop(healed);
            }
            Err(ReconnectError::StillDown) => {
                let attempt = p.attempt + 1;
                lines
                    .change_line(&p.line, |l, now| {
                        if l.status != LineStatus::Reconnecting
                            || l.disconnected_at.map(to_micros) != Some(p.since)
                            || l.reconnect_attempt != p.attempt
                        {
                            return None;
                        }
                        let mut next = l.clone();
                        next.reconnect_attempt = attempt;
                        next.updated_at = now;
                        let batch = Batch {
                            jobs: vec![job(
                                RECONNECT_JOB,
                                &l.account_id,
                                json!({ "line": l.id, "since": p.since, "attempt": attempt }),
                                now.saturating_add(reconnect_delay(attempt)).unwrap_or(now),
                                format!("{}:{}:{attempt}", l.id, p.since),
                            )],
                            ..Batch::default()
                        };
                        Some((next, batch))
                    })
                    .await?;
            }
            Err(ReconnectError::LoggedOut) => {
                lines
                    .apply(ConnectorEvent::LoggedOut { line: p.line })
                    .await?;
            }
        }
        Ok(())
    }
}

struct Reconnect(Arc<LineJobs>);
struct Send(Arc<LineJobs>);
struct Unlink(Arc<LineJobs>);
struct DisconnectNotice(Arc<LineService>);
struct DueConnectorEvent(Arc<LineService>);

#[async_trait]
impl JobHandler for Reconnect {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: DropPayload = payload(job)?;
        self.0.own(&p.line).await?;
        self.0.reconnect(p).await
    }
}

#[async_trait]
impl JobHandler for Send {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: LinePayload = payload(job)?;
        self.0.own(&p.line).await?;
        if !self.0.send_queued(&p.line, &job.id).await? {
            self.0.lines.store.finish_job(&job.id).await?;
        }
        Ok(())
    }

    /// A run that sent something removed its job with the last message.
    fn removes_own_job(&self) -> bool {
        true
    }
}

#[async_trait]
impl JobHandler for Unlink {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: LinePayload = payload(job)?;
        self.0.own(&p.line).await?;
        self.0.connector.unlink(&p.line).await?;
        Ok(self.0.ownership.give_up(&p.line).await?)
    }
}

#[async_trait]
impl JobHandler for DisconnectNotice {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: DropPayload = payload(job)?;
        let lines = &self.0;
        lines
            .change_line(&p.line, |l, now| {
                if l.status != LineStatus::Reconnecting
                    || l.disconnected_at.map(to_micros) != Some(p.since)
                    || l.disconnect_notified
                {
                    return None;
                }
                let mut next = l.clone();
                next.disconnect_notified = true;
                next.updated_at = now;
                let mut after = next.clone();
                after.version += 1;
                let batch = Batch {
                    events: vec![lines.line_event(
                        &after,
                        "line.disconnected",
                        json!({ "disconnected_at": l.disconnected_at.map(wagate_domain::time::rfc3339) }),
                    )],
                    ..Batch::default()
                };
                Some((next, batch))
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl JobHandler for DueConnectorEvent {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let event: ConnectorEvent = payload(job)?;
        Ok(self.0.apply(event).await?)
    }
}
