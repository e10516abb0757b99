//! Lines API load benchmark (issue 4): `wrk` on loopback against the release
//! `wagate serve --sandbox` on SQLite, with LINES ready lines.
//!
//! ```sh
//! apt-get install -y wrk
//! cargo build --release -p wagate --bins --examples
//! flock /tmp/wagate-bench.lock target/release/examples/bench_lines
//! ```
//! Seeds the server over HTTP (a card, LINES lines created and scanned, 32 at a time), then
//! runs `wrk --latency` for SECONDS on `GET /api/v1/wa/lines/{id}` (bench/get_line.lua) and
//! on `POST /api/v1/wa/lines/{id}/messages` (bench/post_message.lua), both rotating over all
//! lines so no line reaches its daily limit; then POSTs messages at a fixed `RATE` per second
//! (open loop: latency from the instant each request was due). After the POST phases it times
//! how long the sandbox worker takes to send what is still queued.
//!
//! Environment: `LINES` (default 10000), `SECONDS` (default 20), `RATE` (default 3000), `CONNECTIONS` (default 64),
//! `LATENCY_TRACE` (a file for the open-loop phase's due times and latencies, CSV in ms),
//! `THREADS` (wrk threads, default 1), `NO_WORKER` (set: the server runs without its job
//! worker, to see what the API takes alone), `WAGATE_BIN` (default: the release binary next
//! to this example), `BENCH_DIR` (default: the workspace's `bench/`), `LOG` (the server's log
//! level, default `error`), `SERVER_LOG` (a file for the server's log, default this
//! process's standard error).

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[path = "support/mod.rs"]
mod support;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The API as the demo account: cheap to clone into request tasks.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// A request that must succeed; its JSON body.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = req.bearer_auth(&self.key).send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }
}

