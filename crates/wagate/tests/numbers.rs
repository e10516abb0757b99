//! Virtual numbers end to end over HTTP on the sandbox clock (PRODUCT.md §12): the price list,
//! orders routed to the cheapest provider in stock with fail-over, codes, cancels, refunds at
//! 20 minutes exactly once (also across a restart), rentals and their extensions, the wallet,
//! idempotency and tenant isolation — on the sandbox's simulated providers and on the
//! handler_api adapter against its local fake.

mod common;

use common::{create_account, fresh, send, Backing, Server};
use reqwest::Method;
use serde_json::{json, Value};
use wagate_numbers::fake::{FakeHandlerApi, FAKE_API_KEY};

async fn ok(s: &Server, path: &str, body: Value) -> Value {
    let (st, b) = s.post(path, body).await;
    assert!((200..300).contains(&st), "{path}: {st} {b}");
    b
}

async fn get(s: &Server, path: &str) -> Value {
    let (st, b) = s.get(path).await;
    assert_eq!(st, 200, "{path}: {b}");
    b
}

async fn advance(s: &Server, secs: i64) {
    ok(
        s,
        "/api/v1/sandbox/clock/advance",
        json!({ "seconds": secs }),
    )
    .await;
}

/// A card on file and `amount` in the wallet.
async fn fund(s: &Server, amount: &str) {
    let (st, _) = s.get("/api/v1/billing/card").await;
    if st != 200 {
        ok(
            s,
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    }
    ok(
        s,
        "/api/v1/billing/wallet/topups",
        json!({ "amount": amount }),
    )
    .await;
}

async fn balance(s: &Server) -> String {
    get(s, "/api/v1/billing/wallet").await["balance"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Micro-units of a decimal string (`"0.55"` → 550 000).
fn micros(s: &str) -> i64 {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = format!("{frac:0<6}");
    sign * (whole.parse::<i64>().unwrap() * 1_000_000 + frac[..6].parse::<i64>().unwrap())
}

fn txns_of(txns: &Value, kind: &str) -> Vec<Value> {
    txns["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == kind)
        .cloned()
        .collect()
}

const VERIFY: &str = "/api/v1/numbers";

fn verification() -> Value {
    json!({"service": "whatsapp", "country": "GB", "kind": "verification"})
}

/// The simulated providers' verification offers for WhatsApp in GB: `(name, price)`,
/// cheapest first. Every provider is made reliable first, so each test decides its failures.
async fn providers(s: &Server) -> Vec<(String, i64)> {
    let list = get(
        s,
        "/api/v1/sandbox/numbers/providers?service=whatsapp&country=GB",
    )
    .await;
    let mut out = Vec::new();
    for p in list["data"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_owned();
        ok(
            s,
            &format!("/api/v1/sandbox/numbers/providers/{name}"),
            json!({"failure_rate": 0.0}),
        )
        .await;
        let offer = p["offers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "verification")
            .unwrap();
        out.push((name, micros(offer["price"].as_str().unwrap())));
    }
    out.sort_by_key(|(n, p)| (*p, n.clone()));
    assert_eq!(out.len(), 3, "three simulated providers");
    assert!(
        out[0].1 < out[1].1 && out[1].1 < out[2].1,
        "different prices: {out:?}"
    );
    out
}

both_backends!(
    test_orders_go_to_the_cheapest_provider_in_stock_and_fail_over,
    routing
);
async fn routing(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    fund(&s, "10.00").await;
    let ps = providers(&s).await;

    let prices = get(&s, "/api/v1/numbers/prices?service=whatsapp&country=GB").await;
    let lines = prices["data"].as_array().unwrap();
    let v = lines.iter().find(|l| l["kind"] == "verification").unwrap();
    assert_eq!(micros(v["price"].as_str().unwrap()), ps[0].1, "{prices}");
    assert_eq!(v["in_stock"], true);
    assert_eq!(v["currency"], "USD");
    assert!(lines.iter().any(|l| l["kind"] == "rental"));
    assert!(
        !prices.to_string().contains("sandbox-"),
        "providers are never named: {prices}"
    );

    // The cheapest in stock sells it; the wallet pays in the same transaction.
    let n = ok(&s, VERIFY, verification()).await;
    assert!(n["id"].as_str().unwrap().starts_with("num_"));
    assert_eq!(
        (n["status"].as_str(), n["kind"].as_str()),
        (Some("active"), Some("verification"))
    );
    assert_eq!(n["code"], Value::Null);
    assert_eq!(micros(n["price"].as_str().unwrap()), ps[0].1);
    assert_eq!(n["expires_at"], "2026-01-01T00:20:00Z");
    assert!(n["phone_number"].as_str().unwrap().starts_with("+44"));
    let tx = get(&s, "/api/v1/billing/transactions").await;
    let charges = txns_of(&tx, "number_charge");
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["amount"].as_str().map(micros), Some(-ps[0].1));
    assert_eq!(micros(&balance(&s).await), 10_000_000 - ps[0].1);

    // The cheapest fails every order: the next cheapest sells it.
    ok(
        &s,
        &format!("/api/v1/sandbox/numbers/providers/{}", ps[0].0),
        json!({"failure_rate": 1.0}),
    )
    .await;
    let n2 = ok(&s, VERIFY, verification()).await;
    assert_eq!(micros(n2["price"].as_str().unwrap()), ps[1].1, "{n2}");
    // …and when it is down altogether, it is not in the price list either.
    ok(
        &s,
        &format!("/api/v1/sandbox/numbers/providers/{}", ps[0].0),
        json!({"down": true}),
    )
    .await;
    let prices = get(&s, "/api/v1/numbers/prices?service=whatsapp&country=GB").await;
    let v = &prices["data"][0];
    assert_eq!(micros(v["price"].as_str().unwrap()), ps[1].1, "{prices}");

    // No stock anywhere: 409 out_of_stock, nothing charged.
    for (name, _) in &ps {
        ok(
            &s,
            &format!("/api/v1/sandbox/numbers/providers/{name}"),
            json!({"stock": 0, "down": false}),
        )
        .await;
    }
    let before = balance(&s).await;
    let (st, b) = s.post(VERIFY, verification()).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("out_of_stock")),
        "{b}"
    );
    assert_eq!(balance(&s).await, before);
    let prices = get(&s, "/api/v1/numbers/prices?service=whatsapp&country=GB").await;
    assert_eq!(prices["data"][0]["in_stock"], false, "{prices}");
    let (st, b) = s
        .post("/api/v1/sandbox/numbers/providers/nope", json!({}))
        .await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));
}

