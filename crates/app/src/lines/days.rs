//! Lines of accounts billed in days (PRODUCT.md §11): extending a line with days from the
//! balance, sending only while paid, returning unused whole days on release, and releasing a
//! line left unpaid for five days.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use wagate_domain::billing::days::{
    extend, is_paid, release, unpaid_release_at, BillingMode, DaysError,
};
use wagate_domain::ids::{AccountId, LineId};
use wagate_domain::jobs::{Job, NewJob};
use wagate_domain::line::{LineStatus, ReleaseReason};
use wagate_domain::time::rfc3339;
use wagate_store::{
    Batch, Conflict, DayAccountRecord, DaysPostingWrite, DaysWrite, LineDaysRecord, LineRecord,
};

use super::LineService;
use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};
use crate::scheduler::JobHandler;

/// Job: release a days-mode line still unpaid five days after its `paid_until`.
pub const UNPAID_RELEASE_JOB: &str = "line.unpaid_release";

/// How often an extension is tried again when the balance or the line moved meanwhile.
const TRIES: usize = 8;

impl LineService {
    /// The account's days settings when it is billed in days; `None` when billed flat.
    pub async fn days_billing(&self, account: &AccountId) -> AppResult<Option<DayAccountRecord>> {
        Ok(self
            .store
            .day_account(account)
            .await?
            .filter(|d| d.mode == BillingMode::Days))
    }

    /// One line of the account with its days (`None` when the account is billed flat), in
    /// one read: what a send, a call and `GET /lines/{id}` need.
    pub async fn get_with_days(
        &self,
        account: &AccountId,
        id: &LineId,
    ) -> AppResult<(LineRecord, Option<LineDaysRecord>)> {
        self.store
            .line_with_days(account, id)
            .await?
            .ok_or(AppError::NotFound("line"))
    }

    /// A days-mode line may send (and call) only while paid: 402 `line_unpaid` otherwise.
    /// `days` is the line's days as [`LineService::get_with_days`] read them.
    pub fn check_paid(&self, days: Option<&LineDaysRecord>) -> AppResult<()> {
        let Some(held) = days else {
            return Ok(());
        };
        if is_paid(held.paid_until, self.clock.now()) {
            Ok(())
        } else {
            Err(RuleError::LineUnpaid {
                paid_until: held.paid_until.map(rfc3339),
            }
            .into())
        }
    }

    /// The days of these lines (for line objects), `None` for lines of accounts billed flat:
    /// each account's billing is read once, not once per line.
    pub async fn lines_days(&self, lines: &[LineRecord]) -> AppResult<Vec<Option<LineDaysRecord>>> {
        let mut billed: std::collections::HashMap<&AccountId, bool> = Default::default();
        let mut out = Vec::with_capacity(lines.len());
        for l in lines {
            let days = match billed.get(&l.account_id) {
                Some(d) => *d,
                None => {
                    let d = self.days_billing(&l.account_id).await?.is_some();
                    billed.insert(&l.account_id, d);
                    d
                }
            };
            out.push(match days {
                true => Some(self.store.line_days(&l.id).await?),
                false => None,
            });
        }
        Ok(out)
    }

