//! Every worked example in Meta's pricing documents (seeds 002–004 and the research notes),
//! with the money it must come to.

mod common;

use common::*;
use wagate_pricing::auth_intl::{AuthIntl, Eligibility};
use wagate_pricing::waba::WabaDirectory;
use wagate_pricing::{Micros, Outcome, PricingModel, PricingType, RateCategory};

const INDIA: &str = "+919876543210";
const BRAZIL: &str = "+5511987654321";
const COLOMBIA: &str = "+573001234567";

fn total(charges: &[&wagate_pricing::Pricing]) -> Micros {
    charges
        .iter()
        .fold(Micros::ZERO, |sum, p| sum.saturating_add(p.charge()))
}

/// Seed 002 "Charge example": four messages sent, two charged (1 marketing, 1 utility).
#[test]
fn metas_charge_example_four_messages_two_charges() {
    let mut s = Scenario::new();
    let h0 = s.priced("2026-03-02T00:00:00Z", INDIA, MARKETING);
    assert!(h0.billable);
    assert_eq!(
        (h0.category, h0.kind),
        (RateCategory::Marketing, PricingType::Regular)
    );
    assert_eq!(h0.rate, Some(money("0.0118")));
    assert_eq!(h0.model, PricingModel::Pmp);
    assert_eq!(s.market(&h0), "India");

    s.user("2026-03-02T02:00:00Z", INDIA);

    let h3 = s.priced("2026-03-02T03:00:00Z", INDIA, TEXT);
    assert!(!h3.billable);
    assert_eq!(
        (h3.category, h3.kind),
        (RateCategory::Service, PricingType::FreeCustomerService)
    );

    let h4 = s.priced("2026-03-02T04:00:00Z", INDIA, UTILITY);
    assert!(!h4.billable);
    assert_eq!(
        (h4.category, h4.kind),
        (RateCategory::Utility, PricingType::FreeCustomerService)
    );

    // h26: the window has closed; a text is refused.
    assert_eq!(
        s.send("2026-03-03T02:00:00Z", INDIA, TEXT),
        Outcome::OutsideCustomerServiceWindow
    );

    let h30 = s.priced("2026-03-03T06:00:00Z", INDIA, UTILITY);
    assert!(h30.billable);
    assert_eq!(
        (h30.category, h30.kind),
        (RateCategory::Utility, PricingType::Regular)
    );
    assert_eq!(h30.rate, Some(money("0.0014")));

    assert_eq!(total(&[&h0, &h3, &h4, &h30]), money("0.0132"));
}

/// Seed 004: "If a business sends 1 marketing message and 1 utility message, that incurs 1
/// charge for each category"; inside the window free-form and utility are free.
#[test]
fn one_marketing_and_one_utility_outside_the_window_are_two_charges() {
    let mut s = Scenario::new();
    let marketing = s.priced("2026-03-02T09:00:00Z", INDIA, MARKETING);
    let utility = s.priced("2026-03-02T09:05:00Z", INDIA, UTILITY);
    assert!(marketing.billable && utility.billable);
    assert_eq!(total(&[&marketing, &utility]), money("0.0132"));
}

/// Seed 003 / notes §5.2: user via an ad at 10am, business template at 10pm: a 72 h free entry
/// point from 10pm; free-form messages only until 10am the next day.
#[test]
fn ten_am_ad_ten_pm_reply_opens_72_hours_free_cbp() {
    let mut s = Scenario::new();
    s.user_from_ad("2024-06-03T10:00:00Z", BRAZIL);
    let reply = s.priced("2024-06-03T22:00:00Z", BRAZIL, MARKETING);
    assert_eq!(reply.model, PricingModel::Cbp);
    assert!(!reply.billable);
    assert_eq!(
        (reply.category, reply.kind),
        (
            RateCategory::ReferralConversion,
            PricingType::FreeEntryPoint
        )
    );
    let conversation = reply.conversation.expect("free entry point conversation");
    assert_eq!(conversation.expires_at, at("2024-06-06T22:00:00Z"));
    assert_eq!(conversation.origin.origin_str(), "referral_conversion");

    let text = s.priced("2024-06-04T09:59:00Z", BRAZIL, TEXT);
    assert_eq!(text.kind, PricingType::FreeEntryPoint);
    assert_eq!(text.conversation.map(|c| c.id), Some(conversation.id));
    assert_eq!(
        s.send("2024-06-04T10:00:00Z", BRAZIL, TEXT),
        Outcome::OutsideCustomerServiceWindow
    );
    for template in [MARKETING, UTILITY, AUTHENTICATION] {
        let free = s.priced("2024-06-06T21:59:00Z", BRAZIL, template);
        assert_eq!(free.kind, PricingType::FreeEntryPoint);
        assert_eq!(free.charge(), Micros::ZERO);
    }
    // The user writes again: a new customer service window, still inside the entry point.
    s.user("2024-06-05T12:00:00Z", BRAZIL);
    assert_eq!(
        s.priced("2024-06-05T13:00:00Z", BRAZIL, TEXT).kind,
        PricingType::FreeEntryPoint
    );
    // After 72 h a marketing template opens a charged marketing conversation.
    let after = s.priced("2024-06-06T22:00:00Z", BRAZIL, MARKETING);
    assert!(after.billable);
    assert_eq!(after.rate, Some(money("0.0625")));
}

