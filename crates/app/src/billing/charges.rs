//! The line charge job: one period of one line, funded from the wallet, by an auto top-up or
//! by the card; on a decline the line goes past due and is retried daily until the grace end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use wagate_domain::billing::ledger::{line_charge, plan_charge_funding, topup, AutoTopup, Funding};
use wagate_domain::billing::schedule::{
    grace_ends_at, period_end, period_start, ChargeReason, GRACE, RETRY_EVERY,
};
use wagate_domain::ids::{AccountId, LineId, TransactionId};
use wagate_domain::jobs::Job;
use wagate_domain::line::{BillingStatus, LineStatus, ReleaseReason};
use wagate_domain::money::Micros;
use wagate_domain::page::{PageRequest, MAX_LIMIT};
use wagate_domain::time::rfc3339;
use wagate_store::{
    Batch, BillingAccountRecord, Conflict, EndpointRecord, LineRecord, NewLineCharge, NewWalletTxn,
    PaymentPurpose, PaymentRecord, PaymentStatus,
};

use super::{BillingService, Outcome};
use crate::lines::charge_job;
use crate::scheduler::JobHandler;
use crate::webhooks::new_event;

/// The last grace retry (the one at the grace end); after it fails the line is released.
pub const LAST_RETRY: u32 = 5;

#[derive(Debug, Deserialize)]
struct ChargePayload {
    line: LineId,
    period: u32,
    attempt: u32,
    reason: ChargeReason,
}

impl ChargePayload {
    /// The key of this try's card payment.
    fn attempt_key(&self) -> String {
        format!("line:{}:{}:{}", self.line, self.period, self.attempt)
    }
}

/// Jobs per commit of a batch of charges (see `BillingService::charge_batch`).
const COMMIT_EVERY: usize = 4096;

/// What a batch of charges carries from one part to the next.
#[derive(Default)]
struct BatchState {
    /// Each account's billing as the parts so far leave it (`None`: not batched).
    accounts: HashMap<AccountId, Option<BillingAccountRecord>>,
    /// The lines charged so far (a line seen twice ends the batch).
    seen: HashSet<LineId>,
}

/// What a part of a batch commits: the batches, and the jobs they finish.
#[derive(Default)]
struct Planned {
    batches: Vec<(Batch, Timestamp)>,
    done: Vec<wagate_domain::ids::JobId>,
}

/// A card payment that funds this charge, with its outcome.
struct Funded<'a> {
    payment: &'a PaymentRecord,
    outcome: &'a Outcome,
}

