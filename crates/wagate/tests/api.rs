//! The foundation's API, driven over HTTP against the real binary, on SQLite and PostgreSQL.

mod common;

use common::{create_account, fresh, send, Server, CLOCK_START};
use reqwest::Method;
use serde_json::{json, Value};

both_backends!(health_auth_and_the_account, health_auth_body);
async fn health_auth_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let (st, body) = send(s.http.get(format!("{}/healthz", s.base))).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("ok")));
    assert_eq!(body["connector"]["kind"], "simulator");
    assert_eq!(body["connector"]["state"], "ok");

    let (st, body) = send(s.http.get(format!("{}/api/v1/account", s.base))).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("unauthorized")));
    let (st, _) = send(
        s.http
            .get(format!("{}/api/v1/account", s.base))
            .bearer_auth("wg_test_doesnotexist"),
    )
    .await;
    assert_eq!(st, 401);

    let (st, acct) = s.get("/api/v1/account").await;
    assert_eq!(st, 200);
    assert_eq!(acct["id"], s.demo_account.as_str());
    assert_eq!(acct["mode"], "test");
    assert_eq!(acct["created_at"], CLOCK_START);

    // A second key works; revoking the first locks it out at once.
    let (st, created) = s.post("/api/v1/account/keys", json!({})).await;
    assert_eq!(st, 201);
    let second = created["secret"].as_str().unwrap().to_owned();
    assert!(second.starts_with("wg_test_"));
    let (_, keys) = s.get("/api/v1/account/keys").await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 2);
    assert!(
        keys["data"][0].get("secret").is_none(),
        "secrets are shown once"
    );
    let first_id = keys["data"][1]["id"].as_str().unwrap().to_owned();
    let (st, revoked) =
        send(s.req(Method::DELETE, &format!("/api/v1/account/keys/{first_id}"))).await;
    assert_eq!(st, 200);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        s.get("/api/v1/account").await.0,
        401,
        "the revoked key is refused"
    );
    let (st, _) = send(
        s.http
            .get(format!("{}/api/v1/account", s.base))
            .bearer_auth(&second),
    )
    .await;
    assert_eq!(st, 200);
}

both_backends!(bad_input_gets_a_clear_4xx, bad_input_body);
async fn bad_input_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let advance = "/api/v1/sandbox/clock/advance";
    let raw = |body: Vec<u8>| {
        s.req(Method::POST, advance)
            .header("content-type", "application/json")
            .body(body)
    };

    let (st, b) = send(raw(b"{\"seconds\": ".to_vec())).await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_json")));
    let (st, b) = send(raw(b"[1,2]".to_vec())).await;
    assert_eq!((st, b["error"].as_str()), (422, Some("invalid_field")));
    let (st, b) = s.post(advance, json!({"seconds": "ten"})).await;
    assert_eq!(
        (st, b["error"].as_str(), b["param"].as_str()),
        (422, Some("invalid_field"), Some("seconds"))
    );
    let (st, b) = s.post(advance, json!({"secnds": 10})).await;
    assert_eq!(
        (st, b["param"].as_str()),
        (422, Some("secnds")),
        "unknown fields are named"
    );
    let (st, b) = s.post(advance, json!({"seconds": -5})).await;
    assert_eq!((st, b["param"].as_str()), (422, Some("seconds")));
    let (st, b) = s.post(advance, json!({"to": "2025-01-01T00:00:00Z"})).await;
    assert_eq!(
        (st, b["error"].as_str(), b["param"].as_str()),
        (409, Some("invalid_state"), Some("to")),
        "the clock never runs backwards (its state refuses it: 409)"
    );
    let (st, _) = s.post(advance, json!({})).await;
    assert_eq!(st, 422);

    let big = vec![b' '; 1024 * 1024 + 10];
    let (st, b) = send(raw(big)).await;
    assert_eq!((st, b["error"].as_str()), (413, Some("payload_too_large")));

    let (st, b) = send(s.req(Method::GET, "/api/v1/nothing/here")).await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));
    let (st, b) = send(s.req(Method::PUT, "/api/v1/account")).await;
    assert_eq!((st, b["error"].as_str()), (405, Some("method_not_allowed")));
    let (st, b) = send(s.req(Method::DELETE, "/api/v1/account/keys/line_abc")).await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));
    let (st, _) = send(
        s.http
            .get(format!("{}/api/v1/account", s.base))
            .header("authorization", "Basic Zm9vOmJhcg=="),
    )
    .await;
    assert_eq!(st, 401);

    // Another account's key id is invisible: 404, never 403.
    let (_, other_key) = create_account(&backing, "Other").await;
    let (_, keys) = send(
        s.http
            .get(format!("{}/api/v1/account/keys", s.base))
            .bearer_auth(&other_key),
    )
    .await;
    let other_id = keys["data"][0]["id"].as_str().unwrap();
    let (st, _) = send(s.req(Method::DELETE, &format!("/api/v1/account/keys/{other_id}"))).await;
    assert_eq!(st, 404);
    let (st, _) = send(
        s.http
            .get(format!("{}/api/v1/account", s.base))
            .bearer_auth(&other_key),
    )
    .await;
    assert_eq!(st, 200, "the other account's key still works");
}

