//! Property tests over generated traffic: free entry point windows never cost money, the
//! summary equals the sum of the output lines, chunking changes nothing, and tier counters
//! count only charged messages.

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read};

use proptest::prelude::*;
use wagate_pricing::auth_intl::AuthIntl;
use wagate_pricing::cli::{run_with_io, RateArgs};
use wagate_pricing::synth::{waba_name, write_jsonl, Generator, SynthConfig, SynthEvent};
use wagate_pricing::waba::WabaDirectory;
use wagate_pricing::{
    Engine, Event, EventKind, Instant, Message, Micros, Outcome, PricingModel, PricingType,
    RateCategory,
};

fn stream(seed: u64, users: u64, events: usize, gap_ms: u64, start: &str) -> Vec<SynthEvent> {
    Generator::new(SynthConfig {
        users,
        wabas: 3,
        businesses_per_waba: 2,
        start: common::at(start),
        mean_gap_ms: gap_ms,
        seed,
    })
    .take(events)
    .collect()
}

fn engine() -> Engine {
    Engine::new(
        common::data_with_made_up_tiers(),
        WabaDirectory::default(),
        AuthIntl::default(),
    )
}

fn rate_all(engine: &mut Engine, events: &[SynthEvent]) -> Vec<Option<Outcome>> {
    events
        .iter()
        .map(|e| {
            let waba = engine.waba(&waba_name(e.waba));
            engine.rate(&Event {
                at: e.at,
                waba,
                business: e.business,
                user: e.user,
                kind: e.kind,
            })
        })
        .collect()
}

fn jsonl(events: &[SynthEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        write_jsonl(e, &mut out);
    }
    out
}

/// A reader that hands out its bytes in small pieces of varying size.
struct Trickle {
    data: Cursor<Vec<u8>>,
    sizes: Vec<usize>,
    turn: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let limit = size.min(buf.len());
        self.data.read(&mut buf[..limit])
    }
}