both_backends!(
    test_a_code_arrives_is_shown_and_ends_the_verification,
    codes
);
async fn codes(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    fund(&s, "10.00").await;
    providers(&s).await;

    let n = ok(&s, VERIFY, verification()).await;
    let id = n["id"].as_str().unwrap();
    advance(&s, 60).await;
    let got = ok(
        &s,
        &format!("/api/v1/sandbox/numbers/{id}/sms"),
        json!({"text": "Your WhatsApp code: 123-456. Don't share it."}),
    )
    .await;
    assert_eq!(got["status"], "code_received", "{got}");
    assert_eq!(got["code"], "123456");
    assert_eq!(got["code_received_at"], "2026-01-01T00:01:00Z");
    let shown = get(&s, &format!("/api/v1/numbers/{id}")).await;
    assert_eq!(shown["code"], "123456");
    assert_eq!(shown["sms"][0]["code"], "123456");
    let events = get(&s, "/api/v1/webhooks/events?type=number.code_received").await;
    let e = &events["data"].as_array().unwrap()[0];
    assert_eq!(e["type"], "number.code_received");

    // After the code: no cancel, and no refund at 20 minutes.
    let (st, b) = s
        .post(&format!("/api/v1/numbers/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    let paid = balance(&s).await;
    advance(&s, 30 * 60).await;
    let after = get(&s, &format!("/api/v1/numbers/{id}")).await;
    assert_eq!(after["status"], "code_received");
    assert_eq!(after["refunded"], false);
    assert_eq!(balance(&s).await, paid);
    let (st, _) = s
        .post(
            &format!("/api/v1/sandbox/numbers/{id}/sms"),
            json!({"text": "999999"}),
        )
        .await;
    assert_eq!(st, 409, "a finished number receives nothing more");

    // Canceled before a code: refunded once.
    let before = balance(&s).await;
    let n = ok(&s, VERIFY, verification()).await;
    let id = n["id"].as_str().unwrap();
    let canceled = ok(&s, &format!("/api/v1/numbers/{id}/cancel"), json!({})).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["refunded"], true);
    assert_eq!(balance(&s).await, before);
    let (st, _) = s
        .post(&format!("/api/v1/numbers/{id}/cancel"), json!({}))
        .await;
    assert_eq!(st, 409);
    let tx = get(&s, "/api/v1/billing/transactions").await;
    assert_eq!(txns_of(&tx, "refund").len(), 1);
}

both_backends!(
    test_a_verification_without_a_code_is_refunded_at_twenty_minutes_once_across_a_restart,
    refund_once
);
async fn refund_once(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    fund(&s, "10.00").await;
    providers(&s).await;
    let n = ok(&s, VERIFY, verification()).await;
    let id = n["id"].as_str().unwrap().to_owned();
    let price = micros(n["price"].as_str().unwrap());
    advance(&s, 19 * 60).await;
    assert_eq!(
        get(&s, &format!("/api/v1/numbers/{id}")).await["status"],
        "active"
    );
    s.kill().await;

    // Another server on the same store runs the expiry.
    let s = Server::sandbox(&backing).await;
    advance(&s, 60).await;
    let n = get(&s, &format!("/api/v1/numbers/{id}")).await;
    assert_eq!(n["status"], "expired", "{n}");
    assert_eq!(n["refunded"], true);
    assert_eq!(n["ended_at"], "2026-01-01T00:20:00Z");
    advance(&s, 3600).await;
    let (st, _) = s
        .post(&format!("/api/v1/numbers/{id}/cancel"), json!({}))
        .await;
    assert_eq!(st, 409, "an expired number is not refunded again");
    let tx = get(&s, "/api/v1/billing/transactions").await;
    let refunds = txns_of(&tx, "refund");
    assert_eq!(refunds.len(), 1, "{tx}");
    assert_eq!(refunds[0]["amount"].as_str().map(micros), Some(price));
    assert_eq!(micros(&balance(&s).await), 10_000_000);
    let events = get(&s, "/api/v1/webhooks/events?type=number.expired").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

both_backends!(test_wallet_idempotency_input_and_other_accounts, guards);
async fn guards(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    providers(&s).await;

    // An empty wallet: 402, and no number is bought.
    let (st, b) = s.post(VERIFY, verification()).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("insufficient_balance")),
        "{b}"
    );
    assert!(b["required"].is_string());
    assert!(get(&s, VERIFY).await["data"].as_array().unwrap().is_empty());

    // A repeated Idempotency-Key orders once.
    fund(&s, "5.00").await;
    let order = |key: &str| {
        s.req(Method::POST, VERIFY)
            .header("Idempotency-Key", key)
            .json(&verification())
    };
    let (st1, first) = send(order("order-1")).await;
    let (st2, again) = send(order("order-1")).await;
    assert_eq!((st1, st2), (201, 201));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(get(&s, VERIFY).await["data"].as_array().unwrap().len(), 1);
    let tx = get(&s, "/api/v1/billing/transactions").await;
    assert_eq!(txns_of(&tx, "number_charge").len(), 1);

    // Bad input: a 4xx naming the field, never a 5xx.
    for (body, param) in [
        (
            json!({"service": "whatsapp", "country": "GB", "kind": "x"}),
            "kind",
        ),
        (
            json!({"service": "nope", "country": "GB", "kind": "verification"}),
            "service",
        ),
        (
            json!({"service": "whatsapp", "country": "gb", "kind": "verification"}),
            "country",
        ),
        (
            json!({"service": "whatsapp", "country": "GB", "kind": "verification", "hours": 2}),
            "hours",
        ),
        (
            json!({"service": "whatsapp", "country": "GB", "kind": "rental"}),
            "hours",
        ),
        (
            json!({"service": "whatsapp", "country": "GB", "kind": "rental", "hours": 721}),
            "hours",
        ),
    ] {
        let (st, b) = s.post(VERIFY, body.clone()).await;
        assert_eq!((st, b["param"].as_str()), (422, Some(param)), "{body}: {b}");
    }
    let (st, _) = send(
        s.req(Method::POST, VERIFY)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = s.get("/api/v1/numbers/prices?service=whatsapp").await;
    assert_eq!(st, 422);
    let (st, _) = s.get("/api/v1/numbers/num_nope").await;
    assert_eq!(st, 404);

    // Another account sees none of it.
    let id = first["id"].as_str().unwrap();
    let (_, other_key) = create_account(&backing, "Other Co").await;
    let as_other = |m: Method, p: &str| {
        s.http
            .request(m, format!("{}{p}", s.base))
            .bearer_auth(&other_key)
    };
    let (st, b) = send(as_other(Method::GET, &format!("/api/v1/numbers/{id}"))).await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));
    let (st, _) =
        send(as_other(Method::POST, &format!("/api/v1/numbers/{id}/cancel")).json(&json!({})))
            .await;
    assert_eq!(st, 404);
    let (st, _) = send(
        as_other(Method::POST, &format!("/api/v1/sandbox/numbers/{id}/sms"))
            .json(&json!({"text": "1234"})),
    )
    .await;
    assert_eq!(st, 404);
    let (_, list) = send(as_other(Method::GET, VERIFY)).await;
    assert!(list["data"].as_array().unwrap().is_empty());
    assert_eq!(
        get(&s, &format!("/api/v1/numbers/{id}")).await["status"],
        "active",
        "untouched by the other account"
    );
}

