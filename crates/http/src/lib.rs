//! wagate's HTTP API.
//!
//! The router, the error catalogue (every error is `{"error": code, "message": …}`, even an
//! extractor's rejection or an unknown route), bearer auth, `Idempotency-Key` replay,
//! Prometheus metrics and the OpenAPI document generated from the handlers themselves.

mod auth;
pub mod connect_page;
pub mod dashboard;
pub mod error;
pub mod guard;
pub mod idempotency;
pub mod invoice_page;
mod json;
pub mod metrics;
pub mod openapi;
mod routes;
mod state;

pub use routes::router;
pub use state::AppState;
