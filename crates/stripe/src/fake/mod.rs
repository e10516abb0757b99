//! A local fake of Stripe for tests and offline use: [`FakeStripe`] answers the API calls
//! wagate makes, and its [`Driver`] moves subscriptions through their lifecycle and posts the
//! resulting events, signed like Stripe signs them, to a webhook URL.
//!
//! What it does as Stripe does: IDs (`cus_…`, `pm_…`, `prod_…`, `price_…`, `sub_…`, `si_…`,
//! `in_…`, `il_…`, `evt_…`, `req_…`), object shapes of API version `2025-03-31.basil`, the
//! error envelope, bearer authentication, unknown parameters refused, idempotency keys (the
//! same key and parameters replay the first answer with `Idempotent-Replayed: true`; other
//! parameters answer 400 `idempotency_error`), Stripe's test payment methods (see
//! [`TEST_CARDS`]), `payment_behavior`, and billing periods anchored on the start date.
//!
//! What it does not: a real PaymentIntent flow (a `default_incomplete` subscription stays
//! `incomplete` until [`Driver::retry_payment`]), prorations, trials, taxes, Smart Retries on
//! its own (the driver decides), and pagination (lists answer one page).

mod billing;
mod driver;
mod render;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{Span, Timestamp};
use rand::Rng;
use serde_json::Value;

pub use driver::{Driver, DriverError, Posted};

use crate::types::{Interval, InvoiceStatus, Metadata, SubscriptionStatus};

/// The secret key the fake accepts unless told another with [`FakeStripe::start_with_key`].
pub const FAKE_SECRET_KEY: &str = "sk_test_wagate_fake";

/// How a test card behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    /// The test payment method, e.g. `pm_card_visa`.
    pub token: &'static str,
    /// `card.brand`.
    pub brand: &'static str,
    /// `card.last4` (of the test card number Stripe documents for it).
    pub last4: &'static str,
    /// Why attaching it to a customer fails (`None`: it attaches).
    pub attach_decline: Option<Decline>,
    /// Why charging it fails once attached (`None`: charges succeed).
    pub charge_decline: Option<Decline>,
}

/// A card error: `code`, `decline_code` and the message Stripe shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    /// `error.code`, e.g. `card_declined`.
    pub code: &'static str,
    /// `error.decline_code`, e.g. `generic_decline`.
    pub decline_code: Option<&'static str>,
    /// `error.message`.
    pub message: &'static str,
}

const GENERIC: Decline = Decline {
    code: "card_declined",
    decline_code: Some("generic_decline"),
    message: "Your card was declined.",
};

const fn declined(token: &'static str, last4: &'static str, decline: Decline) -> TestCard {
    TestCard {
        token,
        brand: "visa",
        last4,
        attach_decline: Some(decline),
        charge_decline: Some(decline),
    }
}

