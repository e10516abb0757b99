//! Meta's WhatsApp Business Platform message pricing, as a pure library.
//!
//! Feed [`Engine::rate`] the events of a stream in time order (user messages and delivered
//! business messages); it answers each business message with what Meta charges for it:
//! per-message pricing (PMP) from 2025-07-01, conversation-based pricing (CBP) before,
//! customer service and free entry point windows, markets by calling code, rate cards and
//! volume tiers as data, authentication-international, and the 2026-10-01 service change.
//! `docs/pricing.md` explains the rules with Meta's examples.
//!
//! Only [`cli`] touches files and standard streams.

pub mod auth_intl;
pub mod builtin;
pub mod category;
pub mod cli;
pub mod currency;
pub mod data;
pub mod engine;
pub mod error;
pub mod event;
pub mod instant;
pub mod jsonl;
pub mod market;
pub mod meta_csv;
pub mod money;
mod operator_csv;
pub mod phone;
mod pipeline;
pub mod rate_card;
pub mod rules;
pub mod state;
pub mod summary;
pub mod synth;
pub mod tiers;
pub mod waba;
pub mod window;

pub use category::{PricingModel, PricingType, RateCategory, TemplateCategory};
pub use currency::Currency;
pub use data::PricingData;
pub use engine::Engine;
pub use error::DataError;
pub use event::{Conversation, Event, EventKind, Message, Outcome, Pricing, WabaId};
pub use instant::Instant;
pub use money::Micros;
pub use phone::Phone;
pub use state::{StateKeys, StateSlice};
