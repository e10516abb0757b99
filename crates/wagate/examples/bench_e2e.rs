//! End-to-end webhook load generator: N concurrent clients create events over a webhook
//! server's public API for a fixed time, while a loopback receiver counts distinct
//! `webhook-id`s. Reports events accepted, delivered, delivered/s from the load's start to
//! the last delivery, API latency p50/p99, the backlog when the load stopped, and the
//! server's CPU-seconds (and PostgreSQL's, when it runs on this machine) and peak RSS.
//!
//! ```sh
//! cargo build --release -p wagate --bins --examples
//! target/release/examples/bench_e2e                                  # wagate on SQLite
//! target/release/examples/bench_e2e postgres://postgres@127.0.0.1:5432/postgres
//! ```
//! Environment: `CLIENTS` (default 32), `SECONDS` (default 20), `WAGATE_BIN` (default: the
//! release binary next to this example).
//!
//! The load and the receiver know a server only through [`EventApi`]: another webhook server
//! is measured the same way by implementing it (its setup registers the receiver's URL, its
//! `send` creates one event and returns whether the API accepted it). The repo ships the
//! wagate side only. Every request loop is bounded in time, and only loopback is targeted.

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

/// A webhook server under load, seen only through its public API.
trait EventApi: Send + Sync + 'static {
    /// Creates one event for the receiver; whether the API accepted it (a 2xx).
    fn send(&self, http: &reqwest::Client) -> impl std::future::Future<Output = bool> + Send;
}

/// wagate: `POST /api/v1/webhooks/endpoints/{id}/test`, one `webhook.test` event each.
struct Wagate {
    url: String,
    key: String,
}

impl EventApi for Wagate {
    async fn send(&self, http: &reqwest::Client) -> bool {
        match http.post(&self.url).bearer_auth(&self.key).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }
}

/// The first arrival of each `webhook-id`, and every request received.
#[derive(Default)]
struct Arrivals {
    first: HashMap<String, Instant>,
    requests: u64,
}

type Shared = Arc<Mutex<Arrivals>>;

async fn receive(State(a): State<Shared>, headers: HeaderMap) -> &'static str {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut a = a.lock().unwrap();
    a.requests += 1;
    a.first.entry(id).or_insert_with(Instant::now);
    "ok"
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set of a process, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let pg = std::env::args().nth(1);
    let bin = support::wagate_bin();
    let dir = tempfile::tempdir().unwrap();
    let (store, backend) = support::bench_store(pg.as_deref(), dir.path()).await;

    let arrivals: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let log = dir.path().join("server.log");
    let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
    let mut server = support::start_sandbox(&bin, &store, "warn", stderr).await;
    let pid = server.child.id().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let ep: Value = http
        .post(format!("{}/api/v1/webhooks/endpoints", server.base))
        .bearer_auth(&server.key)
        .json(&json!({"url": hook, "events": ["webhook.test"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = Arc::new(Wagate {
        url: format!(
            "{}/api/v1/webhooks/endpoints/{}/test",
            server.base,
            ep["id"].as_str().expect("an endpoint id")
        ),
        key: server.key.clone(),
    });

    let clients = env("CLIENTS", 32) as usize;
    let seconds = env("SECONDS", 20);
    let (cpu0, pg_cpu0) = (support::process_cpu(pid), support::postgres_cpu());
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(seconds);
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (api, http) = (api.clone(), http.clone());
        load.spawn(async move {
            let (mut accepted, mut refused, mut lat) = (0u64, 0u64, Vec::new());
            while Instant::now() < stop_at {
                let t = Instant::now();
                if api.send(&http).await {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (accepted, refused, lat)
        });
    }
    let (mut accepted, mut refused, mut lat) = (0, 0, Vec::new());
    while let Some(r) = load.join_next().await {
        let (a, r, l) = r.unwrap();
        accepted += a;
        refused += r;
        lat.extend(l);
    }
    let load_secs = started.elapsed().as_secs_f64();
    let delivered_at_end = arrivals.lock().unwrap().first.len() as u64;
    let backlog = accepted.saturating_sub(delivered_at_end);

    // Drain: bounded wait for every accepted event.
    let deadline = Instant::now() + Duration::from_secs(300);
    while (arrivals.lock().unwrap().first.len() as u64) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (cpu, pg_cpu) = (
        support::process_cpu(pid) - cpu0,
        support::postgres_cpu() - pg_cpu0,
    );
    let rss = peak_rss_mb(pid);
    let (delivered, requests, last) = {
        let a = arrivals.lock().unwrap();
        let last = a.first.values().max().copied().unwrap_or(started);
        (a.first.len() as u64, a.requests, last)
    };
    let span = last.saturating_duration_since(started).as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let rate = accepted as f64 / load_secs;
    println!("{backend}, {clients} clients for {seconds} s:");
    println!(
        "  accepted {accepted} ({rate:.0}/s), refused {refused}, API p50 {:.1} ms, p99 {:.1} ms",
        support::percentile(&lat, 0.5),
        support::percentile(&lat, 0.99)
    );
    println!(
        "  delivered {delivered} distinct of {accepted} accepted ({requests} requests received); \
         {:.0} events/s end to end ({span:.2} s from the load's start to the last delivery)",
        delivered as f64 / span.max(f64::EPSILON)
    );
    println!(
        "  backlog when the load stopped: {backlog} events ({:.2} s of load)",
        backlog as f64 / rate.max(f64::EPSILON)
    );
    println!(
        "  CPU: wagate {cpu:.1} s{}; {:.0} events per CPU-second; wagate peak RSS {rss:.0} MB",
        if pg.is_some() {
            format!(", PostgreSQL {pg_cpu:.1} s")
        } else {
            String::new()
        },
        delivered as f64 / (cpu + if pg.is_some() { pg_cpu } else { 0.0 }).max(f64::EPSILON)
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();
    println!("  server log: {} ERROR/WARN lines", bad.len());
    for l in bad.iter().take(10) {
        println!("    {l}");
    }
    if delivered < accepted {
        println!(
            "  LOST: {} accepted events never arrived",
            accepted - delivered
        );
        std::process::exit(1);
    }
    let _ = server.child.kill().await;
}
