//! `StripeClient` against `FakeStripe` over HTTP, and the fake's driver against a small
//! receiver that checks `Stripe-Signature` and parses events with this crate, as wagate's
//! `POST /stripe/webhooks` does.
#![cfg(feature = "fake")]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use jiff::Timestamp;
use wagate_stripe::fake::FakeStripe;
use wagate_stripe::{
    parse_event, verify_signature, EventObject, Interval, InvoiceStatus, NewCustomer, NewPrice,
    NewSubscription, PaymentBehavior, StripeClient, StripeConfig, StripeError, StripeEvent,
    SubscriptionStatus, DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};

const WEBHOOK_SECRET: &str = "whsec_test_secret";
/// 2025-01-31T00:00:00Z: a month-end anchor, to see calendar periods.
const T0: i64 = 1_738_281_600;
const YEAR_2025: i64 = 365 * 86_400;
const YEAR_2026: i64 = 365 * 86_400;

/// What the receiver saw: events whose signature held, and how many it refused.
#[derive(Clone, Default)]
struct Inbox {
    now: Arc<Mutex<i64>>,
    events: Arc<Mutex<Vec<StripeEvent>>>,
    refused: Arc<Mutex<usize>>,
}

impl Inbox {
    fn take(&self) -> Vec<StripeEvent> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = *inbox.now.lock().unwrap();
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if verify_signature(&body, header, WEBHOOK_SECRET, now, DEFAULT_TOLERANCE_SECS).is_err() {
        *inbox.refused.lock().unwrap() += 1;
        return StatusCode::BAD_REQUEST;
    }
    match parse_event(&body) {
        Ok(event) => {
            inbox.events.lock().unwrap().push(event);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

struct World {
    fake: FakeStripe,
    client: StripeClient,
    inbox: Inbox,
    driver: wagate_stripe::fake::Driver,
}

impl World {
    async fn new() -> World {
        let fake = FakeStripe::start().await.unwrap();
        let client = StripeClient::new(
            StripeConfig::new(fake.base_url(), fake.secret_key()),
            StripeClient::http_client().unwrap(),
        )
        .unwrap();
        let inbox = Inbox::default();
        let app = Router::new()
            .route("/stripe/webhooks", post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let driver = fake.webhooks(&format!("http://{addr}/stripe/webhooks"), WEBHOOK_SECRET);
        let world = World {
            fake,
            client,
            inbox,
            driver,
        };
        world.set_now(T0);
        world
    }

    /// Moves Stripe's clock and the receiver's together.
    fn set_now(&self, t: i64) {
        self.fake.set_now(Timestamp::from_second(t).unwrap());
        *self.inbox.now.lock().unwrap() = t;
    }

    async fn customer_with_card(&self, account: &str, card: &str) -> String {
        let customer = self
            .client
            .create_customer(
                &NewCustomer::for_account(account),
                &format!("{account}:customer"),
            )
            .await
            .unwrap();
        self.client
            .attach_default_payment_method(card, &customer.id, &format!("{account}:card"))
            .await
            .unwrap();
        customer.id
    }

    async fn yearly_price(&self, cents: i64) -> String {
        let price = NewPrice {
            unit_amount: cents,
            currency: "EUR".into(),
            interval: Interval::Year,
            product_name: "WhatsApp line (year)".into(),
            lookup_key: Some("wagate:acct_1:year".into()),
            transfer_lookup_key: true,
            metadata: Default::default(),
        };
        self.client
            .create_price(&price, "price:acct_1:year")
            .await
            .unwrap()
            .id
    }
}

#[tokio::test]
async fn a_yearly_subscription_renews_and_the_renewal_event_verifies() {
    let w = World::new().await;
    let customer_id = w.customer_with_card("acct_1", "pm_card_visa").await;
    let customer = w.client.retrieve_customer(&customer_id).await.unwrap();
    assert!(customer.id.starts_with("cus_"), "{}", customer.id);
    assert_eq!(customer.account_id(), Some("acct_1"));
    let card = customer.default_payment_method.clone().unwrap();
    assert!(card.starts_with("pm_") && card != "pm_card_visa", "{card}");

    let price_id = w.yearly_price(50_000).await;
    assert!(price_id.starts_with("price_"));
    let found = w
        .client
        .price_by_lookup_key("wagate:acct_1:year")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, price_id);
    assert_eq!(
        (found.unit_amount, found.currency.as_str()),
        (Some(50_000), "eur")
    );
    assert_eq!(found.interval, Some(Interval::Year));
    assert!(w
        .client
        .price_by_lookup_key("nope")
        .await
        .unwrap()
        .is_none());

    let sub = w
        .client
        .create_subscription(
            &NewSubscription::new(&customer_id, &price_id, "line_42"),
            "sub:line_42",
        )
        .await
        .unwrap();
    assert!(sub.id.starts_with("sub_"), "{}", sub.id);
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.line_id(), Some("line_42"));
    assert_eq!(sub.current_period_start, Some(T0));
    assert_eq!(sub.current_period_end, Some(T0 + YEAR_2025));
    let invoice = sub.latest_invoice.clone().unwrap();
    assert!(invoice.id.starts_with("in_"));
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));

