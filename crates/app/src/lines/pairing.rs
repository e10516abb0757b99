//! Linking a line runs on the line's owner only.
//!
//! A pairing client writes the new device's keys into the line's session as it starts; two of
//! them (a connect page polled through two servers behind a load balancer) would write two
//! devices into one line. So the first server asked for a line's QR code takes the line (see
//! [`LineOwnership`]) and runs its pairing client; any other server shows what the owner
//! published in the store — the owner republishes its current code every
//! [`PAIRING_REFRESH`] while a page on another server looks at it — and a pairing code asked
//! for on another server is a job the owner runs ([`PAIR_CODE_JOB`]), its answer published
//! the same way. A server that runs no worker (`--no-worker`) never pairs itself: its first
//! look at a line nobody has published a code for is a [`PAIRING_QR_JOB`], which the owner
//! (or the worker that takes the ownerless line) runs. On one server all of this is a map
//! lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wagate_domain::clock::Clock;
use wagate_domain::ids::{random_base62, LineId};
use wagate_domain::jobs::{Job, NewJob};
use wagate_store::{LineRecord, PublishedPairing, Store};

use super::ownership::LineOwnership;
use super::{PAIRING_QR_JOB, PAIR_CODE_JOB};
use crate::connector::{Connector, PairCodeError, QrCode};
use crate::scheduler::{JobHandler, NotHere, Scheduler};

/// How often the owner republishes the codes that pages on other servers look at.
pub const PAIRING_REFRESH: Duration = Duration::from_secs(2);
/// A page that looked within this long still counts as looking (pages poll every few seconds
/// or hold a server-sent-events stream that asks again as codes expire).
const LOOKING_FOR: SignedDuration = SignedDuration::from_secs(20);
/// How long a page served by another server waits for the owner's first code.
const FIRST_CODE_WAIT: Duration = Duration::from_secs(8);
/// How long a pairing-code request made on another server waits for the owner's answer.
const PAIR_CODE_WAIT: Duration = Duration::from_secs(15);
/// How often a waiting server reads what the owner published.
const POLL_EVERY: Duration = Duration::from_millis(150);
/// Published payloads remembered, beyond which the memory starts over (one write more each).
const MAX_REMEMBERED: usize = 10_000;

/// The answer to a pairing-code request, as the owner publishes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
enum Answer {
    Code { code: String },
    Rejected { why: String },
    Unsupported,
    Unavailable { why: String },
}

impl From<Result<String, PairCodeError>> for Answer {
    fn from(r: Result<String, PairCodeError>) -> Self {
        match r {
            Ok(code) => Answer::Code { code },
            Err(PairCodeError::Rejected(why)) => Answer::Rejected { why },
            Err(PairCodeError::Unsupported) => Answer::Unsupported,
            Err(PairCodeError::Unavailable(why)) => Answer::Unavailable { why },
        }
    }
}

impl From<Answer> for Result<String, PairCodeError> {
    fn from(a: Answer) -> Self {
        match a {
            Answer::Code { code } => Ok(code),
            Answer::Rejected { why } => Err(PairCodeError::Rejected(why)),
            Answer::Unsupported => Err(PairCodeError::Unsupported),
            Answer::Unavailable { why } => Err(PairCodeError::Unavailable(why)),
        }
    }
}

#[derive(Deserialize)]
struct PairCodePayload {
    line: LineId,
    phone_number: String,
    request: String,
}

/// QR codes and pairing codes, from whichever server runs the line's pairing.
pub struct Pairing {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wall: Arc<dyn Clock>,
    connector: Arc<dyn Connector>,
    ownership: Arc<LineOwnership>,
    scheduler: Scheduler,
    /// The payload this server last published per line, so an unchanged code is not
    /// written again.
    published: Mutex<HashMap<LineId, String>>,
    /// Whether this server runs line jobs (and so may pair lines itself).
    serves_lines: AtomicBool,
}

