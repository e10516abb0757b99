//! Meta's volume tier examples 1–4 (seed 002), on a made-up tier table in Meta's layout
//! (India authentication: list rate for messages 1–10, then 0.0013, 0.0012, 0.0011).

mod common;

use common::*;
use wagate_pricing::auth_intl::{AuthIntl, Eligibility};
use wagate_pricing::waba::WabaDirectory;
use wagate_pricing::{Micros, Pricing, RateCategory};

const INDIA: &str = "+919876543210";

fn sum(list: &[Pricing]) -> Micros {
    list.iter()
        .fold(Micros::ZERO, |s, p| s.saturating_add(p.charge()))
}

fn tiers_of(list: &[Pricing]) -> Vec<String> {
    list.iter()
        .map(|p| p.tier.map(|t| t.to_string()).unwrap_or_default())
        .collect()
}

fn send_n(s: &mut Scenario, waba: &str, when: &str, n: usize) -> Vec<Pricing> {
    (0..n)
        .map(|_| s.priced_via(waba, when, INDIA, AUTHENTICATION))
        .collect()
}

/// Example 1: B authentication messages to India in a month: A at the list rate, B−A at tier
/// rate 1 (graduated, not retroactive).
#[test]
fn example_1_graduated_rates_within_a_month() {
    let mut s = Scenario::with(
        data_with_made_up_tiers(),
        WabaDirectory::default(),
        AuthIntl::default(),
    );
    let sent = send_n(&mut s, "w", "2026-03-10T12:00:00Z", 20);
    assert_eq!(sent[0].rate, Some(money("0.0014")));
    assert_eq!(sent[9].rate, Some(money("0.0014")));
    assert_eq!(sent[10].rate, Some(money("0.0013")));
    assert_eq!(sent[19].rate, Some(money("0.0013")));
    assert_eq!(tiers_of(&sent[9..11]), vec!["0:10", "11:20"]);
    // 10 × 0.0014 + 10 × 0.0013
    assert_eq!(sum(&sent), money("0.027"));
    // The next month starts again at the list rate.
    let april = s.priced("2026-04-01T00:00:00Z", INDIA, AUTHENTICATION);
    assert_eq!(april.tier.map(|t| t.to_string()).as_deref(), Some("0:10"));
}

/// Example 2: international rates start on the 15th: tiers keep accruing, and from that day
/// the international rate of the current tier applies.
#[test]
fn example_2_authentication_international_starting_mid_month() {
    let mut auth = AuthIntl::default();
    auth.insert(
        "w",
        Eligibility {
            primary_country: *b"GB",
            start: Some(at("2026-03-15T00:00:00Z")),
            exceptions: Vec::new(),
        },
    );
    let mut s = Scenario::with(data_with_made_up_tiers(), WabaDirectory::default(), auth);
    let early = send_n(&mut s, "w", "2026-03-10T12:00:00Z", 15);
    let late = send_n(&mut s, "w", "2026-03-16T12:00:00Z", 10);
    assert!(early
        .iter()
        .all(|p| p.category == RateCategory::Authentication));
    assert!(late
        .iter()
        .all(|p| p.category == RateCategory::AuthenticationInternational));
    // Messages 16–20 are in tier 1 (international 0.026), 21–25 in tier 2 (0.024).
    assert_eq!(late[0].rate, Some(money("0.026")));
    assert_eq!(late[4].rate, Some(money("0.026")));
    assert_eq!(late[5].rate, Some(money("0.024")));
    assert_eq!(tiers_of(&late[4..6]), vec!["11:20", "21:30"]);
    // 10 × 0.0014 + 5 × 0.0013 + 5 × 0.026 + 5 × 0.024
    assert_eq!(sum(&early), money("0.0205"));
    assert_eq!(sum(&late), money("0.25"));
}

