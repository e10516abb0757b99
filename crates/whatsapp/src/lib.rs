//! wagate's WhatsApp Web multi-device connector, on the `whatsapp-rust` crate.
//!
//! [`WhatsAppConnector`] implements wagate's `Connector` with one whatsapp-rust client per
//! line this server serves; sessions live in wagate's own database, sealed with the server
//! key ([`seal`], [`backend`]); [`events`] maps the crate's events onto wagate's.

pub mod backend;
mod connector;
pub mod events;
mod inbound;
pub mod seal;

pub use connector::{check_key, wa_message_id, Options, WhatsAppConnector};
pub use inbound::{content, reportable, sender_number};
