//! Cloud API lines over HTTP against a local fake of Meta's Graph API: the line is checked
//! with Meta, sends go through Meta, Meta's signed webhooks are applied once, and every
//! delivered message is priced exactly as `wagate rate` prices the same events and debited
//! from the wallet once — on SQLite and PostgreSQL.

mod common;

use std::collections::HashMap;

use common::{Backing, Server};
use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_meta::fake::{FakeGraph, StatusEvent};
use wagate_meta::webhook::{MessageStatus, MetaPricing};

const SECRET: &str = "meta-app-secret";
const VERIFY: &str = "verify-me";
const NUMBER_ID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const TOKEN: &str = "EAAG-test-token";
const USER: &str = "+919800000001";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn start(backing: &Backing, fake: &FakeGraph) -> Server {
    let graph = fake.base_url();
    Server::start_with_env(
        backing,
        &["--sandbox", "--clock-start", "2026-10-05T09:00:00Z"],
        &[
            ("WAGATE_META_GRAPH_URL", graph.as_str()),
            ("WAGATE_META_APP_SECRET", SECRET),
            ("WAGATE_META_VERIFY_TOKEN", VERIFY),
        ],
    )
    .await
}

fn cloud(token: &str, number: &str) -> Value {
    json!({"kind": "cloud", "cloud": {"phone_number_id": number, "waba_id": WABA, "access_token": token}})
}

/// Message charges in the wallet, by message id (from the description).
async fn charges(s: &Server) -> Vec<Value> {
    let (_, txns) = s.get("/api/v1/billing/transactions?limit=100").await;
    txns["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "message_charge")
        .cloned()
        .collect()
}

async fn status_events(s: &Server) -> Vec<Value> {
    let (_, b) = s
        .get("/api/v1/webhooks/events?type=message.status&limit=100")
        .await;
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].clone())
        .collect()
}

/// What `wagate rate` says about a JSON Lines input, by message id.
fn rate(input: &str) -> HashMap<String, Value> {
    common::rate_cli(input, &[])
}