    /// Moves `days` from the balance to the line: its `paid_until` grows by `days` from the
    /// later of now and `paid_until`. A prepaid balance short of them → 402
    /// `insufficient_days`. The line is released if still unpaid 5 days after `paid_until`.
    pub async fn extend(
        &self,
        who: &Principal,
        line_id: &LineId,
        days: u32,
        comment: Option<String>,
    ) -> AppResult<(LineRecord, LineDaysRecord)> {
        let line = self.get(&who.account.id, line_id).await?;
        if line.status == LineStatus::Released {
            return Err(RuleError::LineReleased.into());
        }
        for _ in 0..TRIES {
            let settings = self
                .days_billing(&who.account.id)
                .await?
                .ok_or(RuleError::NotDaysBilling)?;
            let held = self.store.line_days(line_id).await?;
            let now = self.clock.now();
            let e = extend(
                &who.account.id,
                line_id,
                settings.balance_days,
                settings.postpaid,
                days,
                held.paid_until,
                now,
            )
            .map_err(days_error)?;
            let batch = Batch {
                days: Some(Box::new(DaysWrite {
                    postings: vec![DaysPostingWrite {
                        account_id: who.account.id.clone(),
                        posting: e.posting,
                        invoice_id: None,
                        line_id: Some(line_id.clone()),
                        comment: comment.clone(),
                    }],
                    paid_until: Some((line_id.clone(), held.paid_until, e.paid_until)),
                    ..DaysWrite::default()
                })),
                jobs: vec![unpaid_release_job(&who.account.id, line_id, e.paid_until)],
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    let held = self.store.line_days(line_id).await?;
                    return Ok((line, held));
                }
                // Another extension moved the line or spent the days meanwhile: decide again
                // on what is there now (a balance really short is refused above).
                Err(Conflict::LineChanged | Conflict::InsufficientDays) => continue,
                Err(c) => return Err(anyhow::anyhow!("extending a line: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the line or the balance kept changing").into())
    }

    /// The days part of releasing a days-mode line: its unused whole days back to the
    /// balance, the rest counted used, and `days_returned` recorded.
    pub(crate) async fn release_days(
        &self,
        line: &LineRecord,
        now: Timestamp,
    ) -> AppResult<Option<DaysWrite>> {
        if self.days_billing(&line.account_id).await?.is_none() {
            return Ok(None);
        }
        let held = self.store.line_days(&line.id).await?;
        let r = release(
            &line.account_id,
            &line.id,
            held.days_on_line,
            held.paid_until,
            now,
        );
        Ok(Some(DaysWrite {
            postings: vec![DaysPostingWrite {
                account_id: line.account_id.clone(),
                posting: r.posting,
                invoice_id: None,
                line_id: Some(line.id.clone()),
                comment: None,
            }],
            days_returned: Some((line.id.clone(), r.returned)),
            ..DaysWrite::default()
        }))
    }

    /// Releases the line if it is still unpaid [`UNPAID_GRACE`](wagate_domain::billing::days::UNPAID_GRACE)
    /// after `paid_until` (an extension since then moved `paid_until`, and its own job
    /// decides).
    async fn release_if_unpaid(&self, line_id: &LineId, paid_until: Timestamp) -> AppResult<()> {
        let Some(line) = self.store.line_by_id(line_id).await? else {
            return Ok(());
        };
        if line.status == LineStatus::Released {
            return Ok(());
        }
        let held = self.store.line_days(line_id).await?;
        let now = self.clock.now();
        if held.paid_until != Some(paid_until) || now < unpaid_release_at(paid_until) {
            return Ok(());
        }
        self.release(&line.account_id, line_id, ReleaseReason::Unpaid)
            .await?;
        Ok(())
    }
}

fn days_error(e: DaysError) -> AppError {
    match e {
        DaysError::InsufficientDays { balance, requested } => {
            RuleError::InsufficientDays { balance, requested }.into()
        }
        other => AppError::invalid("days", other.to_string()),
    }
}

/// The job that releases `line` if `paid_until` passes by five days with no extension.
pub(crate) fn unpaid_release_job(
    account: &AccountId,
    line: &LineId,
    paid_until: Timestamp,
) -> NewJob {
    NewJob {
        kind: UNPAID_RELEASE_JOB.to_owned(),
        account_id: Some(account.clone()),
        payload: json!({ "line": line, "paid_until": rfc3339(paid_until) }),
        due_at: unpaid_release_at(paid_until),
        dedupe_key: Some(format!("{line}:{}", paid_until.as_second())),
        line_id: None,
    }
}

#[derive(Deserialize)]
struct UnpaidPayload {
    line: LineId,
    paid_until: Timestamp,
}

/// The unpaid-release job.
pub(crate) struct UnpaidRelease(pub(crate) std::sync::Arc<LineService>);

#[async_trait]
impl JobHandler for UnpaidRelease {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: UnpaidPayload = serde_json::from_value(job.payload.clone())?;
        self.0.release_if_unpaid(&p.line, p.paid_until).await?;
        Ok(())
    }
}
