//! Calling benchmark (issue 13): CALLS concurrent sandbox calls with audio both ways through
//! the release `wagate serve --sandbox` on SQLite (or PostgreSQL with a URL argument).
//!
//! ```sh
//! cargo build --release -p wagate --bins --examples
//! flock /tmp/wagate-bench.lock target/release/examples/bench_calls [postgres://…]
//! ```
//! Seeds CALLS calling lines over HTTP, places a call on each, has the sandbox party answer,
//! opens every call's media socket and streams real-time audio (one 640-byte frame every
//! 20 ms) for SECONDS. Each frame carries its sequence number and send instant, so the echo
//! the sandbox party returns gives the round trip through the server. Reports the server's
//! CPU per call (CPU seconds over the streaming window / calls / seconds, as a share of one
//! core), frames sent, echoed and dropped (the server's own counter), and round-trip
//! percentiles. Environment: `CALLS` (default 100), `SECONDS` (default 20), `WAGATE_BIN`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/mod.rs"]
mod support;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn post(http: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::main]
async fn main() {
    let calls = env("CALLS", 100) as usize;
    let seconds = env("SECONDS", 20);
    let pg = std::env::args().nth(1);
    let dir = tempfile::tempdir().unwrap();
    let (args, store) = support::bench_store(pg.as_deref(), dir.path()).await;
    let bin = support::wagate_bin();
    let server = support::start_sandbox(&bin, &args, "warn", Stdio::inherit()).await;
    let (base, key) = (server.base.clone(), server.key.clone());
    let http = reqwest::Client::new();
    post(
        &http,
        &base,
        &key,
        "/api/v1/billing/card",
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
    // Seed: a calling line and a call answered by the sandbox party, for each call.
    let mut urls = Vec::with_capacity(calls);
    for i in 0..calls {
        let line = post(
            &http,
            &base,
            &key,
            "/api/v1/wa/lines",
            json!({"calling_enabled": true}),
        )
        .await;
        let line = line["id"].as_str().unwrap().to_owned();
        let number = format!("+4477009{i:05}");
        post(
            &http,
            &base,
            &key,
            &format!("/api/v1/sandbox/lines/{line}/scan"),
            json!({"phone_number": number}),
        )
        .await;
        let call = post(
            &http,
            &base,
            &key,
            &format!("/api/v1/wa/lines/{line}/calls"),
            json!({"to": "+447700900123"}),
        )
        .await;
        let id = call["id"].as_str().unwrap();
        post(
            &http,
            &base,
            &key,
            &format!("/api/v1/sandbox/calls/{id}/answer"),
            json!({}),
        )
        .await;
        urls.push(call["media_url"].as_str().unwrap().to_owned());
    }
    let mut sockets = Vec::with_capacity(calls);
    for url in &urls {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        sockets.push(ws);
    }
    eprintln!("{calls} calls answered, streaming {seconds} s of audio on each ({store})");
    let pid = server.child.id().unwrap();
    let cpu_before = support::process_cpu(pid);
    let started = Instant::now();
    let rtts = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut tasks = Vec::new();
    let frames_each = seconds * 50;
    for ws in sockets {
        let rtts = rtts.clone();
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let origin = Instant::now();
            let writer = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                for seq in 0..frames_each {
                    tick.tick().await;
                    let mut frame = vec![0u8; 640];
                    frame[..8].copy_from_slice(&seq.to_le_bytes());
                    let at = origin.elapsed().as_nanos() as u64;
                    frame[8..16].copy_from_slice(&at.to_le_bytes());
                    if tx.send(Message::Binary(frame.into())).await.is_err() {
                        break;
                    }
                }
                tx
            });
            let mut got = 0u64;
            let mut mine = Vec::with_capacity(frames_each as usize);
            let deadline = Duration::from_secs(seconds + 5);
            while got < frames_each {
                let Ok(Some(Ok(m))) = tokio::time::timeout(deadline, rx.next()).await else {
                    break;
                };
                if let Message::Binary(b) = m {
                    let at = u64::from_le_bytes(b[8..16].try_into().unwrap());
                    let now = origin.elapsed().as_nanos() as u64;
                    mine.push((now.saturating_sub(at)) as f64 / 1e6);
                    got += 1;
                }
            }
            let _tx = writer.await;
            rtts.lock().await.extend(mine);
            got
        }));
    }
    let mut echoed = 0;
    for t in tasks {
        echoed += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = support::process_cpu(pid) - cpu_before;
    let metrics = support::get_text(&http, &format!("{base}/metrics")).await;
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wagate_call_frames_dropped_total "))
        .unwrap_or("?")
        .to_owned();
    let mut rtts = rtts.lock().await.clone();
    rtts.sort_by(f64::total_cmp);
    let sent = frames_each * calls as u64;
    println!(
        "bench_calls ({store}): {calls} calls x {seconds} s: frames sent {sent}, echoed {echoed}, \
         dropped by the server {dropped}; round trip p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         server CPU {:.2} s over {:.1} s = {:.2} % of a core per call",
        support::percentile(&rtts, 0.50),
        support::percentile(&rtts, 0.99),
        rtts.last().copied().unwrap_or(0.0),
        cpu,
        elapsed,
        cpu / elapsed / calls as f64 * 100.0,
    );
}
