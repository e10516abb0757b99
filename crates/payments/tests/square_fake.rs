//! `SquareProcessor` against a local fake of Square's Customers, Cards and Payments APIs.
//!
//! The fake checks the request shapes Square documents (method, path, `Authorization` and
//! `Square-Version` headers, required JSON fields and their limits) and answers with the
//! documented response shapes: `{"customer": {...}}`, `{"card": {...}}`,
//! `{"payment": {...}}` and `{"errors": [{"category", "code", "detail"}]}`. Like Square, it
//! is idempotent per key: a repeat of the same request returns the first answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use wagate_domain::ids::AccountId;
use wagate_payments::{
    processor_idempotency_key, ChargeRequest, PaymentError, PaymentProcessor, SquareConfig,
    SquareProcessor, StoreCardRequest, DEFAULT_SQUARE_VERSION,
};

const TOKEN: &str = "test-token";
const LOCATION: &str = "LOC1";

#[derive(Default)]
struct Fake {
    /// `METHOD path` of every request, in order.
    calls: Vec<String>,
    /// Request shapes that differ from Square's documentation.
    problems: Vec<String>,
    /// CreateCustomer requests by idempotency key, with the id created.
    customers: HashMap<String, (Value, String)>,
    /// CreateCard answers by idempotency key.
    cards: HashMap<String, (Value, StatusCode, Value)>,
    /// CreatePayment answers by idempotency key (only requests that created a payment).
    payments: HashMap<String, (Value, StatusCode, Value)>,
    /// How many payments were created per idempotency key.
    created: HashMap<String, u32>,
    /// Every idempotency key CreatePayment received, in order.
    payment_keys: Vec<String>,
    disabled: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn square_error(status: StatusCode, category: &str, code: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"errors": [{"category": category, "code": code, "detail": detail}]})),
    )
        .into_response()
}

/// Checks the headers Square requires; `Some` is the error answer Square would give.
fn check_headers(fake: &Shared, headers: &HeaderMap, with_body: bool) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("square-version") != Some(DEFAULT_SQUARE_VERSION) {
        fake.lock()
            .unwrap()
            .problems
            .push(format!("Square-Version: {:?}", header("square-version")));
    }
    if with_body && header("content-type") != Some("application/json") {
        fake.lock()
            .unwrap()
            .problems
            .push(format!("Content-Type: {:?}", header("content-type")));
    }
    if header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return Some(square_error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_ERROR",
            "UNAUTHORIZED",
            "This request could not be authorized.",
        ));
    }
    None
}

/// The JSON body, with required string fields of bounded length checked.
fn parse(fake: &Shared, body: &Bytes, required: &[(&str, usize)]) -> Value {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    for (pointer, max) in required {
        match value.pointer(pointer).and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.chars().count() <= *max => {}
            other => fake
                .lock()
                .unwrap()
                .problems
                .push(format!("{pointer}: {other:?} (1..={max} chars required)")),
        }
    }
    value
}

async fn create_customer(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    fake.lock().unwrap().calls.push("POST /v2/customers".into());
    if let Some(r) = check_headers(&fake, &headers, true) {
        return r;
    }
    let req = parse(
        &fake,
        &body,
        &[
            ("/idempotency_key", 45),
            ("/reference_id", 100),
            ("/company_name", 500),
        ],
    );
    let key = req["idempotency_key"].as_str().unwrap_or("").to_owned();
    let mut f = fake.lock().unwrap();
    let n = f.customers.len();
    let (_, id) = f
        .customers
        .entry(key)
        .or_insert_with(|| (req.clone(), format!("JDKYHBWT1D4F8MFH63DBMEN8Y{n}")))
        .clone();
    axum::Json(json!({
        "customer": {
            "id": id,
            "created_at": "2026-11-22T08:00:00.000Z",
            "updated_at": "2026-11-22T08:00:00.000Z",
            "company_name": req["company_name"],
            "reference_id": req["reference_id"],
            "preferences": {"email_unsubscribed": false},
            "creation_source": "THIRD_PARTY",
            "version": 0
        }
    }))
    .into_response()
}

