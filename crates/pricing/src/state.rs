//! The part of an engine's running state one event reads and writes, named by what it is
//! (phone numbers, WABA and portfolio names, market names, local months) so that a caller can
//! keep it outside the process: the server keeps it in its database, loads the slice before
//! rating an event and writes it back in the same transaction as the charge, so a restart or a
//! second server prices exactly as one long `wagate rate` run.
//!
//! The protocol for one event: [`Engine::keys`] names the slice, the caller reads it from
//! storage, [`Engine::load`] puts it in the engine (replacing whatever the engine held for
//! those keys), [`Engine::rate`] rates the event, and [`Engine::slice`] reads the slice back
//! for the caller to store.

use crate::engine::{month_key, Engine, TierKey};
use crate::event::Event;
use crate::instant::Instant;
use crate::tiers::TierGroup;
use crate::waba::WabaSettings;
use crate::window::PairState;

/// Where one event's state lives, in names that mean the same to every process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateKeys {
    /// The business number (`+` and digits).
    pub business: String,
    /// The user number (`+` and digits).
    pub user: String,
    /// The WABA (its monthly free tier of service conversations, before 2025-07-01).
    pub waba: String,
    /// The business portfolio its volume tiers accrue to.
    pub portfolio: String,
    /// The recipient's rate-card market on the WABA's local date.
    pub market: String,
    /// The WABA's local month, as `year * 12 + month - 1`.
    pub month: i32,
}

/// The state behind [`StateKeys`]: what a caller stores between events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSlice {
    /// The pair's windows and conversations; `None` when nothing is open.
    pub pair: Option<PairState>,
    /// Utility templates charged this month in this market for the portfolio.
    pub utility_count: u64,
    /// Authentication templates (domestic and international) charged likewise.
    pub authentication_count: u64,
    /// Free service conversations the WABA used this month (conversation-based pricing).
    pub free_service_used: u32,
}

impl Engine {
    /// Describes (or redescribes) a WABA: for callers that learn WABAs as they go rather than
    /// from a file. A WABA already seen keeps its id; its settings take effect at once.
    pub fn describe_waba(&mut self, name: &str, settings: WabaSettings) {
        self.redescribe_waba(name, settings);
    }

    /// Names the state `event` reads and writes (`None` when its WABA id is not this
    /// engine's).
    pub fn keys(&mut self, event: &Event) -> Option<StateKeys> {
        let (waba, portfolio, date) = self.waba_view(event)?;
        let data = self.data();
        let destination = data.countries.destination(event.user, date);
        Some(StateKeys {
            business: format!("+{}", event.business.as_u64()),
            user: format!("+{}", event.user.as_u64()),
            waba,
            portfolio,
            market: data.markets.name(destination.market).to_string(),
            month: month_key(date),
        })
    }

    /// Puts a stored slice in the engine in place of what it holds for `keys`.
    pub fn load(&mut self, event: &Event, keys: &StateKeys, slice: &StateSlice) {
        let (key, tiers) = self.slice_keys(event, keys);
        match slice.pair {
            Some(pair) => self.pairs.insert(key, pair),
            None => self.pairs.remove(&key),
        };
        let counts = [slice.utility_count, slice.authentication_count];
        for (tier, count) in tiers.into_iter().zip(counts) {
            if let Some(tier) = tier {
                self.tier_counts.insert(tier, count);
            }
        }
        self.set_free_tier(event, keys.month, slice.free_service_used);
    }

    /// Reads back the state for `keys` (after [`Engine::rate`]) for the caller to store.
    pub fn slice(&mut self, event: &Event, keys: &StateKeys) -> StateSlice {
        let (key, tiers) = self.slice_keys(event, keys);
        let free_service_used = self.free_tier(event, keys.month);
        let count = |tier: Option<TierKey>| {
            tier.and_then(|t| self.tier_counts.get(&t).copied())
                .unwrap_or(0)
        };
        StateSlice {
            pair: self
                .pairs
                .get(&key)
                .copied()
                .filter(|pair| pair.is_live(event.at)),
            utility_count: count(tiers[0]),
            authentication_count: count(tiers[1]),
            free_service_used,
        }
    }

    /// The pair key and the two tier counters (utility, authentication) of a slice; a market
    /// the loaded data does not know has no counters.
    fn slice_keys(&mut self, event: &Event, keys: &StateKeys) -> (u128, [Option<TierKey>; 2]) {
        let portfolio = self.portfolio_index(&keys.portfolio);
        let market = self.data().markets.find(&keys.market);
        let tier = |group| {
            market.map(|market| TierKey {
                portfolio,
                market,
                group,
                month: keys.month,
            })
        };
        (
            crate::engine::pair_key(event.business, event.user),
            [tier(TierGroup::Utility), tier(TierGroup::Authentication)],
        )
    }
}

impl PairState {
    /// The state as text for storage: eight integers (the deadlines in nanoseconds, then 1 when
    /// the authentication conversation is international).
    pub fn encode(&self) -> String {
        let [a, b, c, d] = self.conversation_until.map(|i| i.0);
        format!(
            "{} {} {} {a} {b} {c} {d} {}",
            self.csw_until.0,
            self.entry_until.0,
            self.fep_until.0,
            u8::from(self.authentication_international)
        )
    }

    /// Reads [`PairState::encode`]'s text; `None` if it is not that shape.
    pub fn decode(text: &str) -> Option<PairState> {
        let numbers: Vec<i64> = text
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [csw, entry, fep, c0, c1, c2, c3, intl] = numbers[..] else {
            return None;
        };
        Some(PairState {
            csw_until: Instant(csw),
            entry_until: Instant(entry),
            fep_until: Instant(fep),
            conversation_until: [Instant(c0), Instant(c1), Instant(c2), Instant(c3)],
            authentication_international: intl == 1,
        })
    }

    /// The last deadline: after it the state carries nothing and may be deleted.
    pub fn expires_at(&self) -> Instant {
        [self.csw_until, self.entry_until, self.fep_until]
            .into_iter()
            .chain(self.conversation_until)
            .max()
            .unwrap_or(Instant::NEVER)
    }
}
