//! Throughput of the rating engine alone (no parsing, no output) on a realistic synthetic
//! stream: skewed users, 30 % user messages, mixed categories, markets and time zones, a tier
//! table in force. Run: `cargo bench -p wagate-pricing --bench engine`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use wagate_pricing::auth_intl::AuthIntl;
use wagate_pricing::synth::{waba_name, Generator, SynthConfig};
use wagate_pricing::waba::{WabaDirectory, WabaSettings};
use wagate_pricing::{Currency, Engine, Event, PricingData};

const EVENTS: usize = 2_000_000;
const ZONES: [&str; 4] = ["UTC", "Asia/Kolkata", "America/Sao_Paulo", "Europe/Berlin"];

fn engine_throughput(c: &mut Criterion) {
    let config = SynthConfig::default();
    let mut data = PricingData::builtin().expect("built-in data loads");
    data.add_tiers(
        include_str!("../tests/data/made_up_tier_pricing.csv"),
        "made-up tiers",
        None,
    )
    .expect("tiers load");
    let mut wabas = WabaDirectory::default();
    for index in 0..config.wabas {
        wabas.insert(
            waba_name(index),
            WabaSettings {
                time_zone: jiff::tz::TimeZone::get(ZONES[index as usize % ZONES.len()])
                    .expect("zone"),
                currency: Currency::USD,
                portfolio: Some(format!("portfolio-{}", index % 3)),
            },
        );
    }
    let mut prototype = Engine::new(data, wabas, AuthIntl::default());
    let ids: Vec<_> = (0..config.wabas)
        .map(|i| prototype.waba(&waba_name(i)))
        .collect();
    let events: Vec<Event> = Generator::new(config)
        .take(EVENTS)
        .map(|e| Event {
            at: e.at,
            waba: ids[e.waba as usize],
            business: e.business,
            user: e.user,
            kind: e.kind,
        })
        .collect();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("rate_synthetic_stream_2m", |b| {
        b.iter_batched(
            || prototype.clone(),
            |mut engine| {
                for event in &events {
                    black_box(engine.rate(event));
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::engine_throughput);
}
criterion_main!(group::benches);
