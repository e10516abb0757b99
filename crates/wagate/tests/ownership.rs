//! Line ownership across servers (PostgreSQL: the one store several servers share): a line's
//! messages are sent by the one server that serves it, once each and in order, whichever
//! server the API request reached; when that server is killed, another serves the line
//! within 30 s.

mod common;

use std::time::{Duration, Instant};

use common::{fresh, Server};
use serde_json::{json, Value};

/// `wagate_lines_served` from a server's `/metrics`.
async fn lines_served(s: &Server) -> u64 {
    s.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("wagate_lines_served "))
        .expect("wagate_lines_served in /metrics")
        .trim()
        .parse()
        .unwrap()
}

/// Polls (real time: the sending worker is another process) until `message` has left the
/// queue; its status then.
async fn wait_sent(s: &Server, line: &str, message: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let (st, list) = s
            .get(&format!("/api/v1/wa/lines/{line}/messages?limit=100"))
            .await;
        assert_eq!(st, 200, "{list}");
        let m = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == message)
            .cloned()
            .expect("the message is listed");
        let status = m["status"].as_str().unwrap().to_owned();
        if status != "queued" || start.elapsed() > within {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send_text(s: &Server, line: &str, text: &str) -> String {
    let (st, m) = s
        .post(
            &format!("/api/v1/wa/lines/{line}/messages"),
            json!({"to": "+447700900123", "text": text}),
        )
        .await;
    assert_eq!(st, 202, "{m}");
    m["id"].as_str().unwrap().to_owned()
}

/// The `message.status` events saying `sent`, per message id.
async fn sent_events(s: &Server, line: &str) -> Vec<String> {
    let (st, b) = s
        .get(&format!(
            "/api/v1/webhooks/events?type=message.status&line_id={line}&limit=200"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["body"]["data"]["message"]["status"] == "sent")
        .map(|e| {
            e["body"]["data"]["message"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn test_a_killed_servers_lines_are_served_by_another_within_30_s() {
    let (backing, _guard) = fresh("postgres").await;
    let a = Server::sandbox(&backing).await;
    let mut b = Server::sandbox(&backing).await;
    b.key = a.key.clone();

    let (st, card) = a
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    assert_eq!(st, 201, "{card}");
    let (st, l) = a.post("/api/v1/wa/lines", json!({})).await;
    assert_eq!(st, 201, "{l}");
    let line = l["id"].as_str().unwrap().to_owned();
    let (st, ready) = a
        .post(&format!("/api/v1/sandbox/lines/{line}/scan"), json!({}))
        .await;
    assert_eq!(st, 200, "{ready}");

    // Messages sent through both servers' APIs go out through one of them.
    let mut ids = Vec::new();
    for i in 0..6 {
        let via = if i % 2 == 0 { &a } else { &b };
        ids.push(send_text(via, &line, &format!("m{i}")).await);
    }
    for id in &ids {
        assert_eq!(
            wait_sent(&a, &line, id, Duration::from_secs(20)).await,
            "sent"
        );
    }
    let (served_a, served_b) = (lines_served(&a).await, lines_served(&b).await);
    assert_eq!(served_a + served_b, 1, "exactly one server serves the line");

    // Kill the server that serves it; the survivor takes the line over and sends.
    let (owner, survivor) = if served_a == 1 { (a, b) } else { (b, a) };
    owner.kill().await;
    let killed_at = Instant::now();
    let after = send_text(&survivor, &line, "after the crash").await;
    assert_eq!(
        wait_sent(&survivor, &line, &after, Duration::from_secs(30)).await,
        "sent",
        "the survivor did not serve the line within 30 s"
    );
    eprintln!("line served again {:?} after the kill", killed_at.elapsed());
    assert_eq!(lines_served(&survivor).await, 1);
    ids.push(after);

    // Each message announced as sent exactly once.
    let mut sent = sent_events(&survivor, &line).await;
    sent.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(sent, want, "one 'sent' event per message");

    // The line's messages left in the order they were queued.
    let (st, list) = survivor
        .get(&format!("/api/v1/wa/lines/{line}/messages?limit=100"))
        .await;
    assert_eq!(st, 200, "{list}");
    let texts: Vec<Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(
        texts,
        ["m0", "m1", "m2", "m3", "m4", "m5", "after the crash"].map(Value::from)
    );
}
