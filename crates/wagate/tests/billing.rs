//! Flat per-line billing over HTTP on the sandbox clock: trial, activation, plans, anniversaries
//! from the anchor, declines and grace, release, auto top-up, the forecast, idempotent top-ups.

mod common;

use common::{fresh, send, Backing, Server};
use reqwest::Method;
use serde_json::{json, Value};

async fn ok(s: &Server, path: &str, body: Value) -> Value {
    let (st, b) = s.post(path, body).await;
    assert!((200..300).contains(&st), "{path}: {st} {b}");
    b
}

async fn advance(s: &Server, secs: i64) {
    ok(s, "/api/v1/sandbox/clock/advance", json!({"seconds": secs})).await;
}

async fn advance_to(s: &Server, to: &str) {
    ok(s, "/api/v1/sandbox/clock/advance", json!({"to": to})).await;
}

async fn card(s: &Server) {
    ok(
        s,
        "/api/v1/billing/card",
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
}

/// Creates and scans a line; returns its id.
async fn ready_line(s: &Server, create: Value, scan: Value) -> String {
    let l = ok(s, "/api/v1/wa/lines", create).await;
    let id = l["id"].as_str().unwrap().to_owned();
    ok(s, &format!("/api/v1/sandbox/lines/{id}/scan"), scan).await;
    id
}

async fn line(s: &Server, id: &str) -> Value {
    s.get(&format!("/api/v1/wa/lines/{id}")).await.1
}

async fn transactions(s: &Server) -> Vec<Value> {
    let (st, b) = s.get("/api/v1/billing/transactions?limit=200").await;
    assert_eq!(st, 200, "{b}");
    let mut v = b["data"].as_array().unwrap().clone();
    v.reverse();
    v
}

async fn balance(s: &Server) -> String {
    s.get("/api/v1/billing/wallet").await.1["balance"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Micro-units of a decimal string.
fn micros(s: &str) -> i64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let int: i64 = int.trim_start_matches('-').parse().unwrap();
    let frac: i64 = format!("{frac:0<6}").parse().unwrap();
    let v = int * 1_000_000 + frac;
    if neg {
        -v
    } else {
        v
    }
}

/// The transactions add up to the balance, and each `balance_after` is the running sum.
async fn assert_ledger_adds_up(s: &Server) {
    let mut running = 0;
    for t in transactions(s).await {
        running += micros(t["amount"].as_str().unwrap());
        assert_eq!(running, micros(t["balance_after"].as_str().unwrap()), "{t}");
        assert!(running >= 0);
    }
    assert_eq!(running, micros(&balance(s).await));
}

/// Events of a type, oldest first (their delivered bodies).
async fn events(s: &Server, ty: &str) -> Vec<Value> {
    let (_, b) = s
        .get(&format!("/api/v1/webhooks/events?type={ty}&limit=200"))
        .await;
    let mut v: Vec<Value> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].clone())
        .collect();
    v.reverse();
    v
}

fn line_charges(txns: &[Value], line: &str) -> Vec<Value> {
    txns.iter()
        .filter(|t| t["type"] == "line_charge" && t["line_id"] == line)
        .cloned()
        .collect()
}