both_backends!(
    test_a_rental_receives_every_sms_extends_and_expires,
    rentals
);
async fn rentals(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    fund(&s, "20.00").await;
    providers(&s).await;
    let r = ok(
        &s,
        VERIFY,
        json!({"service": "whatsapp", "country": "GB", "kind": "rental", "hours": 2}),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    let hourly = micros(r["unit_price"].as_str().unwrap());
    assert_eq!(micros(r["price"].as_str().unwrap()), 2 * hourly);
    assert_eq!(r["expires_at"], "2026-01-01T02:00:00Z");
    for text in ["hello", "code 4321"] {
        let got = ok(
            &s,
            &format!("/api/v1/sandbox/numbers/{id}/sms"),
            json!({ "text": text }),
        )
        .await;
        assert_eq!(got["status"], "active");
    }
    let events = get(&s, "/api/v1/webhooks/events?type=number.sms_received").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
    let (st, _) = s
        .post(&format!("/api/v1/numbers/{id}/cancel"), json!({}))
        .await;
    assert_eq!(st, 409, "a rental runs to its end");

    let before = micros(&balance(&s).await);
    let ext = ok(
        &s,
        &format!("/api/v1/numbers/{id}/extend"),
        json!({"hours": 3}),
    )
    .await;
    assert_eq!(ext["hours"], 5);
    assert_eq!(ext["expires_at"], "2026-01-01T05:00:00Z");
    assert_eq!(micros(ext["price"].as_str().unwrap()), 5 * hourly);
    assert_eq!(micros(&balance(&s).await), before - 3 * hourly);
    let (st, _) = s
        .post(&format!("/api/v1/numbers/{id}/extend"), json!({"hours": 0}))
        .await;
    assert_eq!(st, 422);

    advance(&s, 2 * 3600).await;
    assert_eq!(
        get(&s, &format!("/api/v1/numbers/{id}")).await["status"],
        "active"
    );
    advance(&s, 3 * 3600).await;
    let done = get(&s, &format!("/api/v1/numbers/{id}")).await;
    assert_eq!(done["status"], "expired");
    assert_eq!(done["refunded"], false, "a rental is never refunded");
    assert_eq!(done["sms"].as_array().unwrap().len(), 2);
    let tx = get(&s, "/api/v1/billing/transactions").await;
    assert!(txns_of(&tx, "refund").is_empty());
    assert_eq!(txns_of(&tx, "number_charge").len(), 2);
    let (st, _) = s
        .post(&format!("/api/v1/numbers/{id}/extend"), json!({"hours": 1}))
        .await;
    assert_eq!(st, 409, "an ended rental is not extended");
}

/// A sandbox server whose number provider is the handler_api adapter, against `fake`.
async fn with_handler_api(backing: &Backing, fake: &FakeHandlerApi) -> Server {
    Server::start_with_env(
        backing,
        &["--sandbox", "--clock-start", common::CLOCK_START],
        &[
            ("WAGATE_NUMBERS_HANDLER_API_URL", fake.url.as_str()),
            ("WAGATE_NUMBERS_HANDLER_API_KEY", FAKE_API_KEY),
        ],
    )
    .await
}

both_backends!(
    test_the_handler_api_adapter_passes_the_same_scenario_against_its_fake,
    handler_api
);
async fn handler_api(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let fake = FakeHandlerApi::start().await.unwrap();
    fake.set_offer("16", "wa", 0.5, 2);
    let s = with_handler_api(&backing, &fake).await;

    // Prices come from the provider's getPrices; it sells no rentals.
    let prices = get(&s, "/api/v1/numbers/prices?service=whatsapp&country=GB").await;
    let lines = prices["data"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{prices}");
    assert_eq!(
        (lines[0]["kind"].as_str(), lines[0]["price"].as_str()),
        (Some("verification"), Some("0.50"))
    );
    let (st, b) = s.post(VERIFY, verification()).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("insufficient_balance"))
    );
    fund(&s, "5.00").await;

    // An order, and its code found by the poll job on the clock.
    let n = ok(&s, VERIFY, verification()).await;
    let id = n["id"].as_str().unwrap();
    assert_eq!(n["price"], "0.50");
    let number = n["phone_number"].as_str().unwrap();
    assert!(number.starts_with("+44"), "{n}");
    advance(&s, 15).await;
    assert_eq!(
        get(&s, &format!("/api/v1/numbers/{id}")).await["status"],
        "active"
    );
    assert!(fake.deliver_code(number, "482913"));
    advance(&s, 15).await;
    let done = get(&s, &format!("/api/v1/numbers/{id}")).await;
    assert_eq!(
        (done["status"].as_str(), done["code"].as_str()),
        (Some("code_received"), Some("482913")),
        "{done}"
    );
    let (st, _) = s
        .post(&format!("/api/v1/numbers/{id}/cancel"), json!({}))
        .await;
    assert_eq!(st, 409);
    assert!(
        fake.actions().contains(&"setStatus:6".to_owned()),
        "completed at the provider"
    );
    let (st, _) = s
        .post(
            &format!("/api/v1/sandbox/numbers/{id}/sms"),
            json!({"text": "1"}),
        )
        .await;
    assert_eq!(st, 409, "a real provider's SMS come from it");

    // No code within 20 minutes: refunded once, and canceled at the provider.
    let n = ok(&s, VERIFY, verification()).await;
    let id = n["id"].as_str().unwrap();
    advance(&s, 20 * 60).await;
    let expired = get(&s, &format!("/api/v1/numbers/{id}")).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["refunded"], true);
    assert!(fake.actions().contains(&"setStatus:8".to_owned()));
    let tx = get(&s, "/api/v1/billing/transactions").await;
    assert_eq!(txns_of(&tx, "refund").len(), 1);
    assert_eq!(micros(&balance(&s).await), 4_500_000);

    // Out of stock at the provider: 409.
    fake.set_offer("16", "wa", 0.5, 0);
    let (st, b) = s.post(VERIFY, verification()).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("out_of_stock")),
        "{b}"
    );
    // The provider refuses our key: it is skipped, and with no other one, 503.
    fake.set_offer("16", "wa", 0.5, 5);
    fake.set_balance(0.0);
    let (st, b) = s.post(VERIFY, verification()).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (503, Some("numbers_unavailable")),
        "our balance at the provider ran out: {b}"
    );
}

