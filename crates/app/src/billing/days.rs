//! Partner billing in days (PRODUCT.md §11): the account's days settings (set by the
//! operator), invoices for days, and their payment — each credit of days written once, in the
//! transaction that marks the invoice paid, with its `invoice.paid` event.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use wagate_domain::billing::days::{
    invoice_amount, invoice_days, invoice_paid, next_month_start, postpaid_days,
    previous_month_start, BillingMode,
};
use wagate_domain::clock::Clock;
use wagate_domain::ids::{AccountId, InvoiceId};
use wagate_domain::money::Micros;
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::rfc3339;
use wagate_store::{
    Batch, Conflict, DayAccountRecord, DaysPostingWrite, DaysWrite, InvoiceRecord, InvoiceStatus,
    PaymentPurpose, PaymentStatus, Store,
};

use super::Outcome;
use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};
use crate::webhooks::new_event;

/// How long an invoice gives to pay it.
pub const INVOICE_DUE_AFTER: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The currency of days billing.
const CURRENCY: &str = "USD";

/// Days settings, invoices and their payment.
pub struct DaysService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    billing: Arc<super::BillingService>,
    scheduler: crate::scheduler::Scheduler,
    lines: Arc<crate::lines::LineService>,
}

/// Job: a postpaid account's invoice for the days it used in the month before `month`.
pub const POSTPAID_JOB: &str = "days.postpaid_invoice";

/// The postpaid invoice job of `account` for the month that ends at `month_start`.
fn postpaid_job(account: &AccountId, month_start: Timestamp) -> wagate_domain::jobs::NewJob {
    wagate_domain::jobs::NewJob {
        kind: POSTPAID_JOB.to_owned(),
        account_id: Some(account.clone()),
        payload: json!({ "account": account, "month_start": rfc3339(month_start) }),
        due_at: month_start,
        dedupe_key: Some(format!("{account}:{}", month_start.as_second())),
        line_id: None,
    }
}

#[derive(serde::Deserialize)]
struct PostpaidPayload {
    account: AccountId,
    month_start: Timestamp,
}

/// The postpaid invoice job.
struct PostpaidJob(Arc<DaysService>);

#[async_trait::async_trait]
impl crate::scheduler::JobHandler for PostpaidJob {
    async fn run(&self, job: &wagate_domain::jobs::Job) -> anyhow::Result<()> {
        let p: PostpaidPayload = serde_json::from_value(job.payload.clone())?;
        self.0.invoice_postpaid(&p.account, p.month_start).await?;
        Ok(())
    }
}

impl std::fmt::Debug for DaysService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaysService").finish_non_exhaustive()
    }
}

/// What marking an invoice paid did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedPaid {
    /// The invoice, paid.
    pub invoice: InvoiceRecord,
    /// Whether this call paid it (false: it was paid before, and nothing changed).
    pub newly: bool,
    /// The account's days balance after it.
    pub balance_days: i64,
}

