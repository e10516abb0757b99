//! What the engine reads (events) and what it says about each business message (outcomes).

use crate::category::{PricingModel, PricingType, RateCategory, TemplateCategory};
use crate::currency::Currency;
use crate::instant::Instant;
use crate::market::MarketId;
use crate::money::Micros;
use crate::phone::Phone;
use crate::tiers::TierRange;

/// A WABA known to an [`crate::Engine`] (from [`crate::Engine::waba`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WabaId(pub(crate) u32);

/// A business message, as far as pricing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// An approved template of a category (the category at the time of use).
    Template(TemplateCategory),
    /// Any other type (`text`, `image`, …): only possible inside the customer service window.
    NonTemplate,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The user messaged or called the business; `entry_point` when it came from a
    /// Click-to-WhatsApp ad or a Facebook Page call-to-action.
    UserMessage {
        /// From an ad or Page call-to-action (opens the way to a free entry point window).
        entry_point: bool,
    },
    /// A business message was delivered.
    BusinessMessage(Message),
}

/// One input event, in time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the user's message arrived or the business's message was delivered.
    pub at: Instant,
    /// The WABA the business number belongs to.
    pub waba: WabaId,
    /// The business phone number.
    pub business: Phone,
    /// The WhatsApp user's phone number (its calling code decides the market).
    pub user: Phone,
    /// What happened.
    pub kind: EventKind,
}

/// The engine's verdict on one business message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered and priced.
    Priced(Pricing),
    /// A non-template message with no open customer service window: Meta refuses it.
    OutsideCustomerServiceWindow,
}

/// How a delivered message is priced, shaped like Meta's `pricing` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pricing {
    /// True when this message is charged (in CBP: when it opens a charged conversation).
    pub billable: bool,
    /// CBP or PMP.
    pub model: PricingModel,
    /// The rate applied.
    pub category: RateCategory,
    /// Why it is or is not charged.
    pub kind: PricingType,
    /// The recipient's market on the WABA's local date.
    pub market: MarketId,
    /// What this message costs; zero when not billable; `None` when billable but no rate
    /// card in force lists the rate (`"error": "no_rate_card"`, never a guessed price).
    pub rate: Option<Micros>,
    /// The WABA's currency.
    pub currency: Currency,
    /// The volume tier band the message was counted in, when a tier table is in force.
    pub tier: Option<TierRange>,
    /// The CBP conversation or free entry point window the message belongs to.
    pub conversation: Option<Conversation>,
}

impl Pricing {
    /// The money this message adds to the bill (zero when free or without a rate).
    pub fn charge(&self) -> Micros {
        if self.billable {
            self.rate.unwrap_or(Micros::ZERO)
        } else {
            Micros::ZERO
        }
    }
}

/// A CBP conversation or a free entry point window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Stable id: the same input gives the same id, whatever the chunking.
    pub id: ConversationId,
    /// The category that opened it (`referral_conversion` for free entry point windows).
    pub origin: RateCategory,
    /// When it closes.
    pub expires_at: Instant,
}

/// A conversation id, printed as 32 hex digits like Meta's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConversationId(pub u128);

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}
