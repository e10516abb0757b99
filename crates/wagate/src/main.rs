//! The `wagate` binary: a thin shell of subcommands over the library crates.

mod cli;
mod config;
mod serve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