impl DaysService {
    /// The service; card payments go through `billing`'s processor.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        billing: Arc<super::BillingService>,
        scheduler: crate::scheduler::Scheduler,
        lines: Arc<crate::lines::LineService>,
    ) -> Arc<Self> {
        Arc::new(DaysService {
            store,
            clock,
            billing,
            scheduler,
            lines,
        })
    }

    /// The invoice behind a hosted page's token (the page is public to whoever has the link).
    pub async fn invoice_page(&self, token: &str) -> AppResult<(InvoiceRecord, String)> {
        let invoice = self
            .store
            .invoice_by_page_token(token)
            .await?
            .ok_or(AppError::NotFound("invoice"))?;
        let name = self
            .store
            .get_account(&invoice.account_id)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        Ok((invoice, name))
    }

    /// Registers the postpaid month-end invoice job.
    pub fn register(self: &Arc<Self>) {
        self.scheduler
            .register(POSTPAID_JOB, Arc::new(PostpaidJob(self.clone())));
    }

    /// On the 1st of a month, a postpaid account's invoice for the days its lines drew in
    /// the month before (net of days released back), with `invoice.created`; nothing when it
    /// drew none. Schedules the next month's in the same transaction; one invoice per month,
    /// however often it runs.
    async fn invoice_postpaid(&self, account: &AccountId, month_start: Timestamp) -> AppResult<()> {
        let Some(settings) = self
            .store
            .day_account(account)
            .await?
            .filter(|d| d.mode == BillingMode::Days && d.postpaid)
        else {
            return Ok(());
        };
        let from = previous_month_start(month_start);
        let moves = self.store.balance_moves(account, from, month_start).await?;
        let now = self.clock.now();
        let mut batch = Batch {
            jobs: vec![postpaid_job(account, next_month_start(month_start))],
            ..Batch::default()
        };
        if let Some(days) = postpaid_days(moves) {
            let invoice = open_invoice(account, days, &settings, Some(from), now)
                .map_err(|e| anyhow::anyhow!("a postpaid invoice: {e}"))?;
            batch
                .events
                .push(self.invoice_event(&invoice, "invoice.created", now));
            batch.days = Some(Box::new(DaysWrite {
                insert_invoice: Some(invoice),
                ..DaysWrite::default()
            }));
        }
        match self.store.commit(batch, now).await? {
            Ok(()) | Err(Conflict::AlreadyApplied) => Ok(()),
            Err(c) => Err(anyhow::anyhow!("a postpaid invoice: {c}").into()),
        }
    }

    /// The account's days settings; 409 `invalid_state` for an account billed flat.
    pub async fn settings(&self, account: &AccountId) -> AppResult<DayAccountRecord> {
        self.lines
            .days_billing(account)
            .await?
            .ok_or_else(|| RuleError::NotDaysBilling.into())
    }

    /// Sets how an account is billed (the operator's `wagate accounts create/update`).
    pub async fn set_mode(
        &self,
        account: &AccountId,
        mode: BillingMode,
        day_price: Micros,
        postpaid: bool,
    ) -> AppResult<DayAccountRecord> {
        if mode == BillingMode::Days && day_price.0 <= 0 {
            return Err(AppError::invalid("day_price", "must be above zero"));
        }
        if self.store.get_account(account).await?.is_none() {
            return Err(AppError::NotFound("account"));
        }
        // A line is billed the way its account was when it was scanned (a flat plan with its
        // charges, or days): switching with lines open would leave them billed neither way.
        let current = self
            .store
            .day_account(account)
            .await?
            .map_or(BillingMode::Flat, |d| d.mode);
        if current != mode && !self.store.open_lines(account).await?.is_empty() {
            return Err(RuleError::BillingModeLocked.into());
        }
        let now = self.clock.now();
        let set = self
            .store
            .set_day_account(account, mode, day_price, postpaid, now)
            .await?;
        if set.mode == BillingMode::Days && set.postpaid {
            let first = postpaid_job(account, next_month_start(now));
            self.store.schedule_jobs(&[first], now).await?;
        }
        Ok(set)
    }

    /// Issues an invoice for `channels × 30` days or for `days` (exactly one of them), at the
    /// account's day price; `invoice.created`.
    pub async fn create_invoice(
        &self,
        who: &Principal,
        channels: Option<u32>,
        days: Option<u32>,
    ) -> AppResult<InvoiceRecord> {
        let days = invoice_days(channels, days).map_err(|e| {
            let param = if channels.is_some() {
                "channels"
            } else {
                "days"
            };
            AppError::invalid(param, e.to_string())
        })?;
        let settings = self.settings(&who.account.id).await?;
        let now = self.clock.now();
        let invoice = open_invoice(&who.account.id, days, &settings, None, now)
            .map_err(|e| AppError::invalid("days", e.to_string()))?;
        let batch = Batch {
            days: Some(Box::new(DaysWrite {
                insert_invoice: Some(invoice.clone()),
                ..DaysWrite::default()
            })),
            events: vec![self.invoice_event(&invoice, "invoice.created", now)],
            ..Batch::default()
        };
        match self.store.commit(batch, now).await? {
            Ok(()) => Ok(invoice),
            Err(c) => Err(anyhow::anyhow!("issuing an invoice: {c}").into()),
        }
    }

    /// One invoice of the account.
    pub async fn invoice(&self, who: &Principal, id: &InvoiceId) -> AppResult<InvoiceRecord> {
        self.store
            .get_invoice(&who.account.id, id)
            .await?
            .ok_or(AppError::NotFound("invoice"))
    }

    /// The account's invoices, newest first.
    pub async fn invoices(
        &self,
        who: &Principal,
        page: &PageRequest,
    ) -> AppResult<Page<InvoiceRecord>> {
        Ok(self.store.list_invoices(&who.account.id, page).await?)
    }

    /// Pays an open invoice with the card on file: its days are credited once, with
    /// `invoice.paid`. Paying a paid invoice changes nothing and answers the invoice; a
    /// decline → 402 `card_declined` (pay again, or with another card, later). The card is
    /// charged at most once per attempt, whoever retries: the attempt key is the invoice's,
    /// and only a refused attempt makes room for a new one.
    pub async fn pay(&self, who: &Principal, id: &InvoiceId) -> AppResult<InvoiceRecord> {
        let invoice = self.invoice(who, id).await?;
        if invoice.status == InvoiceStatus::Paid {
            return Ok(invoice);
        }
        if !self.billing.processor.configured() {
            return Err(RuleError::PaymentsNotConfigured.into());
        }
        let billing = self.store.billing_account(&who.account.id).await?;
        if billing.card.is_none() {
            return Err(RuleError::CardRequired.into());
        }
        let attempt_key = self.attempt_key(id).await?;
        let (payment, outcome) = self
            .billing
            .pay(
                &billing,
                PaymentPurpose::Invoice,
                attempt_key,
                invoice.amount,
                None,
                &format!("wagate invoice {id} ({} days)", invoice.days),
            )
            .await?;
        let now = self.clock.now();
        let record = |days: Option<Box<DaysWrite>>, events| Batch {
            billing_account: Some(who.account.id.clone()),
            payment_update: (payment.status == PaymentStatus::Pending)
                .then(|| outcome.update(&payment.id))
                .flatten(),
            days,
            events,
            ..Batch::default()
        };
        match &outcome {
            Outcome::Succeeded { .. } => {
                let mut paid = invoice.clone();
                paid.status = InvoiceStatus::Paid;
                paid.paid_at = Some(now);
                paid.paid_by = Some("card".to_owned());
                paid.payment_id = Some(payment.id.to_string());
                let credit = Box::new(DaysWrite {
                    pay_invoice: Some((
                        id.clone(),
                        now,
                        "card".to_owned(),
                        Some(payment.id.to_string()),
                    )),
                    postings: vec![DaysPostingWrite {
                        account_id: who.account.id.clone(),
                        posting: invoice_paid(&who.account.id, invoice.days),
                        invoice_id: Some(id.clone()),
                        line_id: None,
                        comment: None,
                    }],
                    ..DaysWrite::default()
                });
                let events = vec![self.invoice_event(&paid, "invoice.paid", now)];
                match self.store.commit(record(Some(credit), events), now).await? {
                    Ok(()) | Err(Conflict::PaymentSettled) => {}
                    Err(Conflict::InvoiceSettled) => {
                        // Marked paid by the operator while the card was charged: the charge
                        // is recorded, the days were credited once by the mark.
                        tracing::warn!(invoice = %id, payment = %payment.id, "an invoice was paid by card and marked paid at once; refund the card payment");
                        let _ = self.store.commit(record(None, Vec::new()), now).await?;
                    }
                    Err(c) => return Err(anyhow::anyhow!("recording an invoice payment: {c}").into()),
                }
                self.invoice(who, id).await
            }
            Outcome::Refused {
                status,
                code,
                message,
            } => {
                let _ = self.store.commit(record(None, Vec::new()), now).await?;
                Err(match status {
                    PaymentStatus::Declined => RuleError::CardDeclined {
                        code: code.clone(),
                        message: message.clone(),
                    }
                    .into(),
                    _ if code == "card_required" => RuleError::CardRequired.into(),
                    _ => RuleError::ProcessorUnavailable(format!("{code}: {message}")).into(),
                })
            }
            Outcome::Unknown(e) => Err(RuleError::ProcessorUnavailable(format!(
                "the card payment's outcome is not known yet ({e}); pay again to settle it, it is never charged twice"
            ))
            .into()),
        }
    }

    /// The key of this invoice's live payment attempt: the first whose attempt was not
    /// refused (a pending or succeeded one is resolved or replayed, never charged anew).
    async fn attempt_key(&self, id: &InvoiceId) -> AppResult<String> {
        for n in 0u32.. {
            let key = format!("invoice:{id}:{n}");
            match self.store.payment_by_key(&key).await? {
                Some(p) if matches!(p.status, PaymentStatus::Declined | PaymentStatus::Failed) => {
                    continue
                }
                _ => return Ok(key),
            }
        }
        unreachable!("an unbounded range ends only by returning")
    }

    /// The operator marks an invoice paid (a bank transfer): its days are credited once, with
    /// `invoice.paid`. Marking a paid invoice again changes nothing.
    pub async fn mark_paid(&self, id: &InvoiceId) -> AppResult<MarkedPaid> {
        let invoice = self
            .store
            .invoice_by_id(id)
            .await?
            .ok_or(AppError::NotFound("invoice"))?;
        let now = self.clock.now();
        let mut paid = invoice.clone();
        paid.status = InvoiceStatus::Paid;
        paid.paid_at = Some(now);
        paid.paid_by = Some("operator".to_owned());
        let newly = if invoice.status == InvoiceStatus::Paid {
            false
        } else {
            let batch = Batch {
                days: Some(Box::new(DaysWrite {
                    pay_invoice: Some((id.clone(), now, "operator".to_owned(), None)),
                    postings: vec![DaysPostingWrite {
                        account_id: invoice.account_id.clone(),
                        posting: invoice_paid(&invoice.account_id, invoice.days),
                        invoice_id: Some(id.clone()),
                        line_id: None,
                        comment: None,
                    }],
                    ..DaysWrite::default()
                })),
                events: vec![self.invoice_event(&paid, "invoice.paid", now)],
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => true,
                Err(Conflict::InvoiceSettled) => false,
                Err(c) => return Err(anyhow::anyhow!("paying an invoice: {c}").into()),
            }
        };
        let invoice = self
            .store
            .invoice_by_id(id)
            .await?
            .ok_or(AppError::NotFound("invoice"))?;
        let balance_days = self
            .store
            .day_account(&invoice.account_id)
            .await?
            .map_or(0, |d| d.balance_days);
        Ok(MarkedPaid {
            invoice,
            newly,
            balance_days,
        })
    }
}

