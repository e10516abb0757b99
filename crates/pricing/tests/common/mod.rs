//! Helpers shared by the integration tests: a scenario drives one engine with readable times.
#![allow(dead_code)]

use wagate_pricing::auth_intl::AuthIntl;
use wagate_pricing::waba::{WabaDirectory, WabaSettings};
use wagate_pricing::{
    Engine, Event, EventKind, Instant, Message, Micros, Outcome, Phone, Pricing, PricingData,
    TemplateCategory, WabaId,
};

/// The made-up tier table (Meta's layout, invented numbers), effective 2025-07-01 in USD.
pub const MADE_UP_TIERS: &str = include_str!("../data/made_up_tier_pricing.csv");

/// A marketing template.
pub const MARKETING: Message = Message::Template(TemplateCategory::Marketing);
/// A utility template.
pub const UTILITY: Message = Message::Template(TemplateCategory::Utility);
/// An authentication template.
pub const AUTHENTICATION: Message = Message::Template(TemplateCategory::Authentication);
/// A non-template message.
pub const TEXT: Message = Message::NonTemplate;

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> Instant {
    Instant::parse(text).expect("test timestamps are valid")
}

/// A phone number from E.164 text.
pub fn phone(text: &str) -> Phone {
    Phone::parse(text).expect("test numbers are valid")
}

/// Micro-units from a decimal string.
pub fn money(text: &str) -> Micros {
    Micros::parse_decimal(text).expect("test amounts are valid")
}

/// One engine, a business number and a default WABA `w`.
pub struct Scenario {
    /// The engine under test.
    pub engine: Engine,
    /// The business number every message is sent from.
    pub business: Phone,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::new()
    }
}

impl Scenario {
    /// Built-in data, every WABA on the defaults.
    pub fn new() -> Scenario {
        Scenario::with(
            PricingData::builtin().expect("built-in data"),
            WabaDirectory::default(),
            AuthIntl::default(),
        )
    }

    /// Given data, WABA settings and eligibility.
    pub fn with(data: PricingData, wabas: WabaDirectory, auth: AuthIntl) -> Scenario {
        Scenario {
            engine: Engine::new(data, wabas, auth),
            business: phone("+15550001111"),
        }
    }

    /// The engine's id for a WABA name.
    pub fn waba(&mut self, name: &str) -> WabaId {
        self.engine.waba(name)
    }

    /// The user messages (or calls) the business through WABA `w`.
    pub fn user(&mut self, when: &str, user: &str) {
        self.user_via("w", when, user, false);
    }

    /// The user messages from a Click-to-WhatsApp ad.
    pub fn user_from_ad(&mut self, when: &str, user: &str) {
        self.user_via("w", when, user, true);
    }

    /// A user message through a named WABA.
    pub fn user_via(&mut self, waba: &str, when: &str, user: &str, entry_point: bool) {
        let waba = self.engine.waba(waba);
        let event = Event {
            at: at(when),
            waba,
            business: self.business,
            user: phone(user),
            kind: EventKind::UserMessage { entry_point },
        };
        assert_eq!(self.engine.rate(&event), None);
    }

    /// A business message from WABA `w` delivered at `when`.
    pub fn send(&mut self, when: &str, user: &str, message: Message) -> Outcome {
        self.send_via("w", when, user, message)
    }

    /// A business message through a named WABA.
    pub fn send_via(&mut self, waba: &str, when: &str, user: &str, message: Message) -> Outcome {
        let waba = self.engine.waba(waba);
        let event = Event {
            at: at(when),
            waba,
            business: self.business,
            user: phone(user),
            kind: EventKind::BusinessMessage(message),
        };
        self.engine
            .rate(&event)
            .expect("a business message always has an outcome")
    }

    /// Like [`Scenario::send`] but expects the message to be delivered and priced.
    pub fn priced(&mut self, when: &str, user: &str, message: Message) -> Pricing {
        self.priced_via("w", when, user, message)
    }

    /// A priced business message through a named WABA.
    pub fn priced_via(&mut self, waba: &str, when: &str, user: &str, message: Message) -> Pricing {
        match self.send_via(waba, when, user, message) {
            Outcome::Priced(pricing) => pricing,
            other => panic!("expected a priced message at {when}, got {other:?}"),
        }
    }

    /// The market name of a priced message.
    pub fn market(&self, pricing: &Pricing) -> String {
        self.engine.data().markets.name(pricing.market).to_string()
    }
}

/// Settings for a WABA in a time zone and portfolio, billed in USD.
pub fn waba_in(zone: &str, portfolio: &str) -> WabaSettings {
    WabaSettings {
        time_zone: jiff::tz::TimeZone::get(zone).expect("zone"),
        currency: wagate_pricing::Currency::USD,
        portfolio: Some(portfolio.to_string()),
    }
}

/// The built-in data plus the made-up tier table.
pub fn data_with_made_up_tiers() -> PricingData {
    let mut data = PricingData::builtin().expect("built-in data");
    data.add_tiers(MADE_UP_TIERS, "made_up_tier_pricing.csv", None)
        .expect("made-up tiers load");
    data
}
