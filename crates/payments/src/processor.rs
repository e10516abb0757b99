//! The interface the app charges cards through.

use async_trait::async_trait;

use crate::{ChargeRequest, Payment, PaymentError, SandboxProcessor, StoreCardRequest, StoredCard};

/// A card payment processor (Square in production, [`SandboxProcessor`] offline).
#[async_trait]
pub trait PaymentProcessor: Send + Sync + 'static {
    /// Whether this processor can take payments at all; `false` for a server without payment
    /// settings, so the API can say so before it records anything.
    fn configured(&self) -> bool {
        true
    }

    /// Stores a card from a one-time nonce (creates the processor customer first when
    /// `customer_id` is `None`). A repeat with the same idempotency key returns the same card.
    async fn store_card(&self, req: &StoreCardRequest<'_>) -> Result<StoredCard, PaymentError>;

    /// Charges a stored card; the idempotency key makes a repeat return the first result
    /// (the same payment, or the same decline) and never charge twice.
    async fn charge(&self, req: &ChargeRequest<'_>) -> Result<Payment, PaymentError>;

    /// Asks for the outcome of an earlier [`charge`](Self::charge) with the same request
    /// (used after [`PaymentError::Unknown`]). Never creates a second charge.
    ///
    /// - `Ok(Some(payment))`: the card was charged (once).
    /// - `Ok(None)`: the processor has no record of it: the charge never happened and the
    ///   caller may charge again with the same key. (Square never answers this: its resolve
    ///   completes the one charge instead; see the crate docs.)
    /// - `Err(Declined)`: the charge was declined; nothing was charged.
    /// - `Err(Unknown)`: still unknown; try again later.
    async fn resolve(&self, req: &ChargeRequest<'_>) -> Result<Option<Payment>, PaymentError>;

    /// Disables a stored card (the business removed it). Disabling a card that is already
    /// disabled or unknown to the processor succeeds.
    async fn disable_card(&self, customer_id: &str, card_id: &str) -> Result<(), PaymentError>;

    /// The sandbox controls (`fail_next`) when this is the sandbox processor, else `None`.
    fn sandbox(&self) -> Option<&SandboxProcessor> {
        None
    }
}
