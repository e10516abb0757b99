//! Writes a synthetic `wagate rate` input: `cargo run --release -p wagate-pricing --example
//! gen_events -- 10000000 > events.jsonl` (count, optional seed).

use std::io::{self, Write};

use wagate_pricing::synth::{write_jsonl, Generator, SynthConfig};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0x5eed);
    let config = SynthConfig {
        seed,
        ..SynthConfig::default()
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut block = Vec::with_capacity(1 << 20);
    for event in Generator::new(config).take(count) {
        write_jsonl(&event, &mut block);
        if block.len() > (1 << 20) - 512 {
            out.write_all(&block)?;
            block.clear();
        }
    }
    out.write_all(&block)?;
    out.flush()
}
