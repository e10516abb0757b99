//! Webhook rules that need no I/O: how a delivery is signed, when it is retried, and which
//! endpoint URLs wagate refuses to call.
//!
//! - [`signing`]: Standard Webhooks (<https://www.standardwebhooks.com>) secrets and signatures,
//!   so any Standard Webhooks verifier accepts what we send.
//! - [`retry`]: the retry schedule, the attempt timeout, and what an HTTP status means.
//! - [`address`]: endpoint URL parsing and SSRF protection (addresses a server must never call).
//!
//! The delivery worker combines these with the store, the HTTP client and the injected clock.

pub mod address;
pub mod retry;
pub mod signing;