/// Stripe's test payment methods the fake knows (Stripe's testing page, "Declined payments"):
/// the `…chargeDeclined…` ones cannot be attached to a customer (402 `card_error`);
/// `pm_card_chargeCustomerFail` attaches but every charge fails.
pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        token: "pm_card_visa",
        brand: "visa",
        last4: "4242",
        attach_decline: None,
        charge_decline: None,
    },
    TestCard {
        token: "pm_card_visa_debit",
        brand: "visa",
        last4: "5556",
        attach_decline: None,
        charge_decline: None,
    },
    TestCard {
        token: "pm_card_mastercard",
        brand: "mastercard",
        last4: "4444",
        attach_decline: None,
        charge_decline: None,
    },
    TestCard {
        token: "pm_card_amex",
        brand: "amex",
        last4: "8431",
        attach_decline: None,
        charge_decline: None,
    },
    TestCard {
        token: "pm_card_chargeCustomerFail",
        brand: "visa",
        last4: "0341",
        attach_decline: None,
        charge_decline: Some(GENERIC),
    },
    declined("pm_card_visa_chargeDeclined", "0002", GENERIC),
    // The older name of the generic decline, still found in Stripe's examples.
    declined("pm_card_chargeDeclined", "0002", GENERIC),
    declined(
        "pm_card_visa_chargeDeclinedInsufficientFunds",
        "9995",
        Decline {
            code: "card_declined",
            decline_code: Some("insufficient_funds"),
            message: "Your card has insufficient funds.",
        },
    ),
    declined(
        "pm_card_visa_chargeDeclinedLostCard",
        "9987",
        Decline {
            code: "card_declined",
            decline_code: Some("lost_card"),
            message: "Your card was declined.",
        },
    ),
    declined(
        "pm_card_visa_chargeDeclinedStolenCard",
        "9979",
        Decline {
            code: "card_declined",
            decline_code: Some("stolen_card"),
            message: "Your card was declined.",
        },
    ),
    declined(
        "pm_card_chargeDeclinedExpiredCard",
        "0069",
        Decline {
            code: "expired_card",
            decline_code: None,
            message: "Your card has expired.",
        },
    ),
    declined(
        "pm_card_chargeDeclinedIncorrectCvc",
        "0127",
        Decline {
            code: "incorrect_cvc",
            decline_code: None,
            message: "Your card's security code is incorrect.",
        },
    ),
    declined(
        "pm_card_chargeDeclinedProcessingError",
        "0119",
        Decline {
            code: "processing_error",
            decline_code: None,
            message: "An error occurred while processing your card. Try again in a little bit.",
        },
    ),
];

/// The test card behind a test payment method name, if the fake knows it.
pub fn test_card(token: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|c| c.token == token)
}