both_backends!(idempotency_keys_replay_the_first_response, idempotency_body);
async fn idempotency_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let post = |key: &str, body: Value| {
        s.req(Method::POST, "/api/v1/account/keys")
            .header("Idempotency-Key", key)
            .json(&body)
    };
    let first = post("k-1", json!({})).send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post("k-1", json!({})).send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let mut again: Value = again.json().await.unwrap();
    assert!(first["secret"].as_str().unwrap().starts_with("wg_test_"));
    assert_eq!(
        again.as_object_mut().unwrap().remove("secret"),
        None,
        "secrets are never stored: a replay has no secret"
    );
    let mut without_secret = first.clone();
    without_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(again, without_secret, "otherwise the same response");

    let (st, b) = send(post("k-1", json!({"x": 1}))).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    // Concurrent requests with one key do the work once.
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(post("k-2", json!({})).send()))
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        assert_eq!(resp.status(), 201);
        ids.push(resp.json::<Value>().await.unwrap()["id"].clone());
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every concurrent request got the first response"
    );
    let (_, keys) = s.get("/api/v1/account/keys").await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        3,
        "demo key + k-1 + k-2"
    );

    let (st, _) = send(post(&"x".repeat(300), json!({}))).await;
    assert_eq!(st, 422, "over-long keys are refused");
}

both_backends!(sandbox_clock_moves_only_when_told, sandbox_clock_body);
async fn sandbox_clock_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let (st, c) = s.get("/api/v1/sandbox/clock").await;
    assert_eq!((st, c["now"].as_str()), (200, Some(CLOCK_START)));
    let (st, c) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": 90}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(c["from"], CLOCK_START);
    assert_eq!(c["now"], "2026-01-01T00:01:30Z");
    let (_, c) = s
        .post(
            "/api/v1/sandbox/clock/advance",
            json!({"to": "2026-02-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(c["now"], "2026-02-01T00:00:00Z");
    assert_eq!(
        s.get("/api/v1/sandbox/clock").await.1["now"],
        "2026-02-01T00:00:00Z"
    );
}

both_backends!(
    accounts_can_be_created_while_the_server_runs,
    accounts_cli_body
);
async fn accounts_cli_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let (account_id, key) = create_account(&backing, "Acme").await;
    assert!(account_id.starts_with("acct_"));
    assert!(
        key.starts_with("wg_test_"),
        "a sandbox store issues test keys"
    );
    let (st, acct) = send(
        s.http
            .get(format!("{}/api/v1/account", s.base))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(acct["id"], account_id.as_str());
    assert_eq!(acct["name"], "Acme");
}

both_backends!(a_committed_write_survives_sigkill, sigkill_body);
async fn sigkill_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let (st, created) = s.post("/api/v1/account/keys", json!({})).await;
    assert_eq!(st, 201);
    s.post("/api/v1/sandbox/clock/advance", json!({"seconds": 3600}))
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    s.kill().await;

    let s = Server::sandbox(&backing).await;
    let (st, acct) = send(
        s.http
            .get(format!("{}/api/v1/account", s.base))
            .bearer_auth(&secret),
    )
    .await;
    assert_eq!(
        st, 200,
        "the key written before the kill authenticates after restart"
    );
    assert_eq!(acct["id"], s.demo_account.as_str(), "the same demo account");
    assert_eq!(
        s.get("/api/v1/sandbox/clock").await.1["now"],
        "2026-01-01T01:00:00Z"
    );
}

both_backends!(sigterm_stops_cleanly, sigterm_body);
async fn sigterm_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    assert_eq!(s.get("/api/v1/account").await.0, 200);
    let status = s.terminate().await;
    assert!(status.success(), "exit status {status:?}");
}