fn card_json(id: &str, customer_id: &Value, reference_id: &Value, enabled: bool) -> Value {
    json!({
        "id": id,
        "billing_address": {"postal_code": "94103"},
        "bin": "411111",
        "card_brand": "VISA",
        "card_type": "CREDIT",
        "cardholder_name": "Amelia Earhart",
        "customer_id": customer_id,
        "enabled": enabled,
        "exp_month": 11,
        "exp_year": 2028,
        "fingerprint": "ex-p-cs80EK9Flz7LsCMv-szbptQ_ssAGrhemzSTsPFgt9nzyE6t7okiLIQc-qw_quqKX4Q",
        "last_4": "1111",
        "merchant_id": "6SSW7HV8K2ST5",
        "prepaid_type": "NOT_PREPAID",
        "reference_id": reference_id,
        "version": if enabled { 1 } else { 2 }
    })
}

async fn create_card(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    fake.lock().unwrap().calls.push("POST /v2/cards".into());
    if let Some(r) = check_headers(&fake, &headers, true) {
        return r;
    }
    let req = parse(
        &fake,
        &body,
        &[
            ("/idempotency_key", 45),
            ("/source_id", 16384),
            ("/card/customer_id", 191),
        ],
    );
    let key = req["idempotency_key"].as_str().unwrap_or("").to_owned();
    let mut f = fake.lock().unwrap();
    if let Some((seen, status, answer)) = f.cards.get(&key) {
        return if *seen == req {
            (*status, axum::Json(answer.clone())).into_response()
        } else {
            square_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_ERROR",
                "IDEMPOTENCY_KEY_REUSED",
                "The idempotency key can only be retried with the same request data.",
            )
        };
    }
    let (status, answer) = match req["source_id"].as_str().unwrap_or("") {
        "cnon:card-nonce-ok" => {
            let id = format!("ccof:uIbfJXhXETSP197M3G{}", f.cards.len());
            let card = card_json(
                &id,
                &req["card"]["customer_id"],
                &req["card"]["reference_id"],
                true,
            );
            (StatusCode::OK, json!({ "card": card }))
        }
        "cnon:card-nonce-rejected-cvv" => (
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"category": "PAYMENT_METHOD_ERROR", "code": "CVV_FAILURE",
                               "detail": "Authorization error: 'CVV_FAILURE'"}]}),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "INVALID_CARD_DATA",
                               "detail": "Invalid card data.", "field": "source_id"}]}),
        ),
    };
    f.cards.insert(key, (req, status, answer.clone()));
    (status, axum::Json(answer)).into_response()
}

fn payment_json(id: &str, req: &Value, status: &str) -> Value {
    json!({
        "id": id,
        "created_at": "2026-11-22T08:00:00.000Z",
        "updated_at": "2026-11-22T08:00:00.500Z",
        "amount_money": req["amount_money"],
        "total_money": req["amount_money"],
        "approved_money": req["amount_money"],
        "status": status,
        "delay_duration": "PT168H",
        "source_type": "CARD",
        "card_details": {
            "status": if status == "COMPLETED" { "CAPTURED" } else { "FAILED" },
            "card": {"card_brand": "VISA", "last_4": "1111", "exp_month": 11, "exp_year": 2028,
                     "card_type": "CREDIT", "prepaid_type": "NOT_PREPAID", "bin": "411111"},
            "entry_method": "ON_FILE",
            "cvv_status": "CVV_ACCEPTED",
            "avs_status": "AVS_ACCEPTED",
            "statement_description": "SQ *WAGATE"
        },
        "location_id": req["location_id"],
        "order_id": "pRsjRTgFWATl7so6DxdKBJa7ssbZY",
        "reference_id": req["reference_id"],
        "note": req["note"],
        "customer_id": req["customer_id"],
        "receipt_number": "R2B3",
        "receipt_url": "https://squareup.com/receipt/preview/EXAMPLE_RECEIPT_ID",
        "version_token": "TPtNEOBOa6Qq6E3C3IjckSVOM6b3hMbfhjvTxHBQUsB6o"
    })
}

