//! wagate crate.
