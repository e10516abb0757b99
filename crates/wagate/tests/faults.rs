//! Fault test: concurrent writers on several routes while the worker drains a webhook
//! backlog, with a share of the clients abandoning their requests mid-flight (timeouts that
//! drop the connection, and sockets reset right after the request is written).
//!
//! What must hold afterwards (outcomes only, never timings): no client that waited for its
//! answer got a 5xx, the server still takes writes, and every event it accepted reached the
//! receiver (distinct `webhook-id`s).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::receiver::Receiver;
use common::{fresh, send, Server};
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// Requests each writer sends.
const PER_WRITER: usize = 400;
/// Writers at once.
const WRITERS: usize = 24;
/// Events queued before the load starts, so the worker drains a backlog during it.
const BACKLOG: usize = 1_500;

/// What one request did.
enum Outcome {
    /// The client waited: its status, and the event id when it created a test event.
    Answered(u16, Option<String>),
    /// The client gave up (or reset the connection) before the answer.
    Abandoned,
}

/// One kind of write the writers mix.
#[derive(Clone, Copy)]
enum Route {
    TestEvent,
    Message,
    Topup,
}

/// What a writer needs of the server: its address and the key.
#[derive(Clone)]
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    fn of(s: &Server) -> Api {
        Api {
            base: s.base.clone(),
            key: s.key.clone(),
            http: s.http.clone(),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
    }
}

fn request(s: &Api, ep: &str, line: &str, route: Route, n: usize) -> reqwest::RequestBuilder {
    match route {
        Route::TestEvent => s
            .req(
                Method::POST,
                &format!("/api/v1/webhooks/endpoints/{ep}/test"),
            )
            .json(&json!({})),
        Route::Message => s
            .req(Method::POST, &format!("/api/v1/wa/lines/{line}/messages"))
            .json(&json!({"to": "+447700900123", "text": format!("fault {n}")})),
        Route::Topup => s
            .req(Method::POST, "/api/v1/billing/wallet/topups")
            .header("Idempotency-Key", format!("fault-topup-{n}"))
            .json(&json!({"amount": "20.00"})),
    }
}

/// Sends the raw bytes of a request on a fresh socket, then resets the connection (linger 0)
/// after a moment, without reading the answer.
async fn reset_mid_flight(s: &Api, path: &str, body: &str, after: Duration) {
    let addr = s.base.trim_start_matches("http://").to_owned();
    let Ok(mut sock) = tokio::net::TcpStream::connect(&addr).await else {
        return;
    };
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        s.key,
        body.len()
    );
    let _ = sock.write_all(raw.as_bytes()).await;
    tokio::time::sleep(after).await;
    // Linger 0 makes the close a reset (RST); it never blocks with a zero timeout.
    #[allow(deprecated)]
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(sock);
}

async fn writer(s: Api, ep: String, line: String, id: usize) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(PER_WRITER);
    for i in 0..PER_WRITER {
        let n = id * PER_WRITER + i;
        let (route, abandon, gap) = {
            let mut rng = rand::thread_rng();
            let route = match rng.gen_range(0..10) {
                0..=6 => Route::TestEvent,
                7..=8 => Route::Message,
                _ => Route::Topup,
            };
            // About a third of the requests are abandoned somewhere between "sent" and
            // "answered": the point varies so that every await of a write is hit.
            (
                route,
                rng.gen_range(0..3) == 0,
                Duration::from_micros(rng.gen_range(50..4_000)),
            )
        };
        if !abandon {
            let (status, body) = send(request(&s, &ep, &line, route, n)).await;
            let event = match route {
                Route::TestEvent if status == 202 => body["id"].as_str().map(str::to_owned),
                _ => None,
            };
            out.push(Outcome::Answered(status, event));
        } else if n % 2 == 0 {
            let rb = request(&s, &ep, &line, route, n).timeout(gap);
            match rb.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let event = match route {
                        Route::TestEvent if status == 202 => body["id"].as_str().map(str::to_owned),
                        _ => None,
                    };
                    out.push(Outcome::Answered(status, event));
                }
                Err(_) => out.push(Outcome::Abandoned),
            }
        } else {
            let path = format!("/api/v1/webhooks/endpoints/{ep}/test");
            reset_mid_flight(&s, &path, "{}", gap).await;
            out.push(Outcome::Abandoned);
        }
    }
    out
}

