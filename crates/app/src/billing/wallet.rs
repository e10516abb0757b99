//! The card on file, the wallet, top-ups (manual and automatic), transactions and forecast.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::SignedDuration;
use serde_json::json;
use wagate_domain::billing::forecast::{forecast, Forecast, ForecastLine, ForecastStatus};
use wagate_domain::billing::ledger::{ceil_to_cent, topup};
use wagate_domain::billing::plan::Plan;
use wagate_domain::billing::schedule::period_start;
use wagate_domain::ids::{random_base62, TransactionId};
use wagate_domain::jobs::Job;
use wagate_domain::line::{BillingStatus, LineStatus};
use wagate_domain::money::Micros;
use wagate_domain::page::{Page, PageRequest};
use wagate_payments::{PaymentError, StoreCardRequest};
use wagate_store::{
    Batch, BillingAccountRecord, BillingPatch, CardRecord, NewWalletTxn, PaymentPurpose,
    PaymentRecord, TransactionRecord,
};

use super::{BillingService, Outcome};
use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};
use crate::scheduler::JobHandler;
use crate::webhooks::new_event;

/// Smallest top-up.
pub const TOPUP_MIN: Micros = Micros(5_000_000);
/// Largest top-up.
pub const TOPUP_MAX: Micros = Micros(10_000_000_000);
/// After a declined auto top-up, no new one for this long.
pub const AUTO_TOPUP_BLOCK: SignedDuration = SignedDuration::from_hours(1);

const RETRIES: usize = 16;

/// The result of a top-up request.
#[derive(Debug, Clone)]
pub struct TopupResult {
    /// The card payment.
    pub payment: PaymentRecord,
    /// `succeeded` or `pending` (the processor's answer is not known yet; it is resolved in
    /// the background and the wallet is credited then, with `wallet.topped_up`).
    pub status: &'static str,
    /// The wallet credit, when it succeeded.
    pub transaction_id: Option<TransactionId>,
    /// The wallet after it.
    pub balance: Micros,
}

/// Checks a top-up amount: whole cents, 5.00 to 10000.00.
pub fn validate_topup_amount(param: &str, amount: Micros) -> AppResult<()> {
    if amount.0 % 10_000 != 0 {
        return Err(AppError::invalid(param, "must be in whole cents"));
    }
    if amount < TOPUP_MIN || amount > TOPUP_MAX {
        return Err(AppError::invalid(
            param,
            "must be between 5.00 and 10000.00",
        ));
    }
    Ok(())
}

fn processor_error(e: PaymentError, param: &str) -> AppError {
    match e {
        PaymentError::Declined { code, message } => {
            RuleError::CardDeclined { code, message }.into()
        }
        PaymentError::Invalid { code, message } => AppError::invalid(
            param,
            format!("the processor refused it ({code}): {message}"),
        ),
        PaymentError::Unknown(e) => RuleError::ProcessorUnavailable(e).into(),
    }
}

impl BillingService {
    /// The account's billing state (card, wallet, auto top-up).
    pub async fn account(&self, who: &Principal) -> AppResult<BillingAccountRecord> {
        Ok(self.store.billing_account(&who.account.id).await?)
    }

