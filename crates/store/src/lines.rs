//! Line, message and billing storage: the records, and [`Batch`], the unit of work in which a
//! use case commits a line's change together with its messages, money and events.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::billing::ledger::{Posting, TxnType};
use wagate_domain::billing::plan::Plan;
use wagate_domain::ids::{AccountId, JobId, LineId, MessageId, PaymentId, TransactionId};
use wagate_domain::jobs::NewJob;
use wagate_domain::line::{BillingStatus, LineKind, LineStatus, MessageKind, MessageStatus};
use wagate_domain::money::Micros;
use wagate_domain::page::{Page, PageRequest};

use crate::{NewEvent, StoreResult};

/// A line as stored. Every field but the daily counters is written whole by
/// [`Batch::update_line`], guarded by `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRecord {
    /// `line_…`
    pub id: LineId,
    /// The owner.
    pub account_id: AccountId,
    /// Bumped by every write; a write from a stale read is refused.
    pub version: i64,
    /// WhatsApp Web or Cloud API; fixed at creation.
    pub kind: LineKind,
    /// Where the line is in its life.
    pub status: LineStatus,
    /// Calling on from the start ($20 plan).
    pub calling_enabled: bool,
    /// The connect page offers the calling toggle.
    pub allow_calling: bool,
    /// The toggle's current value (the end customer's choice).
    pub calling_choice: bool,
    /// Fixed at the first scan.
    pub plan: Option<Plan>,
    /// The plan's monthly price, fixed at the first scan.
    pub price: Option<Micros>,
    /// The linked phone's number.
    pub phone_number: Option<String>,
    /// The connect page's token; `None` once released (the page dies with the line).
    pub connect_token: Option<String>,
    /// The business's label.
    pub label: Option<String>,
    /// The business's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Where the line is in its billing.
    pub billing_status: BillingStatus,
    /// End of the free week (the account's first line only).
    pub trial_ends_at: Option<Timestamp>,
    /// The instant periods are computed from (first charge due).
    pub anchor_at: Option<Timestamp>,
    /// The last period paid (0 = the first).
    pub paid_period: Option<u32>,
    /// Start of the running period (or trial).
    pub current_period_start: Option<Timestamp>,
    /// End of the running period (or trial).
    pub current_period_end: Option<Timestamp>,
    /// When an unpaid line is released.
    pub grace_ends_at: Option<Timestamp>,
    /// Scans so far (each starts a new link).
    pub link_count: u32,
    /// When the current QR sequence began (QR codes rotate from here).
    pub pairing_started_at: Timestamp,
    /// When the running drop began.
    pub disconnected_at: Option<Timestamp>,
    /// Reconnect attempts made in the running drop.
    pub reconnect_attempt: u32,
    /// Whether `line.disconnected` was sent for the running drop.
    pub disconnect_notified: bool,
    /// UTC day of `sent_today` (only [`LineStore::enqueue_message`] writes it).
    pub sent_day: i64,
    /// Outbound messages accepted on `sent_day`.
    pub sent_today: u32,
    /// Created.
    pub created_at: Timestamp,
    /// First `ready`.
    pub ready_at: Option<Timestamp>,
    /// Latest scan.
    pub linked_at: Option<Timestamp>,
    /// Released.
    pub released_at: Option<Timestamp>,
    /// `requested` or `payment_failed`.
    pub release_reason: Option<String>,
    /// Why WhatsApp blocked the line (`temporarily_banned`, `banned`, `client_outdated`)
    /// while its status is `blocked`.
    pub blocked_reason: Option<String>,
    /// WhatsApp answered a send with its rate limit: nothing is sent, and new messages are
    /// refused with 429, until then.
    pub rate_limited_until: Option<Timestamp>,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl LineRecord {
    /// A new line, `pending`, with its connect-page `token`; nothing linked or billed yet.
    pub fn pending(
        account: AccountId,
        calling_enabled: bool,
        allow_calling: bool,
        token: String,
        now: Timestamp,
    ) -> Self {
        LineRecord {
            id: LineId::generate(),
            account_id: account,
            version: 0,
            kind: LineKind::Web,
            status: LineStatus::Pending,
            calling_enabled,
            allow_calling,
            calling_choice: false,
            plan: None,
            price: None,
            phone_number: None,
            connect_token: Some(token),
            label: None,
            metadata: BTreeMap::new(),
            billing_status: BillingStatus::None,
            trial_ends_at: None,
            anchor_at: None,
            paid_period: None,
            current_period_start: None,
            current_period_end: None,
            grace_ends_at: None,
            link_count: 0,
            pairing_started_at: now,
            disconnected_at: None,
            reconnect_attempt: 0,
            disconnect_notified: false,
            sent_day: 0,
            sent_today: 0,
            created_at: now,
            ready_at: None,
            linked_at: None,
            released_at: None,
            release_reason: None,
            blocked_reason: None,
            rate_limited_until: None,
            updated_at: now,
        }
    }
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the business through the line.
    Outbound,
    /// Received by the line.
    Inbound,
}

