//! Flat per-line billing rules (PRODUCT.md §4) that need no I/O: which plan a line is on,
//! when it is charged, how a charge is funded, how money moves in the wallet's ledger, and
//! what the account should expect to pay.
//!
//! - [`plan`]: the two plans, their prices, the create-line flag checks and the rule that fixes
//!   a line's plan at scan.
//! - [`schedule`]: the trial, anniversary periods computed from an anchor (month-end clamped),
//!   the grace period and its retries, and the per-period charge key.
//! - [`ledger`]: the wallet as a double-entry ledger (balanced postings that never take a
//!   wallet below zero) and the funding rule for a line charge (wallet, auto top-up or card).
//! - [`days`]: partner billing in days (§11): the days ledger (invoices credit the balance,
//!   extensions move days to lines, releases return unused whole days), prepaid and postpaid.
//! - [`forecast`]: `GET /billing/forecast`: monthly total, pending lines' maximum cost,
//!   recommended balance and the charges of the next 30 days.
//!
//! Time always arrives as an argument; the store, the payment processor and the jobs that call
//! these rules live in other crates. See `docs/billing.md` for the rules with a worked example.

pub mod days;
pub mod forecast;
pub mod ledger;
pub mod plan;
pub mod schedule;
