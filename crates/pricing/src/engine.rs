//! The streaming rating engine: events in time order in, one [`Outcome`] per business
//! message out. Pure: no files, no clock; time comes from the events.
//!
//! State is kept per (business, user) only while a window or conversation is open, and per
//! (portfolio, market, tier group, month) for volume tiers; a sweep drops what has expired
//! as event time passes, so memory follows the open windows, not the length of the input.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::auth_intl::{AuthIntl, Eligibility};
use crate::category::{PricingModel, PricingType, RateCategory, TemplateCategory};
use crate::currency::Currency;
use crate::data::PricingData;
use crate::event::{Event, EventKind, Message, Outcome, Pricing, WabaId};
use crate::instant::Instant;
use crate::market::{Destination, MarketId};
use crate::money::Micros;
use crate::phone::Phone;
use crate::rate_card::MarketRates;
use crate::rules::{self, Era};
use crate::tiers::TierGroup;
use crate::waba::{WabaDirectory, WabaSettings};
use crate::window::{PairState, Slot};

/// Volume tier counter key: charged messages per portfolio, market, group and month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TierKey {
    /// Portfolio index (portfolios are interned by name).
    pub portfolio: u32,
    /// The recipient market.
    pub market: MarketId,
    /// Utility or authentication (the international rate shares the authentication count).
    pub group: TierGroup,
    /// `year * 12 + month - 1` of the sending WABA's local date.
    pub month: i32,
}

/// What is cached per WABA for the local day the last event fell in: converting an instant
/// to a local date and choosing cards costs far more than the rest of a message's rating.
#[derive(Clone, Copy, Debug)]
struct Day {
    start: Instant,
    end: Instant,
    date: Date,
    month: i32,
    era: Era,
    pmp_card: Option<usize>,
    cbp_card: Option<usize>,
    tier_table: Option<usize>,
}

/// A WABA's settings and running counters.
#[derive(Clone, Debug)]
struct WabaState {
    name: String,
    portfolio_name: String,
    time_zone: TimeZone,
    currency: Currency,
    portfolio: u32,
    eligibility: Option<Eligibility>,
    day: Day,
    /// CBP free tier: (month, service conversations used).
    free_tier: (i32, u32),
}

impl WabaState {
    /// The local day of `at`, recomputed only when `at` leaves the cached day.
    fn day(&mut self, at: Instant, data: &PricingData) -> Day {
        if at >= self.day.start && at < self.day.end {
            return self.day;
        }
        let zoned = at.to_timestamp().to_zoned(self.time_zone.clone());
        let date = zoned.date();
        let start = zoned
            .start_of_day()
            .ok()
            .and_then(|z| Instant::from_timestamp(z.timestamp()))
            .unwrap_or(at);
        // If the next midnight cannot be computed the cache stays empty (recomputed next time).
        let end = date
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(self.time_zone.clone()).ok())
            .and_then(|z| Instant::from_timestamp(z.timestamp()))
            .unwrap_or(at);
        self.day = Day {
            start,
            end,
            date,
            month: month_key(date),
            era: Era::on(date),
            pmp_card: data.cards.in_force(self.currency, date, PricingModel::Pmp),
            cbp_card: data.cards.in_force(self.currency, date, PricingModel::Cbp),
            tier_table: data.tiers.in_force(self.currency, date),
        };
        self.day
    }

    /// Takes one of the month's free service conversations if any is left.
    fn take_free_service_conversation(&mut self, month: i32) -> bool {
        if self.free_tier.0 != month {
            self.free_tier = (month, 0);
        }
        if self.free_tier.1 < rules::FREE_SERVICE_CONVERSATIONS_PER_MONTH {
            self.free_tier.1 += 1;
            true
        } else {
            false
        }
    }
}

pub(crate) fn month_key(date: Date) -> i32 {
    i32::from(date.year()) * 12 + i32::from(date.month()) - 1
}