/// Starts the server; its process and the API.
async fn start(bin: &str, data_dir: &std::path::Path) -> (Child, Api) {
    let mut args = support::store_args(&data_dir.display().to_string()).to_vec();
    if std::env::var_os("NO_WORKER").is_some() {
        args.push("--no-worker".to_owned());
    }
    let level = std::env::var("LOG").unwrap_or_else(|_| "error".into());
    let stderr = match std::env::var("SERVER_LOG") {
        Ok(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        Err(_) => Stdio::inherit(),
    };
    let s = support::start_sandbox(bin, &args, &level, stderr).await;
    let api = Api {
        http: reqwest::Client::new(),
        base: s.base,
        key: s.key,
    };
    (s.child, api)
}

/// Adds a card, then creates and scans `n` lines, `concurrency` at a time; their ids.
async fn seed(api: &Api, n: usize, concurrency: usize) -> Vec<String> {
    let card = json!({"source_id": "cnon:card-nonce-ok"});
    api.call("POST", "/api/v1/billing/card", card).await;
    let mut ids = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let api = api.clone();
        tasks.spawn(async move {
            let line = api.call("POST", "/api/v1/wa/lines", json!({})).await;
            let id = line["id"].as_str().unwrap().to_owned();
            let scan = format!("/api/v1/sandbox/lines/{id}/scan");
            let scanned = api.call("POST", &scan, json!({})).await;
            assert_eq!(scanned["status"], "ready");
            id
        });
        while tasks.len() >= concurrency {
            ids.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    ids
}

/// A field of `/proc/<pid>/status` in kB.
fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of a process so far (clock ticks of 1/100 s).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

/// Milliseconds from a wrk latency like `1.93ms`, `850.00us` or `1.02s`.
fn wrk_ms(v: &str) -> f64 {
    let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    if let Some(x) = v.strip_suffix("us") {
        num(x) / 1000.0
    } else if let Some(x) = v.strip_suffix("ms") {
        num(x)
    } else if let Some(x) = v.strip_suffix('m') {
        num(x) * 60_000.0
    } else if let Some(x) = v.strip_suffix('s') {
        num(x) * 1000.0
    } else {
        f64::NAN
    }
}

struct Phase {
    rps: f64,
    requests: u64,
    p50: f64,
    p99: f64,
    max: f64,
    non_2xx: u64,
    socket_errors: String,
    server_cpu: f64,
    wrk_cpu: f64,
    /// The server's largest VmRSS seen during the phase (every 100 ms), MB.
    rss_max: u64,
}

/// Runs wrk with `script` and parses its report.
async fn wrk(api: &Api, pid: u32, script: &str, ids_file: &str, secs: u64) -> Phase {
    let (threads, conns) = (env("THREADS", 1), env("CONNECTIONS", 64));
    let server_before = cpu_secs(pid);
    let mut child = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &conns.to_string()])
        .args(["-d", &format!("{secs}s"), "--latency", "--timeout", "5s"])
        .args(["-H", &format!("Authorization: Bearer {}", api.key)])
        .args(["-s", script, &api.base, "--", ids_file])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run wrk (apt-get install -y wrk)");
    let wrk_pid = child.id().unwrap();
    let mut wrk_cpu = 0.0;
    let out = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            text.push_str(&l);
            text.push('\n');
        }
        text
    });
    let mut rss_max = 0;
    while !reader.is_finished() {
        wrk_cpu = cpu_secs(wrk_pid).max(wrk_cpu);
        rss_max = rss_max.max(proc_status_kb(pid, "VmRSS:") / 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = reader.await.unwrap();
    assert!(child.wait().await.unwrap().success(), "wrk failed:\n{text}");
    let server_cpu = cpu_secs(pid) - server_before;
    println!("{text}");
    let after = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|r| r.trim().to_owned()))
    };
    let first_word =
        |prefix: &str| after(prefix).and_then(|r| r.split(' ').next().map(str::to_owned));
    Phase {
        rps: after("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        requests: text
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        p50: first_word("50%").map_or(f64::NAN, |v| wrk_ms(&v)),
        p99: first_word("99%").map_or(f64::NAN, |v| wrk_ms(&v)),
        max: text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Latency"))
            .and_then(|r| r.split_whitespace().nth(2).map(wrk_ms))
            .unwrap_or(f64::NAN),
        non_2xx: after("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        socket_errors: after("Socket errors:").unwrap_or_else(|| "none".into()),
        server_cpu,
        wrk_cpu,
        rss_max,
    }
}

/// The server's own latency histogram of `POST …/messages` answered 202 (cumulative counts
/// by upper bound in seconds, from `/metrics`).
async fn post_latency_buckets(api: &Api) -> Vec<(String, f64)> {
    let text = support::get_text(&api.http, &format!("{}/metrics", api.base)).await;
    text.lines()
        .filter(|l| {
            l.starts_with("wagate_http_request_duration_seconds_bucket")
                && l.contains("method=\"POST\"")
                && l.contains("/messages\"")
                && l.contains("status=\"202\"")
        })
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?.to_owned();
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// Between two readings of [`post_latency_buckets`]: the share of requests the server
/// answered within each bound, as "≤ 5 ms 93.1 %, …" (where the time went: in the server,
/// or in the load generator and the sockets).
fn share_within(before: &[(String, f64)], after: &[(String, f64)]) -> String {
    let count = |buckets: &[(String, f64)], le: &str| {
        buckets
            .iter()
            .find(|(b, _)| b == le)
            .map_or(0.0, |(_, n)| *n)
    };
    let total = count(after, "+Inf") - count(before, "+Inf");
    after
        .iter()
        .filter(|(le, _)| ["0.005", "0.01", "0.025", "0.05"].contains(&le.as_str()))
        .map(|(le, n)| {
            let ms = le.parse::<f64>().unwrap_or(0.0) * 1000.0;
            let share = (n - count(before, le)) / total.max(1.0) * 100.0;
            format!("<= {ms} ms {share:.2} %")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// POSTs a message every `1/rate` s for `secs` on a fixed schedule (open loop), rotating over
/// the lines: unlike `wrk`, a slow answer does not hold the next request back, and each
/// latency runs from the instant the request was due, so a stall counts against every request
/// it delayed (no coordinated omission).
async fn post_at_rate(api: &Api, pid: u32, ids: &[String], rate: u64, secs: u64) -> Phase {
    let server_before = cpu_secs(pid);
    let me = std::process::id();
    let me_before = cpu_secs(me);
    let total = rate * secs;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    let offset = ids.len() / 2;
    let mut rss_max = 0;
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        if i % rate == 0 {
            rss_max = rss_max.max(proc_status_kb(pid, "VmRSS:") / 1024);
        }
        let url = format!(
            "{}/api/v1/wa/lines/{}/messages",
            api.base,
            ids[(offset + i as usize) % ids.len()]
        );
        let (api, tx) = (api.clone(), tx.clone());
        tokio::spawn(async move {
            let sent = api
                .http
                .post(url)
                .bearer_auth(&api.key)
                .header("content-type", "application/json")
                .body(r#"{"to":"+447700900123","text":"Your order has shipped."}"#)
                .send()
                .await;
            let ok = match sent {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            let due_ms = due.duration_since(start).as_secs_f64() * 1000.0;
            let _ = tx.send((due_ms, due.elapsed().as_secs_f64() * 1000.0, ok));
        });
    }
    drop(tx);
    let mut lat = Vec::with_capacity(total as usize);
    let mut timeline = String::new();
    let mut failed = 0;
    while let Some((due_ms, ms, ok)) = rx.recv().await {
        lat.push(ms);
        failed += u64::from(!ok);
        timeline.push_str(&format!("{due_ms:.3},{ms:.3}\n"));
    }
    // LATENCY_TRACE=file: each request's due time and latency (ms), to see when slow ones came.
    if let Ok(path) = std::env::var("LATENCY_TRACE") {
        std::fs::write(path, timeline).expect("write LATENCY_TRACE");
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Phase {
        rps: total as f64 / elapsed,
        requests: total,
        p50: support::percentile(&lat, 0.5),
        p99: support::percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0.0),
        non_2xx: failed,
        socket_errors: "counted with non-2xx".into(),
        server_cpu: cpu_secs(pid) - server_before,
        wrk_cpu: cpu_secs(me) - me_before,
        rss_max,
    }
}

/// `GET path(id)` for every line id, 32 at a time; each id with its answer, in no order.
async fn get_each(api: &Api, ids: &[String], path: fn(&str) -> String) -> Vec<(String, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut answers = Vec::with_capacity(ids.len());
    for id in ids {
        let (api, id) = (api.clone(), id.clone());
        tasks.spawn(async move {
            let body = api.call("GET", &path(&id), Value::Null).await;
            (id, body)
        });
        while tasks.len() >= 32 {
            answers.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    answers
}

/// The lines whose first charge (or free week) has not landed yet: the worker is still
/// charging them.
async fn unbilled(api: &Api, ids: &[String]) -> Vec<String> {
    get_each(api, ids, |id| format!("/api/v1/wa/lines/{id}"))
        .await
        .into_iter()
        .filter(|(_, line)| {
            line["billing_status"] != "active" && line["billing_status"] != "trialing"
        })
        .map(|(id, _)| id)
        .collect()
}

/// Counts `queued` outbound messages over all lines (newest 200 of each).
async fn queued_messages(api: &Api, ids: &[String]) -> usize {
    get_each(api, ids, |id| {
        format!("/api/v1/wa/lines/{id}/messages?limit=200")
    })
    .await
    .iter()
    .map(|(_, page)| {
        let data = page["data"].as_array().unwrap();
        data.iter().filter(|m| m["status"] == "queued").count()
    })
    .sum()
}

fn report(name: &str, p: &Phase, secs: u64) {
    println!(
        "{name}: {:.0} req/s ({} requests), p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, \
         non-2xx {}, socket errors: {}; CPU over {secs} s: server {:.0} %, wrk {:.0} % of one \
         core; server VmRSS up to {} MB",
        p.rps,
        p.requests,
        p.p50,
        p.p99,
        p.max,
        p.non_2xx,
        p.socket_errors,
        p.server_cpu / secs as f64 * 100.0,
        p.wrk_cpu / secs as f64 * 100.0,
        p.rss_max,
    );
}

#[tokio::main]
async fn main() {
    let bin = support::wagate_bin();
    let bench_dir = std::env::var("BENCH_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench").to_owned());
    let (n, secs) = (env("LINES", 10_000) as usize, env("SECONDS", 20));
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = start(&bin, &dir.path().join("data")).await;
    let pid = server.id().expect("wagate is running");

    let started = Instant::now();
    let ids = seed(&api, n, 32).await;
    let seeded = started.elapsed().as_secs_f64();
    // The worker charges each new line after its scan; measure the API once it is done,
    // not while it still writes behind the GETs.
    // Without a worker nothing charges them: measure at once.
    let mut left = match std::env::var_os("NO_WORKER") {
        Some(_) => Vec::new(),
        None => ids.clone(),
    };
    while !left.is_empty() && started.elapsed() < Duration::from_secs(900) {
        left = unbilled(&api, &left).await;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "the worker finished charging the lines {:.1} s after the seeding ({} left)",
        started.elapsed().as_secs_f64() - seeded,
        left.len()
    );
    let ids_file = dir.path().join("line-ids.txt");
    std::fs::write(&ids_file, ids.join("\n") + "\n").unwrap();
    let ids_file = ids_file.display().to_string();
    let rss_seeded = proc_status_kb(pid, "VmRSS:") / 1024;
    let peak_seeding = proc_status_kb(pid, "VmHWM:") / 1024;
    println!(
        "seeded {n} ready lines in {seeded:.1} s; server VmRSS {rss_seeded} MB \
         (peak while seeding {peak_seeding} MB)"
    );

    let get = wrk(
        &api,
        pid,
        &format!("{bench_dir}/get_line.lua"),
        &ids_file,
        secs,
    )
    .await;
    let rss_get = proc_status_kb(pid, "VmRSS:") / 1024;
    let post_script = format!("{bench_dir}/post_message.lua");
    let post = wrk(&api, pid, &post_script, &ids_file, secs).await;
    // Issue 4's POST goal is a latency at a given rate, which a closed loop cannot hold.
    let rate = env("RATE", 3_000);
    let before = post_latency_buckets(&api).await;
    let paced = post_at_rate(&api, pid, &ids, rate, secs).await;
    let posted = Instant::now();
    let server_side = share_within(&before, &post_latency_buckets(&api).await);
    let rss_post = proc_status_kb(pid, "VmRSS:") / 1024;

    // The sandbox worker sends what the POST phase queued, in job order: once a message
    // queued after the phase has been sent, every earlier send job has been claimed; then
    // full passes (every line's newest 200 messages) wait for the last ones to finish.
    let worker = std::env::var_os("NO_WORKER").is_none();
    let (mut caught_up, mut drained) = (f64::NAN, f64::NAN);
    if worker {
        let path = format!("/api/v1/wa/lines/{}/messages", ids[0]);
        let text = json!({"to": "+447700900123", "text": "probe"});
        let probe = api.call("POST", &path, text).await;
        let newest = format!("{path}?limit=1");
        while posted.elapsed() < Duration::from_secs(600) {
            let page = api.call("GET", &newest, Value::Null).await;
            if page["data"][0]["id"] == probe["id"] && page["data"][0]["status"] != "queued" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        caught_up = posted.elapsed().as_secs_f64();
        while queued_messages(&api, &ids).await > 0 && posted.elapsed() < Duration::from_secs(600) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drained = posted.elapsed().as_secs_f64();
    }
    let left = queued_messages(&api, &ids).await;

    let (t, c) = (env("THREADS", 1), env("CONNECTIONS", 64));
    println!("--- summary: {n} ready lines, SQLite, wrk -t{t} -c{c} -d{secs}s ---");
    println!(
        "seeding: {seeded:.1} s ({:.0} lines/s); server VmRSS peak while seeding {peak_seeding} MB",
        n as f64 / seeded
    );
    report("GET  /api/v1/wa/lines/{id}", &get, secs);
    report("POST /api/v1/wa/lines/{id}/messages", &post, secs);
    report(
        &format!(
            "POST /api/v1/wa/lines/{{id}}/messages at {rate}/s, open loop (\"wrk\" = this bench)"
        ),
        &paced,
        secs,
    );
    println!("  the same requests as the server timed them (/metrics): {server_side}");
    println!(
        "send queue: the worker reached the end of the queue {caught_up:.1} s after the POST \
         phase ended (every line checked: {drained:.1} s); {left} messages left queued; \
         worker {:.0} messages/s over the phase and the catch-up",
        (post.requests + paced.requests) as f64 / (2.0 * secs as f64 + caught_up)
    );
    println!(
        "server VmRSS: {rss_seeded} MB after seeding, {rss_get} MB after GET, {rss_post} MB \
         after POST; peak (VmHWM) {} MB; now {} MB anonymous + {} MB file-backed",
        proc_status_kb(pid, "VmHWM:") / 1024,
        proc_status_kb(pid, "RssAnon:") / 1024,
        proc_status_kb(pid, "RssFile:") / 1024,
    );
    if get.non_2xx > 0 || post.non_2xx > 0 || paced.non_2xx > 0 {
        println!("WARNING: wrk counted non-2xx answers; they are not successes");
    }
}