both_backends!(production_mode_has_no_sandbox_and_no_demo, production_body);
async fn production_body(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let (_, key) = create_account(&backing, "Live Co").await;
    assert!(key.starts_with("wg_live_"));
    let s = Server::start(&backing, &["--connector", "none"]).await;
    assert!(s.key.is_empty(), "no demo key outside the sandbox");
    let get = |p: &str| send(s.http.get(format!("{}{p}", s.base)).bearer_auth(&key));
    assert_eq!(get("/api/v1/account").await.0, 200);
    let (st, b) = get("/api/v1/sandbox/clock").await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));
    // No card processor configured: a clear 503 before anything is recorded.
    let post = |p: &str, body: Value| {
        send(
            s.http
                .post(format!("{}{p}", s.base))
                .bearer_auth(&key)
                .json(&body),
        )
    };
    let (st, b) = post("/api/v1/billing/card", json!({"source_id": "cnon:x"})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (503, Some("payments_not_configured")),
        "{b}"
    );
    let (st, b) = post("/api/v1/billing/wallet/topups", json!({"amount": "10.00"})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (503, Some("payments_not_configured"))
    );
    let (st, b) = get("/api/v1/billing/card").await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");
    // No WhatsApp connector: no line is created that nobody could connect, and the health
    // check and the metrics say why.
    let (st, b) = post("/api/v1/wa/lines", json!({})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (503, Some("connector_unavailable")),
        "{b}"
    );
    let (st, lines) = get("/api/v1/wa/lines").await;
    assert_eq!((st, lines["data"].as_array().map(Vec::len)), (200, Some(0)));
    let (st, h) = send(s.http.get(format!("{}/healthz", s.base))).await;
    assert_eq!(st, 200);
    assert_eq!(h["connector"]["kind"], "none");
    assert_eq!(h["connector"]["state"], "not_configured");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("wagate_connector_up{kind=\"none\"} 0"),
        "{metrics}"
    );
    s.kill().await;
    // A production store refuses to be opened as a sandbox.
    let out = tokio::process::Command::new(common::bin())
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .args(backing.args())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("production"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let (backing, _guard) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    s.get("/api/v1/account").await;
    send(s.req(Method::DELETE, "/api/v1/account/keys/key_x1")).await;
    let text = s.metrics().await;
    assert!(
        text.contains(
            r#"wagate_http_requests_total{method="GET",route="/api/v1/account",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/account/keys/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("wagate_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn the_served_openapi_matches_the_committed_document() {
    let (backing, _guard) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    let served = s
        .http
        .get(format!("{}/api/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        served == committed,
        "docs/openapi.json is out of date: run `cargo run -- openapi > docs/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert!(doc["paths"]["/api/v1/account"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/sandbox/clock/advance"]["post"].is_object());
}

#[tokio::test]
async fn the_cli_says_what_it_did_not_do() {
    // `accounts create` on a directory without a store says so and creates nothing.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("typo");
    let out = tokio::process::Command::new(common::bin())
        .args(["accounts", "create", "--name", "X", "--data-dir"])
        .arg(&empty)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no wagate store in"), "{err}");
    assert!(!empty.join("wagate.db").exists(), "nothing was created");

    // An unreachable PostgreSQL is reported with its own reason, not a pool timeout.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokio::process::Command::new(common::bin())
        .args(["migrate", "--database-url"])
        .arg(format!("postgres://postgres@127.0.0.1:{port}/none"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("refused"), "{err}");

    // `wagate openapi | head` is not an error: the reader closes the pipe early.
    let mut child = tokio::process::Command::new(common::bin())
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut first)
        .await
        .unwrap();
    drop(stdout);
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A sandbox restarted with another --clock-start says the flag was ignored, and its
    // log (a pipe here, not a terminal) carries no colour codes.
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    s.kill().await;
    let mut restart = tokio::process::Command::new(common::bin())
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .args(["--clock-start", "2030-01-01T00:00:00Z"])
        .args(backing.args())
        .env("WAGATE_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        restart.stdout.take().unwrap(),
    ));
    let mut clock = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(c) = line.strip_prefix("sandbox clock: ") {
            clock = c.to_owned();
        }
        if line.starts_with("wagate listening on ") {
            break;
        }
    }
    assert_eq!(clock, CLOCK_START, "the saved clock wins");
    restart.start_kill().unwrap();
    let out = restart.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--clock-start 2030-01-01T00:00:00Z ignored"),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes in a piped log: {err}"
    );
}

