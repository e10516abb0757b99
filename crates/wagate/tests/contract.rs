//! The server keeps what the OpenAPI document says: the limits it states that live outside
//! the HTTP crate (pinned here at their edges), the POSTs that take no parameters, whole
//! numbers as integers, and 409 for refusals that come from state rather than the request.

mod common;

use common::{fresh, send, Server};
use reqwest::Method;
use serde_json::{json, Value};
use wagate_http::openapi::rules::{ENDPOINT_DESCRIPTION_MAX_CHARS, SOURCE_ID_MAX_BYTES};

async fn endpoint(s: &Server, body: Value) -> (u16, Value) {
    s.post("/api/v1/webhooks/endpoints", body).await
}

#[tokio::test]
async fn the_documented_limits_are_the_servers() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;

    // An endpoint's description: the documented maxLength is the last length accepted.
    let url = "https://hooks.example/h";
    let at = "é".repeat(ENDPOINT_DESCRIPTION_MAX_CHARS);
    let (st, b) = endpoint(&s, json!({"url": url, "description": at})).await;
    assert_eq!(st, 201, "{b}");
    let over = "é".repeat(ENDPOINT_DESCRIPTION_MAX_CHARS + 1);
    let (st, b) = endpoint(&s, json!({"url": url, "description": over})).await;
    assert_eq!((st, b["param"].as_str()), (422, Some("description")), "{b}");

    // A card nonce: at the documented length it reaches the processor (which knows no such
    // nonce), one byte more is refused before.
    let card = |n: usize| json!({"source_id": format!("cnon:{}", "x".repeat(n - 5))});
    let (st, b) = s
        .post("/api/v1/billing/card", card(SOURCE_ID_MAX_BYTES))
        .await;
    assert_eq!((st, b["param"].as_str()), (422, Some("source_id")), "{b}");
    assert!(b["message"].as_str().unwrap().contains("processor"), "{b}");
    let (st, b) = s
        .post("/api/v1/billing/card", card(SOURCE_ID_MAX_BYTES + 1))
        .await;
    assert_eq!((st, b["param"].as_str()), (422, Some("source_id")), "{b}");
    assert!(!b["message"].as_str().unwrap().contains("processor"), "{b}");
}

#[tokio::test]
async fn posts_without_parameters_take_an_empty_object_or_nothing() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    let keys = "/api/v1/account/keys";
    let (st, _) = send(s.req(Method::POST, keys)).await;
    assert_eq!(st, 201, "no body");
    let (st, _) = s.post(keys, json!({})).await;
    assert_eq!(st, 201, "{{}}");
    let (st, b) = s.post(keys, json!({"mode": "live"})).await;
    assert_eq!((st, b["param"].as_str()), (422, Some("mode")), "{b}");
    let (st, b) = send(s.req(Method::POST, keys).body("nope")).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (400, Some("invalid_json")),
        "{b}"
    );
    let (st, b) = s.post("/api/v1/webhooks/secret/rotate", json!([])).await;
    assert_eq!(st, 422, "{b}");
}

#[tokio::test]
async fn a_whole_number_is_an_integer_however_it_is_written() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    let fail_next = "/api/v1/sandbox/payments/fail_next";
    for (raw, n) in [("2.0", 2), ("3e0", 3), ("0.0", 0)] {
        let body = format!("{{\"count\": {raw}}}");
        let (st, b) = send(s.req(Method::POST, fail_next).body(body)).await;
        assert_eq!((st, &b["fail_next"]), (200, &json!(n)), "{raw}: {b}");
    }
    let (st, b) = send(s.req(Method::POST, fail_next).body("{\"count\": 2.5}")).await;
    assert_eq!((st, b["param"].as_str()), (422, Some("count")), "{b}");
}

#[tokio::test]
async fn refusals_caused_by_state_are_409() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    let max = wagate_app::webhooks::endpoints::MAX_ENDPOINTS;
    let mut last = String::new();
    for i in 0..max {
        let (st, b) = endpoint(&s, json!({"url": format!("https://h{i}.example/h")})).await;
        assert_eq!(st, 201, "{b}");
        last = b["id"].as_str().unwrap().to_owned();
    }
    let (st, b) = endpoint(&s, json!({"url": "https://one-more.example/h"})).await;
    assert_eq!(
        (st, b["error"].as_str(), &b["limit"]),
        (409, Some("invalid_state"), &json!(max)),
        "{b}"
    );
    // At the limit, a body that breaks a rule is still told so first.
    for (body, param) in [
        (json!({"url": "ftp://x.example/h"}), "url"),
        (
            json!({"url": "https://x.example/h", "events": ["nope"]}),
            "events",
        ),
        (
            json!({"url": "https://x.example/h", "description": "x".repeat(501)}),
            "description",
        ),
    ] {
        let (st, b) = endpoint(&s, body).await;
        assert_eq!((st, b["param"].as_str()), (422, Some(param)), "{b}");
    }

    let path = format!("/api/v1/webhooks/endpoints/{last}");
    let (st, _) = send(s.req(Method::PATCH, &path).json(&json!({"enabled": false}))).await;
    assert_eq!(st, 200);
    let (st, b) = s.post(&format!("{path}/test"), json!({})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
}