both_backends!(
    test_trial_then_conversion_then_activation,
    trial_and_activation
);
async fn trial_and_activation(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    // A line that is never scanned costs nothing, and does not use up the trial.
    let idle = ok(&s, "/api/v1/wa/lines", json!({})).await;
    advance(&s, 3 * 86_400).await;
    let first = ready_line(&s, json!({}), json!({})).await;
    let l = line(&s, &first).await;
    assert_eq!(l["billing_status"], "trialing");
    assert_eq!(l["trial_ends_at"], "2026-01-11T00:00:00Z");
    assert_eq!(l["current_period_end"], "2026-01-11T00:00:00Z");
    assert!(transactions(&s).await.is_empty(), "the trial is free");
    let ready = events(&s, "line.ready").await;
    assert_eq!(ready[0]["data"]["trial"], true);

    // The second line is charged at ready: no wallet money, so the card pays the price and
    // the payment enters the wallet first.
    let second = ready_line(&s, json!({}), json!({})).await;
    let l = line(&s, &second).await;
    assert_eq!(l["billing_status"], "active");
    assert_eq!(l["current_period_start"], "2026-01-04T00:00:00Z");
    assert_eq!(l["current_period_end"], "2026-02-04T00:00:00Z");
    let txns = transactions(&s).await;
    assert_eq!(txns.len(), 2, "{txns:?}");
    assert_eq!(
        (txns[0]["type"].as_str(), txns[0]["amount"].as_str()),
        (Some("topup"), Some("15.00"))
    );
    assert!(txns[0]["description"].as_str().unwrap().contains(&second));
    assert_eq!(
        (txns[1]["type"].as_str(), txns[1]["amount"].as_str()),
        (Some("line_charge"), Some("-15.00"))
    );
    let charges = events(&s, "charge.succeeded").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["data"]["reason"], "activation");
    assert_eq!(charges[0]["data"]["line_id"], second.as_str());
    assert_eq!(charges[0]["data"]["amount"], "15.00");

    // Seven days after ready the trial converts; its anniversary is the trial end.
    advance_to(&s, "2026-01-11T00:00:00Z").await;
    let l = line(&s, &first).await;
    assert_eq!(l["billing_status"], "active");
    assert_eq!(l["current_period_start"], "2026-01-11T00:00:00Z");
    assert_eq!(l["current_period_end"], "2026-02-11T00:00:00Z");
    let charges = events(&s, "charge.succeeded").await;
    assert_eq!(charges[1]["data"]["reason"], "trial_conversion");
    assert_eq!(line_charges(&transactions(&s).await, &first).len(), 1);
    // The idle line still costs nothing; release it.
    let idle_id = idle["id"].as_str().unwrap();
    let (st, _) = send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{idle_id}"))).await;
    assert_eq!(st, 200);
    assert!(line_charges(&transactions(&s).await, idle_id).is_empty());
    // A month on, both renew on their own anniversaries (events line.renewed).
    advance_to(&s, "2026-02-11T00:00:01Z").await;
    let txns = transactions(&s).await;
    assert_eq!(line_charges(&txns, &first).len(), 2);
    assert_eq!(line_charges(&txns, &second).len(), 2);
    assert_eq!(events(&s, "line.renewed").await.len(), 2);
    assert_ledger_adds_up(&s).await;
}

#[tokio::test]
async fn test_plans_follow_the_calling_flags() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    // Use up the trial so every line below is charged at ready.
    ready_line(&s, json!({}), json!({})).await;
    let cases = [
        (json!({}), json!({"calling": true}), "messaging", "15.00"),
        (
            json!({"calling_enabled": true}),
            json!({}),
            "calling",
            "20.00",
        ),
        (
            json!({"allow_calling": true}),
            json!({"calling": true}),
            "calling",
            "20.00",
        ),
        (
            json!({"allow_calling": true}),
            json!({"calling": false}),
            "messaging",
            "15.00",
        ),
        (
            json!({"allow_calling": true}),
            json!({}),
            "messaging",
            "15.00",
        ),
    ];
    for (create, scan, plan, price) in cases {
        let id = ready_line(&s, create.clone(), scan.clone()).await;
        let l = line(&s, &id).await;
        assert_eq!(
            (l["plan"].as_str(), l["price"].as_str()),
            (Some(plan), Some(price)),
            "{create} {scan}"
        );
        let charged = line_charges(&transactions(&s).await, &id);
        assert_eq!(charged[0]["amount"].as_str().unwrap(), format!("-{price}"));
    }
    // The calling choice is locked at scan.
    let l = ok(&s, "/api/v1/wa/lines", json!({"allow_calling": true})).await;
    let token = l["connect_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let choose = |on: bool| {
        s.http
            .post(format!("{}/connect/{token}/calling", s.base))
            .json(&json!({"calling": on}))
    };
    let (st, b) = send(choose(true)).await;
    assert_eq!(st, 200, "{b}");
    let id = l["id"].as_str().unwrap();
    ok(&s, &format!("/api/v1/sandbox/lines/{id}/scan"), json!({})).await;
    assert_eq!(
        line(&s, id).await["plan"],
        "calling",
        "the page's choice counts"
    );
    let (st, b) = send(choose(false)).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("calling_locked")),
        "{b}"
    );
    assert_ledger_adds_up(&s).await;
}

