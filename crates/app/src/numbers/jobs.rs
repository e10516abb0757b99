//! The jobs of numbers on the business clock: the expiry at `expires_at`, and the poll of a
//! provider whose SMS are not delivered to wagate.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use wagate_domain::ids::NumberId;
use wagate_domain::jobs::{Job, NewJob};
use wagate_domain::number::{NumberStatus, POLL_EVERY};
use wagate_store::NumberRecord;

use super::{NumberService, EXPIRE_JOB, POLL_JOB};
use crate::scheduler::JobHandler;

/// The expiry job of a number, at its `expires_at` (an extension schedules another; the
/// earlier one then finds the number not yet due and does nothing).
pub(super) fn expire_job(n: &NumberRecord) -> NewJob {
    NewJob {
        kind: EXPIRE_JOB.to_owned(),
        account_id: Some(n.account_id.clone()),
        payload: json!({ "number": n.id }),
        due_at: n.expires_at,
        dedupe_key: Some(format!("{}:{}", n.id, n.expires_at.as_second())),
        line_id: None,
    }
}

/// The next poll of a number, [`POLL_EVERY`] after `now`, unless it would fall past its
/// expiry.
pub(super) fn poll_job(n: &NumberRecord, now: Timestamp) -> Option<NewJob> {
    let due = now.checked_add(POLL_EVERY).ok()?;
    (due < n.expires_at).then(|| NewJob {
        kind: POLL_JOB.to_owned(),
        account_id: Some(n.account_id.clone()),
        payload: json!({ "number": n.id }),
        due_at: due,
        dedupe_key: Some(format!("{}:{}", n.id, due.as_second())),
        line_id: None,
    })
}

#[derive(Deserialize)]
struct NumberPayload {
    number: NumberId,
}

/// The expiry job.
pub(super) struct Expire(pub(super) Arc<NumberService>);

#[async_trait]
impl JobHandler for Expire {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: NumberPayload = serde_json::from_value(job.payload.clone())?;
        self.0.expire(&p.number).await?;
        Ok(())
    }
}

/// The poll job: asks the provider, records what is new, and schedules the next poll while
/// the number is active.
pub(super) struct Poll(pub(super) Arc<NumberService>);

#[async_trait]
impl JobHandler for Poll {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: NumberPayload = serde_json::from_value(job.payload.clone())?;
        let n = self.0.poll(&p.number).await?;
        if n.status == NumberStatus::Active {
            let now = self.0.clock.now();
            if let Some(next) = poll_job(&n, now) {
                self.0.store.schedule_jobs(&[next], now).await?;
            }
        }
        Ok(())
    }
}