    /// Applies `patch` (built from a fresh read) until it commits.
    async fn patch<F>(&self, who: &Principal, f: F) -> AppResult<BillingAccountRecord>
    where
        F: Fn(&BillingAccountRecord) -> BillingPatch,
    {
        for _ in 0..RETRIES {
            let b = self.store.billing_account(&who.account.id).await?;
            let batch = Batch {
                billing_account: Some(who.account.id.clone()),
                billing_patch: Some(f(&b)),
                ..Batch::default()
            };
            if self.store.commit(batch, self.clock.now()).await?.is_ok() {
                return Ok(self.store.billing_account(&who.account.id).await?);
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "billing account kept changing"
        )))
    }

    /// Stores a card from a processor nonce, replacing any card on file.
    pub async fn add_card(&self, who: &Principal, source_id: &str) -> AppResult<CardRecord> {
        if !self.processor.configured() {
            return Err(RuleError::PaymentsNotConfigured.into());
        }
        if source_id.trim().is_empty() || source_id.len() > 512 {
            return Err(AppError::invalid(
                "source_id",
                "must be a card nonce from the payment form",
            ));
        }
        let before = self.store.billing_account(&who.account.id).await?;
        let key = format!("card-{}", random_base62(24));
        let stored = self
            .processor
            .store_card(&StoreCardRequest {
                account: &who.account.id,
                account_name: &who.account.name,
                customer_id: before.customer_id.as_deref(),
                source_id,
                idempotency_key: &key,
            })
            .await
            .map_err(|e| processor_error(e, "source_id"))?;
        let card = CardRecord {
            card_id: stored.card_id.clone(),
            brand: stored.brand,
            last4: stored.last4,
            exp_month: stored.exp_month,
            exp_year: stored.exp_year,
            added_at: self.clock.now(),
        };
        let customer = stored.customer_id.clone();
        self.patch(who, |b| {
            let mut p = BillingPatch::new(b.version);
            p.customer_id = Some(Some(customer.clone()));
            p.card = Some(Some(card.clone()));
            p
        })
        .await?;
        if let (Some(old), Some(cust)) = (&before.card, &before.customer_id) {
            if old.card_id != stored.card_id {
                // Best effort: the new card is already the one we charge.
                if let Err(e) = self.processor.disable_card(cust, &old.card_id).await {
                    tracing::warn!(error = %e, "could not disable the replaced card");
                }
            }
        }
        Ok(card)
    }

    /// Removes the card on file. Lines keep running; their next charge fails unless the
    /// wallet covers it, and they go past due like any declined charge.
    pub async fn delete_card(&self, who: &Principal) -> AppResult<CardRecord> {
        let before = self.store.billing_account(&who.account.id).await?;
        let card = before.card.clone().ok_or(AppError::NotFound("card"))?;
        self.patch(who, |b| {
            let mut p = BillingPatch::new(b.version);
            p.card = Some(None);
            p
        })
        .await?;
        if let Some(cust) = &before.customer_id {
            if let Err(e) = self.processor.disable_card(cust, &card.card_id).await {
                tracing::warn!(error = %e, "could not disable the removed card");
            }
        }
        Ok(card)
    }

    /// Sets auto top-up. Amount 5.00–10000.00 in whole cents; threshold 0–10000.00.
    pub async fn set_auto_topup(
        &self,
        who: &Principal,
        enabled: bool,
        threshold: Micros,
        amount: Micros,
    ) -> AppResult<BillingAccountRecord> {
        if threshold.0 < 0 || threshold > TOPUP_MAX {
            return Err(AppError::invalid(
                "threshold",
                "must be between 0.00 and 10000.00",
            ));
        }
        validate_topup_amount("amount", amount)?;
        self.patch(who, |b| {
            let mut p = BillingPatch::new(b.version);
            p.auto_topup = Some((enabled, threshold, amount));
            if !enabled {
                p.auto_topup_blocked_until = Some(None);
            }
            p
        })
        .await
    }

    /// Charges the card `amount` and credits the wallet. `key` (the request's
    /// `Idempotency-Key`) makes a repeat find the first attempt instead of charging again.
    pub async fn topup(
        &self,
        who: &Principal,
        amount: Micros,
        key: Option<&str>,
    ) -> AppResult<TopupResult> {
        validate_topup_amount("amount", amount)?;
        if !self.processor.configured() {
            return Err(RuleError::PaymentsNotConfigured.into());
        }
        let billing = self.store.billing_account(&who.account.id).await?;
        if billing.card.is_none() {
            return Err(RuleError::CardRequired.into());
        }
        let attempt_key = match key {
            Some(k) => format!("topup:{}:{k}", who.account.id),
            None => format!("topup:{}", random_base62(24)),
        };
        let (payment, outcome) = self
            .pay(
                &billing,
                PaymentPurpose::Topup,
                attempt_key,
                amount,
                None,
                "wagate wallet top-up",
            )
            .await?;
        if let Outcome::Unknown(e) = &outcome {
            tracing::warn!(payment = %payment.id, error = %e, "top-up outcome unknown; resolving in the background");
            let job = wagate_domain::jobs::NewJob {
                kind: super::AUTO_TOPUP_JOB.to_owned(),
                account_id: Some(who.account.id.clone()),
                payload: json!({ "resolve": payment.attempt_key }),
                due_at: self.clock.now() + SignedDuration::from_secs(30),
                dedupe_key: Some(format!("resolve:{}", payment.id)),
                line_id: None,
            };
            self.store.schedule_jobs(&[job], self.clock.now()).await?;
            return Ok(TopupResult {
                payment,
                status: "pending",
                transaction_id: None,
                balance: billing.balance,
            });
        }
        let txn = self
            .record_topup(&billing, &payment, &outcome, None)
            .await?;
        match outcome {
            Outcome::Succeeded { .. } => {
                let after = self.store.billing_account(&who.account.id).await?;
                Ok(TopupResult {
                    payment,
                    status: "succeeded",
                    transaction_id: txn,
                    balance: after.balance,
                })
            }
            Outcome::Refused {
                status,
                code,
                message,
            } => Err(match status {
                wagate_store::PaymentStatus::Declined => {
                    RuleError::CardDeclined { code, message }.into()
                }
                _ if code == "card_required" => RuleError::CardRequired.into(),
                _ => AppError::invalid(
                    "amount",
                    format!("the processor refused it ({code}): {message}"),
                ),
            }),
            Outcome::Unknown(_) => unreachable!("handled above"),
        }
    }

    /// Writes a top-up's outcome: the payment row, the wallet credit and `wallet.topped_up`,
    /// or `wallet.topup_failed`, together with `patch` (auto top-up bookkeeping). Returns the
    /// credit's transaction id. A payment already recorded is left alone.
    async fn record_topup(
        &self,
        billing: &BillingAccountRecord,
        payment: &PaymentRecord,
        outcome: &Outcome,
        patch: Option<&(dyn Fn(&BillingAccountRecord) -> BillingPatch + Sync)>,
    ) -> AppResult<Option<TransactionId>> {
        let account = &billing.account_id;
        let auto = payment.purpose == PaymentPurpose::AutoTopup;
        for _ in 0..RETRIES {
            let now = self.clock.now();
            let current = self.store.billing_account(account).await?;
            let already = payment.status != wagate_store::PaymentStatus::Pending;
            let mut batch = Batch {
                billing_account: Some(account.clone()),
                billing_patch: patch.map(|f| f(&current)),
                ..Batch::default()
            };
            let mut txn_id = None;
            if !already {
                batch.payment_update = outcome.update(&payment.id);
                match outcome {
                    Outcome::Succeeded { .. } => {
                        let id = TransactionId::generate();
                        let posting = topup(account, payment.amount)
                            .map_err(|e| AppError::Internal(e.into()))?;
                        batch.wallet_txns.push(NewWalletTxn {
                            id: id.clone(),
                            posting,
                            line_id: None,
                            payment_id: Some(payment.id.clone()),
                            reverses: None,
                            description: if auto {
                                "Auto top-up".into()
                            } else {
                                "Top-up".into()
                            },
                        });
                        batch.events.push(new_event(
                            account,
                            "wallet.topped_up",
                            None,
                            json!({
                                "amount": payment.amount.to_string(),
                                "currency": billing.currency,
                                "balance": Micros(current.balance.0 + payment.amount.0).to_decimal(2),
                                "transaction_id": id,
                                "payment_id": payment.id,
                                "auto": auto,
                            }),
                            now,
                        ));
                        txn_id = Some(id);
                    }
                    Outcome::Refused { code, message, .. } => {
                        batch.events.push(new_event(
                            account,
                            "wallet.topup_failed",
                            None,
                            json!({
                                "amount": payment.amount.to_string(),
                                "currency": billing.currency,
                                "payment_id": payment.id,
                                "auto": auto,
                                "failure_code": code,
                                "failure_message": message,
                            }),
                            now,
                        ));
                    }
                    Outcome::Unknown(_) => {}
                }
            }
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    self.scheduler.wake();
                    return Ok(txn_id);
                }
                // A concurrent run of the same attempt recorded it first.
                Err(wagate_store::Conflict::PaymentSettled) => return Ok(None),
                Err(_) => {}
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "billing account kept changing"
        )))
    }

    /// Runs an auto top-up (or resolves a top-up whose outcome was unknown).
    async fn run_auto_topup(&self, job: &Job) -> anyhow::Result<()> {
        let account = job
            .account_id
            .clone()
            .ok_or_else(|| anyhow::anyhow!("auto top-up job without an account"))?;
        let billing = self.store.billing_account(&account).await?;
        if let Some(key) = job.payload.get("resolve").and_then(|k| k.as_str()) {
            let Some(payment) = self.store.payment_by_key(key).await? else {
                return Ok(());
            };
            if payment.status != wagate_store::PaymentStatus::Pending {
                return Ok(());
            }
            let (payment, outcome) = self
                .pay(
                    &billing,
                    payment.purpose,
                    payment.attempt_key.clone(),
                    payment.amount,
                    None,
                    "wagate wallet top-up",
                )
                .await?;
            if let Outcome::Unknown(e) = outcome {
                anyhow::bail!("top-up {} still unknown: {e}", payment.id);
            }
            self.record_topup(&billing, &payment, &outcome, None)
                .await?;
            return Ok(());
        }
        let clear = |b: &BillingAccountRecord| {
            let mut p = BillingPatch::new(b.version);
            p.auto_topup_in_flight = Some(false);
            p
        };
        let now = self.clock.now();
        if !billing.auto_topup_in_flight || !Self::auto_topup_allowed(&billing, now) {
            self.record_none(&billing, &clear).await?;
            return Ok(());
        }
        let amount = ceil_to_cent(billing.auto_topup_amount);
        let (payment, outcome) = self
            .pay(
                &billing,
                PaymentPurpose::AutoTopup,
                format!("auto:{}", job.id),
                amount,
                None,
                "wagate wallet auto top-up",
            )
            .await?;
        match &outcome {
            Outcome::Unknown(e) => anyhow::bail!("auto top-up {} unknown: {e}", payment.id),
            Outcome::Succeeded { .. } => {
                self.record_topup(&billing, &payment, &outcome, Some(&clear))
                    .await?;
            }
            Outcome::Refused { .. } => {
                let block = |b: &BillingAccountRecord| {
                    let mut p = BillingPatch::new(b.version);
                    p.auto_topup_in_flight = Some(false);
                    p.auto_topup_blocked_until = Some(Some(now + AUTO_TOPUP_BLOCK));
                    p
                };
                self.record_topup(&billing, &payment, &outcome, Some(&block))
                    .await?;
            }
        }
        Ok(())
    }

    async fn record_none(
        &self,
        billing: &BillingAccountRecord,
        patch: &(dyn Fn(&BillingAccountRecord) -> BillingPatch + Sync),
    ) -> AppResult<()> {
        for _ in 0..RETRIES {
            let current = self.store.billing_account(&billing.account_id).await?;
            let batch = Batch {
                billing_account: Some(billing.account_id.clone()),
                billing_patch: Some(patch(&current)),
                ..Batch::default()
            };
            if self.store.commit(batch, self.clock.now()).await?.is_ok() {
                return Ok(());
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "billing account kept changing"
        )))
    }

    /// The account's wallet transactions, newest first.
    pub async fn transactions(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> AppResult<Page<TransactionRecord>> {
        Ok(self.store.list_transactions(&who.account.id, page).await?)
    }

    /// What the account should expect to pay.
    pub async fn forecast(&self, who: &Principal) -> AppResult<Forecast> {
        let now = self.clock.now();
        let prices = &self.lines.config().prices;
        let lines = self.store.open_lines(&who.account.id).await?;
        let items: Vec<ForecastLine> = lines
            .iter()
            .map(|l| {
                if l.status == LineStatus::Pending || l.plan.is_none() {
                    return ForecastLine {
                        id: l.id.clone(),
                        status: ForecastStatus::Pending,
                        price: Plan::max_price(l.calling_enabled, l.allow_calling, prices),
                        anchor: None,
                        next_charge_at: None,
                    };
                }
                let plan = l.plan.unwrap_or(Plan::Messaging);
                let next = match l.billing_status {
                    BillingStatus::Trialing => l.trial_ends_at,
                    BillingStatus::PastDue => Some(now),
                    _ => match (l.anchor_at, l.paid_period) {
                        (Some(a), Some(p)) => Some(period_start(a, p + 1)),
                        (Some(a), None) => Some(a),
                        _ => None,
                    },
                };
                ForecastLine {
                    id: l.id.clone(),
                    status: ForecastStatus::Billed(plan),
                    price: l.price.unwrap_or_else(|| plan.price(prices)),
                    anchor: l.anchor_at,
                    next_charge_at: next,
                }
            })
            .collect();
        Ok(forecast(&items, now))
    }
}

/// The auto top-up job.
pub(crate) struct AutoTopupJob(pub(crate) Arc<BillingService>);

#[async_trait]
impl JobHandler for AutoTopupJob {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        self.0.run_auto_topup(job).await
    }
}
