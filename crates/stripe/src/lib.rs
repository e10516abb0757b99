#![doc = r#"
Stripe, as wagate uses it for per-line subscriptions (PRODUCT.md §11, "partner billing").

- [`client`]: [`StripeClient`] creates a customer (tagged with wagate's `account_id`), attaches
  a card and makes it the default, creates or looks up a recurring price, and creates, retrieves
  and cancels a subscription (tagged with wagate's `line_id`). Requests are form-encoded as
  Stripe takes them; every `POST` carries the caller's `Idempotency-Key`. Stripe's
  `{"error": {...}}` answers are sorted into a [`StripeError`] the caller can act on.
- [`webhook`]: checks `Stripe-Signature` ([`webhook::verify_signature`], time passed in),
  signs payloads for tests ([`webhook::sign`]) and parses an event into a [`StripeEvent`] whose
  object is typed for the events wagate acts on ([`webhook::parse_event`]).
- `fake` (cargo feature `fake`): `FakeStripe`, a local server answering like Stripe's API for
  what wagate uses (ids, shapes, errors, idempotency, test cards), with a business clock and a
  `Driver` that renews or fails subscriptions and posts the signed events to a webhook URL.
  `cargo run -p wagate-stripe --features fake --example fake_stripe` runs it by hand.

Shapes follow Stripe's API reference (customers, payment methods, prices, subscriptions,
invoices, events, errors, idempotent requests), its testing page (test `PaymentMethod`s) and its
webhook signature documentation. Since API version `2025-03-31.basil` a subscription's billing
period lives on its items (`items.data[].current_period_end`) and an invoice names its
subscription under `parent.subscription_details`; both the new and the older shapes are read.
"#]
#![forbid(unsafe_code)]

pub mod client;
pub mod types;
pub mod webhook;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{
    ApiError, StripeClient, StripeConfig, StripeConfigError, StripeError, DEFAULT_API_URL,
    DEFAULT_API_VERSION, REQUEST_TIMEOUT,
};
pub use types::{
    Customer, Interval, Invoice, InvoiceRef, InvoiceStatus, NewCustomer, NewPrice, NewSubscription,
    PaymentBehavior, PaymentMethod, Price, Subscription, SubscriptionItem, SubscriptionStatus,
};
pub use webhook::{
    parse_event, sign, verify_signature, EventError, EventObject, SignatureError, StripeEvent,
    DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};