impl BillingService {
    /// Charges `line` for `period` (try `attempt`). Idempotent: a period already charged, a
    /// released line or an attempt already settled does nothing.
    async fn charge_line(&self, p: ChargePayload) -> anyhow::Result<()> {
        for _ in 0..16 {
            let Some(line) = self.store.line_by_id(&p.line).await? else {
                return Ok(());
            };
            if line.status == LineStatus::Released {
                return Ok(());
            }
            // The wallet and the try's payments are read before asking whether the period is
            // charged. Another run's charge commits its debit, its charge row and its
            // payment's outcome together, so either these reads already show them and the
            // check below sees the charge, or they predate it: the plan then takes the same
            // wallet money or the same payment key (and one commit wins), never a second
            // card payment for a period another run has just paid.
            let billing = self.store.billing_account(&line.account_id).await?;
            let (attempt_key, existing) = self.open_attempt(&p).await?;
            if self.store.line_charged(&p.line, p.period).await? {
                return Ok(());
            }
            let (Some(price), Some(anchor)) = (line.price, line.anchor_at) else {
                anyhow::bail!("line {} is billed without a price or anchor", line.id);
            };
            let reason = if p.attempt > 0 {
                ChargeReason::GraceRetry
            } else {
                p.reason
            };
            let auto = billing.auto_topup_enabled.then_some(AutoTopup {
                threshold: billing.auto_topup_threshold,
                amount: billing.auto_topup_amount,
            });
            let card_amount = match (&existing, plan_charge_funding(billing.balance, price, auto)) {
                (Some(pay), _) => Some(pay.amount),
                (None, Funding::FromWalletOnly) => None,
                (None, Funding::TopUpFirst { amount }) => Some(amount),
                (None, Funding::ChargeCardForPrice { amount }) => Some(amount),
            };
            let committed = match card_amount {
                None => {
                    let batch = self.paid_batch(
                        &line,
                        &billing,
                        &p,
                        reason,
                        price,
                        anchor,
                        None,
                        self.clock.now(),
                    )?;
                    self.store.commit(batch, self.clock.now()).await?
                }
                Some(amount) => {
                    let purpose = PaymentPurpose::LineCharge;
                    let note = format!("wagate line {} ({})", line.id, reason.as_str());
                    let (payment, outcome) = self
                        .pay(
                            &billing,
                            purpose,
                            attempt_key.clone(),
                            amount,
                            Some((&line.id, p.period)),
                            &note,
                        )
                        .await?;
                    let funded = Funded {
                        payment: &payment,
                        outcome: &outcome,
                    };
                    match &outcome {
                        Outcome::Unknown(e) => {
                            // The job fails and runs again later: the rerun finds the pending
                            // payment and asks the processor what happened.
                            anyhow::bail!("payment {} outcome unknown: {e}", payment.id);
                        }
                        Outcome::Succeeded { .. } if payment.status == PaymentStatus::Succeeded => {
                            // Credited by an earlier run: now only the debit is missing.
                            let batch = self.paid_batch(
                                &line,
                                &billing,
                                &p,
                                reason,
                                price,
                                anchor,
                                None,
                                self.clock.now(),
                            )?;
                            self.store.commit(batch, self.clock.now()).await?
                        }
                        Outcome::Succeeded { .. } => {
                            let batch = self.paid_batch(
                                &line,
                                &billing,
                                &p,
                                reason,
                                price,
                                anchor,
                                Some(funded),
                                self.clock.now(),
                            )?;
                            match self.store.commit(batch, self.clock.now()).await? {
                                Ok(()) => Ok(()),
                                Err(Conflict::PaymentSettled) => Ok(()),
                                Err(conflict) => {
                                    // The card was charged but the charge could not land (the
                                    // line or wallet moved): the money still enters the wallet.
                                    self.credit_only(&line, &billing, &payment, &outcome)
                                        .await?;
                                    Err(conflict)
                                }
                            }
                        }
                        Outcome::Refused { .. } => {
                            if payment.status != PaymentStatus::Pending {
                                // Recorded by an earlier run; only a missed release remains.
                                self.release_if_final(&line, p.attempt).await?;
                                return Ok(());
                            }
                            let batch =
                                self.declined_batch(&line, &billing, &p, reason, price, funded)?;
                            match self.store.commit(batch, self.clock.now()).await? {
                                Ok(()) | Err(Conflict::PaymentSettled) => {
                                    self.release_if_final(&line, p.attempt).await?;
                                    Ok(())
                                }
                                Err(c) => Err(c),
                            }
                        }
                    }
                }
            };
            match committed {
                Ok(()) => {
                    self.scheduler.wake();
                    return Ok(());
                }
                Err(conflict) => {
                    tracing::debug!(line = %p.line, %conflict, "retrying a line charge");
                }
            }
        }
        anyhow::bail!("line {} kept changing while being charged", p.line)
    }

    /// The card payment this try works with: the first of its keys whose payment is not yet
    /// in the wallet (pending or declined), or the next unused key. A succeeded payment's
    /// money is already in the wallet (it was credited in the same transaction that settled
    /// it), so when the charge still could not land — another charge spent that money at the
    /// same instant — the wallet is funded afresh under a new key instead of waiting forever
    /// on a payment that cannot cover it again. Deterministic, so a rerun finds the same key.
    async fn open_attempt(
        &self,
        p: &ChargePayload,
    ) -> anyhow::Result<(String, Option<PaymentRecord>)> {
        let first = p.attempt_key();
        let mut key = first.clone();
        let mut funding = 1u32;
        loop {
            match self.store.payment_by_key(&key).await? {
                Some(pay) if pay.status == PaymentStatus::Succeeded => {
                    funding += 1;
                    key = format!("{first}:{funding}");
                }
                other => return Ok((key, other)),
            }
        }
    }