impl Pairing {
    /// Pairing over `connector`, for the lines `ownership` lets this server serve.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        wall: Arc<dyn Clock>,
        connector: Arc<dyn Connector>,
        ownership: Arc<LineOwnership>,
        scheduler: Scheduler,
    ) -> Arc<Self> {
        Arc::new(Pairing {
            store,
            clock,
            wall,
            connector,
            ownership,
            scheduler,
            published: Mutex::new(HashMap::new()),
            serves_lines: AtomicBool::new(true),
        })
    }

    /// Tells pairing whether this server runs line jobs: one that does not (`--no-worker`)
    /// leaves every pairing to the servers that do.
    pub fn set_serves_lines(&self, serves: bool) {
        self.serves_lines.store(serves, Ordering::SeqCst);
    }

    async fn mine(&self, line: &LineId) -> anyhow::Result<bool> {
        Ok(self.serves_lines.load(Ordering::SeqCst) && self.ownership.ensure(line).await?)
    }

    /// Registers the pairing-code job with the scheduler.
    pub fn register(self: &Arc<Self>) {
        self.scheduler
            .register(PAIR_CODE_JOB, Arc::new(PairCodeJob(self.clone())));
        self.scheduler
            .register(PAIRING_QR_JOB, Arc::new(PairingQrJob(self.clone())));
    }

    /// Asks the line's owner (or, for a line nobody serves, the first worker) to publish its
    /// QR code: at most one such job per line every ten seconds.
    async fn ask_owner_for_qr(&self, line: &LineRecord) -> anyhow::Result<()> {
        let window = self.wall.now().as_second() / 10;
        let job = NewJob {
            kind: PAIRING_QR_JOB.to_owned(),
            account_id: Some(line.account_id.clone()),
            payload: json!({ "line": line.id }),
            due_at: self.clock.now(),
            dedupe_key: Some(format!("{}:{window}", line.id)),
            line_id: Some(line.id.clone()),
        };
        self.store.schedule_jobs(&[job], self.clock.now()).await?;
        self.scheduler.wake();
        Ok(())
    }

    /// The QR code the connect page of `line` (awaiting a scan) shows now.
    pub async fn qr(&self, line: &LineRecord) -> anyhow::Result<QrCode> {
        if self.mine(&line.id).await? {
            return self.own_qr(line).await;
        }
        let code = |p: PublishedPairing| {
            p.qr.map(|(payload, expires_at)| QrCode {
                payload,
                expires_at,
            })
        };
        // The look is recorded once per request: the owner keeps its client for this page.
        let published = self
            .store
            .look_at_pairing(&line.id, self.wall.now())
            .await?;
        if let Some(qr) = published.and_then(code) {
            return Ok(qr);
        }
        self.ask_owner_for_qr(line).await?;
        self.await_published(&line.id, FIRST_CODE_WAIT, code)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the server linking this line has no QR code yet"))
    }

    /// Reads what the owner published for `line` every [`POLL_EVERY`] until `pick` finds what
    /// the caller waits for, or `wait` ran out (`None`).
    async fn await_published<T>(
        &self,
        line: &LineId,
        wait: Duration,
        pick: impl Fn(PublishedPairing) -> Option<T>,
    ) -> wagate_store::StoreResult<Option<T>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(found) = self.store.published_pairing(line).await?.and_then(&pick) {
                return Ok(Some(found));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// A pairing code that links `line` (awaiting a scan) to `phone_number`'s account.
    pub async fn pair_code(
        &self,
        line: &LineRecord,
        phone_number: &str,
    ) -> Result<String, PairCodeError> {
        let unavailable = |e: &dyn std::fmt::Display| PairCodeError::Unavailable(e.to_string());
        if self.mine(&line.id).await.map_err(|e| unavailable(&e))? {
            return self.own_pair_code(line, phone_number).await;
        }
        let request = random_base62(16);
        let job = NewJob {
            kind: PAIR_CODE_JOB.to_owned(),
            account_id: Some(line.account_id.clone()),
            payload: json!({ "line": line.id, "phone_number": phone_number, "request": request }),
            due_at: self.clock.now(),
            dedupe_key: Some(request.clone()),
            line_id: Some(line.id.clone()),
        };
        self.store
            .schedule_jobs(&[job], self.clock.now())
            .await
            .map_err(|e| unavailable(&e))?;
        self.scheduler.wake();
        let answer = self
            .await_published(&line.id, PAIR_CODE_WAIT, |p| {
                p.pair_code
                    .filter(|(answered, _)| *answered == request)
                    .map(|(_, answer)| answer)
            })
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| {
                PairCodeError::Unavailable(
                    "the server linking this line did not answer in time; try again".into(),
                )
            })?;
        let answer: Answer = serde_json::from_str(&answer).map_err(|e| unavailable(&e))?;
        answer.into()
    }

    async fn own_qr(&self, line: &LineRecord) -> anyhow::Result<QrCode> {
        let code = self
            .connector
            .qr(
                &line.id,
                line.link_count,
                line.pairing_started_at,
                self.clock.now(),
            )
            .await?;
        let changed = {
            let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
            if published.len() >= MAX_REMEMBERED {
                published.clear();
            }
            published.insert(line.id.clone(), code.payload.clone()) != Some(code.payload.clone())
        };
        if changed {
            if let Err(e) = self
                .store
                .publish_pairing_qr(
                    &line.id,
                    self.ownership.holder(),
                    &code.payload,
                    code.expires_at,
                )
                .await
            {
                // This server's page still shows it; other servers' pages get it next time.
                self.published
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&line.id);
                tracing::warn!(line = %line.id, error = %e, "could not publish the line's QR code");
            }
        }
        Ok(code)
    }

    async fn own_pair_code(
        &self,
        line: &LineRecord,
        phone_number: &str,
    ) -> Result<String, PairCodeError> {
        self.connector
            .pair_code(
                &line.id,
                line.link_count,
                line.pairing_started_at,
                phone_number,
                self.clock.now(),
            )
            .await
    }

    /// Republishes the current code of every line this server pairs that a page on another
    /// server looked at lately (which also keeps the pairing client alive for that page).
    pub async fn refresh(&self) -> anyhow::Result<usize> {
        let since = self.wall.now() - LOOKING_FOR;
        let watched = self
            .store
            .watched_pairings(self.ownership.holder(), since)
            .await?;
        let mut refreshed = 0;
        for id in watched {
            let Some(line) = self.store.line_by_id(&id).await? else {
                continue;
            };
            if !line.status.awaits_scan() || !self.mine(&id).await? {
                continue;
            }
            match self.own_qr(&line).await {
                Ok(_) => refreshed += 1,
                Err(e) => tracing::debug!(line = %id, error = %e, "no QR code to republish"),
            }
        }
        Ok(refreshed)
    }

    /// [`Pairing::refresh`] every [`PAIRING_REFRESH`] until `stop`.
    pub async fn run_forever(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(PAIRING_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "could not republish QR codes for other servers' connect pages");
            }
        }
    }
}