#[tokio::test]
async fn test_anniversaries_are_computed_from_the_anchor() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::start(
        &backing,
        &["--sandbox", "--clock-start", "2026-01-31T10:00:00Z"],
    )
    .await;
    card(&s).await;
    let trial = ready_line(&s, json!({}), json!({})).await;
    send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{trial}"))).await;
    let id = ready_line(&s, json!({}), json!({})).await;
    assert_eq!(
        line(&s, &id).await["current_period_end"],
        "2026-02-28T10:00:00Z"
    );
    let mut ends = Vec::new();
    for _ in 0..3 {
        let end = line(&s, &id).await["current_period_end"]
            .as_str()
            .unwrap()
            .to_owned();
        advance_to(&s, &end).await;
        ends.push(
            line(&s, &id).await["current_period_end"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        ends,
        [
            "2026-03-31T10:00:00Z",
            "2026-04-30T10:00:00Z",
            "2026-05-31T10:00:00Z"
        ]
    );
    assert_eq!(line_charges(&transactions(&s).await, &id).len(), 4);
    assert!(
        line_charges(&transactions(&s).await, &trial).is_empty(),
        "released in trial: free"
    );
    assert_ledger_adds_up(&s).await;
}

both_backends!(
    test_decline_then_paid_on_retry_keeps_the_anniversary,
    decline_then_paid
);
async fn decline_then_paid(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    ready_line(&s, json!({}), json!({})).await; // the trial line
    ok(
        &s,
        "/api/v1/sandbox/payments/fail_next",
        json!({"count": 2}),
    )
    .await;
    let id = ready_line(&s, json!({"metadata": {"customer": "c1"}}), json!({})).await;
    let l = line(&s, &id).await;
    assert_eq!(l["billing_status"], "past_due");
    assert_eq!(l["grace_ends_at"], "2026-01-06T00:00:00Z");
    let past_due = events(&s, "line.past_due").await;
    assert_eq!(past_due.len(), 1);
    assert_eq!(past_due[0]["data"]["line"]["metadata"]["customer"], "c1");
    advance(&s, 86_400).await; // first retry declines too
    assert_eq!(events(&s, "charge.failed").await.len(), 2);
    assert_eq!(line(&s, &id).await["billing_status"], "past_due");
    advance(&s, 86_400).await; // second retry is paid
    let l = line(&s, &id).await;
    assert_eq!(l["billing_status"], "active");
    assert_eq!(l["grace_ends_at"], Value::Null);
    assert_eq!(
        l["current_period_start"], "2026-01-01T00:00:00Z",
        "anniversary unchanged"
    );
    assert_eq!(l["current_period_end"], "2026-02-01T00:00:00Z");
    let ok_events = events(&s, "charge.succeeded").await;
    assert_eq!(ok_events.last().unwrap()["data"]["reason"], "grace_retry");
    assert_eq!(line_charges(&transactions(&s).await, &id).len(), 1);
    // No further retries run after it was paid.
    advance(&s, 10 * 86_400).await;
    assert_eq!(events(&s, "charge.failed").await.len(), 2);
    assert_ledger_adds_up(&s).await;
}

#[tokio::test]
async fn test_lasting_decline_releases_at_grace_end_and_stops_billing() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    ready_line(&s, json!({}), json!({})).await;
    ok(
        &s,
        "/api/v1/sandbox/payments/fail_next",
        json!({"count": 100}),
    )
    .await;
    let id = ready_line(&s, json!({}), json!({})).await;
    advance(&s, 4 * 86_400).await;
    assert_eq!(line(&s, &id).await["status"], "ready", "still inside grace");
    advance(&s, 86_400).await;
    let l = line(&s, &id).await;
    assert_eq!(l["status"], "released");
    assert_eq!(l["release_reason"], "payment_failed");
    assert_eq!(l["released_at"], "2026-01-06T00:00:00Z");
    let failed: Vec<Value> = events(&s, "charge.failed")
        .await
        .into_iter()
        .filter(|e| e["data"]["line_id"] == id.as_str())
        .collect();
    assert_eq!(failed.len(), 6, "the first charge and five daily retries");
    let released = events(&s, "line.released").await;
    assert_eq!(released.last().unwrap()["data"]["reason"], "payment_failed");
    ok(
        &s,
        "/api/v1/sandbox/payments/fail_next",
        json!({"count": 0}),
    )
    .await;
    advance(&s, 70 * 86_400).await;
    assert!(
        line_charges(&transactions(&s).await, &id).is_empty(),
        "never charged after release"
    );
    assert_ledger_adds_up(&s).await;
}

