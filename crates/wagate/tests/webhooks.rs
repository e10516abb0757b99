//! Signed webhooks with a durable retry queue, over HTTP against the real binary.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::receiver::{Received, Receiver};
use common::{create_account, fresh, send, Server};
use jiff::Timestamp;
use reqwest::Method;
use serde_json::{json, Value};

fn verify(secret: &str, r: &Received) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    wh.verify(&r.body, &r.headers).is_ok()
}

async fn endpoint(s: &Server, url: &str, events: Value) -> String {
    let (st, ep) = s
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(st, 201, "{ep}");
    ep["id"].as_str().unwrap().to_owned()
}

async fn fire_test(s: &Server, ep: &str) -> String {
    let (st, ev) = s
        .post(&format!("/api/v1/webhooks/endpoints/{ep}/test"), json!({}))
        .await;
    assert_eq!(st, 202, "{ev}");
    ev["id"].as_str().unwrap().to_owned()
}

async fn event_detail(s: &Server, evt: &str) -> Value {
    s.get(&format!("/api/v1/webhooks/events/{evt}")).await.1
}

async fn advance(s: &Server, secs: i64) {
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": secs}))
        .await;
    assert_eq!(st, 200, "{b}");
}

both_backends!(test_events_are_signed_per_standard_webhooks, signed_body);
// The timestamp header is compared with the real wall clock on purpose.
#[allow(clippy::disallowed_methods)]
async fn signed_body(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let rx = Receiver::start().await;
    let ep = endpoint(&s, &rx.url, json!(["*"])).await;
    let (_, secret) = s.get("/api/v1/webhooks/secret").await;
    let old = secret["secret"].as_str().unwrap().to_owned();
    assert!(old.starts_with("whsec_"));

    let evt = fire_test(&s, &ep).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    let r = &got[0];
    assert_eq!(r.header("webhook-id"), evt);
    assert!(verify(&old, r), "standardwebhooks accepts our signature");
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    let wall = Timestamp::now().as_second();
    assert!(
        (wall - ts).abs() < 300,
        "wall-clock timestamp, not sandbox time"
    );
    let body = r.json();
    assert_eq!(body["id"], evt.as_str());
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(
        body["created_at"],
        common::CLOCK_START,
        "business time in the body"
    );

    // After a rotation both secrets sign; a verifier holding either accepts.
    let (st, rotated) = s.post("/api/v1/webhooks/secret/rotate", json!({})).await;
    assert_eq!(st, 200);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["previous"][0]["secret"], old.as_str());
    fire_test(&s, &ep).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    let r = &got[1];
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
    assert!(verify(&new, r) && verify(&old, r));
    let mut tampered = r.clone();
    let mut changed = r.body.to_vec();
    changed.push(b' ');
    tampered.body = axum::body::Bytes::from(changed);
    assert!(
        !verify(&new, &tampered),
        "a changed body fails verification"
    );

    // Secret times are business time: 24 h on the sandbox clock retire the old secret.
    assert_eq!(
        rotated["previous"][0]["expires_at"], "2026-01-02T00:00:00Z",
        "{rotated}"
    );
    advance(&s, 24 * 3600 + 1).await;
    let (_, now) = s.get("/api/v1/webhooks/secret").await;
    assert_eq!(now["previous"].as_array().map(Vec::len), Some(0), "{now}");
    fire_test(&s, &ep).await;
    let got = rx.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].header("webhook-signature").split(' ').count(), 1);
    assert!(verify(&new, &got[2]) && !verify(&old, &got[2]));
}