/// A request the fake received, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The path, e.g. `/v1/subscriptions`.
    pub path: String,
    /// The form (or query) parameters, decoded, in order.
    pub params: Vec<(String, String)>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Stripe-Version` header.
    pub stripe_version: Option<String>,
    /// The status the fake answered.
    pub status: u16,
    /// Whether the answer was a replay of an earlier one with the same idempotency key.
    pub replayed: bool,
}

impl RecordedRequest {
    /// The value of parameter `name`, if sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CustomerRec {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) metadata: Metadata,
    pub(crate) default_pm: Option<String>,
    pub(crate) created: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PaymentMethodRec {
    pub(crate) id: String,
    pub(crate) customer: Option<String>,
    pub(crate) card: &'static TestCard,
    pub(crate) created: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PriceRec {
    pub(crate) id: String,
    pub(crate) product: String,
    pub(crate) unit_amount: i64,
    pub(crate) currency: String,
    pub(crate) interval: Interval,
    pub(crate) interval_count: u32,
    pub(crate) lookup_key: Option<String>,
    pub(crate) metadata: Metadata,
    pub(crate) active: bool,
    pub(crate) created: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct SubscriptionRec {
    pub(crate) id: String,
    pub(crate) customer: String,
    pub(crate) item_id: String,
    pub(crate) price: String,
    pub(crate) status: SubscriptionStatus,
    pub(crate) metadata: Metadata,
    /// The billing cycle anchor: period `n` runs from anchor + n intervals to anchor + n + 1.
    pub(crate) anchor: i64,
    pub(crate) periods_elapsed: i64,
    pub(crate) latest_invoice: Option<String>,
    pub(crate) default_pm: Option<String>,
    pub(crate) created: i64,
    pub(crate) canceled_at: Option<i64>,
    pub(crate) ended_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct InvoiceRec {
    pub(crate) id: String,
    pub(crate) number: String,
    pub(crate) line_id: String,
    pub(crate) customer: String,
    pub(crate) subscription: String,
    pub(crate) subscription_item: String,
    pub(crate) subscription_metadata: Metadata,
    pub(crate) price: String,
    pub(crate) product: String,
    pub(crate) status: InvoiceStatus,
    pub(crate) billing_reason: &'static str,
    pub(crate) amount_due: i64,
    pub(crate) amount_paid: i64,
    pub(crate) currency: String,
    pub(crate) period: (i64, i64),
    pub(crate) attempt_count: u32,
    pub(crate) next_payment_attempt: Option<i64>,
    pub(crate) created: i64,
    pub(crate) paid_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct EventRec {
    pub(crate) id: String,
    pub(crate) body: Value,
    pub(crate) delivered: bool,
}

/// A stored answer for an idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct StoredAnswer {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// An injected failure: the next requests answer this error.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) kind: String,
    pub(crate) message: String,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) secret_key: String,
    pub(crate) now: Option<Timestamp>,
    pub(crate) customers: HashMap<String, CustomerRec>,
    pub(crate) payment_methods: HashMap<String, PaymentMethodRec>,
    pub(crate) products: HashMap<String, String>,
    pub(crate) prices: HashMap<String, PriceRec>,
    pub(crate) subscriptions: HashMap<String, SubscriptionRec>,
    pub(crate) invoices: HashMap<String, InvoiceRec>,
    pub(crate) events: Vec<EventRec>,
    pub(crate) idempotency: HashMap<String, StoredAnswer>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) rate_limited: Option<(usize, Option<u64>)>,
    pub(crate) failures: Option<(usize, Failure)>,
    pub(crate) invoice_count: u32,
    /// A counter that orders creation times equal to the second (price lookups by newest).
    pub(crate) sequence: u64,
    pub(crate) price_sequence: HashMap<String, u64>,
}

impl State {
    /// Stripe's clock: the one set with [`FakeStripe::set_now`], else the real time.
    // The fake stands for Stripe, whose clock is the real one unless a test pins it.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }

    pub(crate) fn now_secs(&self) -> i64 {
        self.now().as_second()
    }

    /// The start and end of subscription `sub`'s current period.
    pub(crate) fn period(&self, sub: &SubscriptionRec) -> (i64, i64) {
        let (interval, count) = self
            .prices
            .get(&sub.price)
            .map(|p| (p.interval, i64::from(p.interval_count)))
            .unwrap_or((Interval::Month, 1));
        let n = sub.periods_elapsed;
        (
            add_intervals(sub.anchor, interval, count * n),
            add_intervals(sub.anchor, interval, count * (n + 1)),
        )
    }
}

/// `t` plus `n` intervals, computed in UTC calendar terms from the anchor (so a subscription
/// anchored on the 31st bills on the last day of shorter months, then on the 31st again).
pub(crate) fn add_intervals(t: i64, interval: Interval, n: i64) -> i64 {
    let span = match interval {
        Interval::Day => Span::new().try_days(n),
        Interval::Week => Span::new().try_weeks(n),
        Interval::Month => Span::new().try_months(n),
        Interval::Year => Span::new().try_years(n),
    };
    let approx = match interval {
        Interval::Day => 86_400,
        Interval::Week => 7 * 86_400,
        Interval::Month => 30 * 86_400,
        Interval::Year => 365 * 86_400,
    };
    span.ok()
        .and_then(|span| {
            let start = Timestamp::from_second(t)
                .ok()?
                .to_zoned(jiff::tz::TimeZone::UTC);
            Some(start.checked_add(span).ok()?.timestamp().as_second())
        })
        // Only out-of-range dates get here; a rough answer beats a panic in a test fake.
        .unwrap_or_else(|| t.saturating_add(approx * n))
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic in one handler must not wedge the fake for the rest of a test.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stripe's API, faked on a local port. Stops when dropped.
pub struct FakeStripe {
    addr: SocketAddr,
    state: Shared,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl FakeStripe {
    /// Starts the fake on `127.0.0.1` on a free port, accepting [`FAKE_SECRET_KEY`].
    pub async fn start() -> std::io::Result<FakeStripe> {
        FakeStripe::start_with_key(SocketAddr::from(([127, 0, 0, 1], 0)), FAKE_SECRET_KEY).await
    }

    /// Starts the fake on `addr` (port 0 picks a free one), accepting `secret_key`.
    pub async fn start_with_key(addr: SocketAddr, secret_key: &str) -> std::io::Result<FakeStripe> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(crate::REQUEST_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        let state = Shared::default();
        lock(&state).secret_key = secret_key.to_owned();
        let app = routes::router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the fake Stripe API stopped");
            }
        });
        Ok(FakeStripe {
            addr,
            state,
            http,
            server,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API URL to configure (`stripe_api_url`): `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The secret key it accepts.
    pub fn secret_key(&self) -> String {
        lock(&self.state).secret_key.clone()
    }

    /// Sets Stripe's clock: creation times, billing periods and event times follow it
    /// (default: the real time).
    pub fn set_now(&self, now: Timestamp) {
        lock(&self.state).now = Some(now);
    }

    /// Stripe's clock as the fake reads it.
    pub fn now(&self) -> Timestamp {
        lock(&self.state).now()
    }

    /// Makes the next `n` requests answer HTTP 429 (`rate_limit`), with `Retry-After` when
    /// given. Not stored under their idempotency keys, so a retry goes through.
    pub fn rate_limit_next(&self, n: usize, retry_after_secs: Option<u64>) {
        lock(&self.state).rate_limited = (n > 0).then_some((n, retry_after_secs));
    }

    /// Makes the next `n` requests answer HTTP `status` with an error of `kind`
    /// (`api_error`, `invalid_request_error`, …) and `message`, as during an outage. Not stored
    /// under their idempotency keys.
    pub fn fail_next(&self, n: usize, status: u16, kind: &str, message: &str) {
        let failure = Failure {
            status,
            kind: kind.to_owned(),
            message: message.to_owned(),
        };
        lock(&self.state).failures = (n > 0).then_some((n, failure));
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Every event created so far (delivered or not), in order, as Stripe renders them.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.state)
            .events
            .iter()
            .map(|e| e.body.clone())
            .collect()
    }

    /// The event `id`, as Stripe renders it.
    pub fn event(&self, id: &str) -> Option<Value> {
        lock(&self.state)
            .events
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.body.clone())
    }

    /// A driver that moves subscriptions along and posts their events to `webhook_url`,
    /// signed with `signing_secret` (`stripe_webhook_secret`, `whsec_…`).
    pub fn webhooks(&self, webhook_url: &str, signing_secret: &str) -> Driver {
        Driver::new(
            self.state.clone(),
            self.http.clone(),
            webhook_url,
            signing_secret,
        )
    }
}