async fn create_payment(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    fake.lock().unwrap().calls.push("POST /v2/payments".into());
    if let Some(r) = check_headers(&fake, &headers, true) {
        return r;
    }
    let req = parse(
        &fake,
        &body,
        &[
            ("/source_id", 16384),
            ("/idempotency_key", 45),
            ("/amount_money/currency", 3),
            ("/customer_id", 191),
            ("/location_id", 50),
            ("/reference_id", 40),
        ],
    );
    {
        let mut f = fake.lock().unwrap();
        if req["amount_money"]["amount"].as_i64().is_none() {
            f.problems
                .push("amount_money.amount is not an integer".into());
        }
        if req["autocomplete"] != json!(true) {
            f.problems.push("autocomplete is not true".into());
        }
        if req["location_id"] != json!(LOCATION) {
            f.problems
                .push(format!("location_id {}", req["location_id"]));
        }
        if req["note"]
            .as_str()
            .is_some_and(|n| n.chars().count() > 500)
        {
            f.problems.push("note longer than 500".into());
        }
    }
    let key = req["idempotency_key"].as_str().unwrap_or("").to_owned();
    let source = req["source_id"].as_str().unwrap_or("").to_owned();
    let immediate = {
        let mut f = fake.lock().unwrap();
        f.payment_keys.push(key.clone());
        if let Some((seen, status, answer)) = f.payments.get(&key) {
            return if *seen == req {
                (*status, axum::Json(answer.clone())).into_response()
            } else {
                square_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST_ERROR",
                    "IDEMPOTENCY_KEY_REUSED",
                    "The idempotency key can only be retried with the same request data.",
                )
            };
        }
        if req["amount_money"]["amount"].as_i64().unwrap_or(0) < 1 {
            return square_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_ERROR",
                "VALUE_TOO_LOW",
                "`amount_money.amount` must be greater than 0.",
            );
        }
        match source.as_str() {
            "ccof:boom" => {
                return square_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "API_ERROR",
                    "INTERNAL_SERVER_ERROR",
                    "An internal error has occurred.",
                )
            }
            "ccof:garbage" => return (StatusCode::OK, "<html>not json</html>").into_response(),
            "ccof:missing" => {
                return square_error(
                    StatusCode::NOT_FOUND,
                    "INVALID_REQUEST_ERROR",
                    "NOT_FOUND",
                    "Card with id `ccof:missing` not found.",
                )
            }
            _ => {}
        }
        let n = f.payments.len();
        let id = format!("R2B3Z8WMVt3EAmzYWLZvz7Y69Eb{n}");
        let (status, answer) = if source == "ccof:declined" {
            (
                StatusCode::PAYMENT_REQUIRED,
                json!({
                    "errors": [{"category": "PAYMENT_METHOD_ERROR", "code": "CARD_DECLINED",
                                "detail": "Card declined."}],
                    "payment": payment_json(&id, &req, "FAILED")
                }),
            )
        } else {
            (
                StatusCode::OK,
                json!({ "payment": payment_json(&id, &req, "COMPLETED") }),
            )
        };
        *f.created.entry(key.clone()).or_default() += 1;
        f.payments
            .insert(key, (req.clone(), status, answer.clone()));
        (source != "ccof:slow").then(|| (status, axum::Json(answer)).into_response())
    };
    if let Some(response) = immediate {
        return response;
    }
    // The payment exists, but the answer never arrives in time: the caller cannot know.
    tokio::time::sleep(Duration::from_secs(30)).await;
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

async fn disable_card(
    State(fake): State<Shared>,
    Path(card_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    fake.lock()
        .unwrap()
        .calls
        .push(format!("POST /v2/cards/{card_id}/disable"));
    if let Some(r) = check_headers(&fake, &headers, false) {
        return r;
    }
    if card_id == "ccof:gone" {
        return square_error(
            StatusCode::NOT_FOUND,
            "INVALID_REQUEST_ERROR",
            "NOT_FOUND",
            "Card not found.",
        );
    }
    fake.lock().unwrap().disabled.push(card_id.clone());
    axum::Json(json!({
        "card": card_json(&card_id, &json!("JDKYHBWT1D4F8MFH63DBMEN8Y0"), &json!("acct_A"), false)
    }))
    .into_response()
}

/// Starts the fake on a free loopback port; returns its state and base URL.
async fn start_fake() -> (Shared, String) {
    let fake = Shared::default();
    let app = Router::new()
        .route("/v2/customers", post(create_customer))
        .route("/v2/cards", post(create_card))
        .route("/v2/payments", post(create_payment))
        .route("/v2/cards/{card_id}/disable", post(disable_card))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}

fn processor(base_url: &str, token: &str) -> SquareProcessor {
    let mut config = SquareConfig::new(base_url, token, LOCATION);
    config.timeout = Duration::from_millis(1500);
    SquareProcessor::new(config).unwrap()
}

fn no_problems(fake: &Shared) {
    let problems = fake.lock().unwrap().problems.clone();
    assert!(
        problems.is_empty(),
        "requests differ from Square's docs: {problems:?}"
    );
}

fn account() -> AccountId {
    AccountId::parse("acct_A").unwrap()
}

fn charge<'a>(acct: &'a AccountId, card_id: &'a str, key: &'a str) -> ChargeRequest<'a> {
    ChargeRequest {
        account: acct,
        customer_id: "JDKYHBWT1D4F8MFH63DBMEN8Y0",
        card_id,
        amount_cents: 1500,
        currency: "USD",
        idempotency_key: key,
        note: "Messaging plan for line_123, period 1",
    }
}