/// A new open invoice for `days` at the account's day price, due in 14 days, with the secret
/// of its hosted page.
fn open_invoice(
    account: &AccountId,
    days: u32,
    settings: &DayAccountRecord,
    period_start: Option<Timestamp>,
    now: Timestamp,
) -> Result<InvoiceRecord, wagate_domain::billing::days::DaysError> {
    Ok(InvoiceRecord {
        id: InvoiceId::generate(),
        account_id: account.clone(),
        status: InvoiceStatus::Open,
        days,
        day_price: settings.day_price,
        amount: invoice_amount(days, settings.day_price)?,
        currency: CURRENCY.to_owned(),
        created_at: now,
        due_at: now.checked_add(INVOICE_DUE_AFTER).unwrap_or(now),
        paid_at: None,
        paid_by: None,
        payment_id: None,
        period_start,
        page_token: wagate_domain::ids::random_base62(32),
    })
}

/// The invoice's hosted page under the public base URL (its PDF is `…/pdf`).
pub fn hosted_url(i: &InvoiceRecord, public_url: &str) -> String {
    format!(
        "{}/invoices/{}",
        public_url.trim_end_matches('/'),
        i.page_token
    )
}

/// The invoice object.
pub fn invoice_json(i: &InvoiceRecord, public_url: &str) -> Value {
    let page = hosted_url(i, public_url);
    json!({
        "id": i.id,
        "object": "invoice",
        "status": i.status.as_str(),
        "days": i.days,
        "day_price": i.day_price.to_string(),
        "amount": i.amount.to_string(),
        "currency": i.currency,
        "created_at": rfc3339(i.created_at),
        "due_at": rfc3339(i.due_at),
        "paid_at": i.paid_at.map(rfc3339),
        "paid_by": i.paid_by,
        "period_start": i.period_start.map(rfc3339),
        "pdf_url": format!("{page}/pdf"),
        "hosted_url": page,
    })
}

/// The days settings object of `GET /billing/days`.
pub fn days_json(d: &DayAccountRecord) -> Value {
    json!({
        "object": "days_balance",
        "balance_days": d.balance_days,
        "day_price": d.day_price.to_string(),
        "currency": CURRENCY,
        "postpaid": d.postpaid,
    })
}

impl DaysService {
    fn invoice_event(
        &self,
        i: &InvoiceRecord,
        kind: &str,
        now: Timestamp,
    ) -> wagate_store::NewEvent {
        new_event(
            &i.account_id,
            kind,
            None,
            json!({ "invoice": invoice_json(i, &self.lines.public_url()) }),
            now,
        )
    }
}
