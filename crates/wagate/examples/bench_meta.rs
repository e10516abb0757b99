//! Meta status webhook ingest benchmark (issue #12): how many `delivered` statuses per second
//! wagate verifies, applies, prices with the engine and debits, and their latency.
//!
//! ```sh
//! cargo build --release -p wagate --bins --examples
//! target/release/examples/bench_meta                                  # wagate on SQLite
//! target/release/examples/bench_meta postgres://postgres@127.0.0.1:5432/postgres
//! ```
//! Environment: `MESSAGES` (default 20000), `CLIENTS` (default 32), `USERS` (default 5000),
//! `WAGATE_BIN` (default: the release binary next to this example), `LOG` (the server's log
//! level, default `warn`) and `SERVER_LOG` (where its log goes, default a temporary file).
//!
//! Setup: a local fake of Meta's Graph API (crates/meta), two cloud lines, a funded wallet,
//! and MESSAGES templates (half marketing, 30 % utility, 20 % authentication) sent through the
//! API to USERS Indian numbers. Then CLIENTS concurrent clients post one signed `delivered`
//! status per message, as Meta would, and time each answer. Afterwards it checks that every
//! message was priced exactly once (the reconciliation's count) and reads the server log:
//! no ERROR or WARN line. Only loopback is targeted.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use wagate_meta::fake::{FakeGraph, StatusEvent};
use wagate_meta::webhook::MessageStatus;

#[path = "support/mod.rs"]
mod support;

const SECRET: &str = "bench-secret";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn call(http: &reqwest::Client, key: &str, url: String, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::main]
async fn main() {
    let messages = env("MESSAGES", 20_000);
    let clients = env("CLIENTS", 32);
    let users = env("USERS", 5_000);
    let fake = FakeGraph::start().await.unwrap();
    let numbers = ["1065550001", "1065550002"];
    for (i, id) in numbers.iter().enumerate() {
        fake.add_number(
            id,
            &format!("+1555000000{i}"),
            "Bench",
            "900000",
            "bench-token",
        );
    }
    for category in ["marketing", "utility", "authentication"] {
        fake.add_template(&format!("t_{category}"), "en_US", &category.to_uppercase());
    }
    std::env::set_var("WAGATE_META_GRAPH_URL", fake.base_url());
    std::env::set_var("WAGATE_META_APP_SECRET", SECRET);
    let dir = tempfile::tempdir().unwrap();
    let pg = std::env::args().nth(1);
    let (store, backend) = support::bench_store(pg.as_deref(), dir.path()).await;
    let log = std::env::var("SERVER_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("server.log"));
    let level = std::env::var("LOG").unwrap_or_else(|_| "warn".into());
    let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
    let bin = support::wagate_bin();
    let server = support::start_sandbox(&bin, &store, &level, stderr).await;
    let pid = server.child.id().unwrap();
    let http = reqwest::Client::new();
    let (base, key) = (server.base.clone(), server.key.clone());
    call(
        &http,
        &key,
        format!("{base}/api/v1/billing/card"),
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
    let (st, b) = call(
        &http,
        &key,
        format!("{base}/api/v1/billing/wallet/topups"),
        json!({"amount": "10000.00"}),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let mut lines = Vec::new();
    for id in numbers {
        let (st, line) = call(
            &http,
            &key,
            format!("{base}/api/v1/wa/lines"),
            json!({"kind": "cloud", "cloud": {"phone_number_id": id, "waba_id": "900000", "access_token": "bench-token"}}),
        )
        .await;
        assert_eq!(st, 201, "{line}");
        lines.push(line["id"].as_str().unwrap().to_owned());
    }

    // Setup: the messages, sent through the API (Meta's fake answers at once).
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, key, base, lines, next) = (
            http.clone(),
            key.clone(),
            base.clone(),
            lines.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    return;
                }
                let category = match n % 10 {
                    0..=4 => "marketing",
                    5..=7 => "utility",
                    _ => "authentication",
                };
                let to = format!("+9198{:08}", n % users);
                let (st, b) = call(
                    &http,
                    &key,
                    format!("{base}/api/v1/wa/lines/{}/messages", lines[n % lines.len()]),
                    json!({"to": to, "template": {"name": format!("t_{category}"), "language": "en_US", "category": category}}),
                )
                .await;
                assert_eq!(st, 202, "{b}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let send_secs = started.elapsed().as_secs_f64();
    let sent = fake.sent();
    assert_eq!(sent.len(), messages);

    // The measured phase: one signed `delivered` status per message, at the sandbox's time.
    let clock: Value = http
        .get(format!("{base}/api/v1/sandbox/clock"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now: jiff::Timestamp = clock["now"].as_str().unwrap().parse().unwrap();
    let hook = fake.webhooks(&format!("{base}/meta/webhooks"), SECRET);
    let sent = Arc::new(sent);
    let cpu_before = support::process_cpu(pid);
    let pg_before = support::postgres_cpu();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (hook, sent, next) = (hook.clone(), sent.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(m) = sent.get(n) else {
                    return (latencies, failed);
                };
                let event = StatusEvent::new(
                    &m.phone_number_id,
                    &m.wamid,
                    &m.to,
                    MessageStatus::Delivered,
                    now,
                );
                let t = Instant::now();
                let posted = hook.status(&event).await.unwrap();
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                if posted.status.as_u16() != 200 {
                    failed += 1;
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = support::process_cpu(pid) - cpu_before;
    let pg_cpu = support::postgres_cpu() - pg_before;
    latencies.sort_by(f64::total_cmp);

    // Every message priced once: the reconciliation counts them (no Meta pricing objects).
    let day = now;
    let r: Value = http
        .get(format!(
            "{base}/api/v1/pricing/reconciliation?start={}&end={}",
            day - jiff::SignedDuration::from_hours(1),
            day + jiff::SignedDuration::from_hours(1)
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let priced = r["unreported"].as_u64().unwrap_or(0) + r["matched"].as_u64().unwrap_or(0);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let bad: Vec<&str> = log_text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();

    println!("--- Meta status ingest, {backend}, {clients} clients ---");
    println!(
        "setup: {messages} templates sent through the API in {send_secs:.1} s ({:.0}/s)",
        messages as f64 / send_secs
    );
    println!(
        "statuses: {} in {secs:.2} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; non-200 {failed}",
        latencies.len(),
        latencies.len() as f64 / secs,
        support::percentile(&latencies, 0.5),
        support::percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    println!(
        "CPU during the statuses: wagate {cpu:.1} s ({:.0} statuses per CPU-second){}",
        latencies.len() as f64 / cpu.max(0.001),
        if backend == "PostgreSQL" {
            format!(", PostgreSQL {pg_cpu:.1} s")
        } else {
            String::new()
        }
    );
    println!(
        "priced exactly once: {priced} of {messages}; server log ERROR/WARN lines: {}",
        bad.len()
    );
    for l in bad.iter().take(5) {
        println!("  {l}");
    }
    assert_eq!(priced as usize, messages, "every message priced once");
    assert_eq!(failed, 0);
}
