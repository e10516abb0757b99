//! State kept outside the engine (as the server keeps it in its database) prices exactly as one
//! engine holding everything in memory: the same outcome for every event, whether the engine is
//! a fresh one for every event or restarted at random points.

mod common;

use std::collections::HashMap;

use jiff::tz::TimeZone;
use proptest::prelude::*;
use wagate_pricing::auth_intl::AuthIntl;
use wagate_pricing::synth::{waba_name, Generator, SynthConfig, SynthEvent};
use wagate_pricing::waba::{WabaDirectory, WabaSettings};
use wagate_pricing::window::PairState;
use wagate_pricing::{Currency, Engine, Event, Outcome, StateKeys, StateSlice};

/// Three WABAs: two in far-apart time zones sharing a portfolio, one on its own.
fn settings(waba: u32) -> WabaSettings {
    match waba {
        0 => WabaSettings {
            time_zone: TimeZone::get("Asia/Kolkata").expect("zone"),
            currency: Currency::USD,
            portfolio: Some("acme".into()),
        },
        1 => WabaSettings {
            time_zone: TimeZone::get("America/Los_Angeles").expect("zone"),
            currency: Currency::USD,
            portfolio: Some("acme".into()),
        },
        _ => WabaSettings::default(),
    }
}

fn engine() -> Engine {
    let mut engine = Engine::new(
        common::data_with_made_up_tiers(),
        WabaDirectory::default(),
        AuthIntl::default(),
    );
    for waba in 0..3 {
        engine.describe_waba(&waba_name(waba), settings(waba));
    }
    engine
}

fn event(engine: &mut Engine, e: &SynthEvent) -> Event {
    Event {
        at: e.at,
        waba: engine.waba(&waba_name(e.waba)),
        business: e.business,
        user: e.user,
        kind: e.kind,
    }
}

/// What a database would hold, keyed like the server's tables.
#[derive(Default)]
struct Tables {
    pairs: HashMap<(String, String), String>,
    tiers: HashMap<(String, String, i32), (u64, u64)>,
    free: HashMap<String, (i32, u32)>,
}

impl Tables {
    fn read(&self, keys: &StateKeys) -> StateSlice {
        let tiers = self
            .tiers
            .get(&(keys.portfolio.clone(), keys.market.clone(), keys.month))
            .copied()
            .unwrap_or_default();
        let free = match self.free.get(&keys.waba) {
            Some(&(month, used)) if month == keys.month => used,
            _ => 0,
        };
        StateSlice {
            pair: self
                .pairs
                .get(&(keys.business.clone(), keys.user.clone()))
                .map(|text| PairState::decode(text).expect("stored text decodes")),
            utility_count: tiers.0,
            authentication_count: tiers.1,
            free_service_used: free,
        }
    }

    fn write(&mut self, keys: &StateKeys, slice: &StateSlice) {
        let pair = (keys.business.clone(), keys.user.clone());
        match slice.pair {
            Some(state) => self.pairs.insert(pair, state.encode()),
            None => self.pairs.remove(&pair),
        };
        self.tiers.insert(
            (keys.portfolio.clone(), keys.market.clone(), keys.month),
            (slice.utility_count, slice.authentication_count),
        );
        self.free
            .insert(keys.waba.clone(), (keys.month, slice.free_service_used));
    }
}

fn stream(seed: u64, users: u64, start: &str) -> Vec<SynthEvent> {
    Generator::new(SynthConfig {
        users,
        wabas: 3,
        businesses_per_waba: 2,
        start: common::at(start),
        mean_gap_ms: 240_000,
        seed,
    })
    .take(1_500)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn state_kept_outside_the_engine_prices_like_one_engine(
        seed in any::<u64>(),
        users in 5u64..300,
        start in prop_oneof![
            Just("2025-06-29T00:00:00Z"),
            Just("2026-09-29T00:00:00Z"),
            Just("2026-06-30T12:00:00Z"),
        ],
        restarts in proptest::collection::vec(0usize..1_500, 0..6),
    ) {
        let events = stream(seed, users, start);
        let mut whole = engine();
        let expected: Vec<Option<Outcome>> = events
            .iter()
            .map(|e| {
                let event = event(&mut whole, e);
                whole.rate(&event)
            })
            .collect();

        let mut tables = Tables::default();
        let mut outside = engine();
        for (i, e) in events.iter().enumerate() {
            if restarts.contains(&i) {
                outside = engine();
            }
            let event = event(&mut outside, e);
            let keys = outside.keys(&event).expect("known WABA");
            outside.load(&event, &keys, &tables.read(&keys));
            let outcome = outside.rate(&event);
            tables.write(&keys, &outside.slice(&event, &keys));
            prop_assert_eq!(outcome, expected[i], "event {}", i);
        }
    }
}

#[test]
fn a_pair_state_survives_its_text_form() {
    let state = PairState::default();
    assert_eq!(PairState::decode(&state.encode()), Some(state));
    assert_eq!(PairState::decode("1 2 3"), None);
    assert_eq!(PairState::decode("a b c d e f g h"), None);
}
