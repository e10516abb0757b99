//! Renewal-day benchmark (issue 5): N ready lines whose monthly anniversaries fall within one
//! day, renewed by ONE sandbox clock advance over that day, timed over HTTP against the real
//! `wagate serve --sandbox`.
//!
//! ```sh
//! cargo build --release -p wagate --bins --examples
//! flock /tmp/wagate-bench.lock target/release/examples/bench_renewals            # SQLite
//! flock /tmp/wagate-bench.lock target/release/examples/bench_renewals postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! Setup, in-process through the app's own use cases on the store the server then opens
//! (seeding N lines over HTTP, one create, scan and activation charge each, would take far
//! longer than the measurement): the sandbox demo account, a card, wallet top-ups of
//! 10,000.00 covering every activation and renewal (so each charge is the common
//! wallet-funded one), the account's first line (free for a week: its anniversary is its trial
//! end, Feb 8, outside the measured day), then N lines scanned on 2026-01-01 at N distinct
//! instants spread evenly over `SPREAD_SECS` (864 ms apart for 100,000 over 24 h), whose
//! activation charges run in one sandbox advance. Their first renewals fall on 2026-02-01 at
//! the same N instants, so the measured advance steps the clock N times.
//!
//! Measured: with the clock at 2026-01-31T23:59:59Z, the server is started and ONE
//! `POST /api/v1/sandbox/clock/advance {"to": "2026-02-02T00:00:00Z"}` is timed. Then checked
//! over the API: N `line_charge` transactions on Feb 1 (one per line, -15.00), N
//! `charge.succeeded` of reason `renewal` for period 1, N `line.renewed` for period 1, no
//! `charge.failed`, and the ledger adds up to the wallet balance; and in the store, every
//! line has its period-1 charge row.
//!
//! Environment: `LINES` (default 100000), `SPREAD_SECS` (default 86400), `WAGATE_BIN`
//! (default: the release binary next to this example), `SEED_ONLY=1` (seed, print the store
//! and keep it), `STORE` (a data dir or PostgreSQL URL seeded before with the same `LINES`:
//! skip the seeding; the store is advanced, so give it a copy).

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use wagate_app::lines::CreateLine;
use wagate_app::App;
use wagate_domain::account::KeyMode;
use wagate_domain::clock::{Clock, ManualClock};
use wagate_domain::ids::LineId;
use wagate_domain::money::Micros;
use wagate_store::{AccountStore, LineStore, SandboxStore, SqlStore};

#[path = "support/mod.rs"]
mod support;

const START: &str = "2026-01-01T00:00:00Z";
/// Where the seeding leaves the clock: just before the renewal day.
const SEED_END: &str = "2026-01-31T23:59:59Z";
const DAY_START: &str = "2026-02-01T00:00:00Z";
const DAY_END: &str = "2026-02-02T00:00:00Z";
/// The messaging plan.
const PRICE: i64 = 15_000_000;
/// The largest top-up.
const TOPUP: i64 = 10_000_000_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Top-ups that cover the trial line's conversion and two charges of every other line.
fn topups(n: u64) -> u64 {
    let needed = PRICE as u64 * (2 * n + 1);
    needed.div_ceil(TOPUP as u64)
}

async fn open(store: &str) -> SqlStore {
    if store.starts_with("postgres") {
        SqlStore::open(store, Default::default()).await.unwrap()
    } else {
        SqlStore::open_sqlite_dir(std::path::Path::new(store))
            .await
            .unwrap()
    }
}

