//! The names Meta uses in its `pricing` object: models, categories and pricing types.

/// Meta's pricing model for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PricingModel {
    /// Conversation-based pricing (before 2025-07-01, and the utility conversation spanning it).
    Cbp,
    /// Per-message pricing (from 2025-07-01).
    Pmp,
}

impl PricingModel {
    /// The model of the rules in force on a date: PMP from 2025-07-01 (WABA time zone).
    pub fn on(date: jiff::civil::Date) -> PricingModel {
        if date < crate::rules::PMP_START {
            PricingModel::Cbp
        } else {
            PricingModel::Pmp
        }
    }

    /// `"CBP"` or `"PMP"` as in Meta's webhooks.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingModel::Cbp => "CBP",
            PricingModel::Pmp => "PMP",
        }
    }
}

/// The category of an approved template, as given in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateCategory {
    /// Promotions; always charged outside a free entry point window.
    Marketing,
    /// Follow-ups on user actions; free inside the customer service window until 2026-09-30.
    Utility,
    /// One-time passcodes; always charged outside a free entry point window.
    Authentication,
}

impl TemplateCategory {
    /// Reads `marketing`, `utility` or `authentication` (any case).
    pub fn parse(text: &str) -> Option<TemplateCategory> {
        if text.eq_ignore_ascii_case("marketing") {
            Some(TemplateCategory::Marketing)
        } else if text.eq_ignore_ascii_case("utility") {
            Some(TemplateCategory::Utility)
        } else if text.eq_ignore_ascii_case("authentication") {
            Some(TemplateCategory::Authentication)
        } else {
            None
        }
    }
}

/// The rate that was applied to a message (Meta's `pricing.category`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateCategory {
    /// Marketing template rate.
    Marketing,
    /// Utility template rate.
    Utility,
    /// Authentication template rate.
    Authentication,
    /// Authentication-international rate (eligible business, recipient abroad).
    AuthenticationInternational,
    /// Non-template (service) messages and CBP service conversations.
    Service,
    /// Anything inside a free entry point window.
    ReferralConversion,
}

impl RateCategory {
    /// Every category, in the order tables print them.
    pub const ALL: [RateCategory; 6] = [
        RateCategory::Marketing,
        RateCategory::Utility,
        RateCategory::Authentication,
        RateCategory::AuthenticationInternational,
        RateCategory::Service,
        RateCategory::ReferralConversion,
    ];

    /// Meta's `pricing.category` spelling (with a hyphen in `authentication-international`).
    pub fn as_str(self) -> &'static str {
        match self {
            RateCategory::Marketing => "marketing",
            RateCategory::Utility => "utility",
            RateCategory::Authentication => "authentication",
            RateCategory::AuthenticationInternational => "authentication-international",
            RateCategory::Service => "service",
            RateCategory::ReferralConversion => "referral_conversion",
        }
    }

    /// Meta's `conversation.origin.type` spelling (underscore in `authentication_international`).
    pub fn origin_str(self) -> &'static str {
        match self {
            RateCategory::AuthenticationInternational => "authentication_international",
            other => other.as_str(),
        }
    }

    /// The category a template of `category` is charged under before eligibility is known.
    pub fn of_template(category: TemplateCategory) -> RateCategory {
        match category {
            TemplateCategory::Marketing => RateCategory::Marketing,
            TemplateCategory::Utility => RateCategory::Utility,
            TemplateCategory::Authentication => RateCategory::Authentication,
        }
    }
}

/// Why a message was or was not charged (Meta's `pricing.type`, plus the CBP free tier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PricingType {
    /// Charged at the rate (or, in CBP, part of a conversation charged once).
    Regular,
    /// Free because of an open customer service window.
    FreeCustomerService,
    /// Free because of an open free entry point window.
    FreeEntryPoint,
    /// CBP only: one of the WABA's 1,000 free service conversations of the month.
    FreeTier,
}

impl PricingType {
    /// Meta's spelling (`free_tier` follows the legacy `conversation_analytics` value `FREE_TIER`).
    pub fn as_str(self) -> &'static str {
        match self {
            PricingType::Regular => "regular",
            PricingType::FreeCustomerService => "free_customer_service",
            PricingType::FreeEntryPoint => "free_entry_point",
            PricingType::FreeTier => "free_tier",
        }
    }
}