/// Same example under per-message pricing: every message in the 72 h window is free.
#[test]
fn ten_am_ad_ten_pm_reply_opens_72_hours_free_pmp() {
    let mut s = Scenario::new();
    s.user_from_ad("2026-03-02T10:00:00Z", INDIA);
    let reply = s.priced("2026-03-02T22:00:00Z", INDIA, TEXT);
    assert_eq!(
        (reply.model, reply.kind),
        (PricingModel::Pmp, PricingType::FreeEntryPoint)
    );
    assert_eq!(
        reply.conversation.map(|c| c.expires_at),
        Some(at("2026-03-05T22:00:00Z"))
    );
    assert_eq!(
        s.send("2026-03-03T10:00:00Z", INDIA, TEXT),
        Outcome::OutsideCustomerServiceWindow
    );
    let marketing = s.priced("2026-03-05T21:59:59Z", INDIA, MARKETING);
    assert_eq!(marketing.kind, PricingType::FreeEntryPoint);
    let later = s.priced("2026-03-05T22:00:00Z", INDIA, MARKETING);
    assert_eq!(
        (later.kind, later.rate),
        (PricingType::Regular, Some(money("0.0118")))
    );
}

/// A reply more than 24 h after the ad message opens no free entry point.
#[test]
fn a_reply_after_24_hours_opens_no_free_entry_point() {
    let mut s = Scenario::new();
    s.user_from_ad("2026-03-02T10:00:00Z", INDIA);
    let late = s.priced("2026-03-03T10:00:00Z", INDIA, MARKETING);
    assert_eq!(late.kind, PricingType::Regular);
    assert!(late.billable);
}

/// Notes §5.2: h0 marketing → marketing conversation; h4 utility → utility conversation;
/// h10 utility → none. Two charges.
#[test]
fn cbp_one_conversation_per_category_per_24_hours() {
    let mut s = Scenario::new();
    let h0 = s.priced("2024-06-03T00:00:00Z", BRAZIL, MARKETING);
    let h4 = s.priced("2024-06-03T04:00:00Z", BRAZIL, UTILITY);
    let h10 = s.priced("2024-06-03T10:00:00Z", BRAZIL, UTILITY);
    assert!(h0.billable && h4.billable && !h10.billable);
    assert_eq!(h0.rate, Some(money("0.0625")));
    assert_eq!(h4.rate, Some(money("0.0350")));
    assert_eq!(h10.rate, Some(Micros::ZERO));
    assert_eq!(
        h10.conversation.map(|c| c.id),
        h4.conversation.map(|c| c.id)
    );
    assert_ne!(h0.conversation.map(|c| c.id), h4.conversation.map(|c| c.id));
    assert_eq!(total(&[&h0, &h4, &h10]), money("0.0975"));
}

/// Notes §5.2: h0 marketing; h4 user message; h5 list message → none (marketing open);
/// h24 marketing expires; h25 text → service conversation; h26 text → none.
#[test]
fn cbp_service_conversation_only_when_none_is_open() {
    let mut s = Scenario::new();
    exhaust_free_tier(&mut s, "2024-06-01T00:00:00Z");
    let h0 = s.priced("2024-06-03T00:00:00Z", BRAZIL, MARKETING);
    s.user("2024-06-03T04:00:00Z", BRAZIL);
    let h5 = s.priced("2024-06-03T05:00:00Z", BRAZIL, TEXT);
    assert!(!h5.billable);
    assert_eq!(h5.category, RateCategory::Marketing);
    assert_eq!(h5.conversation.map(|c| c.id), h0.conversation.map(|c| c.id));
    let h25 = s.priced("2024-06-04T01:00:00Z", BRAZIL, TEXT);
    assert!(h25.billable);
    assert_eq!(h25.category, RateCategory::Service);
    assert_eq!(h25.rate, Some(money("0.0300")));
    let h26 = s.priced("2024-06-04T02:00:00Z", BRAZIL, TEXT);
    assert!(!h26.billable);
    assert_eq!(
        h26.conversation.map(|c| c.id),
        h25.conversation.map(|c| c.id)
    );
    assert_eq!(total(&[&h0, &h5, &h25, &h26]), money("0.0925"));
}

