//! The values that cross the processor boundary.

use wagate_domain::ids::AccountId;

/// A card stored with the processor (we never see the number).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCard {
    /// The processor's customer the card belongs to (reuse it for the account's next card).
    pub customer_id: String,
    /// The processor's card id (Square: `ccof:…`), the source of later charges.
    pub card_id: String,
    /// The card brand as the processor names it, e.g. `VISA`.
    pub brand: String,
    /// The last four digits of the card number.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: u32,
    /// Expiry year, four digits.
    pub exp_year: u32,
}

/// Stores a card from a one-time nonce.
#[derive(Debug, Clone, Copy)]
pub struct StoreCardRequest<'a> {
    /// The account the card belongs to (the processor customer's reference).
    pub account: &'a AccountId,
    /// The account's display name (the processor customer's company name).
    pub account_name: &'a str,
    /// The processor customer created earlier for this account, if any; `None` creates one.
    pub customer_id: Option<&'a str>,
    /// The one-time nonce from the processor's card form (`cnon:…`).
    pub source_id: &'a str,
    /// Makes a repeat of this request return the first result.
    pub idempotency_key: &'a str,
}

/// Charges a stored card.
#[derive(Debug, Clone, Copy)]
pub struct ChargeRequest<'a> {
    /// The account whose card is charged.
    pub account: &'a AccountId,
    /// The processor customer owning the card.
    pub customer_id: &'a str,
    /// The stored card's id.
    pub card_id: &'a str,
    /// The amount in the currency's minor unit (cents).
    pub amount_cents: i64,
    /// ISO 4217 currency code, e.g. `USD`.
    pub currency: &'a str,
    /// Makes a repeat (or a [`resolve`](crate::PaymentProcessor::resolve)) reach the same
    /// payment; one key per payment attempt, never reused for another charge.
    pub idempotency_key: &'a str,
    /// A short description stored with the payment (e.g. the line it pays for).
    pub note: &'a str,
}

/// A completed card payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    /// The processor's payment id.
    pub processor_id: String,
    /// The amount charged, in the currency's minor unit (cents).
    pub amount_cents: i64,
    /// ISO 4217 currency code of the amount.
    pub currency: String,
}
