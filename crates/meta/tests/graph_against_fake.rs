//! `GraphClient` against `FakeGraph` over the wire, and the fake's webhook driver against a
//! small receiver that checks signatures and parses with this crate.
#![cfg(feature = "fake")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use wagate_meta::fake::{FakeGraph, StatusEvent};
use wagate_meta::webhook::{self, parse, verify_challenge, verify_signature};
use wagate_meta::{
    GraphClient, GraphError, InboundMessage, MessageStatus, MetaConversation, MetaErrorItem,
    MetaPricing, Notification, Outbound, PhoneNumber, Referral, StatusUpdate, TierUpdate,
};

const NUMBER: &str = "106540352242922";
const OTHER_NUMBER: &str = "106540352242923";
const WABA: &str = "102290129340398";
const TOKEN: &str = "EAAG-test-token";
const OTHER_TOKEN: &str = "EAAG-other-token";
const USER: &str = "16505551234";
const APP_SECRET: &str = "app-secret";
const VERIFY_TOKEN: &str = "verify-me";

fn t0() -> Timestamp {
    Timestamp::from_second(1_750_000_000).unwrap()
}

async fn fake() -> (FakeGraph, GraphClient) {
    let fake = FakeGraph::start().await.unwrap();
    fake.add_number(NUMBER, "+1 555-555-5555", "Jaspers Market", WABA, TOKEN);
    fake.add_number(
        OTHER_NUMBER,
        "+1 555-555-0000",
        "Other Shop",
        "999",
        OTHER_TOKEN,
    );
    fake.add_template("order_update", "en_US", "UTILITY");
    let client = GraphClient::new(&fake.base_url(), GraphClient::http_client().unwrap()).unwrap();
    (fake, client)
}

/// What a wagate-like receiver saw: the notifications of deliveries whose signature held.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Notification>>>);