impl Direction {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// `msg_…`
    pub id: MessageId,
    /// The owner.
    pub account_id: AccountId,
    /// The line.
    pub line_id: LineId,
    /// Which way.
    pub direction: Direction,
    /// What it carries.
    pub kind: MessageKind,
    /// Sender (the line's number for outbound, when known).
    pub from: Option<String>,
    /// Recipient.
    pub to: Option<String>,
    /// The text, or a media message's caption (empty when it has none).
    pub text: String,
    /// Where it is.
    pub status: MessageStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The connector's own id.
    pub provider_id: Option<String>,
    /// Accepted or received.
    pub created_at: Timestamp,
    /// Last status change.
    pub updated_at: Timestamp,
}

/// A status change of a stored message, applied only if it moves the message forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUpdate {
    /// Which message.
    pub id: MessageId,
    /// The status it had when read (the write is skipped if it changed meanwhile).
    pub from_status: MessageStatus,
    /// The new status.
    pub status: MessageStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The connector's id, once sent.
    pub provider_id: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// A card on file, as the processor described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRecord {
    /// The processor's card id.
    pub card_id: String,
    /// `VISA`, …
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u32,
    /// Expiry year.
    pub exp_year: u32,
    /// When it was stored.
    pub added_at: Timestamp,
}

/// An account's billing state: wallet balance, card and auto top-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccountRecord {
    /// The account.
    pub account_id: AccountId,
    /// `USD`.
    pub currency: String,
    /// The wallet balance (the sum of its ledger entries; never negative).
    pub balance: Micros,
    /// The processor's customer id.
    pub customer_id: Option<String>,
    /// The card on file.
    pub card: Option<CardRecord>,
    /// Auto top-up on.
    pub auto_topup_enabled: bool,
    /// Top up when a debit leaves the balance below this.
    pub auto_topup_threshold: Micros,
    /// How much each auto top-up charges.
    pub auto_topup_amount: Micros,
    /// An auto top-up is scheduled or running.
    pub auto_topup_in_flight: bool,
    /// After a declined auto top-up: no new attempt before this.
    pub auto_topup_blocked_until: Option<Timestamp>,
    /// The account's one free trial was used.
    pub trial_used: bool,
    /// Bumped by every settings write.
    pub version: i64,
}

/// Settings of a billing account to write (guarded by the version read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingPatch {
    /// The version read.
    pub expected_version: i64,
    /// New customer id.
    pub customer_id: Option<Option<String>>,
    /// New card (`Some(None)` removes it).
    pub card: Option<Option<CardRecord>>,
    /// New auto top-up setting: enabled, threshold, amount.
    pub auto_topup: Option<(bool, Micros, Micros)>,
    /// Clear or set the in-flight flag.
    pub auto_topup_in_flight: Option<bool>,
    /// Set or clear the decline block.
    pub auto_topup_blocked_until: Option<Option<Timestamp>>,
}

impl BillingPatch {
    /// A patch that changes nothing yet.
    pub fn new(expected_version: i64) -> Self {
        BillingPatch {
            expected_version,
            customer_id: None,
            card: None,
            auto_topup: None,
            auto_topup_in_flight: None,
            auto_topup_blocked_until: None,
        }
    }
}