async fn fault_body(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let rx = Receiver::start().await;
    let (st, ep) = s
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"url": rx.url, "events": ["webhook.test"]}),
        )
        .await;
    assert_eq!(st, 201, "{ep}");
    let ep = ep["id"].as_str().unwrap().to_owned();
    let (st, card) = s
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    assert_eq!(st, 201, "{card}");
    let (st, line) = s.post("/api/v1/wa/lines", json!({"label": "fault"})).await;
    assert_eq!(st, 201, "{line}");
    let line = line["id"].as_str().unwrap().to_owned();
    let (st, scanned) = s
        .post(
            &format!("/api/v1/sandbox/lines/{line}/scan"),
            json!({"phone_number": "+447700900001"}),
        )
        .await;
    assert_eq!(st, 200, "{scanned}");

    // A backlog for the worker to drain while the load runs.
    let mut accepted: HashSet<String> = HashSet::new();
    let mut backlog = tokio::task::JoinSet::new();
    for _ in 0..BACKLOG {
        let rb = s.req(
            Method::POST,
            &format!("/api/v1/webhooks/endpoints/{ep}/test"),
        );
        backlog.spawn(async move { send(rb).await });
        while backlog.len() >= 32 {
            let (st, ev) = backlog.join_next().await.unwrap().unwrap();
            assert_eq!(st, 202, "{ev}");
            accepted.insert(ev["id"].as_str().unwrap().to_owned());
        }
    }
    while let Some(r) = backlog.join_next().await {
        let (st, ev) = r.unwrap();
        assert_eq!(st, 202, "{ev}");
        accepted.insert(ev["id"].as_str().unwrap().to_owned());
    }

    let mut writers = tokio::task::JoinSet::new();
    for id in 0..WRITERS {
        let s = Api::of(&s);
        writers.spawn(writer(s, ep.clone(), line.clone(), id));
    }
    let (mut answered, mut abandoned) = (0, 0);
    let mut server_errors = Vec::new();
    while let Some(outcomes) = writers.join_next().await {
        for o in outcomes.unwrap() {
            match o {
                Outcome::Answered(status, event) => {
                    answered += 1;
                    if status >= 500 {
                        server_errors.push(status);
                    }
                    accepted.extend(event);
                }
                Outcome::Abandoned => abandoned += 1,
            }
        }
    }
    assert!(
        abandoned > WRITERS * PER_WRITER / 5,
        "the test must abandon a fair share of its requests ({abandoned})"
    );
    assert!(
        server_errors.is_empty(),
        "{} of {answered} answered requests got a 5xx: {:?}",
        server_errors.len(),
        &server_errors[..server_errors.len().min(10)]
    );

    // The server still writes: a new line and a new event, each answered at once.
    let (st, body) = s.post("/api/v1/wa/lines", json!({"label": "after"})).await;
    assert_eq!(st, 201, "a write after the load: {body}");
    let (st, ev) = s
        .post(&format!("/api/v1/webhooks/endpoints/{ep}/test"), json!({}))
        .await;
    assert_eq!(st, 202, "{ev}");
    accepted.insert(ev["id"].as_str().unwrap().to_owned());

    // Every accepted event arrives (delivery is asynchronous: wait in real time, bounded).
    rx.wait_for_ids(&accepted, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_never_wedge_the_server_sqlite() {
    fault_body("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_never_wedge_the_server_postgres() {
    fault_body("postgres").await;
}
