//! Flat per-line billing (PRODUCT.md §4): the card on file, the wallet and its top-ups, auto
//! top-up, and the charge jobs that bill each line at ready (or trial end) and on every
//! monthly anniversary, with a 5-day grace of daily retries before release.
//!
//! Card payments follow one discipline: the attempt is recorded (`payments`, unique attempt
//! key) before the processor is called, with an idempotency key derived from it; its outcome
//! is written in the same transaction as the money it moves. A rerun of the same attempt finds
//! the row and asks the processor for the outcome instead of charging again.

pub mod charges;
pub mod days;
pub mod subscriptions;
pub mod wallet;

use std::sync::Arc;

use jiff::Timestamp;
use wagate_domain::clock::Clock;
use wagate_domain::ids::PaymentId;
use wagate_domain::money::Micros;
use wagate_payments::{ChargeRequest, PaymentError, PaymentProcessor};
use wagate_store::{
    BillingAccountRecord, PaymentPurpose, PaymentRecord, PaymentStatus, PaymentUpdate, Store,
};

use crate::lines::LineService;
use crate::scheduler::Scheduler;

/// Job: charge a line for a period (the kind is shared with the line service that schedules
/// the first one).
pub use crate::lines::CHARGE_JOB;
/// Job: an auto top-up of an account's wallet.
pub const AUTO_TOPUP_JOB: &str = "billing.auto_topup";

/// The billing use cases.
pub struct BillingService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) scheduler: Scheduler,
    pub(crate) processor: Arc<dyn PaymentProcessor>,
    pub(crate) lines: Arc<LineService>,
}

impl std::fmt::Debug for BillingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingService").finish_non_exhaustive()
    }
}

/// What the processor said about a payment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Charged.
    Succeeded {
        /// The processor's payment id.
        processor_id: String,
    },
    /// Refused: declined card, invalid request or no card.
    Refused {
        /// `declined` or `failed`.
        status: PaymentStatus,
        /// The code.
        code: String,
        /// The message.
        message: String,
    },
    /// Not known (timeout, outage): resolve later, never charge anew.
    Unknown(String),
}

impl Outcome {
    /// The payment row update that records this outcome.
    pub(crate) fn update(&self, payment: &PaymentId) -> Option<PaymentUpdate> {
        match self {
            Outcome::Succeeded { processor_id } => Some(PaymentUpdate {
                id: payment.clone(),
                status: PaymentStatus::Succeeded,
                processor_id: Some(processor_id.clone()),
                error_code: None,
                error_message: None,
            }),
            Outcome::Refused {
                status,
                code,
                message,
            } => Some(PaymentUpdate {
                id: payment.clone(),
                status: *status,
                processor_id: None,
                error_code: Some(code.clone()),
                error_message: Some(message.clone()),
            }),
            Outcome::Unknown(_) => None,
        }
    }
}

