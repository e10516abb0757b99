//! The server and `wagate rate` agree: a month of synthetic traffic (the `synth` generator:
//! three WABAs in three time zones, two sharing a portfolio, users in many markets, ads,
//! crossing 2026-10-01 and a month end) is replayed through the fake of Meta into the server —
//! user messages as Meta webhooks, business messages sent through the API and delivered by
//! Meta's status webhooks — with restarts all along; every message's charge and the wallet
//! total equal what `wagate rate` says for the same events, to the micro-unit. SQLite and
//! PostgreSQL.

mod common;

use std::collections::HashMap;

use common::{Backing, Server};
use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_meta::fake::{Driver, FakeGraph, StatusEvent};
use wagate_meta::webhook::{MessageStatus, Referral};
use wagate_pricing::synth::{Generator, SynthConfig};
use wagate_pricing::{EventKind, Instant, Message, TemplateCategory};

const SECRET: &str = "replay-secret";
const START: &str = "2026-09-29T00:00:00Z";
/// Events replayed: about a month at a ~35 minute mean gap.
const EVENTS: usize = 1_300;
/// The server restarts this often (windows opened before a restart are used after it).
const RESTART_EVERY: usize = 150;

/// WABA index → (Meta's WABA id, time zone, portfolio id).
const WABAS: [(&str, &str, &str); 3] = [
    ("900000", "Asia/Kolkata", "7001"),
    ("900001", "America/Los_Angeles", "7001"),
    ("900002", "UTC", "900002"),
];

fn micros(decimal: &str) -> i64 {
    let negative = decimal.starts_with('-');
    let d = decimal.trim_start_matches('-');
    let (whole, frac) = d.split_once('.').unwrap_or((d, ""));
    let frac = format!("{frac:0<6}");
    let v = whole.parse::<i64>().unwrap() * 1_000_000 + frac[..6].parse::<i64>().unwrap();
    if negative {
        -v
    } else {
        v
    }
}

/// A tier table (made up: Meta's thresholds are not public) with India's bands every 10
/// messages, so the month crosses several.
fn tiers() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../pricing/tests/data/made_up_tier_pricing.csv"
    )
    .to_owned()
}

async fn start(backing: &Backing, fake: &FakeGraph) -> Server {
    let graph = fake.base_url();
    let tiers = tiers();
    Server::start_with_env(
        backing,
        &["--sandbox", "--clock-start", START],
        &[
            ("WAGATE_META_GRAPH_URL", graph.as_str()),
            ("WAGATE_META_APP_SECRET", SECRET),
            ("WAGATE_META_TIERS", tiers.as_str()),
        ],
    )
    .await
}

/// Every item of a list, following `starting_after`.
async fn all(s: &Server, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit=100");
        if let Some(a) = &after {
            url.push_str(&format!("&starting_after={a}"));
        }
        let (st, page) = s.get(&url).await;
        assert_eq!(st, 200, "{page}");
        let data = page["data"].as_array().unwrap().clone();
        after = data.last().map(|v| v["id"].as_str().unwrap().to_owned());
        items.extend(data);
        if page["has_more"] != true {
            return items;
        }
    }
}

/// What `wagate rate` says for the input, by message id.
fn rate(input: &str, wabas: &str) -> HashMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("wabas.csv");
    std::fs::write(&csv, wabas).unwrap();
    let tiers = tiers();
    common::rate_cli(
        input,
        &[
            "--wabas".as_ref(),
            csv.as_os_str(),
            "--tiers".as_ref(),
            tiers.as_ref(),
        ],
    )
}

/// Meta's webhooks carry whole seconds: the events are replayed (and priced by the CLI) at
/// the second they fall in.
fn ts(at: Instant) -> Timestamp {
    Timestamp::from_second(at.to_timestamp().as_second()).unwrap()
}

