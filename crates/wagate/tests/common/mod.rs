//! Test harness: starts the real `wagate` binary on a random port against SQLite or
//! PostgreSQL and talks to it over HTTP.

#![allow(dead_code)]

pub mod receiver;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where a test server keeps its data.
#[derive(Debug, Clone)]
pub enum Backing {
    /// An SQLite data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database URL.
    Postgres(String),
}

/// A fresh, empty store of the given kind (the temp dir lives as long as the returned guard).
pub async fn fresh(kind: &str) -> (Backing, Option<tempfile::TempDir>) {
    match kind {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            (Backing::Sqlite(dir.path().to_path_buf()), Some(dir))
        }
        "postgres" => (
            Backing::Postgres(
                wagate_store::testing::fresh_postgres_database()
                    .await
                    .unwrap(),
            ),
            None,
        ),
        other => panic!("unknown backing {other}"),
    }
}

impl Backing {
    /// The flags that select this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Backing::Sqlite(dir) => vec!["--data-dir".into(), dir.display().to_string()],
            Backing::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wagate")
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The demo account's key (sandbox only).
    pub key: String,
    pub demo_account: String,
    pub http: reqwest::Client,
}

/// The default sandbox start time of test servers.
pub const CLOCK_START: &str = "2026-01-01T00:00:00Z";

impl Server {
    /// Starts `wagate serve --sandbox` on the store.
    pub async fn sandbox(backing: &Backing) -> Server {
        Self::start(backing, &["--sandbox", "--clock-start", CLOCK_START]).await
    }

    /// Starts `wagate serve` with extra flags; waits until it prints its address.
    pub async fn start(backing: &Backing, extra: &[&str]) -> Server {
        Self::start_with_env(backing, extra, &[]).await
    }

    /// [`Server::start`] with extra environment variables.
    pub async fn start_with_env(backing: &Backing, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(backing.args())
            .args(extra)
            .env("WAGATE_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn wagate");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut key, mut demo_account) = (String::new(), String::new());
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(k) = line.strip_prefix("sandbox demo api key: ") {
                    key = k.trim().to_owned();
                } else if let Some(a) = line.strip_prefix("sandbox demo account: ") {
                    demo_account = a.trim().to_owned();
                } else if let Some(addr) = line.strip_prefix("wagate listening on ") {
                    return addr.trim().to_owned();
                }
            }
            panic!("wagate exited before listening");
        })
        .await
        .expect("wagate did not start within 60 s");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            base,
            key,
            demo_account,
            http: reqwest::Client::new(),
        }
    }

    /// A request builder with the demo key.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
    }

    /// GET with the demo key: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path)).await
    }

    /// POST JSON with the demo key.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    /// The Prometheus text of `GET /metrics` (no key needed).
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Kills the process at once (SIGKILL): no draining, no cleanup.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    /// Sends SIGTERM and returns the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("server did not stop within 30 s of SIGTERM")
            .unwrap()
    }
}

/// Sends a request and returns (status, JSON body or Null).
pub async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().await.expect("request failed");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs `wagate accounts create --json` on the store and returns (account_id, api_key).
pub async fn create_account(backing: &Backing, name: &str) -> (String, String) {
    // `accounts create` refuses a data directory without a store: create it first.
    let migrated = Command::new(bin())
        .arg("migrate")
        .args(backing.args())
        .output()
        .await
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let out = Command::new(bin())
        .args(["accounts", "create", "--name", name, "--json"])
        .args(backing.args())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["account_id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

/// Runs an operator command (`wagate ARGS… <store flags>`) and returns its JSON output.
pub async fn cli(backing: &Backing, args: &[&str]) -> Value {
    let out = Command::new(bin())
        .args(args)
        .args(backing.args())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Defines a module with `sqlite` and `postgres` tests that each run `$body(kind)`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body("sqlite").await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body("postgres").await;
            }
        }
    };
}

/// What `wagate rate ARGS…` says about a JSON Lines input, by message id.
pub fn rate_cli(
    input: &str,
    args: &[&std::ffi::OsStr],
) -> std::collections::HashMap<String, Value> {
    use std::io::Write;
    let mut child = std::process::Command::new(bin())
        .arg("rate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}
