//! wagate's storage layer.
//!
//! Storage is reached through traits whose methods are whole use cases: each opens, does and
//! commits its own transaction, so no transaction type leaks out and a change and the events it
//! causes are always written together. One implementation, [`SqlStore`], runs the same queries
//! on embedded SQLite and on PostgreSQL (through sqlx's `Any` driver), with one migration set
//! per backend; the few places where the dialects differ branch on [`Backend`]. A contract
//! test suite (`tests/contract.rs`) runs against both.
//!
//! Every method that touches an account's data takes the [`AccountId`] and puts it in the
//! `WHERE` clause: tenant isolation is enforced where the data lives, not only in handlers.

mod calls;
mod days;
mod error;
mod lines;
mod meta;
mod numbers;
mod sessions;
mod sql;
pub mod testing;
mod traits;
mod wa_sessions;
mod webhooks;

pub use calls::*;
pub use days::*;
pub use error::{StoreError, StoreResult};
pub use lines::*;
pub use meta::*;
pub use numbers::*;
pub use sessions::*;
pub use sql::{Backend, OrderedCommit, SqlStore, DELIVER_JOB};
pub use traits::*;
pub use wa_sessions::*;
pub use webhooks::*;

pub use wagate_domain::ids::AccountId;