async fn replay(kind: &str) {
    let fake = FakeGraph::start().await.unwrap();
    for category in ["marketing", "utility", "authentication"] {
        fake.add_template(&format!("t_{category}"), "en_US", &category.to_uppercase());
    }
    let (backing, _dir) = common::fresh(kind).await;
    let mut s = start(&backing, &fake).await;
    let events: Vec<_> = Generator::new(SynthConfig {
        users: 120,
        wabas: 3,
        businesses_per_waba: 2,
        start: Instant::parse(START).unwrap(),
        mean_gap_ms: 35 * 60 * 1000,
        seed: 0xc10d,
    })
    .take(EVENTS)
    .collect();
    let last = ts(events.last().unwrap().at);
    assert!(
        last > "2026-10-25T00:00:00Z".parse().unwrap(),
        "a month: {last}"
    );

    // One cloud line per business number, each with its WABA's settings.
    let mut lines: HashMap<u64, (String, String)> = HashMap::new();
    for e in &events {
        let business = e.business.as_u64();
        if lines.contains_key(&business) {
            continue;
        }
        let (waba, zone, portfolio) = WABAS[e.waba as usize];
        let number_id = format!("10{business}");
        let token = format!("token-{business}");
        fake.add_number(&number_id, &format!("+{business}"), "Shop", waba, &token);
        let (st, line) = s
            .post(
                "/api/v1/wa/lines",
                json!({"kind": "cloud", "cloud": {"phone_number_id": number_id, "waba_id": waba,
                    "access_token": token, "portfolio_id": portfolio, "time_zone": zone}}),
            )
            .await;
        assert_eq!(st, 201, "{line}");
        lines.insert(
            business,
            (line["id"].as_str().unwrap().to_owned(), number_id),
        );
    }
    s.post(
        "/api/v1/billing/card",
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
    let (st, b) = s
        .post(
            "/api/v1/billing/wallet/topups",
            json!({"amount": "5000.00"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");

    // The replay, and the same events as `wagate rate` input.
    let mut input = String::new();
    let mut hook: Driver = fake.webhooks(&format!("{}/meta/webhooks", s.base), SECRET);
    let mut sent: HashMap<String, String> = HashMap::new(); // m<n> → msg_…
    let mut refused = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if i > 0 && i % RESTART_EVERY == 0 {
            // A restart: everything the engine knows must come back from the store.
            assert!(s.terminate().await.success());
            s = start(&backing, &fake).await;
            hook = fake.webhooks(&format!("{}/meta/webhooks", s.base), SECRET);
        }
        let at = ts(e.at);
        let (waba, _, _) = WABAS[e.waba as usize];
        let business = format!("+{}", e.business.as_u64());
        let user = format!("+{}", e.user.as_u64());
        let (line, number_id) = &lines[&e.business.as_u64()];
        fake.set_now(at);
        match e.kind {
            EventKind::UserMessage { entry_point } => {
                let referral = entry_point.then(|| Referral {
                    source_url: "https://fb.me/ad".into(),
                    source_id: "ad-1".into(),
                    source_type: "ad".into(),
                    headline: None,
                    body: None,
                    ctwa_clid: Some("clid".into()),
                });
                let posted = hook
                    .inbound(number_id, &user, "hi", at, referral)
                    .await
                    .unwrap();
                assert_eq!(posted.status.as_u16(), 200, "{}", posted.body);
                let mut line = json!({"ts": at.to_string(), "waba": waba, "business": business, "user": user, "dir": "in"});
                if entry_point {
                    line["entry"] = json!("ctwa");
                }
                input.push_str(&format!("{line}\n"));
            }
            EventKind::BusinessMessage(message) => {
                let id = format!("m{}", e.n);
                let (body, cli) = match message {
                    Message::NonTemplate => (
                        json!({"to": user, "text": "reply"}),
                        json!({"type": "text"}),
                    ),
                    Message::Template(c) => {
                        let category = match c {
                            TemplateCategory::Marketing => "marketing",
                            TemplateCategory::Utility => "utility",
                            TemplateCategory::Authentication => "authentication",
                        };
                        (
                            json!({"to": user, "template": {"name": format!("t_{category}"), "language": "en_US", "category": category}}),
                            json!({"type": "template", "category": category}),
                        )
                    }
                };
                let mut line_in = json!({"ts": at.to_string(), "id": id, "waba": waba, "business": business, "user": user, "dir": "out"});
                line_in
                    .as_object_mut()
                    .unwrap()
                    .extend(cli.as_object().unwrap().clone());
                input.push_str(&format!("{line_in}\n"));
                let (st, b) = s
                    .post(
                        "/api/v1/sandbox/clock/advance",
                        json!({"to": at.to_string()}),
                    )
                    .await;
                assert_eq!(st, 200, "{b}");
                let (st, msg) = s
                    .post(&format!("/api/v1/wa/lines/{line}/messages"), body)
                    .await;
                if st == 409 {
                    assert_eq!(msg["error"], "outside_customer_service_window", "{msg}");
                    refused.push(id);
                    continue;
                }
                assert_eq!(st, 202, "{msg}");
                let wamid = fake.sent().last().unwrap().wamid.clone();
                let delivered =
                    StatusEvent::new(number_id, &wamid, &user, MessageStatus::Delivered, at);
                let posted = hook.status(&delivered).await.unwrap();
                assert_eq!(posted.status.as_u16(), 200, "{}", posted.body);
                sent.insert(id, msg["id"].as_str().unwrap().to_owned());
            }
        }
    }

    let wabas: String = WABAS
        .iter()
        .map(|(w, z, p)| format!("{w},{z},USD,{p}\n"))
        .collect();
    let cli = rate(&input, &wabas);
    // Refusals agree.
    for id in &refused {
        assert_eq!(cli[id]["error"], "outside_customer_service_window", "{id}");
    }
    // Every delivered message: our pricing object is the CLI's line, and the debit its rate.
    let txns = all(&s, "/api/v1/billing/transactions").await;
    let mut debits: HashMap<&str, i64> = HashMap::new();
    for t in txns.iter().filter(|t| t["type"] == "message_charge") {
        let description = t["description"].as_str().unwrap();
        let msg = description
            .split_whitespace()
            .find(|w| w.starts_with("msg_"))
            .unwrap();
        assert!(
            debits
                .insert(msg, micros(t["amount"].as_str().unwrap()))
                .is_none(),
            "one charge per message: {msg}"
        );
    }
    let events = all(&s, "/api/v1/webhooks/events?type=message.status").await;
    let mut priced: HashMap<String, Value> = HashMap::new();
    for e in &events {
        if e["body"]["data"]["pricing"].is_object() {
            let msg = e["body"]["data"]["message"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(priced
                .insert(msg, e["body"]["data"]["pricing"].clone())
                .is_none());
        }
    }
    let mut total = 0i64;
    let mut billable = 0;
    for (id, msg) in &sent {
        let expected = &cli[id];
        let ours = &priced[msg];
        let mut stripped = expected.clone();
        stripped.as_object_mut().unwrap().remove("id");
        let mut mine = ours.clone();
        mine.as_object_mut().unwrap().remove("amount");
        mine.as_object_mut().unwrap().remove("country");
        assert_eq!(mine, stripped, "message {id}");
        let charge = if expected["billable"] == true {
            expected["rate"].as_str().map_or(0, micros)
        } else {
            0
        };
        assert_eq!(
            -debits.get(msg.as_str()).copied().unwrap_or(0),
            charge,
            "message {id}: {expected}"
        );
        total += charge;
        billable += usize::from(charge > 0);
    }
    assert_eq!(debits.len(), billable, "no charge for anything else");

    // A tier update for each band a portfolio's month enters past the first, exactly once.
    let portfolio_of = |waba: &str| WABAS.iter().find(|w| w.0 == waba).unwrap();
    let mut crossings = std::collections::BTreeSet::new();
    for line in input.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let Some(id) = event["id"].as_str() else {
            continue;
        };
        let priced = &cli[id];
        let (Some(tier), Some(category)) = (priced["tier"].as_str(), priced["category"].as_str())
        else {
            continue;
        };
        let from: u64 = tier.split(':').next().unwrap().parse().unwrap();
        if from <= 1 || !sent.contains_key(id) {
            continue;
        }
        let (_, zone, portfolio) = portfolio_of(event["waba"].as_str().unwrap());
        let at: Timestamp = event["ts"].as_str().unwrap().parse().unwrap();
        let local = at.to_zoned(jiff::tz::TimeZone::get(zone).unwrap());
        let group = if category == "utility" {
            "UTILITY"
        } else {
            "AUTHENTICATION"
        };
        crossings.insert((
            portfolio.to_string(),
            priced["market"].as_str().unwrap().to_owned(),
            group,
            format!("{:04}-{:02}", local.year(), local.month()),
            tier.to_owned(),
        ));
    }
    let updates: Vec<Value> = all(&s, "/api/v1/webhooks/events?type=account_update")
        .await
        .into_iter()
        .map(|e| e["body"]["data"]["volume_tier_info"].clone())
        .collect();
    let mut announced = std::collections::BTreeSet::new();
    for u in &updates {
        assert!(
            announced.insert((
                u["portfolio_id"].as_str().unwrap().to_owned(),
                u["market"].as_str().unwrap().to_owned(),
                if u["pricing_category"] == "UTILITY" {
                    "UTILITY"
                } else {
                    "AUTHENTICATION"
                },
                u["effective_month"].as_str().unwrap().to_owned(),
                u["tier"].as_str().unwrap().to_owned(),
            )),
            "announced once: {u}"
        );
    }
    assert!(
        crossings.len() >= 3,
        "the month crosses tiers: {crossings:?}"
    );
    assert_eq!(announced, crossings);
    let (_, wallet) = s.get("/api/v1/billing/wallet").await;
    assert_eq!(
        micros(wallet["balance"].as_str().unwrap()),
        5_000_000_000 - total
    );
    // Enough of everything happened for the comparison to mean something.
    assert!(
        sent.len() > 500 && refused.len() > 20 && billable > 300,
        "{} sent, {} refused, {billable} billable",
        sent.len(),
        refused.len()
    );
}

#[tokio::test]
async fn the_server_prices_a_month_like_wagate_rate_sqlite() {
    replay("sqlite").await;
}

#[tokio::test]
async fn the_server_prices_a_month_like_wagate_rate_postgres() {
    replay("postgres").await;
}