/// Runs a pairing-code request made on another server, on the line's owner.
struct PairCodeJob(Arc<Pairing>);

#[async_trait]
impl JobHandler for PairCodeJob {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: PairCodePayload = serde_json::from_value(job.payload.clone())?;
        let pairing = &self.0;
        if !pairing.mine(&p.line).await? {
            return Err(NotHere.into());
        }
        let Some(line) = pairing.store.line_by_id(&p.line).await? else {
            return Ok(());
        };
        let answer: Answer = if line.status.awaits_scan() {
            pairing.own_pair_code(&line, &p.phone_number).await.into()
        } else {
            Answer::Rejected {
                why: format!("the line is {}, not awaiting a link", line.status.as_str()),
            }
        };
        pairing
            .store
            .publish_pair_code(
                &p.line,
                pairing.ownership.holder(),
                &p.request,
                &serde_json::to_string(&answer)?,
            )
            .await?;
        Ok(())
    }
}

/// Publishes a line's QR code for a page on a server that does not pair it.
struct PairingQrJob(Arc<Pairing>);

#[async_trait]
impl JobHandler for PairingQrJob {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let line: LineId = serde_json::from_value(job.payload["line"].clone())?;
        let pairing = &self.0;
        if !pairing.mine(&line).await? {
            return Err(NotHere.into());
        }
        if let Some(line) = pairing.store.line_by_id(&line).await? {
            if line.status.awaits_scan() {
                pairing.own_qr(&line).await?;
            }
        }
        Ok(())
    }
}
