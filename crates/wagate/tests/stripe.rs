//! Per-line Stripe subscriptions end to end (PRODUCT.md §11): the server against the local
//! fake of Stripe's API over HTTP, Stripe's signed webhooks driven by the fake, on the sandbox
//! clock — a yearly subscription at 10 months' price keeps the line paid a year and renews,
//! a redelivered event applies once, a failed payment leaves the line unpaid and released,
//! and forged, unsigned or stale deliveries are refused.

mod common;

use common::{cli, fresh, send, Backing, Server, CLOCK_START};
use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_stripe::fake::FakeStripe;

const WEBHOOK_SECRET: &str = "whsec_wagate_test";

async fn partner(backing: &Backing) -> String {
    let created = cli(
        backing,
        &[
            "accounts",
            "create",
            "--name",
            "Few Lines Ltd",
            "--json",
            "--billing",
            "days",
            "--day-price",
            "0.50",
        ],
    )
    .await;
    created["api_key"].as_str().unwrap().to_owned()
}

async fn post(s: &Server, key: &str, path: &str, body: Value) -> (u16, Value) {
    send(
        s.http
            .post(format!("{}{path}", s.base))
            .bearer_auth(key)
            .json(&body),
    )
    .await
}

async fn get(s: &Server, key: &str, path: &str) -> Value {
    let (st, b) = send(s.http.get(format!("{}{path}", s.base)).bearer_auth(key)).await;
    assert_eq!(st, 200, "{path}: {b}");
    b
}

/// Moves the sandbox clock and Stripe's together.
async fn advance(s: &Server, fake: &FakeStripe, secs: i64) {
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({ "seconds": secs }))
        .await;
    assert_eq!(st, 200, "{b}");
    fake.set_now(b["now"].as_str().unwrap().parse().unwrap());
}