/// Two servers on one PostgreSQL: one runs the expiries of six verifications while the other
/// cancels them through its API, at once. Each number ends once, refunded exactly once.
#[tokio::test]
async fn two_servers_on_one_postgres_refund_each_number_once() {
    let (backing, _g) = fresh("postgres").await;
    let a = Server::sandbox(&backing).await;
    let b = Server::start(&backing, &["--sandbox"]).await;
    fund(&a, "10.00").await;
    providers(&a).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let n = ok(&a, VERIFY, verification()).await;
        ids.push(n["id"].as_str().unwrap().to_owned());
    }
    let cancels = ids.iter().map(|id| {
        send(
            b.http
                .post(format!("{}/api/v1/numbers/{id}/cancel", b.base))
                .bearer_auth(&a.key)
                .json(&json!({})),
        )
    });
    let (advanced, canceled) = tokio::join!(
        a.post("/api/v1/sandbox/clock/advance", json!({"seconds": 20 * 60})),
        futures_util::future::join_all(cancels)
    );
    assert_eq!(advanced.0, 200, "{}", advanced.1);
    for (st, body) in &canceled {
        // Canceled first (200), or expired first and then refused (409): never both.
        assert!(*st == 200 || *st == 409, "{st} {body}");
    }
    // Let the second server's worker catch up with the clock and try whatever it finds due.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for id in &ids {
        let n = get(&a, &format!("/api/v1/numbers/{id}")).await;
        assert!(n["status"] == "canceled" || n["status"] == "expired", "{n}");
        assert_eq!(n["refunded"], true);
    }
    let tx = get(&a, "/api/v1/billing/transactions").await;
    assert_eq!(txns_of(&tx, "refund").len(), ids.len(), "{tx}");
    assert_eq!(micros(&balance(&a).await), 10_000_000);
}