#[tokio::test]
async fn test_release_stops_billing() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    ready_line(&s, json!({}), json!({})).await;
    let id = ready_line(&s, json!({}), json!({})).await;
    advance(&s, 10 * 86_400).await;
    let (st, b) = send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(
        (st, b["billing_status"].as_str()),
        (200, Some("canceled")),
        "{b}"
    );
    advance(&s, 90 * 86_400).await;
    let charged = line_charges(&transactions(&s).await, &id);
    assert_eq!(charged.len(), 1, "no refund, and no charge after release");
    assert_ledger_adds_up(&s).await;
}

#[tokio::test]
async fn test_auto_topup_at_the_threshold() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    ready_line(&s, json!({}), json!({})).await;
    let (st, b) = s
        .post("/api/v1/billing/wallet/topups", json!({"amount": "4.99"}))
        .await;
    assert_eq!((st, b["param"].as_str()), (422, Some("amount")), "{b}");
    ok(
        &s,
        "/api/v1/billing/wallet/topups",
        json!({"amount": "50.00"}),
    )
    .await;
    let (st, b) = send(
        s.req(Method::PUT, "/api/v1/billing/wallet/auto_topup")
            .json(&json!({"enabled": true, "threshold": "40.00", "amount": "25.00"})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["auto_topup"]["enabled"], true);
    // A debit of 15.00 leaves 35.00 < 40.00: the card is charged 25.00.
    let id = ready_line(&s, json!({}), json!({})).await;
    assert_eq!(balance(&s).await, "60.00");
    let txns = transactions(&s).await;
    let kinds: Vec<(&str, &str)> = txns
        .iter()
        .map(|t| (t["type"].as_str().unwrap(), t["amount"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("topup", "50.00"),
            ("line_charge", "-15.00"),
            ("topup", "25.00")
        ]
    );
    assert_eq!(line_charges(&txns, &id).len(), 1);
    let topped = events(&s, "wallet.topped_up").await;
    assert_eq!(topped.last().unwrap()["data"]["auto"], true);
    // A declined auto top-up: wallet.topup_failed and no new attempt for an hour.
    ok(
        &s,
        "/api/v1/sandbox/payments/fail_next",
        json!({"count": 1}),
    )
    .await;
    let (st, _) = send(
        s.req(Method::PUT, "/api/v1/billing/wallet/auto_topup")
            .json(&json!({"enabled": true, "threshold": "100.00", "amount": "25.00"})),
    )
    .await;
    assert_eq!(st, 200);
    ready_line(&s, json!({}), json!({})).await; // 60 - 15 = 45 < 100: top-up declined
    assert_eq!(events(&s, "wallet.topup_failed").await.len(), 1);
    assert_eq!(balance(&s).await, "45.00");
    ready_line(&s, json!({}), json!({})).await; // 30 < 100, but blocked for an hour
    assert_eq!(balance(&s).await, "30.00");
    advance(&s, 3_600).await;
    ready_line(&s, json!({}), json!({})).await; // 15 < 100: allowed again
    assert_eq!(balance(&s).await, "40.00");
    assert_ledger_adds_up(&s).await;
}

#[tokio::test]
async fn test_forecast() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    let trial = ready_line(&s, json!({}), json!({})).await;
    let calling = ready_line(&s, json!({"calling_enabled": true}), json!({})).await;
    ok(&s, "/api/v1/wa/lines", json!({"allow_calling": true})).await;
    let (st, f) = s.get("/api/v1/billing/forecast").await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(f["messaging_lines"], 1);
    assert_eq!(f["calling_lines"], 1);
    assert_eq!(f["monthly_total"], "35.00");
    assert_eq!(f["pending_lines_max_cost"], "20.00");
    assert_eq!(f["recommended_balance"], "55.00");
    // The next 30 days end on Jan 31: only the trial conversion falls inside.
    assert_eq!(f["upcoming"].as_array().unwrap().len(), 1, "{f}");
    advance(&s, 2 * 86_400).await;
    let (_, f) = s.get("/api/v1/billing/forecast").await;
    let upcoming = f["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 2, "{f}");
    assert_eq!(upcoming[0]["line_id"], trial.as_str());
    assert_eq!(upcoming[0]["date"], "2026-01-08T00:00:00Z");
    assert_eq!(upcoming[0]["amount"], "15.00");
    assert_eq!(upcoming[1]["line_id"], calling.as_str());
    assert_eq!(upcoming[1]["date"], "2026-02-01T00:00:00Z");
    assert_eq!(upcoming[1]["amount"], "20.00");
}

both_backends!(
    test_concurrent_topups_with_one_key_charge_once,
    concurrent_topups
);
async fn concurrent_topups(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    card(&s).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let rb = s
            .req(Method::POST, "/api/v1/billing/wallet/topups")
            .header("Idempotency-Key", "topup-once")
            .json(&json!({"amount": "10.00"}));
        tasks.push(tokio::spawn(async move { send(rb).await }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (st, b) = t.await.unwrap();
        match st {
            201 => {
                ids.insert(b["id"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(b["error"], "idempotency_in_progress"),
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success is the same payment");
    assert_eq!(balance(&s).await, "10.00");
    let txns = transactions(&s).await;
    assert_eq!(txns.len(), 1, "the card was charged once");
    assert_ledger_adds_up(&s).await;
}

both_backends!(
    test_idempotency_keeps_only_answers_that_did_something,
    idempotency_outcomes
);
async fn idempotency_outcomes(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let topup = |key: &'static str, amount: &'static str| {
        s.req(Method::POST, "/api/v1/billing/wallet/topups")
            .header("Idempotency-Key", key)
            .json(&json!({ "amount": amount }))
    };
    // No card yet: 402 card_required did nothing, so it is not kept.
    let (st, b) = send(topup("k-card", "10.00")).await;
    assert_eq!((st, b["error"].as_str()), (402, Some("card_required")));
    card(&s).await;
    let resp = topup("k-card", "10.00").send().await.unwrap();
    assert_eq!(
        resp.status(),
        201,
        "after adding a card the same key charges"
    );
    assert!(resp.headers().get("idempotent-replayed").is_none());
    assert_eq!(balance(&s).await, "10.00");

    // A validation error is not kept either: the corrected request runs under the same key.
    let (st, b) = send(topup("k-fix", "abc")).await;
    assert_eq!((st, b["param"].as_str()), (422, Some("amount")));
    let (st, b) = send(topup("k-fix", "5.00")).await;
    assert_eq!((st, b["status"].as_str()), (201, Some("succeeded")), "{b}");
    assert_eq!(balance(&s).await, "15.00");

    // A decline is kept: the card was tried, and a repeat must not try it again.
    let (st, _) = s
        .post("/api/v1/sandbox/payments/fail_next", json!({"count": 1}))
        .await;
    assert_eq!(st, 200);
    let (st, first) = send(topup("k-decline", "7.00")).await;
    assert_eq!((st, first["error"].as_str()), (402, Some("card_declined")));
    let resp = topup("k-decline", "7.00").send().await.unwrap();
    assert_eq!(resp.status(), 402);
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    assert_eq!(resp.json::<Value>().await.unwrap(), first);
    assert_eq!(balance(&s).await, "15.00", "nothing charged on the replay");
    assert_ledger_adds_up(&s).await;
}

/// Keeps `Backing` used in every build of this file.
#[allow(dead_code)]
fn _uses(_: Backing) {}