fn cli(input: impl std::io::BufRead) -> (Vec<u8>, wagate_pricing::cli::RunOutcome) {
    let mut out = Vec::new();
    let outcome = run_with_io(&RateArgs::default(), input, &mut out, Vec::new(), None)
        .expect("generated input rates");
    (out, outcome)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Checked against a small independent model of the free entry point rules.
    #[test]
    fn a_message_inside_an_open_free_entry_point_window_never_costs_money(
        seed in any::<u64>(),
        users in 20u64..400,
        gap_ms in prop_oneof![Just(5_000u64), Just(120_000), Just(900_000)],
    ) {
        let events = stream(seed, users, 3_000, gap_ms, "2026-09-20T00:00:00Z");
        let mut engine = engine();
        let outcomes = rate_all(&mut engine, &events);
        // Per pair: (customer service window end, entry point reply deadline, window end).
        let mut model: HashMap<(u64, u64), (Instant, Instant, Instant)> = HashMap::new();
        let mut checked = 0;
        for (event, outcome) in events.iter().zip(&outcomes) {
            let pair = model
                .entry((event.business.as_u64(), event.user.as_u64()))
                .or_insert((Instant::NEVER, Instant::NEVER, Instant::NEVER));
            match event.kind {
                EventKind::UserMessage { entry_point } => {
                    pair.0 = event.at.plus_hours(24);
                    if entry_point {
                        pair.1 = event.at.plus_hours(24);
                    }
                }
                EventKind::BusinessMessage(message) => {
                    if message == Message::NonTemplate && event.at >= pair.0 {
                        prop_assert_eq!(*outcome, Some(Outcome::OutsideCustomerServiceWindow));
                        continue;
                    }
                    if event.at < pair.1 {
                        pair.1 = Instant::NEVER;
                        if event.at >= pair.2 {
                            pair.2 = event.at.plus_hours(72);
                        }
                    }
                    if event.at < pair.2 {
                        checked += 1;
                        let Some(Outcome::Priced(pricing)) = outcome else {
                            return Err(TestCaseError::fail(format!("not priced: {outcome:?}")));
                        };
                        prop_assert_eq!(pricing.charge(), Micros::ZERO);
                        prop_assert!(!pricing.billable);
                        prop_assert_eq!(pricing.kind, PricingType::FreeEntryPoint);
                    }
                }
            }
        }
        prop_assume!(checked > 0);
    }

    #[test]
    fn the_summary_totals_equal_the_sum_of_the_output_lines(
        seed in any::<u64>(),
        users in 20u64..5_000,
        gap_ms in prop_oneof![Just(2_000u64), Just(600_000), Just(3_600_000)],
        start in prop_oneof![Just("2025-06-25T00:00:00Z"), Just("2026-06-25T00:00:00Z"), Just("2026-09-25T00:00:00Z")],
    ) {
        let events = stream(seed, users, 2_000, gap_ms, start);
        let (out, outcome) = cli(Cursor::new(jsonl(&events)));
        let mut sums: HashMap<String, (u64, u64, Micros)> = HashMap::new();
        let mut refused = 0;
        for line in String::from_utf8(out).expect("UTF-8").lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            if value["error"] == "outside_customer_service_window" {
                refused += 1;
                continue;
            }
            let currency = value["currency"].as_str().unwrap_or("").to_string();
            let entry = sums.entry(currency).or_default();
            entry.0 += 1;
            if value["billable"] == true {
                entry.1 += 1;
                if let Some(rate) = value["rate"].as_str() {
                    entry.2 = entry.2.saturating_add(common::money(rate));
                }
            }
        }
        prop_assert_eq!(refused, outcome.summary.refused);
        let totals: HashMap<String, (u64, u64, Micros)> = outcome
            .summary
            .grand_totals()
            .into_iter()
            .map(|(c, t)| (c.to_string(), (t.messages, t.billable, t.amount)))
            .collect();
        prop_assert_eq!(sums, totals);
    }

    #[test]
    fn rating_is_the_same_whether_the_input_is_split_into_chunks_or_not(
        seed in any::<u64>(),
        users in 20u64..2_000,
        cut in 1usize..1_999,
        sizes in proptest::collection::vec(1usize..300, 1..20),
    ) {
        let events = stream(seed, users, 2_000, 60_000, "2026-09-28T00:00:00Z");
        // The engine: rated whole, or in two chunks with the state carried over.
        let whole = rate_all(&mut engine(), &events);
        let mut first = engine();
        let mut chunked = rate_all(&mut first, &events[..cut]);
        let mut second = first.clone();
        chunked.extend(rate_all(&mut second, &events[cut..]));
        prop_assert_eq!(&whole, &chunked);
        // The CLI: the bytes arrive in pieces of any size.
        let input = jsonl(&events);
        let (at_once, _) = cli(Cursor::new(input.clone()));
        let trickle = Trickle { data: Cursor::new(input), sizes, turn: 0 };
        let (in_pieces, _) = cli(BufReader::with_capacity(64, trickle));
        prop_assert_eq!(at_once, in_pieces);
    }

    #[test]
    fn tier_counters_only_ever_count_charged_messages(
        seed in any::<u64>(),
        users in 20u64..3_000,
    ) {
        // Mid-month and under two days long, so no month's counters are dropped.
        let events = stream(seed, users, 2_500, 30_000, "2026-03-10T00:00:00Z");
        let mut engine = engine();
        let outcomes = rate_all(&mut engine, &events);
        let charged_tiered = outcomes
            .iter()
            .filter(|o| matches!(o, Some(Outcome::Priced(p)) if p.billable
                && p.model == PricingModel::Pmp
                && matches!(p.category, RateCategory::Utility | RateCategory::Authentication | RateCategory::AuthenticationInternational)))
            .count() as u64;
        let counted: u64 = engine.tier_counts().map(|(_, n)| *n).sum();
        prop_assert_eq!(counted, charged_tiered);
        prop_assert!(outcomes.iter().all(|o| !matches!(o, Some(Outcome::Priced(p)) if !p.billable && p.tier.is_some())));
    }
}
