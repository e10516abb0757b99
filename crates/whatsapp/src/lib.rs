//! wagate's WhatsApp Web multi-device connector, on the `whatsapp-rust` crate.

pub mod backend;
pub mod events;
pub mod seal;
