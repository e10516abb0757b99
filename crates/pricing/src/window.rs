//! The state kept per (business number, user): customer service window, free entry point
//! window and open CBP conversations. Every field is a deadline, so a state whose deadlines
//! have all passed carries no information and is dropped.

use crate::category::RateCategory;
use crate::event::{Conversation, ConversationId};
use crate::instant::Instant;
use crate::rules;

/// The CBP conversation categories; one conversation of each may be open at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Marketing conversation.
    Marketing = 0,
    /// Utility conversation (the one that may span the 2025-07-01 switch).
    Utility = 1,
    /// Authentication (or authentication-international) conversation.
    Authentication = 2,
    /// Service conversation.
    Service = 3,
}

const SLOTS: [Slot; 4] = [
    Slot::Marketing,
    Slot::Utility,
    Slot::Authentication,
    Slot::Service,
];

/// Deadlines for one (business, user) pair. 64 bytes, so millions of open windows fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairState {
    /// The customer service window is open before this instant.
    pub csw_until: Instant,
    /// A business reply before this instant opens a free entry point window.
    pub entry_until: Instant,
    /// The free entry point window is open before this instant.
    pub fep_until: Instant,
    /// Per [`Slot`]: the CBP conversation is open before this instant.
    pub conversation_until: [Instant; 4],
    /// The open authentication conversation was opened at the international rate.
    pub authentication_international: bool,
}

impl Default for PairState {
    fn default() -> Self {
        PairState {
            csw_until: Instant::NEVER,
            entry_until: Instant::NEVER,
            fep_until: Instant::NEVER,
            conversation_until: [Instant::NEVER; 4],
            authentication_international: false,
        }
    }
}

impl PairState {
    /// The user messaged or called: the customer service window (re)starts; a message from
    /// an ad or Page call-to-action also starts the time to reply for a free entry point.
    pub fn user_message(&mut self, at: Instant, entry_point: bool) {
        self.csw_until = at.plus_hours(rules::CUSTOMER_SERVICE_HOURS);
        if entry_point {
            self.entry_until = at.plus_hours(rules::ENTRY_POINT_REPLY_HOURS);
        }
    }

    /// True when some deadline is still ahead, so the state must be kept.
    pub fn is_live(&self, at: Instant) -> bool {
        self.csw_until > at
            || self.entry_until > at
            || self.fep_until > at
            || self.conversation_until.iter().any(|&until| until > at)
    }

    /// Handles a business message for the free entry point rules and says whether a window
    /// is open for it: the first business reply within 24 h of an entry-point message opens a
    /// 72 h window from that reply, closing every open conversation (CBP) — and uses up the
    /// entry point either way.
    pub fn business_reply_opens_entry_point(&mut self, at: Instant) -> bool {
        let mut open = at < self.fep_until;
        if at < self.entry_until {
            self.entry_until = Instant::NEVER;
            if !open {
                self.fep_until = at.plus_hours(rules::FREE_ENTRY_POINT_HOURS);
                self.conversation_until = [Instant::NEVER; 4];
                open = true;
            }
        }
        open
    }

    /// The open free entry point window as a conversation.
    pub fn entry_point_conversation(&self, pair: u128) -> Conversation {
        Conversation {
            id: conversation_id(pair, self.fep_until, 9),
            origin: RateCategory::ReferralConversion,
            expires_at: self.fep_until,
        }
    }

    /// True when the conversation of `slot` is open.
    pub fn is_open(&self, slot: Slot, at: Instant) -> bool {
        at < self.conversation_until[slot as usize]
    }

    /// The open conversation opened first (the one a non-template message is attributed to).
    pub fn first_open(&self, at: Instant) -> Option<Slot> {
        SLOTS
            .iter()
            .copied()
            .filter(|&slot| self.is_open(slot, at))
            .min_by_key(|&slot| self.conversation_until[slot as usize])
    }

    /// Opens the conversation of `slot` at `at`.
    pub fn open(&mut self, slot: Slot, at: Instant, category: RateCategory) {
        self.conversation_until[slot as usize] = at.plus_hours(rules::CONVERSATION_HOURS);
        if slot == Slot::Authentication {
            self.authentication_international =
                category == RateCategory::AuthenticationInternational;
        }
    }

    /// The conversation of `slot` as reported on each message in it.
    pub fn conversation(&self, slot: Slot, pair: u128) -> Conversation {
        let until = self.conversation_until[slot as usize];
        Conversation {
            id: conversation_id(pair, until, slot as u64),
            origin: self.category(slot),
            expires_at: until,
        }
    }

    /// The category of the conversation in `slot`.
    pub fn category(&self, slot: Slot) -> RateCategory {
        match slot {
            Slot::Marketing => RateCategory::Marketing,
            Slot::Utility => RateCategory::Utility,
            Slot::Authentication if self.authentication_international => {
                RateCategory::AuthenticationInternational
            }
            Slot::Authentication => RateCategory::Authentication,
            Slot::Service => RateCategory::Service,
        }
    }
}

/// A stable id from the pair, the closing time and the kind: the same input always gives the
/// same ids, and a restarted or chunked run agrees with a whole one.
fn conversation_id(pair: u128, until: Instant, kind: u64) -> ConversationId {
    let high = mix((pair >> 64) as u64 ^ mix(until.0 as u64 ^ kind));
    let low = mix(pair as u64 ^ high ^ kind.rotate_left(32));
    ConversationId((u128::from(high) << 64) | u128::from(low))
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