/// A wallet transaction to write: a balanced posting and what the customer sees of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWalletTxn {
    /// `txn_…`
    pub id: TransactionId,
    /// The balanced entries (built by `wagate_domain::billing::ledger`).
    pub posting: Posting,
    /// The line it concerns.
    pub line_id: Option<LineId>,
    /// The card payment that brought the money in.
    pub payment_id: Option<PaymentId>,
    /// The transaction this one reverses.
    pub reverses: Option<TransactionId>,
    /// Shown in `GET /billing/transactions`.
    pub description: String,
}

/// A wallet transaction as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    /// `txn_…`
    pub id: TransactionId,
    /// The kind.
    pub txn_type: TxnType,
    /// Signed change of the wallet.
    pub amount: i64,
    /// The wallet after it.
    pub balance_after: i64,
    /// The line it concerns.
    pub line_id: Option<String>,
    /// The card payment behind it.
    pub payment_id: Option<String>,
    /// What it was.
    pub description: String,
    /// When.
    pub created_at: Timestamp,
}

/// One charge of a line for one period; the database holds at most one per line and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLineCharge {
    /// The line.
    pub line_id: LineId,
    /// The period index.
    pub period: u32,
    /// What was charged.
    pub amount: Micros,
    /// `activation`, `trial_conversion`, `renewal`, `grace_retry`.
    pub reason: String,
    /// The wallet debit.
    pub transaction_id: TransactionId,
}

/// What a card payment was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentPurpose {
    /// `POST /billing/wallet/topups`.
    Topup,
    /// Auto top-up after a debit.
    AutoTopup,
    /// Funding a line charge.
    LineCharge,
    /// Paying an invoice for days.
    Invoice,
}

impl PaymentPurpose {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentPurpose::Topup => "topup",
            PaymentPurpose::AutoTopup => "auto_topup",
            PaymentPurpose::LineCharge => "line_charge",
            PaymentPurpose::Invoice => "invoice",
        }
    }
}

/// Where a card payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Recorded; the processor was (or is about to be) asked. Its outcome may be unknown.
    Pending,
    /// Charged; the wallet was credited in the same transaction.
    Succeeded,
    /// The card was declined.
    Declined,
    /// Refused for another reason (invalid request, no card).
    Failed,
}

impl PaymentStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Failed => "failed",
        }
    }
}

/// A card payment attempt, recorded before the processor is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// `pay_…`: also the processor idempotency key's source.
    pub id: PaymentId,
    /// The account.
    pub account_id: AccountId,
    /// What it pays for.
    pub purpose: PaymentPurpose,
    /// Unique per attempt (`topup:<idempotency key>`, `line:<id>:<period>:<try>`, …): a rerun
    /// of the same attempt finds this row instead of charging again.
    pub attempt_key: String,
    /// The line it funds.
    pub line_id: Option<LineId>,
    /// The period it funds.
    pub period: Option<u32>,
    /// The card charge (whole cents).
    pub amount: Micros,
    /// Where it is.
    pub status: PaymentStatus,
    /// The processor's payment id.
    pub processor_id: Option<String>,
    /// The processor's decline or error code.
    pub error_code: Option<String>,
    /// Its message.
    pub error_message: Option<String>,
    /// Recorded.
    pub created_at: Timestamp,
}

/// The outcome of a payment attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    /// Which payment.
    pub id: PaymentId,
    /// The outcome.
    pub status: PaymentStatus,
    /// The processor's payment id.
    pub processor_id: Option<String>,
    /// Decline or error code.
    pub error_code: Option<String>,
    /// Its message.
    pub error_message: Option<String>,
}