    // Events of the API calls, delivered on demand.
    w.driver.deliver_pending().await.unwrap();
    let first: Vec<StripeEvent> = w.inbox.take();
    assert!(first.iter().all(|e| e.id.starts_with("evt_")));
    let paid = first
        .iter()
        .find_map(|e| match &e.object {
            EventObject::InvoicePaid(i) => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(paid.billing_reason.as_deref(), Some("subscription_create"));
    assert_eq!(paid.subscription.as_deref(), Some(sub.id.as_str()));
    assert_eq!(
        (paid.service_start, paid.service_end),
        (Some(T0), Some(T0 + YEAR_2025))
    );
    assert!(first
        .iter()
        .any(|e| matches!(e.object, EventObject::SubscriptionCreated(_))));

    // A year later Stripe renews: invoice.paid for the next year, the subscription moves on.
    let renewal_time = T0 + YEAR_2025;
    w.set_now(renewal_time);
    let posted = w.driver.advance_period(&sub.id).await.unwrap();
    assert!(
        posted.iter().all(|p| p.status == StatusCode::OK),
        "{posted:?}"
    );
    let events = w.inbox.take();
    let paid = events
        .iter()
        .find_map(|e| match &e.object {
            EventObject::InvoicePaid(i) => Some((e, i.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(paid.0.event_type, "invoice.paid");
    assert_eq!(paid.0.created, renewal_time);
    let invoice = paid.1;
    assert_eq!(
        invoice.billing_reason.as_deref(),
        Some("subscription_cycle")
    );
    assert_eq!(invoice.line_id(), Some("line_42"));
    assert_eq!(invoice.amount_paid, 50_000);
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
    assert_eq!(
        (invoice.service_start, invoice.service_end),
        (Some(renewal_time), Some(renewal_time + YEAR_2026))
    );
    let updated = events
        .iter()
        .find_map(|e| match &e.object {
            EventObject::SubscriptionUpdated(s) => Some((e, s.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(updated.1.current_period_end, Some(renewal_time + YEAR_2026));
    assert!(updated.0.previous_attributes.is_some());

    let again = w.client.retrieve_subscription(&sub.id).await.unwrap();
    assert_eq!(again.current_period_start, Some(renewal_time));
    assert_eq!(again.latest_invoice.unwrap().id, invoice.id);
    assert_eq!(*w.inbox.refused.lock().unwrap(), 0);

    // Every POST carried an idempotency key and the pinned API version.
    let requests = w.fake.requests();
    assert!(requests
        .iter()
        .filter(|r| r.method == "POST")
        .all(|r| r.idempotency_key.is_some()));
    assert!(requests
        .iter()
        .all(|r| r.stripe_version.as_deref() == Some("2025-03-31.basil")));
    let create = requests
        .iter()
        .find(|r| r.path == "/v1/subscriptions")
        .unwrap();
    assert_eq!(create.param("metadata[line_id]"), Some("line_42"));
    assert_eq!(
        create.param("payment_behavior"),
        Some("error_if_incomplete")
    );
}

#[tokio::test]
async fn declined_cards_are_card_errors() {
    let w = World::new().await;
    let customer = w
        .client
        .create_customer(&NewCustomer::for_account("acct_2"), "c2")
        .await
        .unwrap();
    for token in ["pm_card_visa_chargeDeclined", "pm_card_chargeDeclined"] {
        let e = w
            .client
            .attach_payment_method(token, &customer.id, &format!("attach:{token}"))
            .await
            .unwrap_err();
        let StripeError::CardDeclined(api) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(api.http_status, 402);
        assert_eq!(api.code.as_deref(), Some("card_declined"));
        assert_eq!(api.decline_code.as_deref(), Some("generic_decline"));
        assert!(api.request_id.as_deref().unwrap().starts_with("req_"));
    }
    let e = w
        .client
        .attach_payment_method(
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            &customer.id,
            "k3",
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.api_error().unwrap().decline_code.as_deref(),
        Some("insufficient_funds")
    );

    // A card that attaches but fails every charge: the subscription is refused with 402 and
    // not created, or created `incomplete` with allow_incomplete.
    w.client
        .attach_default_payment_method("pm_card_chargeCustomerFail", &customer.id, "fail-card")
        .await
        .unwrap();
    let price = w.yearly_price(1_000).await;
    let e = w
        .client
        .create_subscription(&NewSubscription::new(&customer.id, &price, "line_9"), "s9")
        .await
        .unwrap_err();
    assert!(matches!(e, StripeError::CardDeclined(_)), "{e:?}");
    let mut allow = NewSubscription::new(&customer.id, &price, "line_9");
    allow.payment_behavior = PaymentBehavior::AllowIncomplete;
    let sub = w
        .client
        .create_subscription(&allow, "s9-allow")
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Incomplete);
    assert_eq!(
        sub.latest_invoice.unwrap().status,
        Some(InvoiceStatus::Open)
    );
    // Only the allow_incomplete subscription exists.
    let subscription_events = w
        .fake
        .events()
        .iter()
        .filter(|e| e["type"] == "customer.subscription.created")
        .count();
    assert_eq!(subscription_events, 1);
}

#[tokio::test]
async fn retries_with_the_same_key_replay_and_other_parameters_conflict() {
    let w = World::new().await;
    let new = NewCustomer::for_account("acct_3");
    let first = w.client.create_customer(&new, "key-1").await.unwrap();
    let second = w.client.create_customer(&new, "key-1").await.unwrap();
    assert_eq!(first, second);
    let replays: Vec<bool> = w.fake.requests().iter().map(|r| r.replayed).collect();
    assert_eq!(replays, [false, true]);

    let e = w
        .client
        .create_customer(&NewCustomer::for_account("acct_other"), "key-1")
        .await
        .unwrap_err();
    assert!(e.is_idempotency_conflict(), "{e:?}");
    assert!(matches!(e, StripeError::InvalidRequest(_)));

    // An outage, then the retry with the same key goes through once.
    w.fake
        .fail_next(1, 500, "api_error", "Something went wrong on Stripe's end.");
    let e = w.client.create_customer(&new, "key-2").await.unwrap_err();
    assert!(
        matches!(e, StripeError::Api(_)) && e.is_retryable(),
        "{e:?}"
    );
    let third = w.client.create_customer(&new, "key-2").await.unwrap();
    assert_ne!(third.id, first.id);
    assert_eq!(
        w.client.create_customer(&new, "key-2").await.unwrap().id,
        third.id
    );

    w.fake.rate_limit_next(1, Some(2));
    let e = w.client.create_customer(&new, "key-3").await.unwrap_err();
    assert!(
        matches!(
            e,
            StripeError::RateLimited {
                retry_after_secs: Some(2),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.code(), Some("rate_limit"));
}

#[tokio::test]
async fn a_failed_renewal_goes_past_due_then_ends() {
    let w = World::new().await;
    let customer = w.customer_with_card("acct_4", "pm_card_visa").await;
    let price = w.yearly_price(2_000).await;
    let sub = w
        .client
        .create_subscription(&NewSubscription::new(&customer, &price, "line_4"), "s4")
        .await
        .unwrap();
    w.driver.deliver_pending().await.unwrap();
    w.inbox.take();

    // The card now fails; the renewal's payment is declined.
    w.client
        .attach_default_payment_method("pm_card_chargeCustomerFail", &customer, "acct_4:card2")
        .await
        .unwrap();
    w.set_now(T0 + YEAR_2025);
    w.driver.advance_period(&sub.id).await.unwrap();
    let events = w.inbox.take();
    let failed = events
        .iter()
        .find_map(|e| match &e.object {
            EventObject::InvoicePaymentFailed(i) => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.line_id(), Some("line_4"));
    assert_eq!(failed.status, Some(InvoiceStatus::Open));
    assert_eq!(failed.attempt_count, 1);
    assert!(failed.next_payment_attempt.is_some());
    assert_eq!(
        w.client
            .retrieve_subscription(&sub.id)
            .await
            .unwrap()
            .status,
        SubscriptionStatus::PastDue
    );

    // Stripe gives up: the subscription ends.
    w.driver.cancel_unpaid(&sub.id).await.unwrap();
    let events = w.inbox.take();
    assert!(matches!(
        &events[..],
        [StripeEvent { object: EventObject::SubscriptionDeleted(s), .. }]
            if s.status == SubscriptionStatus::Canceled && s.line_id() == Some("line_4")
    ));
    let e = w.client.cancel_subscription(&sub.id).await.unwrap_err();
    assert!(matches!(e, StripeError::InvalidRequest(_)), "{e:?}");
}

#[tokio::test]
async fn a_payment_retried_with_a_new_card_reactivates() {
    let w = World::new().await;
    let customer = w.customer_with_card("acct_5", "pm_card_visa").await;
    let price = w.yearly_price(2_000).await;
    let sub = w
        .client
        .create_subscription(&NewSubscription::new(&customer, &price, "line_5"), "s5")
        .await
        .unwrap();
    w.set_now(T0 + YEAR_2025);
    w.driver.fail_payment(&sub.id).await.unwrap();
    w.inbox.take();
    w.driver.retry_payment(&sub.id).await.unwrap();
    let events = w.inbox.take();
    assert!(events.iter().any(
        |e| matches!(&e.object, EventObject::InvoicePaid(i) if i.line_id() == Some("line_5"))
    ));
    assert!(events.iter().any(|e| matches!(
        &e.object,
        EventObject::SubscriptionUpdated(s) if s.status == SubscriptionStatus::Active
    )));

    // Cancelling through the API ends it and Stripe says so.
    let canceled = w.client.cancel_subscription(&sub.id).await.unwrap();
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert_eq!(canceled.canceled_at, Some(T0 + YEAR_2025));
    assert!(w.driver.advance_period(&sub.id).await.is_err());
}

#[tokio::test]
async fn the_receiver_refuses_what_stripe_did_not_sign() {
    let w = World::new().await;
    let body = r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1,"data":{"object":{"id":"in_1"}}}"#;
    assert_eq!(
        w.driver.post_signed(body).await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(
        w.driver.post_unsigned(body).await.unwrap().status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        w.driver.post_forged(body).await.unwrap().status,
        StatusCode::BAD_REQUEST
    );
    let stale = w.driver.post_signed_at(body, T0 - 3_600).await.unwrap();
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    let raw = w
        .driver
        .post_raw(body, Some("t=1,v1=nothex"))
        .await
        .unwrap();
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert_eq!(*w.inbox.refused.lock().unwrap(), 4);
    assert_eq!(w.inbox.take().len(), 1);
}

#[tokio::test]
async fn credentials_and_unknown_ids_are_sorted() {
    let w = World::new().await;
    let wrong = StripeClient::new(
        StripeConfig::new(w.fake.base_url(), "sk_test_wrong_key_1234"),
        StripeClient::http_client().unwrap(),
    )
    .unwrap();
    let e = wrong.retrieve_subscription("sub_1").await.unwrap_err();
    assert!(matches!(e, StripeError::Authentication(_)), "{e:?}");
    assert!(!e.to_string().contains("sk_test_wrong_key_1234"), "{e}");

    let e = w
        .client
        .retrieve_subscription("sub_missing")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let e = w
        .client
        .create_subscription(&NewSubscription::new("cus_missing", "price_x", "l"), "k")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.api_error().unwrap().param.as_deref(), Some("customer"));
}
