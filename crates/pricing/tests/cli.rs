//! `wagate rate` behaviour through `cli::run_with_io`: output lines, malformed input, data
//! files, `--summary`, exit statuses.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;
use wagate_pricing::cli::{run_with_io, CliError, RateArgs, RunOutcome};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/rate")
        .join(name)
}

fn example_args() -> RateArgs {
    RateArgs {
        input: Some(example("events.jsonl")),
        wabas: Some(example("wabas.csv")),
        auth_intl: Some(example("auth-intl.csv")),
        summary: true,
        ..RateArgs::default()
    }
}

fn run(args: &RateArgs, input: &str) -> (Result<RunOutcome, CliError>, Vec<Value>, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let result = run_with_io(
        args,
        Cursor::new(input.as_bytes()),
        &mut out,
        &mut err,
        None,
    );
    let lines = String::from_utf8(out)
        .expect("output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect();
    (result, lines, String::from_utf8(err).expect("UTF-8"))
}

fn example_input() -> String {
    std::fs::read_to_string(example("events.jsonl")).expect("example file")
}

#[test]
fn the_example_file_prices_every_business_message() {
    let (result, lines, err) = run(&example_args(), &example_input());
    let outcome = result.expect("runs");
    assert_eq!(outcome.malformed, 0);
    assert_eq!(outcome.exit_code(), ExitCode::SUCCESS);
    let brief: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {} {}",
                l["id"].as_str().unwrap_or(""),
                l["type"].as_str().unwrap_or("-"),
                l["category"].as_str().unwrap_or("-"),
                l["market"].as_str().unwrap_or("-"),
                l["rate"].as_str().unwrap_or("null"),
                l["error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        brief,
        vec![
            "wamid.1 regular marketing India 0.0118 ",
            "wamid.2 free_customer_service service India 0.00 ",
            "wamid.3 free_customer_service utility India 0.00 ",
            "wamid.4 free_entry_point referral_conversion Brazil 0.00 ",
            "wamid.5 - - - null outside_customer_service_window",
            "wamid.6 regular utility India 0.0014 ",
            "wamid.7 free_entry_point referral_conversion Brazil 0.00 ",
            "wamid.8 regular authentication-international India 0.028 ",
            "wamid.9 regular marketing Rest of Latin America 0.074 ",
            "wamid.10 regular marketing Qatar 0.0341 ",
            "wamid.11 regular service Colombia 0.0008 ",
        ]
    );
    assert_eq!(lines[0]["billable"], Value::Bool(true));
    assert_eq!(lines[0]["pricing_model"], "PMP");
    assert_eq!(lines[0]["currency"], "USD");
    assert_eq!(
        lines[3]["conversation"]["expires_at"],
        "2026-03-05T22:00:00Z"
    );
    assert_eq!(lines[3]["conversation"]["origin"], "referral_conversion");
    assert_eq!(lines[9]["billable"], Value::Bool(true));
    assert_eq!(lines[9]["rate"], "0.0341");
    assert!(err.contains("TOTAL"), "{err}");
    assert!(
        err.contains("0.1501"),
        "the grand total is 0.1501 USD: {err}"
    );
    assert!(
        err.contains("refused (outside_customer_service_window): 1"),
        "{err}"
    );
}

#[test]
fn malformed_lines_are_reported_with_their_number_skipped_and_exit_1() {
    let mut input = example_input();
    let mut lines: Vec<&str> = input.lines().collect();
    lines.insert(1, "{\"ts\": \"not a time\"}");
    lines.insert(3, "");
    lines.insert(4, "{\"ts\":\"2020-01-01T00:00:00Z\",\"waba\":\"w\",\"business\":\"+1555\",\"user\":\"+1555\",\"dir\":\"in\"}");
    input = lines.join("\n");
    let (result, out, err) = run(&example_args(), &input);
    let outcome = result.expect("runs");
    assert_eq!(outcome.malformed, 2);
    assert_eq!(outcome.exit_code(), ExitCode::from(1));
    assert_eq!(out.len(), 11, "good lines are still rated");
    assert!(err.contains("line 2: not a valid event"), "{err}");
    assert!(
        err.contains("line 5: `ts` 2020-01-01T00:00:00Z is earlier"),
        "{err}"
    );
    assert!(err.contains("2 malformed line(s) skipped"), "{err}");
}

#[test]
fn a_missing_or_bad_data_file_stops_the_run() {
    let mut args = example_args();
    args.wabas = Some(example("no-such-file.csv"));
    let (result, out, _) = run(&args, &example_input());
    assert!(matches!(result, Err(CliError::Read { .. })));
    assert!(out.is_empty());

    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("wabas.csv");
    std::fs::write(&bad, "w,Mars/Olympus,USD,\n").expect("write");
    args.wabas = Some(bad);
    let (result, _, _) = run(&args, &example_input());
    let error = result.expect_err("bad zone");
    assert!(matches!(error, CliError::Data(_)));
    assert!(error.to_string().contains("Mars/Olympus"), "{error}");
}

#[test]
fn metas_csv_files_are_accepted_for_cards_and_tiers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let card = dir.path().join("Pricing.csv");
    std::fs::write(
        &card,
        "Market,Currency,Marketing,Utility,Authentication,\"Authentication-\nInternational\",Service\n\
         Qatar,$US,0.0400,0.0120,0.0120,n/a,n/a\n",
    )
    .expect("write");
    let tiers =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/made_up_tier_pricing.csv");
    let mut args = example_args();
    args.rate_card = vec![format!("2026-07-01={}", card.display())];
    args.tiers = vec![tiers.display().to_string()];
    let (result, lines, _) = run(&args, &example_input());
    result.expect("runs");
    let qatar = &lines[9];
    assert_eq!(qatar["market"], "Qatar");
    assert_eq!(qatar["rate"], "0.04");
    assert_eq!(qatar.get("error"), None);
    // The tier table is in force: the charged utility template reports its band.
    assert_eq!(lines[5]["tier"], "0:10");

    // A Meta card with no date in it and none given is a data error.
    args.rate_card = vec![card.display().to_string()];
    let (result, _, _) = run(&args, &example_input());
    assert!(matches!(result, Err(CliError::Data(_))));
}

#[test]
fn standard_input_style_runs_without_data_files() {
    let input = "{\"ts\":\"2026-03-02T00:00:00Z\",\"id\":\"a\",\"waba\":\"w\",\"business\":\"+15550001111\",\"user\":\"+447700900123\",\"dir\":\"out\",\"type\":\"template\",\"category\":\"marketing\"}\n";
    let (result, lines, err) = run(&RateArgs::default(), input);
    assert_eq!(result.expect("runs").outputs, 1);
    assert_eq!(lines[0]["rate"], "0.0529");
    assert_eq!(lines[0]["market"], "United Kingdom");
    assert!(err.is_empty(), "no summary unless asked: {err}");
}