#[tokio::test]
async fn storing_a_card_creates_the_customer_then_the_card() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let req = StoreCardRequest {
        account: &acct,
        account_name: "Acme Agency",
        customer_id: None,
        source_id: "cnon:card-nonce-ok",
        idempotency_key: "card_attempt_1",
    };
    let card = square.store_card(&req).await.unwrap();
    assert_eq!(card.customer_id, "JDKYHBWT1D4F8MFH63DBMEN8Y0");
    assert!(card.card_id.starts_with("ccof:"));
    assert_eq!((card.brand.as_str(), card.last4.as_str()), ("VISA", "1111"));
    assert_eq!((card.exp_month, card.exp_year), (11, 2028));

    // A repeat returns the same card and customer (Square is idempotent per key).
    assert_eq!(square.store_card(&req).await.unwrap(), card);

    // With a known customer, only the card is created.
    let second = StoreCardRequest {
        customer_id: Some(&card.customer_id),
        idempotency_key: "card_attempt_2",
        ..req
    };
    let other = square.store_card(&second).await.unwrap();
    assert_eq!(other.customer_id, card.customer_id);

    let f = fake.lock().unwrap();
    assert_eq!(
        f.calls,
        [
            "POST /v2/customers",
            "POST /v2/cards",
            "POST /v2/customers",
            "POST /v2/cards",
            "POST /v2/cards"
        ]
    );
    assert_eq!(f.customers.len(), 1);
    let (customer_req, _) = f.customers.values().next().unwrap();
    assert_eq!(customer_req["reference_id"], "acct_A");
    assert_eq!(customer_req["company_name"], "Acme Agency");
    assert_ne!(customer_req["idempotency_key"], "card_attempt_1");
    drop(f);
    no_problems(&fake);
}

#[tokio::test]
async fn card_form_problems_are_declines_or_invalid() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let req = |nonce, key| StoreCardRequest {
        account: &acct,
        account_name: "Acme",
        customer_id: Some("JDKYHBWT1D4F8MFH63DBMEN8Y0"),
        source_id: nonce,
        idempotency_key: key,
    };
    let cvv = square
        .store_card(&req("cnon:card-nonce-rejected-cvv", "k1"))
        .await
        .unwrap_err();
    assert!(matches!(cvv, PaymentError::Declined { ref code, .. } if code == "CVV_FAILURE"));
    let bad = square
        .store_card(&req("cnon:nope", "k2"))
        .await
        .unwrap_err();
    assert!(matches!(bad, PaymentError::Invalid { ref code, .. } if code == "INVALID_CARD_DATA"));
    no_problems(&fake);
}

#[tokio::test]
async fn a_charge_sends_squares_create_payment_and_returns_the_payment() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let payment = square
        .charge(&charge(&acct, "ccof:uIbfJXhXETSP197M3GB", "pay_1"))
        .await
        .unwrap();
    assert_eq!(payment.amount_cents, 1500);
    assert_eq!(payment.currency, "USD");
    assert!(payment.processor_id.starts_with("R2B3"));

    let f = fake.lock().unwrap();
    let (sent, _, _) = &f.payments["pay_1"];
    assert_eq!(sent["source_id"], "ccof:uIbfJXhXETSP197M3GB");
    assert_eq!(
        sent["amount_money"],
        json!({"amount": 1500, "currency": "USD"})
    );
    assert_eq!(sent["customer_id"], "JDKYHBWT1D4F8MFH63DBMEN8Y0");
    assert_eq!(sent["reference_id"], "acct_A");
    assert_eq!(sent["note"], "Messaging plan for line_123, period 1");
    drop(f);
    no_problems(&fake);
}

#[tokio::test]
async fn a_declined_charge_is_declined_even_when_repeated() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let req = charge(&acct, "ccof:declined", "pay_d");
    let err = square.charge(&req).await.unwrap_err();
    assert_eq!(
        err,
        PaymentError::Declined {
            code: "CARD_DECLINED".into(),
            message: "The card was declined.".into()
        }
    );
    assert_eq!(square.resolve(&req).await.unwrap_err(), err);
    assert_eq!(fake.lock().unwrap().created["pay_d"], 1);
    no_problems(&fake);
}