both_backends!(
    retries_follow_the_schedule_on_the_sandbox_clock,
    retries_body
);
async fn retries_body(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500, 503, 302]);
    let ep = endpoint(&s, &rx.url, json!(["webhook.test"])).await;
    let evt = fire_test(&s, &ep).await;
    rx.wait_for(1, Duration::from_secs(10)).await;

    // Wait for the first attempt to be recorded, then check the next one is ~5 s later.
    let mut d = event_detail(&s, &evt).await;
    for _ in 0..200 {
        if d["deliveries"][0]["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        d = event_detail(&s, &evt).await;
    }
    let next: Timestamp = d["deliveries"][0]["next_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let start: Timestamp = common::CLOCK_START.parse().unwrap();
    let wait = next.duration_since(start).as_secs_f64();
    assert!(
        (4.5..=5.5).contains(&wait),
        "first retry after 5 s ± 10 %, was {wait}"
    );

    advance(&s, 4).await;
    assert_eq!(rx.received().len(), 1, "not before it is due");
    advance(&s, 2).await;
    assert_eq!(
        rx.received().len(),
        2,
        "the advance returns after the retry ran"
    );
    advance(&s, 6 * 60).await; // the 5 min retry (3xx counts as a failure)
    assert_eq!(rx.received().len(), 3);
    advance(&s, 34 * 60).await; // the 30 min retry succeeds
    let got = rx.received();
    assert_eq!(got.len(), 4);
    let ids: HashSet<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every attempt");
    let d = event_detail(&s, &evt).await;
    assert_eq!(d["deliveries"][0]["status"], "delivered");
    let codes: Vec<_> = d["deliveries"][0]["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 302, 200]);
    advance(&s, 86400).await;
    assert_eq!(rx.received().len(), 4, "nothing more once delivered");
}

both_backends!(
    endpoints_that_are_gone_or_keep_failing_are_disabled,
    disable_body
);
async fn disable_body(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let gone = Receiver::start().await;
    gone.respond_with(&[410]);
    let watcher = Receiver::start().await;
    let ep_gone = endpoint(&s, &gone.url, json!(["*"])).await;
    endpoint(&s, &watcher.url, json!(["endpoint.disabled"])).await;
    fire_test(&s, &ep_gone).await;
    let got = watcher.wait_for(1, Duration::from_secs(10)).await;
    let ev = got[0].json();
    assert_eq!(ev["type"], "endpoint.disabled");
    assert_eq!(ev["data"]["reason"], "gone");
    let (_, e) = s
        .get(&format!("/api/v1/webhooks/endpoints/{ep_gone}"))
        .await;
    assert_eq!(
        (e["enabled"].as_bool(), e["disabled_reason"].as_str()),
        (Some(false), Some("gone"))
    );

    // A receiver failing for 5 days straight: the first event exhausts its 8 attempts
    // (~27.6 h), a later one fails again after 5 days and the endpoint is disabled.
    let failing = Receiver::start().await;
    failing.respond_with(&[500; 20]);
    let ep = endpoint(&s, &failing.url, json!(["*"])).await;
    let first = fire_test(&s, &ep).await;
    failing.wait_for(1, Duration::from_secs(10)).await;
    advance(&s, 2 * 86400).await;
    assert_eq!(failing.received().len(), 8, "1 attempt + 7 retries");
    let (_, d) = s.get(&format!("/api/v1/webhooks/events/{first}")).await;
    assert_eq!(d["deliveries"][0]["status"], "failed");
    advance(&s, 3 * 86400 + 60).await;
    fire_test(&s, &ep).await;
    let got = watcher.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].json()["data"]["reason"], "failing");
    let (_, e) = s.get(&format!("/api/v1/webhooks/endpoints/{ep}")).await;
    assert_eq!(e["enabled"], false);

    // Re-enable and redeliver the failed event: it arrives.
    let (st, e) = send(
        s.req(Method::PATCH, &format!("/api/v1/webhooks/endpoints/{ep}"))
            .json(&json!({"enabled": true})),
    )
    .await;
    assert_eq!((st, e["disabled_reason"].is_null()), (200, true));
    failing.respond_with(&[]);
    let before = failing.received().len();
    let (st, _) = s
        .post(
            &format!("/api/v1/webhooks/events/{first}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(st, 202);
    let got = failing.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(got.last().unwrap().header("webhook-id"), first);
}

both_backends!(endpoints_crud_validation_and_isolation, crud_body);
async fn crud_body(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    for (body, param) in [
        (json!({"url": "ftp://x.example/h"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "https://u:p@x.example/h"}), "url"),
        (
            json!({"url": "https://x.example/h", "events": ["line.nope"]}),
            "events",
        ),
        (
            json!({"url": "https://x.example/h", "events": []}),
            "events",
        ),
        (json!({"url": 5}), "url"),
        (json!({}), "url"),
    ] {
        let (st, b) = s.post("/api/v1/webhooks/endpoints", body.clone()).await;
        assert_eq!(
            (st, b["param"].as_str()),
            (422, Some(param)),
            "{body} → {b}"
        );
    }
    let a = endpoint(
        &s,
        "https://a.example/hook",
        json!(["line.ready", "line.ready"]),
    )
    .await;
    let b = endpoint(&s, "https://b.example/hook", json!(["*"])).await;
    let (_, e) = s.get(&format!("/api/v1/webhooks/endpoints/{a}")).await;
    assert_eq!(e["events"], json!(["line.ready"]));
    let (_, page) = s.get("/api/v1/webhooks/endpoints?limit=1").await;
    assert_eq!(
        (page["data"][0]["id"].as_str(), page["has_more"].as_bool()),
        (Some(b.as_str()), Some(true))
    );
    let (_, page) = s
        .get(&format!(
            "/api/v1/webhooks/endpoints?limit=1&starting_after={b}"
        ))
        .await;
    assert_eq!(
        (page["data"][0]["id"].as_str(), page["has_more"].as_bool()),
        (Some(a.as_str()), Some(false))
    );
    assert_eq!(s.get("/api/v1/webhooks/endpoints?limit=0").await.0, 422);
    assert_eq!(s.get("/api/v1/webhooks/endpoints?limit=abc").await.0, 422);

    let (st, e) = send(
        s.req(Method::PATCH, &format!("/api/v1/webhooks/endpoints/{a}"))
            .json(&json!({"events": ["message.received"], "description": "inbox"})),
    )
    .await;
    assert_eq!(
        (st, e["events"][0].as_str(), e["description"].as_str()),
        (200, Some("message.received"), Some("inbox"))
    );

    // Another account sees none of it.
    let (_, other) = create_account(&backing, "Other").await;
    let as_other = |m: Method, p: String| {
        send(
            s.http
                .request(m, format!("{}{p}", s.base))
                .bearer_auth(&other),
        )
    };
    assert_eq!(
        as_other(Method::GET, format!("/api/v1/webhooks/endpoints/{a}"))
            .await
            .0,
        404
    );
    assert_eq!(
        as_other(Method::DELETE, format!("/api/v1/webhooks/endpoints/{a}"))
            .await
            .0,
        404
    );
    assert_eq!(
        as_other(Method::POST, format!("/api/v1/webhooks/endpoints/{a}/test"))
            .await
            .0,
        404
    );
    let (_, list) = as_other(Method::GET, "/api/v1/webhooks/endpoints".into()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    let (st, d) = send(s.req(Method::DELETE, &format!("/api/v1/webhooks/endpoints/{a}"))).await;
    assert_eq!((st, d["deleted"].as_bool()), (200, Some(true)));
    assert_eq!(
        s.get(&format!("/api/v1/webhooks/endpoints/{a}")).await.0,
        404
    );
    assert_eq!(s.get("/api/v1/webhooks/events/evt_nope").await.0, 404);
    assert_eq!(s.get("/api/v1/webhooks/events/line_1").await.0, 404);

    // The event log filters by type.
    fire_test(&s, &b).await;
    let (_, evs) = s.get("/api/v1/webhooks/events?type=webhook.test").await;
    assert_eq!(evs["data"].as_array().unwrap().len(), 1);
    let (_, evs) = s.get("/api/v1/webhooks/events?type=line.ready").await;
    assert_eq!(evs["data"].as_array().unwrap().len(), 0);
}

/// Kills the server while thousands of deliveries are pending to a slow receiver; after a
/// restart every event still arrives at least once.
async fn crash_body(kind: &str, events: usize) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let rx = Receiver::start().await;
    rx.set_delay_ms(25);
    let ep = endpoint(&s, &rx.url, json!(["*"])).await;
    let mut ids = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..events {
        let rb = s.req(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{ep}/test"),
        );
        tasks.spawn(async move { send(rb).await });
        while tasks.len() >= 32 {
            let (st, ev) = tasks.join_next().await.unwrap().unwrap();
            assert_eq!(st, 202);
            ids.insert(ev["id"].as_str().unwrap().to_owned());
        }
    }
    while let Some(r) = tasks.join_next().await {
        let (st, ev) = r.unwrap();
        assert_eq!(st, 202);
        ids.insert(ev["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), events);
    let before_kill = rx.received().len();
    assert!(
        before_kill < events,
        "the kill must come while deliveries are pending"
    );
    s.kill().await;

    let s = Server::start(&backing, &["--sandbox"]).await;
    rx.set_delay_ms(0);
    rx.wait_for_ids(&ids, Duration::from_secs(240)).await;
    drop(s);
}

#[tokio::test]
async fn no_event_is_lost_when_the_server_is_killed_sqlite() {
    crash_body("sqlite", 10_000).await;
}

#[tokio::test]
async fn no_event_is_lost_when_the_server_is_killed_postgres() {
    crash_body("postgres", 10_000).await;
}

#[tokio::test]
async fn two_workers_on_one_postgres_never_deliver_an_attempt_twice() {
    let (backing, _g) = fresh("postgres").await;
    let a = Server::sandbox(&backing).await;
    let b = Server::start(&backing, &["--sandbox"]).await;
    let rx = Receiver::start().await;
    let ep = endpoint(&a, &rx.url, json!(["*"])).await;
    let n = 400;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let srv = if i % 2 == 0 { &a } else { &b };
        let mut rb = srv.req(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{ep}/test"),
        );
        rb = rb.bearer_auth(&a.key);
        tasks.spawn(async move { send(rb).await.0 });
    }
    while let Some(st) = tasks.join_next().await {
        assert_eq!(st.unwrap(), 202);
    }
    let got = rx.wait_for(n, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = if rx.received().len() > got.len() {
        rx.received()
    } else {
        got
    };
    let ids: HashSet<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), n);
    assert_eq!(
        got.len(),
        n,
        "every event delivered exactly once across two workers"
    );
}