/// Example 3: a portfolio with three WABAs; for WABA A it is still July 31st, for B and C it is
/// already August 1st. A pays July's tier 1 rate; B and C start August at the list rate.
#[test]
fn example_3_a_portfolio_straddles_two_months_across_time_zones() {
    let mut wabas = WabaDirectory::default();
    wabas.insert("a", waba_in("America/Los_Angeles", "business"));
    wabas.insert("b", waba_in("Asia/Kolkata", "business"));
    wabas.insert("c", waba_in("Asia/Kolkata", "business"));
    let mut s = Scenario::with(data_with_made_up_tiers(), wabas, AuthIntl::default());
    // July: 15 messages from A (into tier 1).
    send_n(&mut s, "a", "2026-07-20T12:00:00Z", 15);
    // 03:00 UTC on August 1st: 20:00 July 31st in Los Angeles, 08:30 August 1st in Kolkata.
    let now = "2026-08-01T03:00:00Z";
    let a = s.priced_via("a", now, INDIA, AUTHENTICATION);
    let b = s.priced_via("b", now, INDIA, AUTHENTICATION);
    let c = s.priced_via("c", now, INDIA, AUTHENTICATION);
    assert_eq!(
        (a.rate, a.tier.map(|t| t.to_string())),
        (Some(money("0.0013")), Some("11:20".into()))
    );
    assert_eq!(
        (b.rate, b.tier.map(|t| t.to_string())),
        (Some(money("0.0014")), Some("0:10".into()))
    );
    assert_eq!(c.rate, Some(money("0.0014")));
    let counts: std::collections::BTreeMap<i32, u64> = s
        .engine
        .tier_counts()
        .map(|(key, count)| (key.month, *count))
        .collect();
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![16, 2]);
}

/// Example 4: two solution providers (WABAs of one portfolio): provider 1 sends the first B
/// messages, provider 2 starts when the business is in the 3rd tier and pays that tier's rate.
#[test]
fn example_4_tier_position_is_shared_across_providers() {
    let mut wabas = WabaDirectory::default();
    wabas.insert("provider-1", waba_in("UTC", "business"));
    wabas.insert("provider-2-x", waba_in("UTC", "business"));
    wabas.insert("provider-2-y", waba_in("UTC", "business"));
    let mut s = Scenario::with(data_with_made_up_tiers(), wabas, AuthIntl::default());
    let first = send_n(&mut s, "provider-1", "2026-05-05T12:00:00Z", 20);
    let mut second = send_n(&mut s, "provider-2-x", "2026-05-20T12:00:00Z", 4);
    second.extend(send_n(&mut s, "provider-2-y", "2026-05-21T12:00:00Z", 3));
    assert_eq!(sum(&first), money("0.027"));
    assert!(second.iter().all(|p| p.rate == Some(money("0.0012"))));
    assert!(second
        .iter()
        .all(|p| p.tier.map(|t| t.to_string()).as_deref() == Some("21:30")));
    assert_eq!(sum(&second), money("0.0084"));
}

/// Only charged messages count: utility templates free inside the window do not.
#[test]
fn free_messages_do_not_count_toward_tiers() {
    let mut s = Scenario::with(
        data_with_made_up_tiers(),
        WabaDirectory::default(),
        AuthIntl::default(),
    );
    s.user("2026-03-10T10:00:00Z", INDIA);
    for _ in 0..12 {
        let free = s.priced("2026-03-10T11:00:00Z", INDIA, UTILITY);
        assert!(!free.billable);
    }
    let charged = s.priced("2026-03-12T11:00:00Z", INDIA, UTILITY);
    assert_eq!(charged.tier.map(|t| t.to_string()).as_deref(), Some("0:10"));
    let total: u64 = s.engine.tier_counts().map(|(_, n)| *n).sum();
    assert_eq!(total, 1);
}

/// Without a tier table (none is built in) the list rate applies and no tier is reported.
#[test]
fn without_a_tier_table_the_list_rate_applies() {
    let mut s = Scenario::new();
    let sent = send_n(&mut s, "w", "2026-03-10T12:00:00Z", 30);
    assert!(sent
        .iter()
        .all(|p| p.rate == Some(money("0.0014")) && p.tier.is_none()));
}