    /// Charges a run of jobs (see [`JobHandler::run_batch`]): each as [`Self::charge_line`]
    /// would alone at its own time, with one read of each kind and one commit per
    /// [`COMMIT_EVERY`] jobs — the next ones are read and prepared while one commits. It
    /// takes the jobs with nothing to do (line gone or released, period already charged) and
    /// the charges the wallet pays outright, and stops before the first that needs anything
    /// else — a grace retry, a payment attempt left by an earlier run, a card payment, an auto
    /// top-up, a line seen twice —, or at once for an account with a webhook endpoint
    /// receiving these events (its deliveries run in time order between the charges). Those
    /// run one by one.
    async fn charge_batch(
        &self,
        jobs: &[Job],
        not_before: Timestamp,
        wall_now: Timestamp,
    ) -> anyhow::Result<usize> {
        type Commit = tokio::task::JoinHandle<wagate_store::StoreResult<Result<(), Conflict>>>;
        let mut state = BatchState::default();
        let mut committed = 0;
        let mut pending: Option<(Commit, usize)> = None;
        let mut start = 0;
        let mut failure = None;
        while start < jobs.len() {
            let end = (start + COMMIT_EVERY).min(jobs.len());
            let planned = self
                .plan_charges(&jobs[start..end], jobs.get(end), &mut state, not_before)
                .await;
            // These follow the previous part: only if it committed.
            if let Some((commit, n)) = pending.take() {
                match commit.await {
                    Ok(Ok(Ok(()))) => committed += n,
                    Ok(Ok(Err(conflict))) => {
                        // Something moved meanwhile: the rest run one by one, reading afresh.
                        tracing::debug!(%conflict, "a batch of line charges stopped");
                        break;
                    }
                    Ok(Err(e)) => {
                        failure = Some(e.into());
                        break;
                    }
                    Err(e) => {
                        failure = Some(e.into());
                        break;
                    }
                }
            }
            let planned = match planned {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let n = planned.done.len();
            if n > 0 {
                let store = self.store.clone();
                pending = Some((
                    tokio::spawn(async move {
                        store
                            .commit_many(&planned.batches, &planned.done, wall_now)
                            .await
                    }),
                    n,
                ));
            }
            if n < end - start {
                break;
            }
            start = end;
        }
        if let Some((commit, n)) = pending.take() {
            match commit.await {
                Ok(Ok(Ok(()))) => committed += n,
                Ok(Ok(Err(conflict))) => {
                    tracing::debug!(%conflict, "a batch of line charges stopped");
                }
                Ok(Err(e)) => failure = Some(e.into()),
                Err(e) => failure = Some(e.into()),
            }
        }
        if committed > 0 {
            self.scheduler.wake();
        }
        match failure {
            // What committed stays done; the rest run one by one.
            Some(e) if committed == 0 => Err(e),
            _ => Ok(committed),
        }
    }

    /// The batches of a part of a run (see [`Self::charge_batch`]): what the first jobs
    /// commit, up to the first that must run alone. `next` is the job after the part.
    async fn plan_charges(
        &self,
        jobs: &[Job],
        next: Option<&Job>,
        state: &mut BatchState,
        not_before: Timestamp,
    ) -> anyhow::Result<Planned> {
        let mut payloads = Vec::with_capacity(jobs.len());
        for j in jobs {
            match ChargePayload::deserialize(&j.payload) {
                Ok(p) => payloads.push(p),
                Err(_) => break,
            }
        }
        let ids: Vec<LineId> = payloads.iter().map(|p| p.line.clone()).collect();
        let lines: HashMap<LineId, LineRecord> = self
            .store
            .lines_by_ids(&ids)
            .await?
            .into_iter()
            .map(|l| (l.id.clone(), l))
            .collect();
        let charged: HashSet<(LineId, u32)> = self
            .store
            .charged_periods(&ids)
            .await?
            .into_iter()
            .collect();
        let keys: Vec<String> = payloads.iter().map(ChargePayload::attempt_key).collect();
        let attempted: HashSet<String> = self
            .store
            .payments_by_keys(&keys)
            .await?
            .into_iter()
            .map(|p| p.attempt_key)
            .collect();
        let mut planned = Planned::default();
        for (i, (job, p)) in jobs.iter().zip(&payloads).enumerate() {
            let now = job.due_at.max(not_before);
            if !state.seen.insert(p.line.clone()) {
                break;
            }
            let Some(line) = lines.get(&p.line) else {
                planned.done.push(job.id.clone());
                continue;
            };
            if line.status == LineStatus::Released || charged.contains(&(p.line.clone(), p.period))
            {
                planned.done.push(job.id.clone());
                continue;
            }
            let (Some(price), Some(anchor)) = (line.price, line.anchor_at) else {
                break;
            };
            if p.attempt > 0 || attempted.contains(&keys[i]) {
                break;
            }
            let billing = match state.accounts.get_mut(&line.account_id) {
                Some(b) => b,
                None => {
                    let b = self.batchable_account(&line.account_id).await?;
                    state.accounts.entry(line.account_id.clone()).or_insert(b)
                }
            };
            let Some(billing) = billing.as_mut() else {
                break;
            };
            let auto = billing.auto_topup_enabled.then_some(AutoTopup {
                threshold: billing.auto_topup_threshold,
                amount: billing.auto_topup_amount,
            });
            if plan_charge_funding(billing.balance, price, auto) != Funding::FromWalletOnly {
                break;
            }
            let batch = self.paid_batch(line, billing, p, p.reason, price, anchor, None, now)?;
            if batch.start_auto_topup.is_some() {
                break;
            }
            billing.balance = Micros(billing.balance.0 - price.0);
            // A job it schedules before the next one's time must run in between.
            let ends = jobs
                .get(i + 1)
                .or(next)
                .is_some_and(|next| batch.jobs.iter().any(|j| j.due_at < next.due_at));
            planned.batches.push((batch, now));
            planned.done.push(job.id.clone());
            if ends {
                break;
            }
        }
        Ok(planned)
    }

    /// The account's billing, if its charges may be batched: no webhook endpoint of the
    /// account receives the events of a charge.
    async fn batchable_account(
        &self,
        account: &AccountId,
    ) -> anyhow::Result<Option<BillingAccountRecord>> {
        let page = PageRequest::new(Some(i64::from(MAX_LIMIT)), None)?;
        let endpoints = self.store.list_endpoints(account, &page).await?;
        let listens = |e: &EndpointRecord| {
            e.enabled
                && e.events
                    .iter()
                    .any(|t| t == "*" || t == "charge.succeeded" || t == "line.renewed")
        };
        if endpoints.has_more || endpoints.data.iter().any(listens) {
            return Ok(None);
        }
        Ok(Some(self.store.billing_account(account).await?))
    }

    /// The batch of a paid period: the card credit (when a card funded it), the debit, the
    /// unique charge row, the line's new period, events, the next renewal and maybe an
    /// auto top-up.
    #[allow(clippy::too_many_arguments)]
    fn paid_batch(
        &self,
        line: &LineRecord,
        billing: &BillingAccountRecord,
        p: &ChargePayload,
        reason: ChargeReason,
        price: Micros,
        anchor: Timestamp,
        funded: Option<Funded<'_>>,
        now: Timestamp,
    ) -> anyhow::Result<Batch> {
        let account = &line.account_id;
        let mut batch = Batch {
            billing_account: Some(account.clone()),
            ..Batch::default()
        };
        let mut balance = billing.balance.0;
        if let Some(f) = funded {
            batch.payment_update = f.outcome.update(&f.payment.id);
            batch.wallet_txns.push(card_credit(line, f.payment)?);
            balance += f.payment.amount.0;
        }
        let debit = TransactionId::generate();
        batch.wallet_txns.push(NewWalletTxn {
            id: debit.clone(),
            posting: line_charge(account, price)?,
            line_id: Some(line.id.clone()),
            payment_id: None,
            reverses: None,
            description: format!(
                "{} plan for {} ({})",
                line.plan.map_or("line", |p| p.as_str()),
                line.id,
                reason.as_str().replace('_', " ")
            ),
        });
        balance -= price.0;
        batch.line_charge = Some(NewLineCharge {
            line_id: line.id.clone(),
            period: p.period,
            amount: price,
            reason: reason.as_str().to_owned(),
            transaction_id: debit.clone(),
        });
        let mut next = line.clone();
        next.billing_status = BillingStatus::Active;
        next.paid_period = Some(p.period);
        next.current_period_start = Some(period_start(anchor, p.period));
        next.current_period_end = Some(period_end(anchor, p.period));
        next.grace_ends_at = None;
        next.updated_at = now;
        let mut after = next.clone();
        after.version += 1;
        batch.events.push(new_event(
            account,
            "charge.succeeded",
            Some(line.id.as_str()),
            json!({
                "line_id": line.id,
                "amount": price.to_string(),
                "currency": billing.currency,
                "reason": reason.as_str(),
                "period": p.period,
                "transaction_id": debit,
                "current_period_start": after.current_period_start.map(rfc3339),
                "current_period_end": after.current_period_end.map(rfc3339),
            }),
            now,
        ));
        if p.period > 0 || line.billing_status == BillingStatus::PastDue {
            batch.events.push(self.lines.line_event_at(
                &after,
                "line.renewed",
                json!({ "period": p.period, "amount": price.to_string(), "reason": reason.as_str() }),
                now,
            ));
        }
        batch.update_line = Some(next);
        batch.jobs.push(charge_job(
            account,
            &line.id,
            p.period + 1,
            0,
            period_start(anchor, p.period + 1),
            ChargeReason::Renewal,
        ));
        batch.start_auto_topup =
            Self::auto_topup_job(billing, account, Micros(balance), &debit, now);
        Ok(batch)
    }

    /// The batch of a declined charge: the payment's outcome, past due with its grace, events
    /// and the next daily retry (none after the last).
    fn declined_batch(
        &self,
        line: &LineRecord,
        billing: &BillingAccountRecord,
        p: &ChargePayload,
        reason: ChargeReason,
        price: Micros,
        funded: Funded<'_>,
    ) -> anyhow::Result<Batch> {
        let now = self.clock.now();
        let account = &line.account_id;
        let first_failure = line.billing_status != BillingStatus::PastDue;
        let grace_end = match line.grace_ends_at {
            Some(g) if !first_failure => g,
            _ => grace_ends_at(now),
        };
        let grace_start = grace_end - GRACE;
        let next_retry =
            (p.attempt < LAST_RETRY).then(|| grace_start + RETRY_EVERY * ((p.attempt + 1) as i32));
        let (code, message) = match funded.outcome {
            Outcome::Refused { code, message, .. } => (code.clone(), message.clone()),
            _ => (String::new(), String::new()),
        };
        let mut next = line.clone();
        next.billing_status = BillingStatus::PastDue;
        next.grace_ends_at = Some(grace_end);
        next.updated_at = now;
        let mut after = next.clone();
        after.version += 1;
        let mut batch = Batch {
            billing_account: Some(account.clone()),
            payment_update: funded.outcome.update(&funded.payment.id),
            ..Batch::default()
        };
        batch.events.push(new_event(
            account,
            "charge.failed",
            Some(line.id.as_str()),
            json!({
                "line_id": line.id,
                "amount": price.to_string(),
                "currency": billing.currency,
                "reason": reason.as_str(),
                "period": p.period,
                "attempt": p.attempt,
                "failure_code": code,
                "failure_message": message,
                "next_retry_at": next_retry.map(rfc3339),
                "grace_ends_at": rfc3339(grace_end),
            }),
            now,
        ));
        if first_failure {
            batch.events.push(self.lines.line_event(
                &after,
                "line.past_due",
                json!({ "grace_ends_at": rfc3339(grace_end), "period": p.period }),
            ));
        }
        if let Some(at) = next_retry {
            batch.jobs.push(charge_job(
                account,
                &line.id,
                p.period,
                p.attempt + 1,
                at,
                ChargeReason::GraceRetry,
            ));
        }
        batch.update_line = Some(next);
        Ok(batch)
    }

    /// Credits a successful card payment whose line charge could not be written.
    async fn credit_only(
        &self,
        line: &LineRecord,
        billing: &BillingAccountRecord,
        payment: &PaymentRecord,
        outcome: &Outcome,
    ) -> anyhow::Result<()> {
        let batch = Batch {
            billing_account: Some(billing.account_id.clone()),
            payment_update: outcome.update(&payment.id),
            wallet_txns: vec![card_credit(line, payment)?],
            ..Batch::default()
        };
        match self.store.commit(batch, self.clock.now()).await? {
            Ok(()) | Err(Conflict::PaymentSettled) => Ok(()),
            Err(c) => anyhow::bail!("could not credit payment {}: {c}", payment.id),
        }
    }

    /// After the last retry failed: release the line for non-payment.
    async fn release_if_final(&self, line: &LineRecord, attempt: u32) -> anyhow::Result<()> {
        if attempt >= LAST_RETRY {
            self.lines
                .release(&line.account_id, &line.id, ReleaseReason::PaymentFailed)
                .await?;
        }
        Ok(())
    }
}

/// A card payment for `line` entering the wallet as a `topup` that names the line (§4: the
/// card money is credited before the line's debit, so the transactions add up).
fn card_credit(line: &LineRecord, payment: &PaymentRecord) -> anyhow::Result<NewWalletTxn> {
    Ok(NewWalletTxn {
        id: TransactionId::generate(),
        posting: topup(&line.account_id, payment.amount)?,
        line_id: Some(line.id.clone()),
        payment_id: Some(payment.id.clone()),
        reverses: None,
        description: format!("Card payment for line {}", line.id),
    })
}

/// The line charge job.
pub(crate) struct ChargeLine(pub(crate) Arc<BillingService>);

#[async_trait]
impl JobHandler for ChargeLine {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let p: ChargePayload = serde_json::from_value(job.payload.clone())?;
        self.0.charge_line(p).await
    }

    async fn run_batch(
        &self,
        jobs: &[Job],
        not_before: Timestamp,
        wall_now: Timestamp,
    ) -> anyhow::Result<usize> {
        self.0.charge_batch(jobs, not_before, wall_now).await
    }
}