/// Seeds the store as the module documentation says.
async fn seed(store: &str, n: u64, spread: SignedDuration) {
    let t0 = Instant::now();
    let sql = open(store).await;
    sql.claim_store_mode(KeyMode::Test).await.unwrap();
    let start = ts(START);
    sql.save_sandbox_clock(start).await.unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let app = App::sandbox(Arc::new(sql.clone()), clock.clone()).unwrap();
    let demo = wagate_app::accounts::sandbox_demo_account(&app)
        .await
        .unwrap();
    let who = wagate_app::accounts::authenticate(&app, &demo.api_key)
        .await
        .unwrap()
        .unwrap();
    app.billing
        .add_card(&who, "cnon:card-nonce-ok")
        .await
        .unwrap();
    for _ in 0..topups(n) {
        app.billing.topup(&who, Micros(TOPUP), None).await.unwrap();
    }
    let sim = app.connector.simulator().unwrap();
    let trial = app.lines.create(&who, CreateLine::default()).await.unwrap();
    sim.scan(&trial.id, "+15550000000".into(), None)
        .await
        .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    let mut ids: Vec<(u64, LineId)> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (app, who) = (app.clone(), who.clone());
        tasks.spawn(async move {
            let l = app.lines.create(&who, CreateLine::default()).await.unwrap();
            (i, l.id)
        });
        while tasks.len() >= 32 {
            ids.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(r) = tasks.join_next().await {
        ids.push(r.unwrap());
    }
    ids.sort_by_key(|(i, _)| *i);
    println!(
        "seed: {n} lines created in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let t1 = Instant::now();
    let step = spread.as_micros() / i128::from(n);
    for (i, id) in &ids {
        let at = start + SignedDuration::from_micros(i64::try_from(step * i128::from(*i)).unwrap());
        clock.set(at);
        sim.scan(id, format!("+1555{:07}", i + 1), None)
            .await
            .unwrap();
        if (i + 1) % 20_000 == 0 {
            println!("seed: {} lines scanned", i + 1);
        }
    }
    println!(
        "seed: {n} lines scanned over {} s of business time in {:.1} s",
        spread.as_secs(),
        t1.elapsed().as_secs_f64()
    );
    let t2 = Instant::now();
    let report = app
        .scheduler
        .advance_to(&clock, ts(SEED_END))
        .await
        .unwrap();
    println!(
        "seed: activations and the trial conversion ({} jobs) in {:.1} s; clock at {}",
        report.jobs_run,
        t2.elapsed().as_secs_f64(),
        clock.now()
    );
    let billing = app.store.billing_account(&who.account.id).await.unwrap();
    let expected = topups(n) as i64 * TOPUP - PRICE * (n as i64 + 1);
    assert_eq!(billing.balance.0, expected, "every activation charged once");
    drop(app);
    sql.close().await;
    println!("seed: done in {:.1} s", t0.elapsed().as_secs_f64());
}

/// The machine's CPU counters: (busy, idle, steal) in seconds, all cores.
fn machine_cpu() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 8 {
        return (0.0, 0.0, 0.0);
    }
    // user nice system idle iowait irq softirq steal
    let busy = f[0] + f[1] + f[2] + f[5] + f[6];
    (busy / 100.0, (f[3] + f[4]) / 100.0, f[7] / 100.0)
}

/// Every object of a list endpoint, oldest first.
async fn list_all(http: &reqwest::Client, s: &support::Sandbox, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{}{path}{sep}limit=200", s.base);
        if let Some(a) = &after {
            url.push_str(&format!("&starting_after={a}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(&s.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = page["data"].as_array().expect("a list").clone();
        after = data.last().map(|o| o["id"].as_str().unwrap().to_owned());
        out.extend(data);
        if page["has_more"] != json!(true) {
            break;
        }
    }
    out.reverse();
    out
}

/// Micro-units of a decimal string.
fn micros(s: &str) -> i64 {
    Micros::parse(s).unwrap().0
}

async fn verify(http: &reqwest::Client, s: &support::Sandbox, n: u64) {
    let day = ts(DAY_START)..ts(DAY_END);
    let in_day = |v: &Value| day.contains(&ts(v.as_str().unwrap()));
    let t = Instant::now();

    let txns = list_all(http, s, "/api/v1/billing/transactions").await;
    let mut running = 0;
    for t in &txns {
        running += micros(t["amount"].as_str().unwrap());
        assert_eq!(running, micros(t["balance_after"].as_str().unwrap()), "{t}");
        assert!(running >= 0);
    }
    let wallet: Value = http
        .get(format!("{}/api/v1/billing/wallet", s.base))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let balance = micros(wallet["balance"].as_str().unwrap());
    assert_eq!(running, balance, "the ledger adds up to the balance");
    assert_eq!(
        balance,
        topups(n) as i64 * TOPUP - PRICE * (2 * n as i64 + 1),
        "the wallet paid every activation, the trial conversion and every renewal once"
    );
    let renewals: Vec<&Value> = txns
        .iter()
        .filter(|t| t["type"] == "line_charge" && in_day(&t["created_at"]))
        .collect();
    assert!(renewals.iter().all(|t| t["amount"] == "-15.00"));
    let renewed: HashSet<&str> = renewals
        .iter()
        .map(|t| t["line_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        renewals.len() as u64,
        n,
        "line_charge transactions on the day"
    );
    assert_eq!(renewed.len() as u64, n, "one per line");
    assert!(
        !txns
            .iter()
            .any(|t| t["type"] == "topup" && in_day(&t["created_at"])),
        "no card money on the day: every renewal came from the wallet"
    );

    let charges = list_all(http, s, "/api/v1/webhooks/events?type=charge.succeeded").await;
    let renewal_charges: HashSet<&str> = charges
        .iter()
        .map(|e| &e["body"])
        .filter(|b| b["data"]["reason"] == "renewal" && b["data"]["period"] == 1)
        .map(|b| {
            assert!(in_day(&b["created_at"]));
            b["data"]["line_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        renewal_charges.len() as u64,
        n,
        "charge.succeeded (renewal, period 1)"
    );
    assert_eq!(renewal_charges, renewed);
    let renewed_events = list_all(http, s, "/api/v1/webhooks/events?type=line.renewed").await;
    let renewed_lines: HashSet<&str> = renewed_events
        .iter()
        .map(|e| &e["body"])
        .filter(|b| b["data"]["period"] == 1)
        .map(|b| b["data"]["line"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(renewed_events.len() as u64, n, "line.renewed events");
    assert_eq!(renewed_lines, renewed);
    let failed = list_all(http, s, "/api/v1/webhooks/events?type=charge.failed").await;
    assert!(failed.is_empty(), "no charge failed");
    println!(
        "verified over the API in {:.1} s: {} transactions, {n} renewal debits of 15.00 on {}, \
         {n} charge.succeeded (renewal, period 1), {n} line.renewed, the ledger adds up to \
         the balance {}",
        t.elapsed().as_secs_f64(),
        txns.len(),
        &DAY_START[..10],
        wallet["balance"].as_str().unwrap(),
    );
}

/// The period-1 charge row of every line, read from the store after the server stopped.
async fn verify_store(store: &str, n: u64) {
    let sql = open(store).await;
    let demo = sql.demo_account().await.unwrap().unwrap();
    let mut lines = Vec::new();
    let mut page = wagate_domain::page::PageRequest::new(Some(200), None).unwrap();
    loop {
        let p = sql.list_lines(&demo.id, &page).await.unwrap();
        let last = p.data.last().map(|l| l.id.to_string());
        lines.extend(p.data);
        match (p.has_more, last) {
            (true, Some(last)) => {
                page = wagate_domain::page::PageRequest::new(Some(200), Some(last)).unwrap()
            }
            _ => break,
        }
    }
    assert_eq!(lines.len() as u64, n + 1);
    let mut charged = 0;
    for l in &lines {
        if sql.line_charged(&l.id, 1).await.unwrap() {
            charged += 1;
            assert_eq!(l.paid_period, Some(1));
        }
    }
    assert_eq!(charged, n, "line_charges rows for period 1");
    sql.close().await;
    println!("verified in the store: {charged} line_charges rows for period 1");
}

#[tokio::main]
async fn main() {
    let pg = std::env::args().nth(1);
    let n = env("LINES", 100_000);
    let spread = SignedDuration::from_secs(env("SPREAD_SECS", 86_400) as i64);
    let bin = support::wagate_bin();
    let dir = tempfile::tempdir().unwrap();
    let store = match (std::env::var("STORE").ok(), &pg) {
        (Some(s), _) => s,
        (None, Some(url)) => {
            std::env::set_var("WAGATE_TEST_POSTGRES_URL", url);
            let db = wagate_store::testing::fresh_postgres_database()
                .await
                .unwrap();
            seed(&db, n, spread).await;
            db
        }
        (None, None) => {
            let path = dir.path().join("data").display().to_string();
            seed(&path, n, spread).await;
            path
        }
    };
    if std::env::var("SEED_ONLY").is_ok() {
        let _ = dir.keep();
        println!("seeded store: {store}");
        return;
    }
    let backend = if store.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    let http = reqwest::Client::new();
    let s = support::start_sandbox(
        &bin,
        &support::store_args(&store),
        "error",
        Stdio::inherit(),
    )
    .await;
    let pid = s.child.id().unwrap();
    let (cpu0, pg0, m0) = (
        support::process_cpu(pid),
        support::postgres_cpu(),
        machine_cpu(),
    );
    let t = Instant::now();
    let resp = http
        .post(format!("{}/api/v1/sandbox/clock/advance", s.base))
        .bearer_auth(&s.key)
        .json(&json!({ "to": DAY_END }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let report: Value = resp.json().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    let (cpu1, pg1, m1) = (
        support::process_cpu(pid),
        support::postgres_cpu(),
        machine_cpu(),
    );
    assert_eq!(status, 200, "{report}");
    println!(
        "{backend}: one advance over the renewal day ({} → {}): {} jobs in {secs:.2} s = {:.0} renewals/s",
        report["from"], report["now"], report["jobs_run"], n as f64 / secs
    );
    let (busy, idle, steal) = (m1.0 - m0.0, m1.1 - m0.1, m1.2 - m0.2);
    println!(
        "{backend}: CPU during the advance: wagate {:.1} s, postgres processes {:.1} s; machine busy {busy:.1} s, idle {idle:.1} s, steal {steal:.1} s (2 cores × {secs:.1} s)",
        cpu1 - cpu0,
        pg1 - pg0,
    );
    assert!(report["jobs_run"].as_u64().unwrap() >= n);
    verify(&http, &s, n).await;
    drop(s);
    // Let the killed server release the store before reading it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    verify_store(&store, n).await;
}