type FastMap<K, V> = HashMap<K, V, FixedState>;

/// The pricing engine for one stream of events.
#[derive(Clone, Debug)]
pub struct Engine {
    data: PricingData,
    directory: WabaDirectory,
    auth_intl: AuthIntl,
    wabas: Vec<WabaState>,
    waba_ids: FastMap<String, WabaId>,
    portfolios: HashMap<String, u32>,
    pub(crate) pairs: FastMap<u128, PairState>,
    pub(crate) tier_counts: FastMap<TierKey, u64>,
    next_sweep: Instant,
    since_sweep: usize,
}

impl Engine {
    /// An engine with the given data, WABA settings and authentication-international
    /// declarations.
    pub fn new(data: PricingData, directory: WabaDirectory, auth_intl: AuthIntl) -> Engine {
        Engine {
            data,
            directory,
            auth_intl,
            wabas: Vec::new(),
            waba_ids: FastMap::with_hasher(FixedState::default()),
            portfolios: HashMap::new(),
            pairs: FastMap::with_hasher(FixedState::default()),
            tier_counts: FastMap::with_hasher(FixedState::default()),
            next_sweep: Instant::NEVER,
            since_sweep: 0,
        }
    }

    /// The pricing data in use (market names for printing outcomes).
    pub fn data(&self) -> &PricingData {
        &self.data
    }

    /// The id of a WABA by name, taking its settings from the directory on first sight.
    pub fn waba(&mut self, name: &str) -> WabaId {
        if let Some(&id) = self.waba_ids.get(name) {
            return id;
        }
        let id = WabaId(self.wabas.len() as u32);
        let state = self.new_waba_state(name);
        self.wabas.push(state);
        self.waba_ids.insert(name.to_string(), id);
        id
    }

    /// A WABA's state as its directory entry describes it, with empty counters.
    fn new_waba_state(&mut self, name: &str) -> WabaState {
        let settings = self.directory.settings(name);
        let portfolio_name = settings.portfolio.unwrap_or_else(|| format!("waba:{name}"));
        let portfolio = self.portfolio_index(&portfolio_name);
        WabaState {
            name: name.to_string(),
            portfolio_name,
            time_zone: settings.time_zone,
            currency: settings.currency,
            portfolio,
            eligibility: self.auth_intl.get(name).cloned(),
            day: Day {
                start: Instant::NEVER,
                end: Instant::NEVER,
                date: Date::default(),
                month: 0,
                era: Era::ConversationBased,
                pmp_card: None,
                cbp_card: None,
                tier_table: None,
            },
            free_tier: (0, 0),
        }
    }

    /// The index of a portfolio by name (portfolios are interned).
    pub(crate) fn portfolio_index(&mut self, name: &str) -> u32 {
        let next = self.portfolios.len() as u32;
        *self.portfolios.entry(name.to_string()).or_insert(next)
    }

    /// Takes a WABA's new directory entry into account (a WABA not seen yet needs nothing).
    pub(crate) fn redescribe_waba(&mut self, name: &str, settings: WabaSettings) {
        self.directory.insert(name, settings);
        if let Some(&id) = self.waba_ids.get(name) {
            let mut fresh = self.new_waba_state(name);
            if let Some(state) = self.wabas.get_mut(id.0 as usize) {
                fresh.free_tier = state.free_tier;
                *state = fresh;
            }
        }
    }

    /// The event's WABA name, portfolio name and local date (`None` for an unknown WABA id).
    pub(crate) fn waba_view(&mut self, event: &Event) -> Option<(String, String, Date)> {
        let waba = self.wabas.get_mut(event.waba.0 as usize)?;
        let day = waba.day(event.at, &self.data);
        Some((waba.name.clone(), waba.portfolio_name.clone(), day.date))
    }