/// Opens the WABA's 1,000 free service conversations of the month with other users.
fn exhaust_free_tier(s: &mut Scenario, when: &str) {
    for n in 0..1_000 {
        let user = format!("+55119{n:08}");
        s.user(when, &user);
        let p = s.priced(when, &user, TEXT);
        assert_eq!(p.kind, PricingType::FreeTier, "conversation {n}");
    }
}

/// Seed 003: a service conversation at 9:31 and a marketing template at 16:30 while it is
/// open: one service charge and one marketing charge.
#[test]
fn cbp_marketing_inside_a_service_conversation_is_a_second_charge() {
    let mut s = Scenario::new();
    exhaust_free_tier(&mut s, "2024-06-01T00:00:00Z");
    s.user("2024-06-03T09:00:00Z", BRAZIL);
    let service = s.priced("2024-06-03T09:31:00Z", BRAZIL, TEXT);
    let marketing = s.priced("2024-06-03T16:30:00Z", BRAZIL, MARKETING);
    assert_eq!(service.category, RateCategory::Service);
    assert_eq!(marketing.category, RateCategory::Marketing);
    assert!(service.billable && marketing.billable);
    assert_eq!(total(&[&service, &marketing]), money("0.0925"));
}

/// Seed 003: marketing at 3:40, utility at 6:00 while it is open: two charges.
#[test]
fn cbp_utility_inside_a_marketing_conversation_is_a_second_charge() {
    let mut s = Scenario::new();
    let marketing = s.priced("2024-06-03T03:40:00Z", BRAZIL, MARKETING);
    let utility = s.priced("2024-06-03T06:00:00Z", BRAZIL, UTILITY);
    assert!(marketing.billable && utility.billable);
    assert_eq!(total(&[&marketing, &utility]), money("0.0975"));
}

/// Seed 003: utility at 9:00 and 11:00: one utility conversation charge.
#[test]
fn cbp_two_templates_of_one_category_are_one_charge() {
    let mut s = Scenario::new();
    let first = s.priced("2024-06-03T09:00:00Z", BRAZIL, UTILITY);
    let second = s.priced("2024-06-03T11:00:00Z", BRAZIL, UTILITY);
    assert_eq!(total(&[&first, &second]), money("0.0350"));
}

/// Seed 003: 1,000 free service conversations per WABA per month, refreshed at the start of
/// the month in the WABA's time zone; none of this once service conversations cost nothing.
#[test]
fn cbp_free_tier_of_1000_service_conversations_per_waba_month() {
    let mut wabas = WabaDirectory::default();
    wabas.insert("w", waba_in("America/Sao_Paulo", "p"));
    let mut s = Scenario::with(
        wagate_pricing::PricingData::builtin().expect("data"),
        wabas,
        AuthIntl::default(),
    );
    exhaust_free_tier(&mut s, "2024-06-10T00:00:00Z");
    s.user("2024-07-01T02:00:00Z", BRAZIL);
    // 02:00 UTC on July 1st is still June 30th in São Paulo (UTC-3): the 1,001st is charged.
    let june = s.priced("2024-07-01T02:00:00Z", BRAZIL, TEXT);
    assert_eq!(
        (june.kind, june.rate),
        (PricingType::Regular, Some(money("0.0300")))
    );
    s.user("2024-07-02T03:00:00Z", INDIA);
    let july = s.priced("2024-07-02T03:00:00Z", INDIA, TEXT);
    assert_eq!(july.kind, PricingType::FreeTier);
    // From 2024-11-01 service conversations are free for everyone; no free tier is used.
    s.user("2024-11-05T00:00:00Z", BRAZIL);
    let free = s.priced("2024-11-05T00:00:00Z", BRAZIL, TEXT);
    assert_eq!(
        (free.kind, free.billable),
        (PricingType::FreeCustomerService, false)
    );
}