impl BillingService {
    /// The billing service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        scheduler: Scheduler,
        processor: Arc<dyn PaymentProcessor>,
        lines: Arc<LineService>,
    ) -> Arc<Self> {
        Arc::new(BillingService {
            store,
            clock,
            scheduler,
            processor,
            lines,
        })
    }

    /// The payment processor.
    pub fn processor(&self) -> &Arc<dyn PaymentProcessor> {
        &self.processor
    }

    /// Registers the billing jobs.
    pub fn register(self: &Arc<Self>) {
        self.scheduler
            .register(CHARGE_JOB, Arc::new(charges::ChargeLine(self.clone())));
        self.scheduler
            .register(AUTO_TOPUP_JOB, Arc::new(wallet::AutoTopupJob(self.clone())));
    }

    /// Records a payment attempt (or finds the earlier one with the same key) and gets its
    /// outcome: a fresh attempt charges the card; an attempt left pending by an earlier run
    /// is resolved by asking the processor, and charged only if the processor never saw it.
    pub(crate) async fn pay(
        &self,
        billing: &BillingAccountRecord,
        purpose: PaymentPurpose,
        attempt_key: String,
        amount: Micros,
        line: Option<(&wagate_domain::ids::LineId, u32)>,
        note: &str,
    ) -> anyhow::Result<(PaymentRecord, Outcome)> {
        let now = self.clock.now();
        let fresh = PaymentRecord {
            id: PaymentId::generate(),
            account_id: billing.account_id.clone(),
            purpose,
            attempt_key,
            line_id: line.map(|(l, _)| l.clone()),
            period: line.map(|(_, p)| p),
            amount,
            status: PaymentStatus::Pending,
            processor_id: None,
            error_code: None,
            error_message: None,
            created_at: now,
        };
        let payment = self.store.begin_payment(&fresh).await?;
        let outcome = match payment.status {
            PaymentStatus::Succeeded => Outcome::Succeeded {
                processor_id: payment.processor_id.clone().unwrap_or_default(),
            },
            PaymentStatus::Declined | PaymentStatus::Failed => Outcome::Refused {
                status: payment.status,
                code: payment.error_code.clone().unwrap_or_default(),
                message: payment.error_message.clone().unwrap_or_default(),
            },
            PaymentStatus::Pending => {
                let (Some(customer), Some(card)) = (&billing.customer_id, &billing.card) else {
                    return Ok((
                        payment,
                        Outcome::Refused {
                            status: PaymentStatus::Failed,
                            code: "card_required".into(),
                            message: "no card on file".into(),
                        },
                    ));
                };
                let key = payment.id.to_string();
                let req = ChargeRequest {
                    account: &billing.account_id,
                    customer_id: customer,
                    card_id: &card.card_id,
                    amount_cents: payment.amount.to_cents_ceil(),
                    currency: &billing.currency,
                    idempotency_key: &key,
                    note,
                };
                let earlier_run = payment.id != fresh.id;
                let result = if earlier_run {
                    match self.processor.resolve(&req).await {
                        Ok(Some(p)) => Ok(p),
                        Ok(None) => self.processor.charge(&req).await,
                        Err(e) => Err(e),
                    }
                } else {
                    self.processor.charge(&req).await
                };
                match result {
                    Ok(p) => Outcome::Succeeded {
                        processor_id: p.processor_id,
                    },
                    Err(PaymentError::Declined { code, message }) => Outcome::Refused {
                        status: PaymentStatus::Declined,
                        code,
                        message,
                    },
                    Err(PaymentError::Invalid { code, message }) => Outcome::Refused {
                        status: PaymentStatus::Failed,
                        code,
                        message,
                    },
                    Err(PaymentError::Unknown(e)) => Outcome::Unknown(e),
                }
            }
        };
        Ok((payment, outcome))
    }

    /// The auto top-up job a debit calls for (§4: a debit that leaves the balance `after`
    /// below the threshold tops up), if auto top-up may start now and none is in flight;
    /// `b` as read before the debit (the store starts one top-up at a time whatever it says).
    pub(crate) fn auto_topup_job(
        b: &BillingAccountRecord,
        account: &wagate_domain::ids::AccountId,
        after: Micros,
        debit: &wagate_domain::ids::TransactionId,
        now: Timestamp,
    ) -> Option<wagate_domain::jobs::NewJob> {
        let auto = b
            .auto_topup_enabled
            .then_some(wagate_domain::billing::ledger::AutoTopup {
                threshold: b.auto_topup_threshold,
                amount: b.auto_topup_amount,
            });
        let wanted = wagate_domain::billing::ledger::auto_topup_after_debit(after, auto).is_some()
            && Self::auto_topup_allowed(b, now)
            && !b.auto_topup_in_flight;
        wanted.then(|| wagate_domain::jobs::NewJob {
            kind: AUTO_TOPUP_JOB.to_owned(),
            account_id: Some(account.clone()),
            payload: serde_json::json!({ "after": debit }),
            due_at: now,
            dedupe_key: Some(format!("auto:{debit}")),
            line_id: None,
        })
    }

    /// Whether an auto top-up may start now: on, positive amount, not blocked after a decline.
    pub(crate) fn auto_topup_allowed(b: &BillingAccountRecord, now: Timestamp) -> bool {
        b.auto_topup_enabled
            && b.auto_topup_amount.0 > 0
            && b.auto_topup_blocked_until.is_none_or(|until| until <= now)
    }
}

/// The processor of a production server without payment settings: every call is refused with
/// `payments_not_configured`, so nothing is ever charged by accident.
#[derive(Debug, Default)]
pub struct NotConfigured;

fn not_configured() -> PaymentError {
    PaymentError::Invalid {
        code: "payments_not_configured".into(),
        message: "no payment processor is configured on this server".into(),
    }
}

#[async_trait::async_trait]
impl PaymentProcessor for NotConfigured {
    fn configured(&self) -> bool {
        false
    }

    async fn store_card(
        &self,
        _req: &wagate_payments::StoreCardRequest<'_>,
    ) -> Result<wagate_payments::StoredCard, PaymentError> {
        Err(not_configured())
    }

    async fn charge(
        &self,
        _req: &ChargeRequest<'_>,
    ) -> Result<wagate_payments::Payment, PaymentError> {
        Err(not_configured())
    }

    async fn resolve(
        &self,
        _req: &ChargeRequest<'_>,
    ) -> Result<Option<wagate_payments::Payment>, PaymentError> {
        Ok(None)
    }

    async fn disable_card(&self, _customer_id: &str, _card_id: &str) -> Result<(), PaymentError> {
        Ok(())
    }
}