    /// The WABA's free service conversations used in `month`.
    pub(crate) fn free_tier(&self, event: &Event, month: i32) -> u32 {
        match self.wabas.get(event.waba.0 as usize) {
            Some(waba) if waba.free_tier.0 == month => waba.free_tier.1,
            _ => 0,
        }
    }

    /// Sets the WABA's free service conversations used in `month`.
    pub(crate) fn set_free_tier(&mut self, event: &Event, month: i32, used: u32) {
        if let Some(waba) = self.wabas.get_mut(event.waba.0 as usize) {
            waba.free_tier = (month, used);
        }
    }

    /// Rates one event: `None` for a user message, an [`Outcome`] for a business message.
    /// Events must come in time order (the CLI refuses lines that go back in time).
    pub fn rate(&mut self, event: &Event) -> Option<Outcome> {
        self.sweep_if_due(event.at);
        let Engine {
            data,
            wabas,
            pairs,
            tier_counts,
            ..
        } = self;
        let waba = wabas.get_mut(event.waba.0 as usize)?;
        let key = pair_key(event.business, event.user);
        let message = match event.kind {
            EventKind::UserMessage { entry_point } => {
                pairs
                    .entry(key)
                    .or_default()
                    .user_message(event.at, entry_point);
                return None;
            }
            EventKind::BusinessMessage(message) => message,
        };
        let day = waba.day(event.at, data);
        let mut context = Context {
            data,
            waba,
            tier_counts,
            day,
            at: event.at,
            key,
            destination: data.countries.destination(event.user, day.date),
        };
        let outcome = match pairs.get_mut(&key) {
            Some(state) => context.price(state, message),
            None => {
                // Most business messages to a user without open windows leave no state behind
                // (a PMP marketing template); only insert when something was opened.
                let mut state = PairState::default();
                let outcome = context.price(&mut state, message);
                if state.is_live(event.at) {
                    pairs.insert(key, state);
                }
                outcome
            }
        };
        Some(outcome)
    }

    /// Looks up the pair `(business, user)` without changing anything, so that rating an
    /// event of that pair a few events later finds its state in the CPU's cache.
    ///
    /// The pair map is larger than the cache, and a lookup that waits for memory was most
    /// of [`Engine::rate`]'s time in `wagate rate`. Lookups issued a few events ahead do not
    /// depend on each other, so the CPU waits for several at once instead of one at a time.
    pub fn warm(&self, business: Phone, user: Phone) {
        std::hint::black_box(
            self.pairs
                .get(&pair_key(business, user))
                .map(|state| state.csw_until),
        );
    }

    /// How many (business, user) pairs have state (open windows or conversations).
    pub fn open_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// The volume tier counters kept (current and previous months).
    pub fn tier_counts(&self) -> impl Iterator<Item = (&TierKey, &u64)> {
        self.tier_counts.iter()
    }

    /// Drops expired state once per hour of event time, and only after as many events as
    /// there are open pairs, so the sweep costs one visit per event however many are open
    /// (after a quarter as many it was four, a tenth of the pricing thread in `wagate rate`;
    /// the map holds at most twice the live pairs in between).
    fn sweep_if_due(&mut self, at: Instant) {
        self.since_sweep += 1;
        if at < self.next_sweep || self.since_sweep < self.pairs.len() {
            return;
        }
        self.pairs.retain(|_, state| state.is_live(at));
        // Every time zone is within a day of UTC, so no WABA's month can be earlier than the
        // UTC month two days ago; counters of older months are done.
        let oldest = month_key(
            at.plus_hours(-48)
                .to_timestamp()
                .to_zoned(TimeZone::UTC)
                .date(),
        );
        self.tier_counts.retain(|key, _| key.month >= oldest);
        self.next_sweep = at.plus_hours(1);
        self.since_sweep = 0;
    }
}

/// The (business, user) key: both numbers' digits side by side.
pub(crate) fn pair_key(business: Phone, user: Phone) -> u128 {
    (u128::from(business.as_u64()) << 64) | u128::from(user.as_u64())
}