impl Inbox {
    fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if !verify_signature(APP_SECRET.as_bytes(), &body, signature) {
        return StatusCode::UNAUTHORIZED;
    }
    match parse(&body) {
        Ok(notifications) => {
            inbox.0.lock().unwrap().extend(notifications);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn verify(Query(query): Query<HashMap<String, String>>) -> Response {
    match verify_challenge(&query, VERIFY_TOKEN) {
        Some(challenge) => challenge.into_response(),
        None => StatusCode::FORBIDDEN.into_response(),
    }
}

/// A receiver on a free port; returns its webhook URL.
async fn receiver(inbox: Inbox) -> String {
    let app = Router::new()
        .route("/meta/webhooks", get(verify).post(receive))
        .with_state(inbox);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/meta/webhooks")
}

#[tokio::test]
async fn a_number_is_looked_up_with_its_token() {
    let (_fake, client) = fake().await;
    let number = client.phone_number(NUMBER, TOKEN).await.unwrap();
    assert_eq!(
        number,
        PhoneNumber {
            id: NUMBER.into(),
            display_phone_number: "+1 555-555-5555".into(),
            verified_name: Some("Jaspers Market".into()),
            quality_rating: Some("GREEN".into()),
        }
    );
}

#[tokio::test]
async fn a_bad_token_is_invalid_credentials() {
    let (_fake, client) = fake().await;
    let e = client.phone_number(NUMBER, "EAAG-wrong").await.unwrap_err();
    let GraphError::InvalidCredentials(meta) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (meta.http_status, meta.code, meta.kind.as_str()),
        (401, 190, "OAuthException")
    );
    assert!(meta.fbtrace_id.is_some());
    assert!(e.is_credentials_problem());
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_like_meta() {
    let (fake, _client) = fake().await;
    let response = reqwest::get(format!("{}/{NUMBER}", fake.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 104);
    assert_eq!(body["error"]["type"], "OAuthException");
}

#[tokio::test]
async fn an_unknown_number_or_anothers_number_is_an_unknown_phone_number() {
    let (_fake, client) = fake().await;
    for (id, token) in [("999999999999999", TOKEN), (OTHER_NUMBER, TOKEN)] {
        let e = client.phone_number(id, token).await.unwrap_err();
        let GraphError::UnknownPhoneNumber(meta) = &e else {
            panic!("{id}: {e:?}")
        };
        assert_eq!((meta.code, meta.subcode), (100, Some(33)));
        assert!(e.is_credentials_problem());
    }
}

#[tokio::test]
async fn a_text_goes_out_inside_the_window_and_not_after_it() {
    let (fake, client) = fake().await;
    let driver = fake.webhooks(&receiver(Inbox::default()).await, APP_SECRET);
    let text = Outbound::text(format!("+{USER}"), "Yes, in blue too.");

    // Nobody wrote yet: only a template could go.
    fake.set_now(t0());
    let e = client.send(NUMBER, TOKEN, &text).await.unwrap_err();
    assert!(
        matches!(e, GraphError::OutsideCustomerServiceWindow(_)),
        "{e:?}"
    );

    driver
        .inbound(NUMBER, USER, "Does it come in another color?", t0(), None)
        .await
        .unwrap();
    fake.set_now(t0() + SignedDuration::from_hours(23));
    let sent = client.send(NUMBER, TOKEN, &text).await.unwrap();
    assert!(sent.id.starts_with("wamid."), "{sent:?}");
    assert_eq!(sent.wa_id.as_deref(), Some(USER));

    fake.set_now(t0() + SignedDuration::from_hours(25));
    let e = client.send(NUMBER, TOKEN, &text).await.unwrap_err();
    let GraphError::OutsideCustomerServiceWindow(meta) = &e else {
        panic!("{e:?}")
    };
    assert_eq!((meta.http_status, meta.code), (400, 131047));
    assert!(meta.details.is_some());

    let log = fake.sent();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].phone_number_id.as_str(),
            log[0].kind.as_str(),
            log[0].wamid.as_str()
        ),
        (NUMBER, "text", sent.id.as_str())
    );
    assert_eq!(log[0].body.as_deref(), Some("Yes, in blue too."));
}

#[tokio::test]
async fn templates_go_out_any_time_and_unknown_ones_are_refused() {
    let (fake, client) = fake().await;
    let template = Outbound::template(USER, "order_update", "en_US").with_components(
        json!([{"type": "body", "parameters": [{"type": "text", "text": "4521"}]}]),
    );
    let sent = client.send(NUMBER, TOKEN, &template).await.unwrap();
    let log = fake.sent();
    assert_eq!(log[0].template.as_deref(), Some("order_update"));
    assert_eq!(log[0].category.as_deref(), Some("UTILITY"));
    assert_eq!(log[0].wamid, sent.id);

    for (name, language) in [("no_such_template", "en_US"), ("order_update", "pt_BR")] {
        let e = client
            .send(NUMBER, TOKEN, &Outbound::template(USER, name, language))
            .await
            .unwrap_err();
        let GraphError::UnknownTemplate(meta) = &e else {
            panic!("{e:?}")
        };
        assert_eq!((meta.http_status, meta.code), (404, 132001));
    }
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_says_when_to_retry() {
    let (fake, client) = fake().await;
    fake.rate_limit_next(1, 7);
    let template = Outbound::template(USER, "order_update", "en_US");
    let e = client.send(NUMBER, TOKEN, &template).await.unwrap_err();
    let GraphError::RateLimited {
        retry_after_secs,
        meta,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        (*retry_after_secs, meta.code, meta.http_status),
        (7, 130429, 429)
    );
    assert!(e.is_retryable());
    client.send(NUMBER, TOKEN, &template).await.unwrap();
}

#[tokio::test]
async fn an_outage_is_unavailable_and_retryable() {
    let (fake, client) = fake().await;
    fake.fail_next(1, 500, 131000, "(#131000) Something went wrong");
    let e = client.phone_number(NUMBER, TOKEN).await.unwrap_err();
    assert!(
        matches!(
            e,
            GraphError::Unavailable {
                status: Some(500),
                code: Some(131000),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable() && !e.is_credentials_problem());
    client.phone_number(NUMBER, TOKEN).await.unwrap();

    // Nobody listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = GraphClient::new(
        &format!("http://127.0.0.1:{port}/v23.0"),
        GraphClient::http_client().unwrap(),
    )
    .unwrap();
    let e = gone.phone_number(NUMBER, TOKEN).await.unwrap_err();
    assert!(
        matches!(e, GraphError::Unavailable { status: None, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_fake_checks_request_shapes_like_meta() {
    let (fake, _client) = fake().await;
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(format!("{}/{NUMBER}/messages", fake.base_url()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let cases = [
        (
            json!({"to": USER, "type": "text", "text": {"body": "x"}}),
            100,
        ),
        (
            json!({"messaging_product": "sms", "to": USER, "text": {"body": "x"}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
                "template": {"name": "order_update"}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "sticker",
                "sticker": {"id": "1"}}),
            131051,
        ),
    ];
    for (body, code) in cases {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn driven_webhooks_verify_and_parse_back() {
    let (fake, client) = fake().await;
    let inbox = Inbox::default();
    let url = receiver(inbox.clone()).await;
    let driver = fake.webhooks(&url, APP_SECRET);

    // Meta's verification GET.
    let (status, body) = driver.subscribe(VERIFY_TOKEN, "1158201444").await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "1158201444"));
    let (status, _) = driver.subscribe("wrong", "1158201444").await.unwrap();
    assert_eq!(status, 403);

    // A user comes from an ad and writes; we answer; Meta reports the answer delivered.
    let referral = Referral {
        source_url: "https://fb.me/3cr4Wqqkv".into(),
        source_id: "120226305854810726".into(),
        source_type: "ad".into(),
        headline: Some("Chat with us".into()),
        body: Some("Summer Succulents are here!".into()),
        ctwa_clid: Some("Aff-n8ZTODiE79d22KtAwQKj9e".into()),
    };
    let inbound = driver
        .inbound(
            NUMBER,
            USER,
            "Hello! Can I get more info on this?",
            t0(),
            Some(referral.clone()),
        )
        .await
        .unwrap();
    assert_eq!(inbound.status, 200);
    assert_eq!(
        inbox.take(),
        vec![Notification::Message(InboundMessage {
            waba_id: WABA.into(),
            phone_number_id: NUMBER.into(),
            display_phone_number: "+1 555-555-5555".into(),
            from: USER.into(),
            profile_name: Some(format!("User {USER}")),
            id: inbound.id.clone().unwrap(),
            timestamp: t0(),
            kind: "text".into(),
            text: Some("Hello! Can I get more info on this?".into()),
            referral: Some(referral),
        })]
    );

    fake.set_now(t0() + SignedDuration::from_mins(5));
    let sent = client
        .send(NUMBER, TOKEN, &Outbound::text(USER, "Sure!"))
        .await
        .unwrap();
    let pricing = MetaPricing {
        billable: false,
        pricing_model: "PMP".into(),
        category: "referral_conversion".into(),
        kind: Some("free_entry_point".into()),
    };
    let conversation = MetaConversation {
        id: "72b14d6bd5407799e66f64d1b338e567".into(),
        origin: Some("referral_conversion".into()),
        expires_at: Some(t0() + SignedDuration::from_hours(72)),
    };
    let at = t0() + SignedDuration::from_mins(6);
    let delivered = StatusEvent::new(NUMBER, &sent.id, USER, MessageStatus::Delivered, at)
        .with_pricing(pricing.clone())
        .with_conversation(conversation.clone());
    let posted = driver.status(&delivered).await.unwrap();
    assert_eq!(
        (posted.status.as_u16(), posted.id.as_deref()),
        (200, Some(sent.id.as_str()))
    );
    let expected_status = Notification::Status(StatusUpdate {
        waba_id: WABA.into(),
        phone_number_id: NUMBER.into(),
        id: sent.id.clone(),
        status: MessageStatus::Delivered,
        timestamp: at,
        recipient_id: USER.into(),
        callback_data: None,
        pricing: Some(pricing),
        conversation: Some(conversation),
        errors: vec![],
    });
    assert_eq!(inbox.take(), vec![expected_status.clone()]);

    let failure = MetaErrorItem {
        code: 131026,
        title: "Message undeliverable".into(),
        message: Some("Message undeliverable".into()),
        details: Some("Message Undeliverable.".into()),
    };
    let failed = StatusEvent::new(NUMBER, "wamid.X", USER, MessageStatus::Failed, at)
        .with_error(failure.clone());
    driver.status(&failed).await.unwrap();
    let got = inbox.take();
    let [Notification::Status(s)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(
        (s.status, s.errors.clone()),
        (MessageStatus::Failed, vec![failure])
    );

    let tier = TierUpdate {
        waba_id: WABA.into(),
        region: "India".into(),
        pricing_category: "UTILITY".into(),
        tier: "25000001:50000000".into(),
        effective_month: "2025-11".into(),
        updated_at: t0(),
    };
    driver.tier_update(&tier).await.unwrap();
    assert_eq!(inbox.take(), vec![Notification::TierUpdate(tier)]);

    // Meta redelivers the same body: it verifies and parses to the same notification.
    let again = driver.post_raw(posted.body, None).await.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(inbox.take(), vec![expected_status]);

    // A wrong or missing signature is refused and nothing is read.
    let forged = driver
        .post_raw(
            inbound.body.clone(),
            Some(webhook::sign(b"not-the-secret", inbound.body.as_bytes())),
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 401);
    assert_eq!(
        driver.post_unsigned(inbound.body).await.unwrap().status,
        401
    );
    assert!(inbox.take().is_empty());
}

#[tokio::test]
async fn the_driver_needs_a_known_number() {
    let (fake, _client) = fake().await;
    let driver = fake.webhooks("http://127.0.0.1:9/unused", APP_SECRET);
    let e = driver
        .inbound("123", USER, "hi", t0(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("123"), "{e}");
}