/// Runs `wagate serve` (production) on the store with `WAGATE_SECRET_KEY` = `key` (unset when
/// `None`) and returns its exit status and stderr if it exits within 20 s, or `None` if it
/// is still serving (then it is killed).
async fn serve_with_key(
    backing: &common::Backing,
    key: Option<&str>,
) -> Option<(std::process::ExitStatus, String)> {
    let mut cmd = tokio::process::Command::new(common::bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(backing.args())
        .env("WAGATE_LOG", "warn")
        .env_remove("WAGATE_SECRET_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(k) = key {
        cmd.env("WAGATE_SECRET_KEY", k);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use tokio::io::AsyncBufReadExt;
    let listening = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            line.clear();
            if stdout.read_line(&mut line).await.unwrap() == 0 {
                return false;
            }
            if line.starts_with("wagate listening on ") {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    if listening {
        child.kill().await.unwrap();
        return None;
    }
    let out = child.wait_with_output().await.unwrap();
    Some((
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn production_needs_its_server_key_and_refuses_another() {
    let (backing, _guard) = fresh("sqlite").await;
    create_account(&backing, "Keyed Co").await;
    let (status, stderr) = serve_with_key(&backing, None)
        .await
        .expect("no key: refuses to start");
    assert!(!status.success());
    assert!(stderr.contains("WAGATE_SECRET_KEY is not set"), "{stderr}");
    let (status, stderr) = serve_with_key(&backing, Some("not base64 at all!"))
        .await
        .expect("a malformed key: refuses to start");
    assert!(!status.success());
    assert!(stderr.contains("WAGATE_SECRET_KEY"), "{stderr}");

    let key_a = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let key_b = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [8u8; 32]);
    assert!(
        serve_with_key(&backing, Some(&key_a)).await.is_none(),
        "the first key is taken and the server serves"
    );
    let (status, stderr) = serve_with_key(&backing, Some(&key_b))
        .await
        .expect("another key: refuses to start");
    assert!(!status.success());
    assert!(stderr.to_lowercase().contains("key"), "{stderr}");
    assert!(
        serve_with_key(&backing, Some(&key_a)).await.is_none(),
        "the right key still serves"
    );
}