both_backends!(test_a_yearly_stripe_subscription_keeps_a_line_paid, yearly);
async fn yearly(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let fake = FakeStripe::start().await.unwrap();
    fake.set_now(CLOCK_START.parse::<Timestamp>().unwrap());
    let base = fake.base_url();
    let secret = fake.secret_key();
    let s = Server::start_with_env(
        &backing,
        &["--sandbox", "--clock-start", CLOCK_START],
        &[
            ("WAGATE_STRIPE_API_URL", base.as_str()),
            ("WAGATE_STRIPE_SECRET_KEY", secret.as_str()),
            ("WAGATE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ],
    )
    .await;
    let driver = fake.webhooks(&format!("{}/stripe/webhooks", s.base), WEBHOOK_SECRET);
    let key = partner(&backing).await;
    let (st, line) = post(&s, &key, "/api/v1/wa/lines", json!({})).await;
    assert_eq!(st, 201, "{line}");
    let id = line["id"].as_str().unwrap().to_owned();
    let (st, b) = post(
        &s,
        &key,
        &format!("/api/v1/sandbox/lines/{id}/scan"),
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{b}");

    // The first subscription needs a card; a declined one subscribes nothing.
    let sub_path = format!("/api/v1/wa/lines/{id}/subscription");
    let (st, b) = post(&s, &key, &sub_path, json!({"interval": "year"})).await;
    assert_eq!(
        (st, b["param"].as_str()),
        (422, Some("payment_method")),
        "{b}"
    );
    let (st, b) = post(
        &s,
        &key,
        &sub_path,
        json!({"interval": "year", "payment_method": "pm_card_chargeDeclined"}),
    )
    .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("card_declined")),
        "{b}"
    );

    // A year costs 10 months: 10 × 30 days × 0.50 = 150.00, and pays the line a year.
    let (st, sub) = post(
        &s,
        &key,
        &sub_path,
        json!({"interval": "year", "payment_method": "pm_card_visa"}),
    )
    .await;
    assert_eq!(st, 201, "{sub}");
    assert_eq!(
        (
            sub["status"].as_str(),
            sub["amount"].as_str(),
            sub["paid_until"].as_str()
        ),
        (Some("active"), Some("150.00"), Some("2027-01-01T00:00:00Z")),
        "{sub}"
    );
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let priced = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/prices")
        .any(|r| {
            r.param("unit_amount") == Some("15000")
                && r.param("recurring[interval]") == Some("year")
        });
    assert!(priced, "Stripe was asked for a yearly price of 15000 cents");
    let (st, b) = post(&s, &key, &sub_path, json!({"interval": "month"})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    let msg = json!({"to": "+447700900123", "text": "hi"});
    let (st, b) = post(
        &s,
        &key,
        &format!("/api/v1/wa/lines/{id}/messages"),
        msg.clone(),
    )
    .await;
    assert_eq!(st, 202, "{b}");

    // A year on: Stripe renews, the line is paid another year; a redelivery changes nothing.
    advance(&s, &fake, 365 * 86_400).await;
    let posted = driver.advance_period(&sub_id).await.unwrap();
    assert!(posted.iter().all(|p| p.status == 200), "{posted:?}");
    let line = get(&s, &key, &format!("/api/v1/wa/lines/{id}")).await;
    assert_eq!(line["paid_until"], "2028-01-01T00:00:00Z", "{line}");
    let paid = posted
        .iter()
        .find(|p| p.event_type.as_deref() == Some("invoice.paid"))
        .unwrap();
    let again = driver
        .redeliver(paid.event_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    let line = get(&s, &key, &format!("/api/v1/wa/lines/{id}")).await;
    assert_eq!(line["paid_until"], "2028-01-01T00:00:00Z");

    // Forged, unsigned or stale deliveries are refused and change nothing.
    let forged = driver.post_forged(&paid.body).await.unwrap();
    let unsigned = driver.post_unsigned(&paid.body).await.unwrap();
    let stale = driver
        .post_signed_at(&paid.body, fake.now().as_second() - 3_600)
        .await
        .unwrap();
    for p in [&forged, &unsigned, &stale] {
        assert_eq!(p.status, 401, "{p:?}");
    }

    // The next renewal fails: the line is unpaid from its paid_until, released 5 days later.
    advance(&s, &fake, 365 * 86_400).await;
    let posted = driver.fail_payment(&sub_id).await.unwrap();
    assert!(posted.iter().all(|p| p.status == 200), "{posted:?}");
    let (st, b) = post(&s, &key, &format!("/api/v1/wa/lines/{id}/messages"), msg).await;
    assert_eq!((st, b["error"].as_str()), (402, Some("line_unpaid")), "{b}");
    advance(&s, &fake, 5 * 86_400).await;
    let line = get(&s, &key, &format!("/api/v1/wa/lines/{id}")).await;
    assert_eq!(
        (line["status"].as_str(), line["release_reason"].as_str()),
        (Some("released"), Some("unpaid")),
        "{line}"
    );
    // Released, its subscription is cancelled at Stripe, so nothing bills it any more.
    let cancel_path = format!("/v1/subscriptions/{sub_id}");
    let mut cancelled = false;
    for _ in 0..100 {
        cancelled = fake
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path == cancel_path && r.status == 200);
        if cancelled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(cancelled, "the subscription was cancelled at Stripe");
}

#[tokio::test]
async fn without_stripe_settings_subscriptions_say_so() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    let key = partner(&backing).await;
    let (_, line) = post(&s, &key, "/api/v1/wa/lines", json!({})).await;
    let id = line["id"].as_str().unwrap();
    let (st, b) = post(
        &s,
        &key,
        &format!("/api/v1/wa/lines/{id}/subscription"),
        json!({"interval": "month", "payment_method": "pm_card_visa"}),
    )
    .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (503, Some("stripe_not_configured")),
        "{b}"
    );
    let (st, b) = send(
        s.http
            .post(format!("{}/stripe/webhooks", s.base))
            .body("{}"),
    )
    .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (503, Some("stripe_not_configured")),
        "{b}"
    );
    let (st, b) = post(
        &s,
        &key,
        &format!("/api/v1/wa/lines/{id}/subscription"),
        json!({"interval": "week"}),
    )
    .await;
    assert_eq!((st, b["param"].as_str()), (422, Some("interval")), "{b}");
}
