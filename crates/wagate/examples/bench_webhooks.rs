//! Webhook delivery benchmark: sustained deliveries per second to a loopback receiver, and
//! latency from event commit to first attempt at a steady event rate.
//!
//! ```sh
//! cargo build --release -p wagate --examples
//! target/release/examples/bench_webhooks                      # SQLite
//! target/release/examples/bench_webhooks postgres://postgres@127.0.0.1:5432/postgres
//! ```
//! Environment: `EVENTS` (throughput phase, default 20000), `RATE` (latency phase events/s,
//! default 500), `SECONDS` (latency phase length, default 10), `WAGATE_BIN` (default: the
//! release binary next to this example).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{json, Value};

#[path = "support/mod.rs"]
mod support;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(a): State<Arrivals>, headers: HeaderMap) -> &'static str {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    a.lock().unwrap().entry(id).or_insert_with(Instant::now);
    "ok"
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn fire(http: &reqwest::Client, base: &str, key: &str, ep: &str) -> String {
    let v: Value = http
        .post(format!("{base}/api/v1/webhooks/endpoints/{ep}/test"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::main]
async fn main() {
    let pg = std::env::args().nth(1);
    let bin = support::wagate_bin();
    let dir = tempfile::tempdir().unwrap();
    let (store, backend) = support::bench_store(pg.as_deref(), dir.path()).await;
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();

    // Phase 1: queue EVENTS with no worker running, then start one and time the drain.
    let n = env("EVENTS", 20_000) as usize;
    let no_worker = [store.clone(), vec!["--no-worker".to_owned()]].concat();
    let s = support::start_sandbox(&bin, &no_worker, "error", Stdio::inherit()).await;
    let ep: Value = http
        .post(format!("{}/api/v1/webhooks/endpoints", s.base))
        .bearer_auth(&s.key)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ep = ep["id"].as_str().unwrap().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (h, base, key, ep) = (http.clone(), s.base.clone(), s.key.clone(), ep.clone());
        tasks.spawn(async move { fire(&h, &base, &key, &ep).await });
        while tasks.len() >= 64 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    drop(s);
    let started = Instant::now();
    let s = support::start_sandbox(&bin, &store, "error", Stdio::inherit()).await;
    while arrivals.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{backend}: drained {n} queued deliveries in {secs:.2} s = {:.0} deliveries/s (including server start)",
        n as f64 / secs
    );

    // Phase 2: RATE events/s for SECONDS; latency from the API's answer (the commit) to arrival.
    let rate = env("RATE", 500);
    let total = rate * env("SECONDS", 10);
    let mut interval = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        interval.tick().await;
        let (h, c) = (http.clone(), committed.clone());
        let (base, key, ep) = (s.base.clone(), s.key.clone(), ep.clone());
        tasks.spawn(async move {
            let id = fire(&h, &base, &key, &ep).await;
            c.lock().unwrap().insert(id, Instant::now());
        });
    }
    while tasks.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < n + total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arr = arrivals.lock().unwrap();
    let mut lat: Vec<f64> = committed
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, t)| {
            arr.get(id)
                .map(|a| a.saturating_duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{backend}: {rate} events/s for {} s: {} delivered, commit→first attempt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total / rate,
        lat.len(),
        support::percentile(&lat, 0.5),
        support::percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    drop(s);
}