async fn cloud_lines(kind: &str) {
    let fake = FakeGraph::start().await.unwrap();
    fake.add_number(NUMBER_ID, "+1 555-555-0001", "Acme", WABA, TOKEN);
    fake.add_template("spring_sale", "en_US", "MARKETING");
    let (backing, _dir) = common::fresh(kind).await;
    let s = start(&backing, &fake).await;
    let hook = fake.webhooks(&format!("{}/meta/webhooks", s.base), SECRET);

    // Meta's subscription check.
    let (status, body) = hook.subscribe(VERIFY, "1158201444").await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "1158201444"));
    let (status, _) = hook.subscribe("wrong", "1").await.unwrap();
    assert_eq!(status.as_u16(), 403);

    // Credentials are checked with Meta; the line is ready at once with Meta's number.
    let (st, b) = s
        .post("/api/v1/wa/lines", cloud("bad-token", NUMBER_ID))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (422, Some("cloud_credentials_invalid")),
        "{b}"
    );
    let (st, b) = s.post("/api/v1/wa/lines", cloud(TOKEN, "999")).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (422, Some("cloud_credentials_invalid")),
        "{b}"
    );
    let (st, line) = s.post("/api/v1/wa/lines", cloud(TOKEN, NUMBER_ID)).await;
    assert_eq!(st, 201, "{line}");
    assert_eq!(line["kind"], "cloud");
    assert_eq!(line["status"], "ready");
    assert_eq!(line["phone_number"], "+15555550001");
    assert_eq!(line["connect_url"], Value::Null);
    assert!(
        !line.to_string().contains(TOKEN),
        "the token is never shown"
    );
    let (st, b) = s.post("/api/v1/wa/lines", cloud(TOKEN, NUMBER_ID)).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("phone_number_in_use")),
        "{b}"
    );
    let id = line["id"].as_str().unwrap();
    let send = format!("/api/v1/wa/lines/{id}/messages");

    // No window yet: a text is refused before Meta is asked, as Meta would refuse it.
    let (st, b) = s.post(&send, json!({"to": USER, "text": "hi"})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("outside_customer_service_window")),
        "{b}"
    );
    assert!(fake.sent().is_empty());
    // A marketing template costs money: an empty wallet refuses it with the price.
    let template = json!({"to": USER, "template": {"name": "spring_sale", "language": "en_US", "category": "marketing"}});
    let (st, b) = s.post(&send, template.clone()).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("insufficient_balance")),
        "{b}"
    );
    assert!(b["required"].as_str().is_some(), "{b}");
    s.post(
        "/api/v1/billing/card",
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
    let (st, _) = s
        .post("/api/v1/billing/wallet/topups", json!({"amount": "10.00"}))
        .await;
    assert_eq!(st, 201);
    // Auto top-up as for line charges: a message charge that leaves less than 9.99 tops up.
    let (st, b) = common::send(
        s.req(reqwest::Method::PUT, "/api/v1/billing/wallet/auto_topup")
            .json(&json!({"enabled": true, "threshold": "9.99", "amount": "20.00"})),
    )
    .await;
    assert_eq!(st, 200, "{b}");

    // The user writes (Meta's webhook): stored once however often Meta delivers it.
    let t_in = at("2026-10-05T09:00:05Z");
    fake.set_now(t_in);
    let inbound = hook
        .inbound(NUMBER_ID, USER, "Hello!", t_in, None)
        .await
        .unwrap();
    assert_eq!(inbound.status.as_u16(), 200);
    let again = hook.post_raw(inbound.body.clone(), None).await.unwrap();
    assert_eq!(again.status.as_u16(), 200);
    let (_, msgs) = s.get(&format!("{send}?limit=10")).await;
    let received: Vec<&Value> = msgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(received.len(), 1, "{msgs}");
    assert_eq!(received[0]["text"], "Hello!");

    // Bad deliveries: unsigned (401), signed but not Meta's shape (400), for a number wagate
    // does not serve (200, skipped: Meta must not retry it for days). None is stored.
    let unsigned = hook.post_unsigned(inbound.body.clone()).await.unwrap();
    assert_eq!(unsigned.status.as_u16(), 401);
    let malformed = hook.post_raw("{\"object\": ", None).await.unwrap();
    assert_eq!(malformed.status.as_u16(), 400);
    let not_ours = hook
        .post_raw(inbound.body.replace(NUMBER_ID, "999999999"), None)
        .await
        .unwrap();
    assert_eq!(not_ours.status.as_u16(), 200);

    // A forged delivery is refused and changes nothing.
    let forged = hook
        .post_raw(
            inbound.body.replace("Hello!", "Forged"),
            Some(format!("sha256={}", "0".repeat(64))),
        )
        .await
        .unwrap();
    assert_eq!(forged.status.as_u16(), 401);

    // Inside the window the text goes through Meta.
    fake.set_now(at("2026-10-05T09:01:00Z"));
    let (st, text) = s
        .post(&send, json!({"to": USER, "text": "Your order shipped"}))
        .await;
    assert_eq!(st, 202, "{text}");
    assert_eq!(text["status"], "sent");
    let (st, promo) = s.post(&send, template).await;
    assert_eq!(st, 202, "{promo}");
    assert_eq!(promo["type"], "template");
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    let (wamid_text, wamid_promo) = (sent[0].wamid.clone(), sent[1].wamid.clone());

    // Statuses, out of order and repeated: read before delivered for the template.
    let meta_pricing = |category: &str| MetaPricing {
        billable: true,
        pricing_model: "PMP".into(),
        category: category.into(),
        kind: Some("regular".into()),
    };
    let t_text = at("2026-10-05T09:01:02Z");
    let t_promo = at("2026-10-05T09:01:03Z");
    for (wamid, status, when, category) in [
        (&wamid_text, MessageStatus::Sent, t_text, "service"),
        (&wamid_text, MessageStatus::Delivered, t_text, "service"),
        (&wamid_promo, MessageStatus::Read, t_promo, "marketing"),
        (&wamid_promo, MessageStatus::Delivered, t_promo, "marketing"),
        (&wamid_text, MessageStatus::Delivered, t_text, "service"),
        (
            &wamid_text,
            MessageStatus::Read,
            at("2026-10-05T09:02:00Z"),
            "service",
        ),
    ] {
        let ev = StatusEvent::new(NUMBER_ID, wamid, USER, status, when)
            .with_pricing(meta_pricing(category));
        let posted = hook.status(&ev).await.unwrap();
        assert_eq!(posted.status.as_u16(), 200, "{}", posted.body);
    }

    // Each delivered message charged once, at what `wagate rate` says for the same events.
    let cli = rate(&format!(
        "{}\n{}\n{}\n",
        json!({"ts": "2026-10-05T09:00:05Z", "waba": WABA, "business": "+15555550001", "user": USER, "dir": "in"}),
        json!({"ts": "2026-10-05T09:01:02Z", "id": wamid_text, "waba": WABA, "business": "+15555550001", "user": USER, "dir": "out", "type": "text"}),
        json!({"ts": "2026-10-05T09:01:03Z", "id": wamid_promo, "waba": WABA, "business": "+15555550001", "user": USER, "dir": "out", "type": "template", "category": "marketing"}),
    ));
    let charged = charges(&s).await;
    assert_eq!(charged.len(), 2, "{charged:?}");
    // The first charge left less than the threshold: one auto top-up of 20.00 ran.
    s.post("/api/v1/sandbox/clock/advance", json!({"seconds": 1}))
        .await;
    let (_, txns) = s.get("/api/v1/billing/transactions?limit=100").await;
    let topups: Vec<&Value> = txns["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "topup" && t["amount"] == "20.00")
        .collect();
    assert_eq!(topups.len(), 1, "{txns}");
    let charged: Vec<Value> = charged;
    let events = status_events(&s).await;
    for (msg, wamid) in [(&text, &wamid_text), (&promo, &wamid_promo)] {
        let expected = &cli[wamid.as_str()];
        assert_eq!(expected["billable"], true, "{expected}");
        let rate = expected["rate"].as_str().unwrap();
        let mine: Vec<&Value> = charged
            .iter()
            .filter(|t| {
                t["description"]
                    .as_str()
                    .unwrap()
                    .contains(msg["id"].as_str().unwrap())
            })
            .collect();
        assert_eq!(mine.len(), 1, "{charged:?}");
        let amount = mine[0]["amount"].as_str().unwrap();
        assert_eq!(
            amount.trim_start_matches('-').parse::<f64>().unwrap(),
            rate.parse::<f64>().unwrap(),
            "{msg} {expected}"
        );
        let priced: Vec<&Value> = events
            .iter()
            .filter(|e| e["data"]["message"]["id"] == msg["id"] && e["data"]["pricing"].is_object())
            .collect();
        assert_eq!(priced.len(), 1, "{events:?}");
        let p = &priced[0]["data"]["pricing"];
        for field in [
            "billable",
            "pricing_model",
            "category",
            "type",
            "market",
            "rate",
            "currency",
        ] {
            assert_eq!(p[field], expected[field], "{field}: {p} vs {expected}");
        }
        assert_eq!(p["amount"], expected["rate"]);
        assert_eq!(p["country"], "IN");
    }
    // Every send carries our id for Meta to echo.
    assert_eq!(fake.sent()[0].callback_data.as_deref(), text["id"].as_str());

    // Reconciliation: Meta's pricing objects agree with ours for both; a code Meta prices as
    // authentication-international while we charge it domestic shows up.
    fake.add_template("login_code", "en_US", "AUTHENTICATION");
    let (st, code) = s
        .post(
            &send,
            json!({"to": USER, "template": {"name": "login_code", "language": "en_US", "category": "authentication"}}),
        )
        .await;
    assert_eq!(st, 202, "{code}");
    let wamid_code = fake.sent().last().unwrap().wamid.clone();
    // Its delivery comes under a Meta id wagate never recorded (as after a crash right after
    // Meta's answer): the id wagate sent for Meta to echo still finds the message.
    let ev = StatusEvent::new(
        NUMBER_ID,
        &wamid_code,
        USER,
        MessageStatus::Sent,
        at("2026-10-05T09:03:00Z"),
    )
    .with_pricing(meta_pricing("authentication_international"));
    let sent_status = hook.status(&ev).await.unwrap();
    assert_eq!(sent_status.status.as_u16(), 200);
    let delivered = sent_status
        .body
        .replace(&wamid_code, "wamid.NEVER_RECORDED")
        .replace("\"status\":\"sent\"", "\"status\":\"delivered\"");
    assert!(
        delivered.contains("NEVER_RECORDED") && delivered.contains("delivered"),
        "{delivered}"
    );
    assert!(
        delivered.contains(code["id"].as_str().unwrap()),
        "{delivered}"
    );
    assert_eq!(
        hook.post_raw(delivered, None)
            .await
            .unwrap()
            .status
            .as_u16(),
        200
    );
    let (st, r) = s
        .get("/api/v1/pricing/reconciliation?start=2026-10-05T00:00:00Z&end=2026-10-06T00:00:00Z")
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["matched"].as_u64(), r["mismatched_count"].as_u64()),
        (Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["mismatched"][0]["message_id"], code["id"]);
    assert_eq!(r["mismatched"][0]["ours"]["category"], "authentication");
    assert_eq!(
        r["mismatched"][0]["meta"]["category"],
        "authentication_international"
    );
    let (st, r) = s
        .get("/api/v1/pricing/reconciliation?start=2026-10-05T00:00:00Z&end=2026-12-05T00:00:00Z")
        .await;
    assert_eq!(
        (st, r["error"].as_str()),
        (422, Some("invalid_field")),
        "{r}"
    );

    // Analytics in Meta's shape: per WABA-local day and category, then per month and country;
    // the costs add up to the wallet's message charges.
    let (st, a) = s
        .get("/api/v1/pricing/analytics?start=2026-10-01T00:00:00Z&end=2026-11-01T00:00:00Z&granularity=DAILY&dimensions=PRICING_CATEGORY,PRICING_TYPE")
        .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["data"].as_array().unwrap().len(), 1, "{a}");
    assert_eq!(a["data"][0]["waba_id"], WABA);
    let points = a["data"][0]["data_points"].as_array().unwrap();
    let mut categories: Vec<(&str, &str, u64)> = points
        .iter()
        .map(|p| {
            assert_eq!(p["start"], at("2026-10-05T00:00:00Z").as_second(), "{p}");
            assert_eq!(p["end"], at("2026-10-06T00:00:00Z").as_second(), "{p}");
            assert!(p.get("country").is_none(), "{p}");
            (
                p["pricing_category"].as_str().unwrap(),
                p["pricing_type"].as_str().unwrap(),
                p["volume"].as_u64().unwrap(),
            )
        })
        .collect();
    categories.sort();
    assert_eq!(
        categories,
        vec![
            ("AUTHENTICATION", "REGULAR", 1),
            ("MARKETING", "REGULAR", 1),
            ("SERVICE", "REGULAR", 1)
        ]
    );
    let cost: f64 = points
        .iter()
        .map(|p| p["cost"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    let debited: f64 = charges(&s)
        .await
        .iter()
        .map(|t| -t["amount"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((cost - debited).abs() < 1e-9, "{cost} vs {debited}");
    let (st, a) = s
        .get("/api/v1/pricing/analytics?start=2026-10-01T00:00:00Z&end=2026-11-01T00:00:00Z&granularity=MONTHLY&dimensions=COUNTRY")
        .await;
    assert_eq!(st, 200, "{a}");
    let points = a["data"][0]["data_points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{a}");
    assert_eq!(
        (points[0]["country"].as_str(), points[0]["volume"].as_u64()),
        (Some("IN"), Some(3))
    );
    assert_eq!(points[0]["start"], at("2026-10-01T00:00:00Z").as_second());
    let (st, bad) = s
        .get("/api/v1/pricing/analytics?start=2026-10-01T00:00:00Z&end=2026-11-01T00:00:00Z&granularity=HOURLY")
        .await;
    assert_eq!(
        (st, bad["param"].as_str()),
        (422, Some("granularity")),
        "{bad}"
    );

    // The template went read before its delivered status: it stays read.
    let (_, msgs) = s.get(&format!("{send}?limit=10")).await;
    let m = msgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == promo["id"])
        .unwrap();
    assert_eq!(m["status"], "read", "{m}");

    // Released, the line sends nothing more and its Meta number can serve a new line.
    let (st, released) =
        common::send(s.req(reqwest::Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(
        (st, released["status"].as_str()),
        (200, Some("released")),
        "{released}"
    );
    let (st, b) = s
        .post(&send, json!({"to": USER, "text": "still there?"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_released")),
        "{b}"
    );
    let (st, again) = s.post("/api/v1/wa/lines", cloud(TOKEN, NUMBER_ID)).await;
    assert_eq!(st, 201, "{again}");

    // Another account cannot send on the line.
    let (_, other_key) = common::create_account(&backing, "Other").await;
    let (st, _) = common::send(
        s.http
            .post(format!("{}{send}", s.base))
            .bearer_auth(other_key)
            .json(&json!({"to": USER, "text": "x"})),
    )
    .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn cloud_lines_sqlite() {
    cloud_lines("sqlite").await;
}

#[tokio::test]
async fn cloud_lines_postgres() {
    cloud_lines("postgres").await;
}