impl std::fmt::Debug for FakeStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeStripe")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A Stripe-looking ID: `prefix_` and `len` random letters and digits.
pub(crate) fn new_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..len)
        .map(|_| char::from(ALNUM[rng.gen_range(0..ALNUM.len())]))
        .collect();
    format!("{prefix}_{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_calendar_from_the_anchor() {
        // 2025-01-31T00:00:00Z.
        let jan31 = 1_738_281_600;
        let feb28 = add_intervals(jan31, Interval::Month, 1);
        let mar31 = add_intervals(jan31, Interval::Month, 2);
        assert_eq!(feb28 - jan31, 28 * 86_400);
        assert_eq!(mar31 - jan31, (28 + 31) * 86_400);
        assert_eq!(
            add_intervals(jan31, Interval::Year, 1) - jan31,
            365 * 86_400
        );
        assert_eq!(add_intervals(i64::MAX - 5, Interval::Year, 1), i64::MAX);
    }

    #[test]
    fn test_cards_are_known_by_name() {
        assert!(test_card("pm_card_visa").unwrap().attach_decline.is_none());
        assert!(test_card("pm_card_chargeDeclined")
            .unwrap()
            .attach_decline
            .is_some());
        let fail = test_card("pm_card_chargeCustomerFail").unwrap();
        assert!(fail.attach_decline.is_none() && fail.charge_decline.is_some());
        assert!(test_card("pm_nope").is_none());
        assert!(new_id("cus", 14).starts_with("cus_") && new_id("cus", 14).len() == 18);
    }
}
