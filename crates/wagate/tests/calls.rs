//! Calling end to end over HTTP on the sandbox clock (PRODUCT.md §9): outbound and inbound
//! calls with every end reason, the signed `call.*` webhooks, one call at a time, tenant
//! isolation, the media socket's echo, and fair use.

mod common;

use std::time::Duration;

use common::receiver::{Received, Receiver};
use common::{create_account, fresh, send, Server};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const TO: &str = "+447700900123";

async fn ok(s: &Server, path: &str, body: Value) -> Value {
    let (st, b) = s.post(path, body).await;
    assert!((200..300).contains(&st), "{path}: {st} {b}");
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

/// A ready line of the demo account: `calling` decides its plan.
async fn ready_line(s: &Server, calling: bool) -> String {
    let (st, _) = s.get("/api/v1/billing/card").await;
    if st != 200 {
        ok(
            s,
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    }
    let line = ok(s, "/api/v1/wa/lines", json!({ "calling_enabled": calling })).await;
    let id = line["id"].as_str().unwrap().to_owned();
    ok(s, &format!("/api/v1/sandbox/lines/{id}/scan"), json!({})).await;
    id
}

async fn place(s: &Server, line: &str) -> Value {
    let (st, b) = s
        .post(
            &format!("/api/v1/wa/lines/{line}/calls"),
            json!({ "to": TO }),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    b
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn call(s: &Server, id: &str) -> Value {
    let (st, b) = s.get(&format!("/api/v1/calls/{id}")).await;
    assert_eq!(st, 200, "{b}");
    b
}

fn ended(c: &Value, reason: &str) {
    assert_eq!(
        (c["status"].as_str(), c["end_reason"].as_str()),
        (Some("ended"), Some(reason)),
        "{c}"
    );
    assert_eq!(c["media_url"], Value::Null, "no audio once over: {c}");
}

fn verify(secret: &str, r: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .is_ok()
}

both_backends!(
    test_an_outbound_call_rings_is_answered_and_completes,
    outbound
);
async fn outbound(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let rx = Receiver::start().await;
    ok(
        &s,
        "/api/v1/webhooks/endpoints",
        json!({"url": rx.url, "events": ["call.ringing", "call.answered", "call.ended"]}),
    )
    .await;
    let secret = s.get("/api/v1/webhooks/secret").await.1["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = ready_line(&s, true).await;

    let placed = place(&s, &line).await;
    assert_eq!(placed["object"], "call");
    assert_eq!(placed["direction"], "outbound");
    assert_eq!(placed["status"], "ringing");
    assert_eq!(placed["to"], TO);
    assert_eq!(placed["line_id"], line.as_str());
    assert!(placed["id"].as_str().unwrap().starts_with("call_"));
    assert!(placed["media_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/api/v1/calls/", s.base.replace("http", "ws"))));
    let c = id(&placed);
    rx.wait_for(1, Duration::from_secs(10)).await;

    // One call at a time on a line.
    let (st, b) = s
        .post(
            &format!("/api/v1/wa/lines/{line}/calls"),
            json!({ "to": TO }),
        )
        .await;
    assert_eq!((st, b["error"].as_str()), (409, Some("line_busy")), "{b}");

    advance(&s, 5).await;
    let answered = ok(&s, &format!("/api/v1/sandbox/calls/{c}/answer"), json!({})).await;
    assert_eq!(answered["status"], "answered");
    rx.wait_for(2, Duration::from_secs(10)).await;
    advance(&s, 180).await;
    let done = ok(&s, &format!("/api/v1/calls/{c}/hangup"), json!({})).await;
    ended(&done, "completed");
    assert_eq!(done["duration_seconds"], 180);
    assert_eq!(
        call(&s, &c).await,
        done,
        "what GET shows is what hangup said"
    );

    // The three webhooks arrived in order, signed, each with the call as it was then.
    let got = rx.wait_for(3, Duration::from_secs(10)).await;
    let bodies: Vec<Value> = got.iter().map(Received::json).collect();
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["call.ringing", "call.answered", "call.ended"]);
    assert!(got.iter().all(|r| verify(&secret, r)), "signed");
    let statuses: Vec<&str> = bodies
        .iter()
        .map(|b| b["data"]["call"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ringing", "answered", "ended"]);
    assert_eq!(bodies[2]["data"]["call"]["duration_seconds"], 180);
    assert_eq!(bodies[2]["data"]["call"]["end_reason"], "completed");

    // Once over: nothing changes it, and the line is free again.
    let (st, b) = s
        .post(&format!("/api/v1/calls/{c}/hangup"), json!({}))
        .await;
    assert_eq!((st, b["error"].as_str()), (409, Some("call_ended")), "{b}");
    let (st, b) = s
        .post(&format!("/api/v1/sandbox/calls/{c}/answer"), json!({}))
        .await;
    assert_eq!((st, b["error"].as_str()), (409, Some("call_ended")), "{b}");
    let next = place(&s, &line).await;
    ok(
        &s,
        &format!("/api/v1/calls/{}/hangup", id(&next)),
        json!({}),
    )
    .await;
    let (st, list) = s.get(&format!("/api/v1/wa/lines/{line}/calls")).await;
    assert_eq!(st, 200, "{list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id(&next).as_str(), c.as_str()], "newest first");

    // A retried request with the same Idempotency-Key places one call.
    let keyed = || {
        s.req(Method::POST, &format!("/api/v1/wa/lines/{line}/calls"))
            .header("Idempotency-Key", "call-once")
            .json(&json!({ "to": TO }))
    };
    let (first, a) = send(keyed()).await;
    let (again, b) = send(keyed()).await;
    assert_eq!((first, again), (201, 201), "{a} {b}");
    assert_eq!(a["id"], b["id"]);
    ok(&s, &format!("/api/v1/calls/{}/hangup", id(&a)), json!({})).await;
}

both_backends!(test_every_end_reason, end_reasons);
async fn end_reasons(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let line = ready_line(&s, true).await;

    // The other phone refuses, is busy, or never answers.
    for (action, reason) in [("reject", "rejected"), ("busy", "busy")] {
        let c = id(&place(&s, &line).await);
        let after = ok(
            &s,
            &format!("/api/v1/sandbox/calls/{c}/{action}"),
            json!({}),
        )
        .await;
        ended(&after, reason);
        assert_eq!(after["duration_seconds"], 0);
    }
    let c = id(&place(&s, &line).await);
    advance(&s, 59).await;
    assert_eq!(
        call(&s, &c).await["status"],
        "ringing",
        "still ringing at 59 s"
    );
    advance(&s, 1).await;
    ended(&call(&s, &c).await, "missed");

    // We hang up before an answer; the other phone hangs up after one.
    let c = id(&place(&s, &line).await);
    ended(
        &ok(&s, &format!("/api/v1/calls/{c}/hangup"), json!({})).await,
        "canceled",
    );
    let c = id(&place(&s, &line).await);
    ok(&s, &format!("/api/v1/sandbox/calls/{c}/answer"), json!({})).await;
    advance(&s, 42).await;
    let done = ok(&s, &format!("/api/v1/sandbox/calls/{c}/hangup"), json!({})).await;
    ended(&done, "completed");
    assert_eq!(done["duration_seconds"], 42);

    // A number that is not on WhatsApp: the call fails at once.
    let (st, failed) = s
        .post(
            &format!("/api/v1/wa/lines/{line}/calls"),
            json!({ "to": wagate_app::connector::simulator::NOT_ON_WHATSAPP }),
        )
        .await;
    assert_eq!(st, 201, "{failed}");
    ended(&failed, "failed");

    // Inbound: accepted then hung up by the caller; rejected; missed after 60 s; the caller
    // giving up before an answer.
    let ring = |from: &'static str| {
        let s = &s;
        let line = &line;
        async move {
            let (st, b) = s
                .post(
                    &format!("/api/v1/sandbox/lines/{line}/incoming_call"),
                    json!({ "from": from }),
                )
                .await;
            assert_eq!(st, 201, "{b}");
            assert_eq!(
                (b["direction"].as_str(), b["status"].as_str()),
                (Some("inbound"), Some("ringing"))
            );
            assert_eq!(b["from"], from);
            id(&b)
        }
    };
    let c = ring("+447700900555").await;
    let (st, b) = s
        .post(
            &format!("/api/v1/sandbox/lines/{line}/incoming_call"),
            json!({ "from": "+447700900556" }),
        )
        .await;
    assert_eq!((st, b["error"].as_str()), (409, Some("line_busy")), "{b}");
    let (st, b) = s
        .post(&format!("/api/v1/sandbox/calls/{c}/answer"), json!({}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    let answered = ok(&s, &format!("/api/v1/calls/{c}/accept"), json!({})).await;
    assert_eq!(answered["status"], "answered");
    advance(&s, 30).await;
    let done = ok(&s, &format!("/api/v1/sandbox/calls/{c}/hangup"), json!({})).await;
    ended(&done, "completed");
    assert_eq!(done["duration_seconds"], 30);

    let c = ring("+447700900555").await;
    ended(
        &ok(&s, &format!("/api/v1/calls/{c}/reject"), json!({})).await,
        "rejected",
    );
    let c = ring("+447700900555").await;
    advance(&s, 61).await;
    ended(&call(&s, &c).await, "missed");
    let c = ring("+447700900555").await;
    ended(
        &ok(&s, &format!("/api/v1/sandbox/calls/{c}/hangup"), json!({})).await,
        "missed",
    );

    // Accept and reject are for inbound calls that ring.
    let c = id(&place(&s, &line).await);
    let (st, b) = s
        .post(&format!("/api/v1/calls/{c}/accept"), json!({}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    ok(&s, &format!("/api/v1/calls/{c}/hangup"), json!({})).await;
}

both_backends!(test_calls_are_refused_clearly, refusals);
async fn refusals(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let calling = ready_line(&s, true).await;
    let messaging = ready_line(&s, false).await;

    let (st, b) = s
        .post(
            &format!("/api/v1/wa/lines/{messaging}/calls"),
            json!({ "to": TO }),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (403, Some("calling_not_enabled")),
        "{b}"
    );
    let (st, b) = s
        .post(
            &format!("/api/v1/sandbox/lines/{messaging}/incoming_call"),
            json!({ "from": TO }),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (403, Some("calling_not_enabled")),
        "{b}"
    );
    for body in [
        json!({}),
        json!({"to": "0044"}),
        json!({"to": TO, "x": 1}),
        json!({"to": 5}),
    ] {
        let (st, b) = s
            .post(&format!("/api/v1/wa/lines/{calling}/calls"), body.clone())
            .await;
        assert_eq!(
            (st, b["error"].as_str()),
            (422, Some("invalid_field")),
            "{body} {b}"
        );
    }
    let (st, b) = s
        .post("/api/v1/wa/lines/line_nope/calls", json!({ "to": TO }))
        .await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");
    let (st, b) = s.get("/api/v1/calls/call_nope").await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");

    // A line that is not ready cannot call.
    let pending = ok(&s, "/api/v1/wa/lines", json!({ "calling_enabled": true })).await;
    let (st, b) = s
        .post(
            &format!("/api/v1/wa/lines/{}/calls", id(&pending)),
            json!({ "to": TO }),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_not_ready")),
        "{b}"
    );

    // Another account sees none of it.
    let c = id(&place(&s, &calling).await);
    let (_, other_key) = create_account(&backing, "Other Ltd").await;
    let as_other = |m: Method, path: String| {
        s.http
            .request(m, format!("{}{path}", s.base))
            .bearer_auth(&other_key)
    };
    for (m, path) in [
        (Method::GET, format!("/api/v1/calls/{c}")),
        (Method::POST, format!("/api/v1/calls/{c}/hangup")),
        (Method::POST, format!("/api/v1/calls/{c}/accept")),
        (Method::GET, format!("/api/v1/wa/lines/{calling}/calls")),
        (Method::POST, format!("/api/v1/wa/lines/{calling}/calls")),
        (Method::POST, format!("/api/v1/sandbox/calls/{c}/answer")),
    ] {
        let body = if path.ends_with("/calls") {
            json!({ "to": TO })
        } else {
            json!({})
        };
        let (st, b) = send(as_other(m.clone(), path.clone()).json(&body)).await;
        assert_eq!(
            (st, b["error"].as_str()),
            (404, Some("not_found")),
            "{m} {path}: {b}"
        );
    }
    assert_eq!(call(&s, &c).await["status"], "ringing", "untouched");
}

/// 20 ms of a 1 kHz tone at 16 kHz, 16-bit little-endian, starting at sample `from`.
fn tone_frame(from: usize) -> Vec<u8> {
    (from..from + 320)
        .flat_map(|n| {
            let t = n as f64 / 16_000.0;
            let v = (f64::sin(2.0 * std::f64::consts::PI * 1_000.0 * t) * 8_000.0) as i16;
            v.to_le_bytes()
        })
        .collect()
}

both_backends!(test_the_media_socket_echoes_audio, media);
async fn media(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let line = ready_line(&s, true).await;
    let placed = place(&s, &line).await;
    let c = id(&placed);
    let url = placed["media_url"].as_str().unwrap().to_owned();

    // Before the answer there is no audio to carry.
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 409),
        "{refused:?}"
    );
    ok(&s, &format!("/api/v1/sandbox/calls/{c}/answer"), json!({})).await;

    // A wrong token, or another call's id with this token, is refused.
    let wrong = url.replace("token=", "token=x");
    let refused = tokio_tungstenite::connect_async(wrong.as_str()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );

    // Two seconds of a 1 kHz tone come back frame for frame from the echoing party.
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let frames: Vec<Vec<u8>> = (0..100).map(|i| tone_frame(i * 320)).collect();
    let sent = frames.clone();
    // Sent in real time, one frame every 20 ms, as a microphone produces them (a client
    // that bursts faster than real time overflows the one-second queue and loses frames).
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for f in sent {
            tick.tick().await;
            tx.send(Message::Binary(f.into())).await.unwrap();
        }
        tx
    });
    let mut echoed = Vec::new();
    while echoed.len() < frames.len() {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.next()).await;
        if m.is_err() {
            let metrics = s.metrics().await;
            let calls: Vec<&str> = metrics
                .lines()
                .filter(|l| l.contains("call_frames"))
                .collect();
            panic!(
                "no echo within 10 s after {} frames: {calls:?}",
                echoed.len()
            );
        }
        let m = m.unwrap().unwrap().unwrap();
        if let Message::Binary(b) = m {
            echoed.push(b.to_vec());
        }
    }
    assert_eq!(echoed.len(), 100);
    assert!(echoed.iter().all(|f| f.len() == 640));
    assert_eq!(echoed, frames, "the same audio, in order");
    let _tx = writer.await.unwrap();

    // Hanging up closes the socket, and the token no longer opens it.
    ok(&s, &format!("/api/v1/calls/{c}/hangup"), json!({})).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket closes when the call ends");
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 409),
        "{refused:?}"
    );
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("wagate_call_frames_total{direction=\"to_phone\"} 100"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wagate_call_frames_dropped_total 0"),
        "{metrics}"
    );
}

both_backends!(
    test_thirty_days_of_hour_long_calls_flag_the_line_once,
    fair_use
);
async fn fair_use(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let line = ready_line(&s, true).await;
    let messaging = ready_line(&s, false).await;
    let (_, l) = s.get(&format!("/api/v1/wa/lines/{messaging}")).await;
    assert_eq!(
        l["fair_use"],
        Value::Null,
        "messaging lines have no fair use"
    );
    let (_, l) = s.get(&format!("/api/v1/wa/lines/{line}")).await;
    assert_eq!(
        l["fair_use"],
        json!({"avg_minutes_30d": 0.0, "flagged": false})
    );

    for day in 0..30 {
        let c = id(&place(&s, &line).await);
        ok(&s, &format!("/api/v1/sandbox/calls/{c}/answer"), json!({})).await;
        advance(&s, 3600).await;
        let done = ok(&s, &format!("/api/v1/calls/{c}/hangup"), json!({})).await;
        assert_eq!(done["duration_seconds"], 3600, "day {day}");
        let (_, l) = s.get(&format!("/api/v1/wa/lines/{line}")).await;
        // 50 min/day over 30 days is 25 hours: flagged from the 25th hour on.
        assert_eq!(l["fair_use"]["flagged"], day >= 24, "day {day}: {l}");
        if day < 29 {
            advance(&s, 86_400 - 3600).await;
        }
    }
    let (_, l) = s.get(&format!("/api/v1/wa/lines/{line}")).await;
    assert_eq!(
        l["fair_use"],
        json!({"avg_minutes_30d": 60.0, "flagged": true})
    );
    let (_, list) = s.get("/api/v1/wa/lines").await;
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == line.as_str())
        .unwrap();
    assert_eq!(listed["fair_use"]["flagged"], true, "lists show it too");
    let (_, events) = s
        .get(&format!(
            "/api/v1/webhooks/events?type=line.fair_use_exceeded&line_id={line}"
        ))
        .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "flagged once: {events:?}");
    let body = match &events[0]["body"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    assert_eq!(body["data"]["fair_use"]["flagged"], true, "{body}");
    // Nothing is blocked: the line still calls.
    let c = id(&place(&s, &line).await);
    ok(&s, &format!("/api/v1/calls/{c}/hangup"), json!({})).await;
}

/// Polls a call until it ended (the worker applies a line's release in a job).
async fn wait_ended(s: &Server, c: &str) -> Value {
    for _ in 0..100 {
        let v = call(s, c).await;
        if v["status"] == "ended" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("call {c} did not end: {}", call(s, c).await);
}

both_backends!(test_a_call_ends_with_its_line, line_goes_away);
async fn line_goes_away(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;

    // The connection drops during a call: the call fails, and the line is free once back.
    let line = ready_line(&s, true).await;
    let c = id(&place(&s, &line).await);
    ok(&s, &format!("/api/v1/sandbox/calls/{c}/answer"), json!({})).await;
    ok(
        &s,
        &format!("/api/v1/sandbox/lines/{line}/disconnect"),
        json!({"transient": true}),
    )
    .await;
    ended(&wait_ended(&s, &c).await, "failed");

    // A released line's call ends too: nothing stays answered on a line that is gone.
    let line = ready_line(&s, true).await;
    let c = id(&place(&s, &line).await);
    ok(&s, &format!("/api/v1/sandbox/calls/{c}/answer"), json!({})).await;
    let (st, b) = s
        .req(Method::DELETE, &format!("/api/v1/wa/lines/{line}"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(st, 200, "{b:?}");
    ended(&wait_ended(&s, &c).await, "failed");
    let (st, b) = s
        .post(
            &format!("/api/v1/wa/lines/{line}/calls"),
            json!({ "to": TO }),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_released")),
        "{b}"
    );
}
