//! Per-line Stripe subscriptions (PRODUCT.md §11): for partners billed in days who pay some
//! lines by card instead of days — a Stripe customer once per account, a subscription per
//! line at the account's individual price (a month is 30 days at the day price; a year costs
//! [`StripeSetup::year_months`] months), and Stripe's webhooks keeping the line's
//! `paid_until` in step.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_domain::clock::Clock;
use wagate_domain::ids::LineId;
use wagate_domain::line::LineStatus;
use wagate_domain::time::rfc3339;
use wagate_store::{Batch, Conflict, DaysWrite, LineSubscriptionRecord, Store};
use wagate_stripe::{
    EventObject, Interval, NewCustomer, NewPrice, NewSubscription, StripeClient, StripeError,
};

use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};
use crate::lines::LineService;

/// How often a subscription bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionInterval {
    /// Every month (30 days at the day price).
    Month,
    /// Every year ([`StripeSetup::year_months`] months).
    Year,
}

impl SubscriptionInterval {
    /// The API text.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionInterval::Month => "month",
            SubscriptionInterval::Year => "year",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(SubscriptionInterval::Month),
            "year" => Some(SubscriptionInterval::Year),
            _ => None,
        }
    }

    fn stripe(self) -> Interval {
        match self {
            SubscriptionInterval::Month => Interval::Month,
            SubscriptionInterval::Year => Interval::Year,
        }
    }
}

/// Job: cancel a released line's Stripe subscription, so Stripe stops charging for it.
pub const CANCEL_JOB: &str = "stripe.cancel_subscription";

/// How far Stripe's signature timestamp may be from now.
const TOLERANCE_SECS: i64 = wagate_stripe::DEFAULT_TOLERANCE_SECS;

/// Stripe, as this server is set up to use it.
#[derive(Debug, Clone)]
pub struct StripeSetup {
    /// The API client (base URL and secret key).
    pub client: StripeClient,
    /// The secret Stripe signs webhooks with (`whsec_…`).
    pub webhook_secret: String,
    /// What a year costs, in months (the annual discount: 10 by default).
    pub year_months: u32,
}

/// Per-line subscriptions and Stripe's webhooks.
pub struct SubscriptionService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lines: Arc<LineService>,
    stripe: Option<StripeSetup>,
}

impl std::fmt::Debug for SubscriptionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionService")
            .finish_non_exhaustive()
    }
}

/// Why a Stripe webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRefused {
    /// Stripe is not configured here.
    #[error("Stripe is not configured on this server")]
    NotConfigured,
    /// `Stripe-Signature` missing, forged or too old: nothing was stored.
    #[error("invalid Stripe-Signature: {0}")]
    Signature(String),
    /// The body is not a Stripe event.
    #[error("not a Stripe event: {0}")]
    Malformed(String),
    /// Ours to fix (the store failed): Stripe retries.
    #[error(transparent)]
    App(#[from] AppError),
}