#[tokio::test]
async fn request_errors_are_invalid() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let mut zero = charge(&acct, "ccof:ok", "pay_zero");
    zero.amount_cents = 0;
    let err = square.charge(&zero).await.unwrap_err();
    assert!(matches!(err, PaymentError::Invalid { ref code, .. } if code == "VALUE_TOO_LOW"));

    let missing = square
        .charge(&charge(&acct, "ccof:missing", "pay_m"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("NOT_FOUND"));

    let wrong_token = processor(&url, "not-the-token");
    let unauthorized = wrong_token
        .charge(&charge(&acct, "ccof:ok", "pay_u"))
        .await
        .unwrap_err();
    assert!(
        matches!(unauthorized, PaymentError::Invalid { ref code, .. } if code == "UNAUTHORIZED")
    );

    // Reusing a key for a different charge is refused, never charged.
    square
        .charge(&charge(&acct, "ccof:ok", "pay_r"))
        .await
        .unwrap();
    let mut other = charge(&acct, "ccof:ok", "pay_r");
    other.amount_cents = 2000;
    assert_eq!(
        square.charge(&other).await.unwrap_err().code(),
        Some("IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(fake.lock().unwrap().created["pay_r"], 1);
    no_problems(&fake);
}

#[tokio::test]
async fn server_errors_and_unreadable_answers_are_unknown() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let err = square
        .charge(&charge(&acct, "ccof:boom", "pay_500"))
        .await
        .unwrap_err();
    assert!(err.is_unknown(), "{err}");
    let err = square
        .charge(&charge(&acct, "ccof:garbage", "pay_g"))
        .await
        .unwrap_err();
    assert!(err.is_unknown(), "{err}");

    // Nothing listens on a port we just released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nowhere = processor(&format!("http://{closed}"), TOKEN);
    let err = nowhere
        .charge(&charge(&acct, "ccof:ok", "pay_c"))
        .await
        .unwrap_err();
    assert!(err.is_unknown(), "{err}");
    no_problems(&fake);
}

#[tokio::test]
async fn a_timed_out_charge_is_unknown_and_resolve_finds_the_single_payment() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let req = charge(&acct, "ccof:slow", "pay_slow");

    let err = square.charge(&req).await.unwrap_err();
    assert!(err.is_unknown(), "{err}");

    let resolved = square.resolve(&req).await.unwrap().expect("the payment");
    assert_eq!(resolved.amount_cents, 1500);
    let again = square.resolve(&req).await.unwrap().expect("the payment");
    assert_eq!(again, resolved);

    let f = fake.lock().unwrap();
    assert_eq!(f.created["pay_slow"], 1, "only one payment for the key");
    assert_eq!(f.created.len(), 1);
    assert_eq!(f.payment_keys, ["pay_slow", "pay_slow", "pay_slow"]);
    drop(f);
    no_problems(&fake);
}

#[tokio::test]
async fn disabling_a_card_posts_to_its_disable_endpoint() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    square
        .disable_card("JDKYHBWT1D4F8MFH63DBMEN8Y0", "ccof:uIbfJXhXETSP197M3GB")
        .await
        .unwrap();
    // A card Square no longer knows counts as disabled.
    square
        .disable_card("JDKYHBWT1D4F8MFH63DBMEN8Y0", "ccof:gone")
        .await
        .unwrap();
    let f = fake.lock().unwrap();
    assert_eq!(f.disabled, ["ccof:uIbfJXhXETSP197M3GB"]);
    assert_eq!(
        f.calls,
        [
            "POST /v2/cards/ccof:uIbfJXhXETSP197M3GB/disable",
            "POST /v2/cards/ccof:gone/disable"
        ]
    );
    drop(f);
    no_problems(&fake);
}

#[tokio::test]
async fn a_long_idempotency_key_is_shortened_stably() {
    let (fake, url) = start_fake().await;
    let square = processor(&url, TOKEN);
    let acct = account();
    let long_key = format!("line_charge:line_{}:period:0001:attempt:1", "x".repeat(40));
    assert!(long_key.len() > 45);
    let req = charge(&acct, "ccof:uIbfJXhXETSP197M3GB", &long_key);

    let first = square.charge(&req).await.unwrap();
    let repeat = square.charge(&req).await.unwrap();
    assert_eq!(repeat, first);

    let sent = processor_idempotency_key(&long_key).into_owned();
    assert_eq!(sent.len(), 45);
    let f = fake.lock().unwrap();
    assert_eq!(f.payment_keys, [sent.clone(), sent.clone()]);
    assert_eq!(f.created[&sent], 1);
    drop(f);
    no_problems(&fake);
}
