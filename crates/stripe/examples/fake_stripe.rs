//! Runs the fake of Stripe's API by hand, so wagate can be tried offline with
//! `stripe_api_url` pointed at it, and optionally delivers its events to a webhook URL.
//!
//! ```text
//! cargo run -p wagate-stripe --features fake --example fake_stripe -- --listen 127.0.0.1:12111
//! ```
//!
//! Flags (each also read from the environment variable in brackets):
//! `--listen` [WAGATE_FAKE_STRIPE_LISTEN] (127.0.0.1:12111), `--secret-key`
//! [WAGATE_FAKE_STRIPE_SECRET_KEY] (sk_test_wagate_fake), `--webhook-url`
//! [WAGATE_FAKE_STRIPE_WEBHOOK_URL] and `--webhook-secret` [WAGATE_FAKE_STRIPE_WEBHOOK_SECRET]
//! (events created by API calls are posted there every second).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use wagate_stripe::fake::{FakeStripe, FAKE_SECRET_KEY};

/// Each setting: flag, environment variable, default.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("--listen", "WAGATE_FAKE_STRIPE_LISTEN", "127.0.0.1:12111"),
    (
        "--secret-key",
        "WAGATE_FAKE_STRIPE_SECRET_KEY",
        FAKE_SECRET_KEY,
    ),
    ("--webhook-url", "WAGATE_FAKE_STRIPE_WEBHOOK_URL", ""),
    (
        "--webhook-secret",
        "WAGATE_FAKE_STRIPE_WEBHOOK_SECRET",
        "whsec_wagate_fake",
    ),
];

fn usage() -> String {
    let mut text = String::from("usage: fake_stripe [FLAG VALUE]...\nflags:\n");
    for (flag, env, default) in SETTINGS {
        text.push_str(&format!("  {flag} VALUE  [{env}] (default {default:?})\n"));
    }
    text
}

fn config() -> Result<HashMap<&'static str, String>, String> {
    let mut values: HashMap<&'static str, String> = SETTINGS
        .iter()
        .map(|(flag, env, default)| {
            (
                *flag,
                std::env::var(env).unwrap_or_else(|_| default.to_string()),
            )
        })
        .collect();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(usage());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{}", usage()))?;
        match SETTINGS.iter().find(|(flag, _, _)| *flag == arg) {
            Some((flag, _, _)) => {
                values.insert(flag, value);
            }
            None => return Err(format!("unknown flag {arg}\n{}", usage())),
        }
    }
    Ok(values)
}

#[tokio::main]
async fn main() -> ExitCode {
    let values = match config() {
        Ok(v) => v,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let get = |flag: &str| values.get(flag).cloned().unwrap_or_default();
    let listen: SocketAddr = match get("--listen").parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("--listen {:?}: {e}", get("--listen"));
            return ExitCode::from(2);
        }
    };
    let fake = match FakeStripe::start_with_key(listen, &get("--secret-key")).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("fake Stripe API: {}", fake.base_url());
    println!("secret key: {}", fake.secret_key());
    println!(
        "try: curl -H 'Authorization: Bearer {}' -d 'metadata[account_id]=acct_1' {}/v1/customers",
        fake.secret_key(),
        fake.base_url()
    );
    let webhook_url = get("--webhook-url");
    if !webhook_url.is_empty() {
        println!(
            "events go to {webhook_url}, signed with {:?}",
            get("--webhook-secret")
        );
        let driver = fake.webhooks(&webhook_url, &get("--webhook-secret"));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match driver.deliver_pending().await {
                    Ok(posted) => {
                        for p in posted {
                            println!(
                                "posted {} {} -> {}",
                                p.event_type.unwrap_or_default(),
                                p.event_id.unwrap_or_default(),
                                p.status
                            );
                        }
                    }
                    Err(e) => eprintln!("delivering events failed: {e}"),
                }
            }
        });
    }
    println!("Ctrl-C stops it.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