/// Seed 002 edge case: a utility conversation opened before 2025-07-01 that is still open after
/// the switch: utility templates are free, CBP, attributed to it until it closes.
#[test]
fn cbp_utility_conversation_spanning_the_switch_stays_cbp_and_free() {
    let mut data = wagate_pricing::PricingData::builtin().expect("data");
    // A made-up USD PMP card for July 2025 (the built-in USD PMP card starts 2026-01-01).
    data.add_rate_cards(
        "market,currency,marketing,utility,authentication,authentication_international,service,effective_from\n\
         Brazil,USD,0.0625,0.0068,0.0068,,,2025-07-01\n",
        "test card",
        None,
    )
    .expect("card");
    let mut s = Scenario::with(data, WabaDirectory::default(), AuthIntl::default());
    let opened = s.priced("2025-06-30T20:00:00Z", BRAZIL, UTILITY);
    assert_eq!(
        (opened.model, opened.rate),
        (PricingModel::Cbp, Some(money("0.0080")))
    );
    let conversation = opened.conversation.expect("utility conversation");
    assert_eq!(conversation.expires_at, at("2025-07-01T20:00:00Z"));

    let spanning = s.priced("2025-07-01T10:00:00Z", BRAZIL, UTILITY);
    assert_eq!(spanning.model, PricingModel::Cbp);
    assert!(!spanning.billable);
    assert_eq!(spanning.conversation.map(|c| c.id), Some(conversation.id));

    // Other categories follow per-message pricing at once.
    let marketing = s.priced("2025-07-01T10:00:00Z", BRAZIL, MARKETING);
    assert_eq!(
        (marketing.model, marketing.billable),
        (PricingModel::Pmp, true)
    );

    let after = s.priced("2025-07-01T20:00:00Z", BRAZIL, UTILITY);
    assert_eq!(
        (after.model, after.rate),
        (PricingModel::Pmp, Some(money("0.0068")))
    );
    assert_eq!(after.conversation, None);
}

/// The switch happens at 12am in each WABA's time zone.
#[test]
fn the_switch_to_per_message_pricing_is_at_local_midnight() {
    let mut wabas = WabaDirectory::default();
    wabas.insert("kolkata", waba_in("Asia/Kolkata", "p"));
    let mut s = Scenario::with(
        wagate_pricing::PricingData::builtin().expect("data"),
        wabas,
        AuthIntl::default(),
    );
    // 20:00 UTC on June 30th is 01:30 on July 1st in Kolkata.
    let utc = s.priced_via("w", "2025-06-30T20:00:00Z", BRAZIL, MARKETING);
    let kolkata = s.priced_via("kolkata", "2025-06-30T20:00:00Z", BRAZIL, MARKETING);
    assert_eq!(utc.model, PricingModel::Cbp);
    assert_eq!(kolkata.model, PricingModel::Pmp);
    // No USD per-message card before 2026-01-01 is known: charged, but never guessed.
    assert!(kolkata.billable);
    assert_eq!(kolkata.rate, None);
}

/// Notes §7: a Colombia service message delivered 2026-10-02 costs 800 micro-USD (the
/// utility rate); the same message in September is free.
#[test]
fn service_messages_are_charged_from_2026_10_01_at_the_utility_rate() {
    let mut s = Scenario::new();
    s.user("2026-09-15T10:00:00Z", COLOMBIA);
    let september = s.priced("2026-09-15T10:05:00Z", COLOMBIA, TEXT);
    assert_eq!(
        (september.kind, september.billable),
        (PricingType::FreeCustomerService, false)
    );

    s.user("2026-10-02T10:00:00Z", COLOMBIA);
    let october = s.priced("2026-10-02T10:05:00Z", COLOMBIA, TEXT);
    assert!(october.billable);
    assert_eq!(
        (october.category, october.kind),
        (RateCategory::Service, PricingType::Regular)
    );
    assert_eq!(october.rate, Some(Micros(800)));
    assert_eq!(october.tier, None);
}

/// Notes §5.1 (S3), without the Meta Business Agent replies (token-priced, not an input type):
/// a marketing cart reminder, the user answers, a human reply and an order confirmation
/// within the hour: one charge in August 2026, three in October 2026.
#[test]
fn the_2026_10_01_change_turns_window_messages_into_charges() {
    let mut s = Scenario::new();
    let run = |s: &mut Scenario, day: &str| -> Vec<wagate_pricing::Pricing> {
        let t = |hm: &str| format!("{day}T{hm}:00Z");
        let reminder = s.priced(&t("10:00"), INDIA, MARKETING);
        s.user(&t("10:10"), INDIA);
        let human = s.priced(&t("10:20"), INDIA, TEXT);
        let confirmation = s.priced(&t("10:50"), INDIA, UTILITY);
        vec![reminder, human, confirmation]
    };
    let august = run(&mut s, "2026-08-10");
    assert_eq!(august.iter().filter(|p| p.billable).count(), 1);
    let october = run(&mut s, "2026-10-12");
    assert_eq!(october.iter().filter(|p| p.billable).count(), 3);
    let refs: Vec<&wagate_pricing::Pricing> = october.iter().collect();
    // 0.0118 marketing + 0.0014 service (utility rate) + 0.0014 utility.
    assert_eq!(total(&refs), money("0.0146"));
    // The free entry point stays free after the change.
    s.user_from_ad("2026-10-20T10:00:00Z", INDIA);
    assert_eq!(
        s.priced("2026-10-20T10:30:00Z", INDIA, TEXT).kind,
        PricingType::FreeEntryPoint
    );
}

