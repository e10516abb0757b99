//! Virtual number storage (PRODUCT.md §12): the numbers bought, the SMS they received, and
//! the part of a [`crate::Batch`] that writes them — with the order's `number_charge` or the
//! `refund` in the batch's wallet transactions, so a number and its money are one commit.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::{AccountId, NumberId, TransactionId};
use wagate_domain::money::Micros;
use wagate_domain::number::{NumberKind, NumberState, NumberStatus};
use wagate_domain::page::{Page, PageRequest};

use crate::StoreResult;

/// A number as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRecord {
    /// `num_…`
    pub id: NumberId,
    /// The owner.
    pub account_id: AccountId,
    /// Bumped by every write; a write from a stale read is refused.
    pub version: i64,
    /// Verification or rental.
    pub kind: NumberKind,
    /// Where it is.
    pub status: NumberStatus,
    /// The service it receives SMS from (`whatsapp`).
    pub service: String,
    /// ISO 3166 alpha-2 country (`GB`).
    pub country: String,
    /// The number, E.164.
    pub phone_number: String,
    /// The provider that sold it (internal: never shown to the business).
    pub provider: String,
    /// The provider's id of the order.
    pub provider_ref: String,
    /// A verification's price, or a rental's price per hour.
    pub unit_price: Micros,
    /// Everything charged for it so far (the order and each extension).
    pub price: Micros,
    /// `USD`.
    pub currency: String,
    /// A rental's hours so far (the order's and each extension's).
    pub hours: Option<u32>,
    /// A verification's code, once received.
    pub code: Option<String>,
    /// The wallet debit of the order.
    pub charge_transaction_id: TransactionId,
    /// The refund of that debit, if it was refunded.
    pub refund_transaction_id: Option<TransactionId>,
    /// Bought.
    pub created_at: Timestamp,
    /// When it stops receiving (a verification: 20 minutes after the order).
    pub expires_at: Timestamp,
    /// When the code arrived.
    pub code_received_at: Option<Timestamp>,
    /// Canceled or expired.
    pub ended_at: Option<Timestamp>,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl NumberRecord {
    /// What the number rules need of it.
    pub fn state(&self) -> NumberState {
        NumberState {
            kind: self.kind,
            status: self.status,
            expires_at: self.expires_at,
        }
    }
}

/// An SMS a number received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberMessageRecord {
    /// The number.
    pub number_id: NumberId,
    /// The provider's name of the SMS: a poll that sees it again writes nothing.
    pub provider_key: String,
    /// The text.
    pub text: String,
    /// The code read out of it, if any.
    pub code: Option<String>,
    /// When wagate received it (business time).
    pub received_at: Timestamp,
}

/// The numbers part of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberWrite {
    /// A new number (its charge is among the batch's wallet transactions).
    pub insert: Option<NumberRecord>,
    /// A changed number, as read and then changed (its `version` is the one read); a
    /// [`crate::Conflict::NumberChanged`] if the stored version moved on.
    pub update: Option<NumberRecord>,
    /// New SMS; a [`crate::Conflict::AlreadyApplied`] if one was recorded before (another
    /// poll got there first: it also wrote what this batch would).
    pub messages: Vec<NumberMessageRecord>,
}

/// Numbers and their SMS.
#[async_trait]
pub trait NumberStore {
    /// One number of the account.
    async fn get_number(
        &self,
        account: &AccountId,
        id: &NumberId,
    ) -> StoreResult<Option<NumberRecord>>;
    /// One number, whatever its account (jobs).
    async fn number_by_id(&self, id: &NumberId) -> StoreResult<Option<NumberRecord>>;
    /// The account's numbers, newest first.
    async fn list_numbers(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<NumberRecord>>;
    /// The SMS of these numbers, oldest first.
    async fn number_messages(&self, numbers: &[NumberId]) -> StoreResult<Vec<NumberMessageRecord>>;
}
