//! `wagate rate` without the `wagate` binary (same arguments, same code path), for measuring
//! the command end to end: `cargo run --release -p wagate-pricing --example rate -- FILE`.

use std::process::ExitCode;

use clap::Parser;
use wagate_pricing::cli::{run, RateArgs};

/// Prices WhatsApp Business Platform traffic as Meta charges it.
#[derive(Parser, Debug)]
#[command(name = "rate")]
struct Cli {
    #[command(flatten)]
    args: RateArgs,
}

fn main() -> ExitCode {
    run(Cli::parse().args)
}
