//! The dates and durations of Meta's rules, in one place.

use jiff::civil::{date, Date};

/// Per-message pricing starts at 12am on this date in each WABA's time zone.
pub const PMP_START: Date = date(2025, 7, 1);

/// Meta's non-template pricing change: service messages and utility templates inside the
/// customer service window are charged from 12am on this date (WABA time zone).
pub const SERVICE_CHARGED_FROM: Date = date(2026, 10, 1);

/// Customer service window: hours after the user's last message or call.
pub const CUSTOMER_SERVICE_HOURS: i64 = 24;

/// A business reply within this many hours of an ad / Page call-to-action message opens a
/// free entry point window.
pub const ENTRY_POINT_REPLY_HOURS: i64 = 24;

/// Free entry point window (PMP) and conversation (CBP): hours from the business's reply.
pub const FREE_ENTRY_POINT_HOURS: i64 = 72;

/// CBP conversations last this many hours from the delivery of the message that opens them.
pub const CONVERSATION_HOURS: i64 = 24;

/// CBP free tier: service conversations per WABA and calendar month that cost nothing while
/// service conversations had a price (June 2023 to October 2024 on the built-in cards).
pub const FREE_SERVICE_CONVERSATIONS_PER_MONTH: u32 = 1_000;

/// Which set of rules is in force on a WABA's local date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Era {
    /// Conversation-based pricing (before 2025-07-01).
    ConversationBased,
    /// Per-message pricing with free service messages and free utility inside the window.
    PerMessage,
    /// Per-message pricing from 2026-10-01: service messages and utility inside the window
    /// are charged.
    PerMessageServiceCharged,
}

impl Era {
    /// The rules in force on `date` (a WABA's local date).
    pub fn on(date: Date) -> Era {
        if date < PMP_START {
            Era::ConversationBased
        } else if date < SERVICE_CHARGED_FROM {
            Era::PerMessage
        } else {
            Era::PerMessageServiceCharged
        }
    }
}
