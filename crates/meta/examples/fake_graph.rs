//! Runs the fake of Meta's Graph API by hand, with one business number (and any templates),
//! so wagate can be tried offline with `meta_graph_url` pointed at it.
//!
//! ```text
//! cargo run -p wagate-meta --features fake --example fake_graph -- --listen 127.0.0.1:9090 \
//!     --template hello_world:en_US:UTILITY
//! ```
//!
//! Flags (each also read from the environment variable in brackets):
//! `--listen` [WAGATE_FAKE_LISTEN] (127.0.0.1:9090), `--phone-number-id`
//! [WAGATE_FAKE_PHONE_NUMBER_ID], `--display-phone-number` [WAGATE_FAKE_DISPLAY_PHONE_NUMBER],
//! `--verified-name` [WAGATE_FAKE_VERIFIED_NAME], `--waba-id` [WAGATE_FAKE_WABA_ID],
//! `--token` [WAGATE_FAKE_TOKEN], `--template NAME:LANGUAGE:CATEGORY` (repeatable)
//! [WAGATE_FAKE_TEMPLATES, comma-separated].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use wagate_meta::fake::FakeGraph;

/// Each setting: flag, environment variable, default.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("--listen", "WAGATE_FAKE_LISTEN", "127.0.0.1:9090"),
    (
        "--phone-number-id",
        "WAGATE_FAKE_PHONE_NUMBER_ID",
        "106540352242922",
    ),
    (
        "--display-phone-number",
        "WAGATE_FAKE_DISPLAY_PHONE_NUMBER",
        "15550783881",
    ),
    (
        "--verified-name",
        "WAGATE_FAKE_VERIFIED_NAME",
        "Wagate Test Shop",
    ),
    ("--waba-id", "WAGATE_FAKE_WABA_ID", "102290129340398"),
    ("--token", "WAGATE_FAKE_TOKEN", "fake-access-token"),
];

fn usage() -> String {
    let mut text = String::from(
        "usage: fake_graph [--template NAME:LANGUAGE:CATEGORY]... [FLAG VALUE]...\nflags:\n",
    );
    for (flag, env, default) in SETTINGS {
        text.push_str(&format!("  {flag} VALUE  [{env}] (default {default})\n"));
    }
    text.push_str(
        "  --template NAME:LANGUAGE:CATEGORY  [WAGATE_FAKE_TEMPLATES, comma-separated]\n",
    );
    text
}

struct Config {
    values: HashMap<&'static str, String>,
    templates: Vec<(String, String, String)>,
}

fn config() -> Result<Config, String> {
    let mut values: HashMap<&'static str, String> = SETTINGS
        .iter()
        .map(|(flag, env, default)| {
            (
                *flag,
                std::env::var(env).unwrap_or_else(|_| default.to_string()),
            )
        })
        .collect();
    let mut template_specs: Vec<String> = std::env::var("WAGATE_FAKE_TEMPLATES")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(usage());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{}", usage()))?;
        if arg == "--template" {
            template_specs.push(value);
        } else if let Some((flag, _, _)) = SETTINGS.iter().find(|(flag, _, _)| *flag == arg) {
            values.insert(flag, value);
        } else {
            return Err(format!("unknown flag {arg}\n{}", usage()));
        }
    }
    let templates = template_specs
        .iter()
        .map(|spec| match spec.splitn(3, ':').collect::<Vec<_>>()[..] {
            [name, language, category] => Ok((name.into(), language.into(), category.into())),
            _ => Err(format!(
                "--template wants NAME:LANGUAGE:CATEGORY, got {spec:?}"
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(Config { values, templates })
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let get = |flag: &str| {
        config
            .values
            .get(flag)
            .map(String::as_str)
            .unwrap_or_default()
    };
    let listen: SocketAddr = match get("--listen").parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("--listen {:?}: {e}", get("--listen"));
            return ExitCode::from(2);
        }
    };
    let fake = match FakeGraph::start_on(listen).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let number = get("--phone-number-id");
    fake.add_number(
        number,
        get("--display-phone-number"),
        get("--verified-name"),
        get("--waba-id"),
        get("--token"),
    );
    for (name, language, category) in &config.templates {
        fake.add_template(name, language, category);
    }
    println!("fake Graph API: {}", fake.base_url());
    println!(
        "phone number {number} ({}), WABA {}, token {:?}",
        get("--display-phone-number"),
        get("--waba-id"),
        get("--token")
    );
    for (name, language, category) in &config.templates {
        println!("template {name} ({language}, {category})");
    }
    println!(
        "try: curl -H 'Authorization: Bearer {}' {}/{number}",
        get("--token"),
        fake.base_url()
    );
    println!("Ctrl-C stops it.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