/// Everything one business message is rated with.
struct Context<'a> {
    data: &'a PricingData,
    waba: &'a mut WabaState,
    tier_counts: &'a mut FastMap<TierKey, u64>,
    day: Day,
    at: Instant,
    key: u128,
    destination: Destination,
}

impl Context<'_> {
    fn price(&mut self, state: &mut PairState, message: Message) -> Outcome {
        let at = self.at;
        if message == Message::NonTemplate && at >= state.csw_until {
            // Refused by Meta: nothing is delivered, so no window changes.
            return Outcome::OutsideCustomerServiceWindow;
        }
        let model = match self.day.era {
            Era::ConversationBased => PricingModel::Cbp,
            _ => PricingModel::Pmp,
        };
        if state.business_reply_opens_entry_point(at) {
            return Outcome::Priced(Pricing {
                conversation: Some(state.entry_point_conversation(self.key)),
                ..self.free(
                    model,
                    RateCategory::ReferralConversion,
                    PricingType::FreeEntryPoint,
                )
            });
        }
        Outcome::Priced(match self.day.era {
            Era::ConversationBased => self.conversation_based(state, message),
            _ => self.per_message(state, message),
        })
    }

    /// A free message of `category`.
    fn free(&self, model: PricingModel, category: RateCategory, kind: PricingType) -> Pricing {
        Pricing {
            billable: false,
            model,
            category,
            kind,
            market: self.destination.market,
            rate: Some(Micros::ZERO),
            currency: self.waba.currency,
            tier: None,
            conversation: None,
        }
    }

    /// A charged message at `rate` (`None`: no card in force has it).
    fn charged(
        &self,
        model: PricingModel,
        category: RateCategory,
        rate: Option<Micros>,
    ) -> Pricing {
        Pricing {
            billable: true,
            model,
            category,
            kind: PricingType::Regular,
            market: self.destination.market,
            rate,
            currency: self.waba.currency,
            tier: None,
            conversation: None,
        }
    }

    fn card(&self, index: Option<usize>) -> Option<&MarketRates> {
        index
            .and_then(|i| self.data.cards.get(i))
            .and_then(|card| card.market(self.destination.market))
    }

    /// Authentication is charged at the international rate when the WABA is eligible for the
    /// recipient's country and the card has such a rate for the market.
    fn authentication_category(&self, rates: Option<&MarketRates>) -> RateCategory {
        let eligible = self
            .waba
            .eligibility
            .as_ref()
            .is_some_and(|e| e.applies(self.destination.country, self.at));
        if eligible && rates.is_some_and(|r| r.authentication_international.is_some()) {
            RateCategory::AuthenticationInternational
        } else {
            RateCategory::Authentication
        }
    }

    /// Conversation-based pricing (before 2025-07-01): one charge per 24 h conversation.
    fn conversation_based(&mut self, state: &mut PairState, message: Message) -> Pricing {
        let at = self.at;
        let slot = match message {
            Message::Template(TemplateCategory::Marketing) => Slot::Marketing,
            Message::Template(TemplateCategory::Utility) => Slot::Utility,
            Message::Template(TemplateCategory::Authentication) => Slot::Authentication,
            Message::NonTemplate => Slot::Service,
        };
        // A template joins an open conversation of its category; a non-template message joins
        // any open conversation (service conversations open only when none is open).
        let joined = match message {
            Message::Template(_) => state.is_open(slot, at).then_some(slot),
            Message::NonTemplate => state.first_open(at),
        };
        if let Some(open) = joined {
            return Pricing {
                conversation: Some(state.conversation(open, self.key)),
                ..self.free(
                    PricingModel::Cbp,
                    state.category(open),
                    PricingType::Regular,
                )
            };
        }
        let rates = self.card(self.day.cbp_card).copied();
        let category = match slot {
            Slot::Marketing => RateCategory::Marketing,
            Slot::Utility => RateCategory::Utility,
            Slot::Authentication => self.authentication_category(rates.as_ref()),
            Slot::Service => RateCategory::Service,
        };
        state.open(slot, at, category);
        let conversation = Some(state.conversation(slot, self.key));
        let rate = rates.and_then(|r| r.get(category));
        let pricing = if category != RateCategory::Service {
            self.charged(PricingModel::Cbp, category, rate)
        } else if rate == Some(Micros::ZERO) {
            // Service conversations have been free since 2024-11-01 (a zero on the card).
            self.free(
                PricingModel::Cbp,
                category,
                PricingType::FreeCustomerService,
            )
        } else if self.waba.take_free_service_conversation(self.day.month) {
            self.free(PricingModel::Cbp, category, PricingType::FreeTier)
        } else {
            self.charged(PricingModel::Cbp, category, rate)
        };
        Pricing {
            conversation,
            ..pricing
        }
    }

    /// Per-message pricing (from 2025-07-01).
    fn per_message(&mut self, state: &mut PairState, message: Message) -> Pricing {
        let at = self.at;
        let service_charged = self.day.era == Era::PerMessageServiceCharged;
        let in_window = at < state.csw_until;
        let rates = self.card(self.day.pmp_card).copied();
        let pmp = PricingModel::Pmp;
        match message {
            Message::NonTemplate if service_charged => {
                // Service messages are charged at the market's utility rate, without tiers.
                self.charged(pmp, RateCategory::Service, rates.and_then(|r| r.utility))
            }
            Message::NonTemplate => {
                self.free(pmp, RateCategory::Service, PricingType::FreeCustomerService)
            }
            Message::Template(TemplateCategory::Marketing) => self.charged(
                pmp,
                RateCategory::Marketing,
                rates.and_then(|r| r.marketing),
            ),
            Message::Template(TemplateCategory::Utility) => {
                if state.is_open(Slot::Utility, at) {
                    // A CBP utility conversation spanning the 2025-07-01 switch: free and
                    // attributed to it until it closes.
                    Pricing {
                        conversation: Some(state.conversation(Slot::Utility, self.key)),
                        ..self.free(
                            PricingModel::Cbp,
                            RateCategory::Utility,
                            PricingType::Regular,
                        )
                    }
                } else if in_window && !service_charged {
                    self.free(pmp, RateCategory::Utility, PricingType::FreeCustomerService)
                } else {
                    self.tiered(RateCategory::Utility, rates.as_ref())
                }
            }
            Message::Template(TemplateCategory::Authentication) => {
                let category = self.authentication_category(rates.as_ref());
                self.tiered(category, rates.as_ref())
            }
        }
    }

    /// A charged utility or authentication message: counted toward the portfolio's tier for
    /// the market and month, and priced at the rate of the band it falls in (graduated).
    fn tiered(&mut self, category: RateCategory, rates: Option<&MarketRates>) -> Pricing {
        let group = match category {
            RateCategory::Utility => TierGroup::Utility,
            RateCategory::AuthenticationInternational => TierGroup::AuthenticationInternational,
            _ => TierGroup::Authentication,
        };
        let counter = match group {
            TierGroup::AuthenticationInternational => TierGroup::Authentication,
            other => other,
        };
        let market = self.destination.market;
        let count = self
            .tier_counts
            .entry(TierKey {
                portfolio: self.waba.portfolio,
                market,
                group: counter,
                month: self.day.month,
            })
            .or_insert(0);
        *count += 1;
        let band = self
            .day
            .tier_table
            .and_then(|i| self.data.tiers.get(i))
            .and_then(|table| table.band(market, group, *count));
        let list = rates.and_then(|r| r.get(category));
        let rate = match band {
            Some(band) if !band.list_rate && list.is_some() => band.rate,
            _ => list,
        };
        Pricing {
            tier: band.map(|b| b.range()),
            ..self.charged(PricingModel::Pmp, category, rate)
        }
    }
}