/// Everything one use case commits at once: a line's change, its messages, money, the events
/// it causes and the jobs it schedules — all or nothing.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// A new line.
    pub insert_line: Option<LineRecord>,
    /// A changed line; refused (a [`Conflict`]) if its `version` is no longer the stored one.
    pub update_line: Option<LineRecord>,
    /// New messages.
    pub insert_messages: Vec<MessageRecord>,
    /// Message status changes (each skipped if the message moved meanwhile, unless
    /// `messages_must_move`).
    pub update_messages: Vec<MessageUpdate>,
    /// Every change of `update_messages` must apply: one whose message moved meanwhile makes
    /// the whole batch a [`Conflict::MessageChanged`], so the events announcing the changes
    /// are written only with them.
    pub messages_must_move: bool,
    /// The account whose billing this batch touches.
    pub billing_account: Option<AccountId>,
    /// Settings written under the account's version.
    pub billing_patch: Option<BillingPatch>,
    /// Mark the account's one trial used; a [`Conflict`] if it already was.
    pub claim_trial: bool,
    /// The outcome of a card payment; a [`Conflict`] if the payment is no longer pending.
    pub payment_update: Option<PaymentUpdate>,
    /// Wallet transactions, applied in order; a [`Conflict`] if one would take the wallet below zero.
    pub wallet_txns: Vec<NewWalletTxn>,
    /// A line charge; a [`Conflict`] if the line was already charged for that period.
    pub line_charge: Option<NewLineCharge>,
    /// Start an auto top-up with this job unless one is already in flight.
    pub start_auto_topup: Option<NewJob>,
    /// Events, written to the outbox.
    pub events: Vec<NewEvent>,
    /// Jobs to schedule.
    pub jobs: Vec<NewJob>,
    /// Cloud API and Meta billing writes (rare: boxed to keep batches small).
    pub meta: Option<Box<crate::MetaWrite>>,
    /// Calls and calling minutes (boxed for the same reason).
    pub calls: Option<Box<crate::CallWrite>>,
    /// Days billing: invoices and moves of days (boxed for the same reason).
    pub days: Option<Box<crate::DaysWrite>>,
    /// Virtual numbers and their SMS (boxed for the same reason).
    pub numbers: Option<Box<crate::NumberWrite>>,
    /// The running job whose work this batch completes: removed with it, so a successful
    /// run needs no separate write (see `JobHandler::removes_own_job`).
    pub finish_job: Option<JobId>,
}

/// Why a [`Batch`] was not committed: something it read changed meanwhile. Nothing was
/// written; the use case reads again and decides again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The line's version moved on.
    #[error("the line changed meanwhile")]
    LineChanged,
    /// The account's billing settings moved on.
    #[error("the billing account changed meanwhile")]
    BillingChanged,
    /// The line is already charged for that period.
    #[error("the period is already charged")]
    AlreadyCharged,
    /// The account's trial was already used.
    #[error("the trial was already used")]
    TrialUsed,
    /// The payment's outcome was already recorded (by a concurrent run of the same attempt).
    #[error("the payment was already settled")]
    PaymentSettled,
    /// A wallet debit exceeded the balance.
    #[error("the wallet balance is too low")]
    InsufficientBalance,
    /// A job to remove is gone or leased: another worker has it.
    #[error("the job was taken by another worker")]
    JobTaken,
    /// A message's status moved on (a strict batch, see [`Batch::messages_must_move`]).
    #[error("the message changed meanwhile")]
    MessageChanged,
    /// The Meta notification was applied before.
    #[error("the Meta notification was already applied")]
    AlreadyApplied,
    /// The pricing engine's state moved on since it was read.
    #[error("the pricing state changed meanwhile")]
    PricingChanged,
    /// The message was priced before.
    #[error("the message was already priced")]
    AlreadyPriced,
    /// The line already has a call that is not over.
    #[error("the line is in another call")]
    LineBusy,
    /// The call moved on since it was read.
    #[error("the call changed meanwhile")]
    CallChanged,
    /// The invoice is not open any more (paid before).
    #[error("the invoice was already paid")]
    InvoiceSettled,
    /// A prepaid days balance would go below zero.
    #[error("the days balance is too low")]
    InsufficientDays,
    /// The virtual number moved on since it was read.
    #[error("the number changed meanwhile")]
    NumberChanged,
}

/// Why an outbound message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueRefused {
    /// No such line on the account.
    NotFound,
    /// The line is in a state that cannot send.
    WrongState(LineStatus),
    /// The line reached its daily limit.
    LimitReached,
}

