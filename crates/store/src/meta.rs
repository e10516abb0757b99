//! Cloud API lines and Meta's billing: a cloud line's Meta identity, the pricing engine's
//! state rows, what each delivered message cost, and which Meta notifications were applied.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::{AccountId, LineId, MessageId, TransactionId};
use wagate_domain::money::Micros;

use crate::{MessageRecord, StoreResult};

/// A Cloud API line's Meta identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudLineRecord {
    /// The line.
    pub line_id: LineId,
    /// Its account.
    pub account_id: AccountId,
    /// Meta's id of the business phone number (the Graph API object messages are sent from).
    pub phone_number_id: String,
    /// The WhatsApp Business Account it belongs to.
    pub waba_id: String,
    /// The business portfolio whose volume tiers it accrues to (the WABA when not given).
    pub portfolio_id: String,
    /// The WABA's time zone (IANA): months and rule changes start at its midnight.
    pub time_zone: String,
    /// The WABA's billing currency.
    pub currency: String,
    /// The Graph API access token, sealed with the server key.
    pub access_token: String,
    /// When the line was released (its number may then serve a new line).
    pub released_at: Option<Timestamp>,
}

/// What a Cloud API send asked for that pricing needs at delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudMessageRecord {
    /// The message.
    pub message_id: MessageId,
    /// Its line.
    pub line_id: LineId,
    /// The template's name (`None`: a non-template message).
    pub template_name: Option<String>,
    /// The template's language code.
    pub template_language: Option<String>,
    /// The category the business declared: `marketing`, `utility` or `authentication`.
    pub category: Option<String>,
}

/// An outbound message a Meta status is about ([`MetaStore::status_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusTarget {
    /// The message.
    pub message: MessageRecord,
    /// The template category its Cloud API send declared; `None` for a non-template message.
    pub category: Option<String>,
    /// Whether it was priced already (its first `delivered` or `read` came before).
    pub priced: bool,
}

/// Names the pricing state of one event (see `wagate_pricing::StateKeys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingKey {
    /// The business number.
    pub business: String,
    /// The user number.
    pub user: String,
    /// The WABA.
    pub waba: String,
    /// The portfolio.
    pub portfolio: String,
    /// The recipient market.
    pub market: String,
    /// The WABA's local month (`year * 12 + month - 1`).
    pub month: i32,
}

/// The stored pricing state for a [`PricingKey`], with each row's version (`None`: no row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PricingRows {
    /// The pair's encoded state and version.
    pub pair: Option<(String, i64)>,
    /// Utility and authentication counts of the month, and the version.
    pub tiers: Option<(u64, u64, i64)>,
    /// The WABA's free-tier month, conversations used, and version.
    pub free: Option<(i32, u32, i64)>,
}

/// The pricing state to write back for a key, guarded by the versions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingWrite {
    /// Which state.
    pub key: PricingKey,
    /// What was read (the versions guard the write).
    pub read: PricingRows,
    /// The pair's new encoded state and when it expires; `None` deletes it.
    pub pair: Option<(String, Timestamp)>,
    /// The month's utility count.
    pub utility: u64,
    /// The month's authentication count.
    pub authentication: u64,
    /// Free service conversations the WABA used in the month.
    pub free_used: u32,
    /// The version each row this write changes is left at. Unique to the write (random):
    /// a write priced on the state another write left is guarded by that write's version,
    /// which only the database can hold once that write committed — so it can never pass on
    /// a row that reached the same count of changes some other way.
    pub version: i64,
}

/// What one delivered Cloud API message cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePricingRecord {
    /// The message.
    pub message_id: MessageId,
    /// Its account.
    pub account_id: AccountId,
    /// Its line.
    pub line_id: LineId,
    /// The WABA.
    pub waba_id: String,
    /// When Meta delivered it (the instant it was priced at).
    pub delivered_at: Timestamp,
    /// Our pricing object (JSON, as `message.status` carries it).
    pub ours: String,
    /// What the wallet was debited.
    pub amount: Micros,
    /// The currency of the rate applied.
    pub currency: String,
    /// The wallet debit, when the message cost money.
    pub transaction_id: Option<TransactionId>,
    /// Meta's own pricing object from its status webhook (JSON), when it sent one.
    pub meta: Option<String>,
}

/// The Meta-specific part of a [`crate::Batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaWrite {
    /// The Meta notification this batch applies; a [`crate::Conflict::AlreadyApplied`] if it
    /// was applied before (Meta retries deliveries).
    pub delivery_key: Option<String>,
    /// A new cloud line's identity (with the batch's `insert_line`).
    pub insert_cloud_line: Option<CloudLineRecord>,
    /// A released cloud line: its number may serve a new line.
    pub release_cloud_line: Option<LineId>,
    /// A Cloud API send (with the batch's `insert_messages`).
    pub insert_cloud_message: Option<CloudMessageRecord>,
    /// The pricing engine's state after the event; a [`crate::Conflict::PricingChanged`] if a
    /// row moved since it was read.
    pub pricing: Option<PricingWrite>,
    /// A message's cost; a [`crate::Conflict::AlreadyPriced`] if it was priced before.
    pub message_pricing: Option<MessagePricingRecord>,
}

/// Storage for Cloud API lines and Meta's billing.
#[async_trait]
pub trait MetaStore {
    /// A line's Meta identity.
    async fn cloud_line(&self, line: &LineId) -> StoreResult<Option<CloudLineRecord>>;
    /// The open line of a Meta phone number id.
    async fn cloud_line_by_number(
        &self,
        phone_number_id: &str,
    ) -> StoreResult<Option<CloudLineRecord>>;
    /// The stored pricing state for a key.
    async fn pricing_rows(&self, key: &PricingKey) -> StoreResult<PricingRows>;
    /// The outbound message of `line` a Meta status is about, with what pricing it needs, in
    /// one read: the one Meta knows by `provider_id`, else (Meta's id never recorded) the one
    /// wagate sent as `own_id` (`biz_opaque_callback_data`).
    async fn status_target(
        &self,
        line: &LineId,
        provider_id: &str,
        own_id: Option<&MessageId>,
    ) -> StoreResult<Option<StatusTarget>>;
    /// What a message cost, once priced.
    async fn message_pricing(
        &self,
        message: &MessageId,
    ) -> StoreResult<Option<MessagePricingRecord>>;
    /// Priced messages of an account delivered in `[start, end)`, oldest first.
    async fn priced_messages(
        &self,
        account: &AccountId,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<Vec<MessagePricingRecord>>;
}
