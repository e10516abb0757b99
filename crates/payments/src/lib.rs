//! The payment processor behind wagate's cards: the [`PaymentProcessor`] interface, the real
//! [`SquareProcessor`] and the offline [`SandboxProcessor`] used by `wagate serve --sandbox`.
//!
//! wagate never sees a card number: the browser tokenizes the card with the processor's own
//! form and hands us a one-time nonce, which [`PaymentProcessor::store_card`] turns into a
//! stored card (a processor customer + card id). Line charges and top-ups then call
//! [`PaymentProcessor::charge`] on that stored card.
//!
//! # Outcomes of a charge
//! - `Ok(Payment)`: the card was charged exactly once for this idempotency key.
//! - [`PaymentError::Declined`]: the card was refused; nothing was charged; safe to show.
//! - [`PaymentError::Invalid`]: our request (or the nonce / card) was rejected; nothing was
//!   charged.
//! - [`PaymentError::Unknown`]: timeout, transport error, 5xx, 429 or an unreadable answer.
//!   The card **may** have been charged. The caller keeps the attempt open and later calls
//!   [`PaymentProcessor::resolve`] with the *same* request; it never charges again under a new
//!   key.
//!
//! # Idempotency keys
//! Callers pass their own key (e.g. derived from the payment attempt row). Square accepts at
//! most 45 characters, so a longer (or non-ASCII) key is replaced by a stable digest of it:
//! see [`processor_idempotency_key`]. The same input always yields the same key, so a retry
//! or a [`resolve`](PaymentProcessor::resolve) after a restart reaches the same payment.
//!
//! # Differences from the first sketch of this interface
//! - [`SquareProcessor::new`] returns `Result<SquareProcessor, SquareConfigError>`: it checks
//!   the configuration (URL, token, location) and building the HTTP client can fail.
//! - [`SquareProcessor`]'s `resolve` re-sends the identical `CreatePayment` with the same key
//!   (Square offers no read-only lookup by idempotency key). It therefore never returns
//!   `Ok(None)`: if the first attempt never reached Square, the resend performs that one
//!   charge and returns it. It can never create a second payment. `Err(Declined)` from
//!   `resolve` means the original attempt was declined. The sandbox returns `Ok(None)` for a
//!   key it has never seen.
//! - Reusing an idempotency key for a *different* charge (other amount, card or account) is
//!   rejected as `Invalid { code: "IDEMPOTENCY_KEY_REUSED" }`, as Square does; the sandbox
//!   checks this too.
//! - Extra helpers: [`PaymentError::is_unknown`], [`SandboxProcessor::is_card_disabled`].
#![forbid(unsafe_code)]

mod error;
mod idempotency;
mod processor;
mod sandbox;
mod square;
mod types;

pub use error::PaymentError;
pub use idempotency::{processor_idempotency_key, MAX_IDEMPOTENCY_KEY_LEN};
pub use processor::PaymentProcessor;
pub use sandbox::{SandboxProcessor, SANDBOX_CARD_EXP_MONTH, SANDBOX_CARD_EXP_YEAR};
pub use square::{
    SquareConfig, SquareConfigError, SquareProcessor, DEFAULT_SQUARE_VERSION, DEFAULT_TIMEOUT,
    SQUARE_PRODUCTION_URL, SQUARE_SANDBOX_URL,
};
pub use types::{ChargeRequest, Payment, StoreCardRequest, StoredCard};
