//! What the bench binaries share: finding the release binary and starting a sandbox server.

#![allow(dead_code)]

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `wagate` binary under test: `WAGATE_BIN`, else the release binary next to the
/// running example (`target/release/examples/…` → `target/release/wagate`).
pub fn wagate_bin() -> String {
    std::env::var("WAGATE_BIN").unwrap_or_else(|_| {
        let me = std::env::current_exe().unwrap();
        let dir = me.parent().unwrap().parent().unwrap();
        dir.join("wagate").display().to_string()
    })
}

/// The store flag for `store`: a PostgreSQL URL or an SQLite data directory.
pub fn store_args(store: &str) -> [String; 2] {
    let flag = if store.starts_with("postgres") {
        "--database-url"
    } else {
        "--data-dir"
    };
    [flag.to_owned(), store.to_owned()]
}

/// A running `wagate serve --sandbox`.
pub struct Sandbox {
    /// The process (killed when dropped).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The demo account's key.
    pub key: String,
}

/// Starts `wagate serve --sandbox` on a free loopback port with `args`, its log at
/// `WAGATE_LOG=log_level` going to `stderr`; returns once it listens.
pub async fn start_sandbox(bin: &str, args: &[String], log_level: &str, stderr: Stdio) -> Sandbox {
    let mut child = Command::new(bin)
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("WAGATE_LOG", log_level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start wagate");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut key = String::new();
    loop {
        let line = lines.next_line().await.unwrap().expect("wagate exited");
        if let Some(k) = line.strip_prefix("sandbox demo api key: ") {
            key = k.to_owned();
        }
        if let Some(a) = line.strip_prefix("wagate listening on ") {
            // Keep reading, so the server never blocks on a full stdout pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Sandbox {
                child,
                base: a.to_owned(),
                key,
            };
        }
    }
}

/// CPU seconds (user + system) a process used so far.
pub fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 13 {
        return 0.0;
    }
    (f[11] + f[12]) / 100.0
}

/// CPU seconds used by every `postgres` process.
pub fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(process_cpu)
        .sum()
}

/// The store flags of a bench run, and its name: a fresh database on the PostgreSQL at
/// `pg` when given, else an SQLite data directory in `dir`.
pub async fn bench_store(pg: Option<&str>, dir: &std::path::Path) -> (Vec<String>, &'static str) {
    match pg {
        Some(url) => {
            std::env::set_var("WAGATE_TEST_POSTGRES_URL", url);
            let db = wagate_store::testing::fresh_postgres_database()
                .await
                .unwrap();
            (vec!["--database-url".to_owned(), db], "PostgreSQL")
        }
        None => (
            vec!["--data-dir".to_owned(), dir.display().to_string()],
            "SQLite",
        ),
    }
}

/// The `p` quantile (0–1) of sorted values (0 for none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The body of a `GET` that must succeed (a server's `/metrics`, say), as text.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}