/// A market without a row on the card in force keeps its classification, gets no rate.
#[test]
fn qatar_is_priced_as_its_own_market_from_2026_07_01() {
    let mut s = Scenario::new();
    let before = s.priced("2026-06-30T12:00:00Z", "+97455123456", MARKETING);
    assert_eq!(s.market(&before), "Rest of Middle East");
    assert_eq!(before.rate, Some(money("0.0341")));
    let after = s.priced("2026-07-01T12:00:00Z", "+97455123456", MARKETING);
    assert_eq!(s.market(&after), "Qatar");
    assert!(after.billable);
    // Meta's 2026-07-01 card lists Qatar on its own row (crates/pricing/data/SOURCES.md).
    assert_eq!(after.rate, Some(money("0.0341")));
}

/// Authentication-international: eligible business, recipient abroad, from the start time.
#[test]
fn authentication_international_applies_abroad_from_the_start_time() {
    let mut auth = AuthIntl::default();
    auth.insert(
        "w",
        Eligibility {
            primary_country: *b"GB",
            start: Some(at("2026-03-15T00:00:00Z")),
            exceptions: Vec::new(),
        },
    );
    auth.insert(
        "indian",
        Eligibility {
            primary_country: *b"IN",
            start: Some(at("2026-03-01T00:00:00Z")),
            exceptions: Vec::new(),
        },
    );
    let mut s = Scenario::with(
        wagate_pricing::PricingData::builtin().expect("data"),
        WabaDirectory::default(),
        auth,
    );
    let before = s.priced("2026-03-14T12:00:00Z", INDIA, AUTHENTICATION);
    assert_eq!(
        (before.category, before.rate),
        (RateCategory::Authentication, Some(money("0.0014")))
    );
    let after = s.priced("2026-03-15T12:00:00Z", INDIA, AUTHENTICATION);
    assert_eq!(
        (after.category, after.rate),
        (
            RateCategory::AuthenticationInternational,
            Some(money("0.028"))
        )
    );
    assert_eq!(after.category.as_str(), "authentication-international");
    // The UK card has no international rate; a domestic business pays the domestic rate.
    let uk = s.priced("2026-03-15T12:00:00Z", "+447700900123", AUTHENTICATION);
    assert_eq!(uk.category, RateCategory::Authentication);
    let domestic = s.priced_via("indian", "2026-03-15T12:00:00Z", INDIA, AUTHENTICATION);
    assert_eq!(domestic.category, RateCategory::Authentication);
}

/// Cards and months turn over at midnight in the WABA's zone, not UTC.
#[test]
fn the_card_in_force_follows_the_wabas_local_date() {
    let mut wabas = WabaDirectory::default();
    wabas.insert("kolkata", waba_in("Asia/Kolkata", "p"));
    let mut s = Scenario::with(
        wagate_pricing::PricingData::builtin().expect("data"),
        wabas,
        AuthIntl::default(),
    );
    // 19:00 UTC on 2025-12-31 is 00:30 on 2026-01-01 in Kolkata: the 2026 USD card applies.
    let kolkata = s.priced_via("kolkata", "2025-12-31T19:00:00Z", INDIA, MARKETING);
    assert_eq!(kolkata.rate, Some(money("0.0118")));
    let utc = s.priced_via("w", "2025-12-31T19:00:00Z", INDIA, MARKETING);
    assert_eq!(utc.rate, None);
}

/// Expired windows are dropped as event time passes: memory follows open windows.
#[test]
fn expired_state_is_dropped_as_time_passes() {
    let mut s = Scenario::new();
    for n in 0..5_000 {
        s.user("2026-03-02T10:00:00Z", &format!("+9198{n:08}"));
    }
    assert_eq!(s.engine.open_pairs(), 5_000);
    s.user("2026-03-06T10:00:00Z", INDIA);
    assert_eq!(s.engine.open_pairs(), 1);
}