impl SubscriptionService {
    /// The service; `stripe` is `None` on a server without Stripe settings.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        lines: Arc<LineService>,
        stripe: Option<StripeSetup>,
    ) -> Arc<Self> {
        Arc::new(SubscriptionService {
            store,
            clock,
            lines,
            stripe,
        })
    }

    /// Registers the job that cancels released lines' subscriptions.
    pub fn register(self: &Arc<Self>, scheduler: &crate::scheduler::Scheduler) {
        scheduler.register(CANCEL_JOB, Arc::new(CancelJob(self.clone())));
    }

    /// Cancels a released line's subscription at Stripe and records it canceled.
    async fn cancel(&self, line: &LineId) -> AppResult<()> {
        let Some(mut record) = self.store.line_subscription(line).await? else {
            return Ok(());
        };
        if !live(&record.status) {
            return Ok(());
        }
        let stripe = self.stripe()?;
        match stripe
            .client
            .cancel_subscription(&record.subscription_id)
            .await
        {
            Ok(_) => {}
            // Gone at Stripe already: nothing bills the line.
            Err(StripeError::InvalidRequest(e)) if e.http_status == 404 => {}
            Err(e) => {
                return Err(anyhow::anyhow!("cancelling {}: {e}", record.subscription_id).into())
            }
        }
        record.status = "canceled".to_owned();
        self.record(record, None, None).await?;
        Ok(())
    }

    fn stripe(&self) -> AppResult<&StripeSetup> {
        self.stripe
            .as_ref()
            .ok_or_else(|| RuleError::StripeNotConfigured.into())
    }

    /// Subscribes a line of an account billed in days: monthly or yearly, charged now to the
    /// card `payment_method` (a Stripe PaymentMethod; needed the first time, later the
    /// account's default). The line is paid until the end of the first period.
    pub async fn subscribe(
        &self,
        who: &Principal,
        line_id: &LineId,
        interval: SubscriptionInterval,
        payment_method: Option<&str>,
    ) -> AppResult<(LineSubscriptionRecord, Option<Timestamp>)> {
        let line = self.lines.get(&who.account.id, line_id).await?;
        if line.status == LineStatus::Released {
            return Err(RuleError::LineReleased.into());
        }
        let settings = self
            .lines
            .days_billing(&who.account.id)
            .await?
            .ok_or(RuleError::NotDaysBilling)?;
        let stripe = self.stripe()?;
        let previous = self.store.line_subscription(line_id).await?;
        if let Some(p) = previous.as_ref().filter(|p| live(&p.status)) {
            return Err(RuleError::CallNotNow(format!(
                "the line already has a subscription ({}, {})",
                p.subscription_id, p.status
            ))
            .into());
        }
        let account = who.account.id.as_str();
        let customer = match self.store.stripe_customer(&who.account.id).await? {
            Some(c) => c,
            None => {
                let Some(_) = payment_method else {
                    return Err(AppError::invalid(
                        "payment_method",
                        "the first subscription needs a card: a Stripe PaymentMethod id (pm_…)",
                    ));
                };
                let made = stripe
                    .client
                    .create_customer(
                        &NewCustomer::for_account(account),
                        &format!("wagate:{account}:customer"),
                    )
                    .await
                    .map_err(stripe_error)?;
                self.store
                    .set_stripe_customer(&who.account.id, &made.id)
                    .await?
            }
        };
        if let Some(pm) = payment_method {
            stripe
                .client
                .attach_default_payment_method(pm, &customer, &format!("wagate:{account}:pm:{pm}"))
                .await
                .map_err(stripe_error)?;
        }
        let month_cents =
            wagate_domain::money::Micros(settings.day_price.0.saturating_mul(30)).to_cents_ceil();
        let (amount_cents, name) = match interval {
            SubscriptionInterval::Month => (month_cents, "WhatsApp line, monthly"),
            SubscriptionInterval::Year => (
                month_cents.saturating_mul(i64::from(stripe.year_months)),
                "WhatsApp line, yearly",
            ),
        };
        let interval_text = interval.as_str();
        let lookup = format!("wagate:{account}:{interval_text}:{amount_cents}");
        let price = match stripe
            .client
            .price_by_lookup_key(&lookup)
            .await
            .map_err(stripe_error)?
        {
            Some(p) => p,
            None => stripe
                .client
                .create_price(
                    &NewPrice {
                        unit_amount: amount_cents,
                        currency: "usd".into(),
                        interval: interval.stripe(),
                        product_name: name.into(),
                        lookup_key: Some(lookup.clone()),
                        transfer_lookup_key: false,
                        metadata: Default::default(),
                    },
                    &lookup,
                )
                .await
                .map_err(stripe_error)?,
        };
        // One subscription per line and attempt: a retry finds the one Stripe made.
        let attempt = previous.map_or_else(|| "0".to_owned(), |p| p.subscription_id);
        let sub = stripe
            .client
            .create_subscription(
                &NewSubscription::new(&customer, &price.id, line_id.as_str()),
                &format!("wagate:{line_id}:subscription:{attempt}"),
            )
            .await
            .map_err(stripe_error)?;
        let now = self.clock.now();
        let record = LineSubscriptionRecord {
            line_id: line_id.clone(),
            account_id: who.account.id.clone(),
            subscription_id: sub.id.clone(),
            interval: interval_text.to_owned(),
            status: status_text(&sub.status),
            amount_cents,
            created_at: now,
        };
        let until = sub
            .current_period_end
            .and_then(|t| Timestamp::from_second(t).ok());
        self.record(record.clone(), until, None).await?;
        let paid_until = self.store.line_days(line_id).await?.paid_until;
        Ok((record, paid_until))
    }

    /// Writes a subscription's state and, when Stripe paid a period ending at `until`, moves
    /// the line's `paid_until` there (never back), with the release of an unpaid line after
    /// it; once per Stripe event when `event` is given.
    async fn record(
        &self,
        record: LineSubscriptionRecord,
        until: Option<Timestamp>,
        event: Option<String>,
    ) -> AppResult<bool> {
        for _ in 0..8 {
            let held = self.store.line_days(&record.line_id).await?;
            let now = self.clock.now();
            let moves = until.filter(|u| held.paid_until.is_none_or(|p| *u > p));
            let batch = Batch {
                days: Some(Box::new(DaysWrite {
                    stripe_event: event.clone(),
                    subscription: Some(record.clone()),
                    paid_until: moves.map(|u| (record.line_id.clone(), held.paid_until, u)),
                    ..DaysWrite::default()
                })),
                jobs: moves
                    .map(|u| {
                        crate::lines::days::unpaid_release_job(
                            &record.account_id,
                            &record.line_id,
                            u,
                        )
                    })
                    .into_iter()
                    .collect(),
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => return Ok(true),
                Err(Conflict::AlreadyApplied) => return Ok(false),
                Err(Conflict::LineChanged) => continue,
                Err(c) => return Err(anyhow::anyhow!("recording a subscription: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the line kept changing").into())
    }

    /// Applies one of Stripe's webhooks, verified by `Stripe-Signature` over the raw body: a
    /// paid invoice extends the line to the end of the period it paid; a failed payment or a
    /// deleted subscription leaves the line unpaid from its current `paid_until` (and
    /// released 5 days later). Each event applies once, whatever Stripe redelivers.
    pub async fn receive(&self, body: &[u8], signature: &str) -> Result<(), WebhookRefused> {
        let stripe = self.stripe.as_ref().ok_or(WebhookRefused::NotConfigured)?;
        let now = self.clock.now().as_second();
        wagate_stripe::verify_signature(
            body,
            signature,
            &stripe.webhook_secret,
            now,
            TOLERANCE_SECS,
        )
        .map_err(|e| WebhookRefused::Signature(e.to_string()))?;
        let event = wagate_stripe::parse_event(body)
            .map_err(|e| WebhookRefused::Malformed(e.to_string()))?;
        let (sub_id, status, until) = match &event.object {
            EventObject::InvoicePaid(inv) => (
                inv.subscription.clone(),
                Some("active".to_owned()),
                inv.service_end.and_then(|t| Timestamp::from_second(t).ok()),
            ),
            EventObject::InvoicePaymentFailed(inv) => {
                (inv.subscription.clone(), Some("past_due".to_owned()), None)
            }
            EventObject::SubscriptionDeleted(sub) => {
                (Some(sub.id.clone()), Some("canceled".to_owned()), None)
            }
            EventObject::SubscriptionUpdated(sub) | EventObject::SubscriptionCreated(sub) => {
                (Some(sub.id.clone()), Some(status_text(&sub.status)), None)
            }
            EventObject::Other(_) => (None, None, None),
        };
        let Some(sub_id) = sub_id else {
            return Ok(());
        };
        let Some(mut record) = self
            .store
            .subscription_by_stripe_id(&sub_id)
            .await
            .map_err(AppError::from)?
        else {
            tracing::info!(subscription = %sub_id, event = %event.id, "a Stripe event for a subscription this server did not make");
            return Ok(());
        };
        if let Some(s) = status {
            record.status = s;
        }
        self.record(record, until, Some(event.id.clone())).await?;
        Ok(())
    }
}

/// The cancel job.
struct CancelJob(Arc<SubscriptionService>);

#[derive(serde::Deserialize)]
struct CancelPayload {
    line: LineId,
}

#[async_trait::async_trait]
impl crate::scheduler::JobHandler for CancelJob {
    async fn run(&self, job: &wagate_domain::jobs::Job) -> anyhow::Result<()> {
        let p: CancelPayload = serde_json::from_value(job.payload.clone())?;
        self.0.cancel(&p.line).await?;
        Ok(())
    }
}

/// Whether a subscription in `status` still bills the line.
pub(crate) fn live(status: &str) -> bool {
    matches!(
        status,
        "active" | "trialing" | "past_due" | "incomplete" | "unpaid"
    )
}

fn status_text(s: &wagate_stripe::SubscriptionStatus) -> String {
    s.as_str().to_owned()
}

fn stripe_error(e: StripeError) -> AppError {
    match e {
        StripeError::CardDeclined(api) => RuleError::CardDeclined {
            code: api
                .decline_code
                .clone()
                .or(api.code.clone())
                .unwrap_or_default(),
            message: api.message.clone(),
        }
        .into(),
        StripeError::InvalidRequest(api) => AppError::invalid(
            api.param
                .clone()
                .unwrap_or_else(|| "payment_method".to_owned()),
            format!("Stripe refused it: {}", api.message),
        ),
        other => RuleError::ProcessorUnavailable(format!("Stripe: {other}")).into(),
    }
}

/// The subscription object of `POST /wa/lines/{id}/subscription`.
pub fn subscription_json(s: &LineSubscriptionRecord, paid_until: Option<Timestamp>) -> Value {
    json!({
        "object": "subscription",
        "id": s.subscription_id,
        "line_id": s.line_id,
        "interval": s.interval,
        "status": s.status,
        "amount": format!("{}.{:02}", s.amount_cents / 100, s.amount_cents % 100),
        "currency": "USD",
        "paid_until": paid_until.map(rfc3339),
    })
}