/// Lines, messages and billing.
#[async_trait]
pub trait LineStore {
    /// Commits a batch atomically.
    async fn commit(&self, batch: Batch, now: Timestamp) -> StoreResult<Result<(), Conflict>>;
    /// Hands `batch` over to be committed, as [`LineStore::commit`] would, after every batch
    /// handed over this way before it (sharing their transaction when they wait together, each
    /// refused alone by its own conflict). The order is fixed when this returns, not when the
    /// answer is awaited: a caller that priced the batch from state it holds a turn on hands it
    /// over before giving the turn up, and the next holder's batch, built on this one's state,
    /// reaches the database after it.
    fn commit_in_order(&self, batch: Batch, now: Timestamp) -> crate::OrderedCommit;
    /// Commits `batches` in order, each at its own business time, and removes the jobs `done`
    /// whose work they are — in one transaction: what committing the batches one after the
    /// other would leave, with one commit. A conflict in any batch, or a job of `done` that is
    /// gone or leased at `wall_now`, writes nothing.
    async fn commit_many(
        &self,
        batches: &[(Batch, Timestamp)],
        done: &[JobId],
        wall_now: Timestamp,
    ) -> StoreResult<Result<(), Conflict>>;
    /// The lines with these ids that exist, whatever their account, in no particular order.
    async fn lines_by_ids(&self, ids: &[LineId]) -> StoreResult<Vec<LineRecord>>;
    /// The periods charged of these lines, as `(line, period)`.
    async fn charged_periods(&self, lines: &[LineId]) -> StoreResult<Vec<(LineId, u32)>>;
    /// The payment attempts with these keys that exist.
    async fn payments_by_keys(&self, keys: &[String]) -> StoreResult<Vec<PaymentRecord>>;
    /// One line of the account.
    async fn get_line(&self, account: &AccountId, id: &LineId) -> StoreResult<Option<LineRecord>>;
    /// One line, whatever its account (jobs and the connector).
    async fn line_by_id(&self, id: &LineId) -> StoreResult<Option<LineRecord>>;
    /// The line behind a connect-page token.
    async fn line_by_token(&self, token: &str) -> StoreResult<Option<LineRecord>>;
    /// The account's lines, newest first.
    async fn list_lines(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<LineRecord>>;
    /// The account's lines that are not released (for the forecast).
    async fn open_lines(&self, account: &AccountId) -> StoreResult<Vec<LineRecord>>;
    /// Queues an outbound message on a line that can send, counting it against the line's
    /// daily `limit` for UTC day `day`; schedules `send_job` if the line is `ready`.
    async fn enqueue_message(
        &self,
        msg: &MessageRecord,
        day: i64,
        limit: u32,
        send_job: NewJob,
    ) -> StoreResult<Result<LineStatus, EnqueueRefused>>;
    /// One message of the account.
    async fn get_message(
        &self,
        account: &AccountId,
        id: &MessageId,
    ) -> StoreResult<Option<MessageRecord>>;
    /// The inbound message of `line` that the connector reported as `provider_id`, if it was
    /// stored already (a connector redelivers what it did not see acknowledged).
    async fn inbound_message(
        &self,
        line: &LineId,
        provider_id: &str,
    ) -> StoreResult<Option<MessageRecord>>;
    /// A line's messages, both directions, newest first.
    async fn list_messages(
        &self,
        account: &AccountId,
        line: &LineId,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageRecord>>;
    /// The line's oldest outbound messages still `queued`, oldest first.
    async fn queued_messages(&self, line: &LineId, limit: u32) -> StoreResult<Vec<MessageRecord>>;
    /// The account's billing state, created empty on first use.
    async fn billing_account(&self, account: &AccountId) -> StoreResult<BillingAccountRecord>;
    /// The account's wallet transactions, newest first.
    async fn list_transactions(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<TransactionRecord>>;
    /// Records a payment attempt before the processor is called. If an attempt with the same
    /// key exists, returns that one instead (a rerun resolves it rather than charging anew).
    async fn begin_payment(&self, payment: &PaymentRecord) -> StoreResult<PaymentRecord>;
    /// The payment attempt with this key.
    async fn payment_by_key(&self, attempt_key: &str) -> StoreResult<Option<PaymentRecord>>;
    /// Whether the line has a charge for the period.
    async fn line_charged(&self, line: &LineId, period: u32) -> StoreResult<bool>;
}
