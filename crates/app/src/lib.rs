//! wagate's use cases: each combines domain rules, the store and the clock, and is what the
//! HTTP layer and the CLI call. Nothing here knows about HTTP.

pub mod accounts;
mod app;
pub mod billing;
pub mod calls;
pub mod cloud;
pub mod connector;
pub mod dashboard;
pub mod error;
pub mod lines;
pub mod numbers;
pub mod scheduler;
pub mod webhooks;

pub use app::{App, AppConfig, Outside};
pub use error::{AppError, AppResult, RuleError};
