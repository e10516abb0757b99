//! Partner billing storage (PRODUCT.md §11): an account's days settings and balance, its
//! invoices, the days ledger, and the part of a [`crate::Batch`] that writes them.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::billing::days::{BillingMode, DaysPosting};
use wagate_domain::ids::{AccountId, InvoiceId, LineId};
use wagate_domain::money::Micros;
use wagate_domain::page::{Page, PageRequest};

use crate::StoreResult;

/// An account's days billing: how it is billed, at what price, and its balance of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayAccountRecord {
    /// The account.
    pub account_id: AccountId,
    /// `flat` or `days`.
    pub mode: BillingMode,
    /// The account's individual price of one day.
    pub day_price: Micros,
    /// The balance may go below zero; the month's use is invoiced on the 1st.
    pub postpaid: bool,
    /// Days on the balance.
    pub balance_days: i64,
}

/// Where an invoice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// Issued, not paid.
    Open,
    /// Paid; its days were credited in the same transaction.
    Paid,
}

impl InvoiceStatus {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
        }
    }
}

/// An invoice for days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRecord {
    /// `inv_…`
    pub id: InvoiceId,
    /// The account.
    pub account_id: AccountId,
    /// Open or paid.
    pub status: InvoiceStatus,
    /// Days it buys.
    pub days: u32,
    /// The price of a day when issued.
    pub day_price: Micros,
    /// `days × day_price`.
    pub amount: Micros,
    /// `USD`.
    pub currency: String,
    /// Issued.
    pub created_at: Timestamp,
    /// Payment due.
    pub due_at: Timestamp,
    /// Paid.
    pub paid_at: Option<Timestamp>,
    /// `card` or `operator`.
    pub paid_by: Option<String>,
    /// The card payment that paid it.
    pub payment_id: Option<String>,
    /// A postpaid month's invoice: the first instant of the month it bills.
    pub period_start: Option<Timestamp>,
    /// The secret of its hosted page and PDF.
    pub page_token: String,
}

/// A days-mode line's days.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineDaysRecord {
    /// Days handed to the line and not yet returned or counted used.
    pub days_on_line: i64,
    /// The line may send until then.
    pub paid_until: Option<Timestamp>,
    /// Whole days its release gave back.
    pub days_returned: Option<u32>,
}

/// The days part of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaysWrite {
    /// A new invoice; a [`crate::Conflict::AlreadyApplied`] if it bills a postpaid month
    /// already invoiced.
    pub insert_invoice: Option<InvoiceRecord>,
    /// Marks an open invoice paid `(id, at, by, payment)`; a [`crate::Conflict::InvoiceSettled`]
    /// if it is not open (so its days are credited once, however often it is paid).
    pub pay_invoice: Option<(InvoiceId, Timestamp, String, Option<String>)>,
    /// Moves of days, applied in order; a [`crate::Conflict::InsufficientDays`] if a prepaid
    /// balance would go below zero. The balance and the lines' days follow their entries.
    pub postings: Vec<DaysPostingWrite>,
    /// A line's new `paid_until`, written only if it still is the first value (as read).
    pub paid_until: Option<(LineId, Option<Timestamp>, Timestamp)>,
    /// A released line's returned days.
    pub days_returned: Option<(LineId, u32)>,
    /// The Stripe event this batch applies; a [`crate::Conflict::AlreadyApplied`] if it was
    /// applied before (Stripe redelivers).
    pub stripe_event: Option<String>,
    /// A line's Stripe subscription, written whole (inserted or replaced).
    pub subscription: Option<LineSubscriptionRecord>,
}

/// A line's Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSubscriptionRecord {
    /// The line it keeps paid.
    pub line_id: LineId,
    /// The owner.
    pub account_id: AccountId,
    /// Stripe's `sub_…`.
    pub subscription_id: String,
    /// `month` or `year`.
    pub interval: String,
    /// Stripe's status (`active`, `past_due`, `canceled`, …).
    pub status: String,
    /// What each period costs, in cents.
    pub amount_cents: i64,
    /// Subscribed.
    pub created_at: Timestamp,
}

/// A posting with what it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaysPostingWrite {
    /// The account whose days move.
    pub account_id: AccountId,
    /// The balanced move.
    pub posting: DaysPosting,
    /// The invoice behind it.
    pub invoice_id: Option<InvoiceId>,
    /// The line it concerns.
    pub line_id: Option<LineId>,
    /// The business's note (an extension's `comment`).
    pub comment: Option<String>,
}

/// Days settings, invoices and the days ledger.
#[async_trait]
pub trait DayStore {
    /// The account's days settings; `None` for an account billed flat that never had any.
    async fn day_account(&self, account: &AccountId) -> StoreResult<Option<DayAccountRecord>>;
    /// Sets an account's billing mode, day price and postpaid flag (the operator), keeping
    /// its balance.
    async fn set_day_account(
        &self,
        account: &AccountId,
        mode: BillingMode,
        day_price: Micros,
        postpaid: bool,
        now: Timestamp,
    ) -> StoreResult<DayAccountRecord>;
    /// One invoice of the account.
    async fn get_invoice(
        &self,
        account: &AccountId,
        id: &InvoiceId,
    ) -> StoreResult<Option<InvoiceRecord>>;
    /// The invoice behind a hosted page's token.
    async fn invoice_by_page_token(&self, token: &str) -> StoreResult<Option<InvoiceRecord>>;
    /// One invoice, whatever its account (the operator).
    async fn invoice_by_id(&self, id: &InvoiceId) -> StoreResult<Option<InvoiceRecord>>;
    /// The account's invoices, newest first.
    async fn list_invoices(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<InvoiceRecord>>;
    /// A line's days (default when it has none).
    async fn line_days(&self, line: &LineId) -> StoreResult<LineDaysRecord>;
    /// One line of the account with its days, `None` beside it when the account is billed
    /// flat: one read where a send, a call or `GET /lines/{id}` needs both.
    async fn line_with_days(
        &self,
        account: &AccountId,
        id: &LineId,
    ) -> StoreResult<Option<(crate::LineRecord, Option<LineDaysRecord>)>>;
    /// The net change of the account's balance by extensions and releases (not invoices)
    /// between `from` (included) and `to`: a postpaid month's use, negated.
    async fn balance_moves(
        &self,
        account: &AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<i64>;
    /// The account's Stripe customer id, once made.
    async fn stripe_customer(&self, account: &AccountId) -> StoreResult<Option<String>>;
    /// Records the account's Stripe customer; the one already recorded wins.
    async fn set_stripe_customer(&self, account: &AccountId, customer: &str)
        -> StoreResult<String>;
    /// A line's Stripe subscription.
    async fn line_subscription(&self, line: &LineId)
        -> StoreResult<Option<LineSubscriptionRecord>>;
    /// The line subscription with Stripe's id `subscription`.
    async fn subscription_by_stripe_id(
        &self,
        subscription: &str,
    ) -> StoreResult<Option<LineSubscriptionRecord>>;
    /// The sum of the account's days ledger per ledger name (`sold`, `balance`, `line:…`,
    /// `used`): for checks that days are conserved.
    async fn day_ledger_totals(&self, account: &AccountId) -> StoreResult<Vec<(String, i64)>>;
}
