//! wagate's pure domain: the vocabulary every other crate speaks.
//!
//! Nothing here performs I/O or reads the system time; time arrives through [`clock::Clock`]
//! or as a function argument, so every rule can be tested with a clock the test controls.

pub mod account;
pub mod billing;
pub mod call;
pub mod clock;
pub mod ids;
pub mod jobs;
pub mod line;
pub mod money;
pub mod number;
pub mod page;
pub mod time;
pub mod webhook;
