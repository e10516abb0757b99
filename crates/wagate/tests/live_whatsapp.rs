//! The opt-in live test: the real WhatsApp, a real phone, a person. Skipped unless
//! `WAGATE_LIVE_WHATSAPP=1` (WhatsApp cannot be reached from CI machines). It follows
//! docs/try-with-a-phone.md step by step and checks every answer, printing what the person
//! must do next:
//!
//! ```sh
//! WAGATE_LIVE_WHATSAPP=1 \
//! WAGATE_LIVE_TO=+447700900123 \            # another WhatsApp number to message
//! WAGATE_LIVE_PHONE=+447700900999 \         # the phone that links (for the pair code)
//! WAGATE_SQUARE_ACCESS_TOKEN=… WAGATE_SQUARE_LOCATION_ID=… \
//! WAGATE_SQUARE_BASE_URL=https://connect.squareupsandbox.com \
//! cargo test -p wagate --test live_whatsapp -- --nocapture
//! ```
//!
//! It links by QR, sends and receives, waits for the person to log the device out, relinks
//! the same line with a pairing code, restarts the server (the line comes back without a
//! scan), and releases the line.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{create_account, fresh, Server};
use serde_json::{json, Value};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("the live test needs {name}"))
}

fn say(what: &str) {
    eprintln!("\n>>> {what}\n");
}

/// Polls `GET path` until `done` holds, for at most `within`.
async fn wait_until(
    server: &Server,
    path: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, v) = server.get(path).await;
        if status == 200 && done(&v) {
            return v;
        }
        assert!(
            started.elapsed() < within,
            "waited {within:?} for {what}; last answer {status}: {v}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn start(backing: &common::Backing, secret: &str, key: &str) -> Server {
    let mut server = Server::start_with_env(
        backing,
        &["--connector", "whatsapp-web"],
        &[("WAGATE_SECRET_KEY", secret), ("WAGATE_LOG", "info")],
    )
    .await;
    server.key = key.to_owned();
    server
}

#[tokio::test]
async fn a_real_phone_links_sends_receives_unlinks_and_relinks() {
    if std::env::var("WAGATE_LIVE_WHATSAPP").as_deref() != Ok("1") {
        eprintln!("skipped: set WAGATE_LIVE_WHATSAPP=1 to run the live WhatsApp test");
        return;
    }
    let to = required("WAGATE_LIVE_TO");
    let phone = required("WAGATE_LIVE_PHONE");
    required("WAGATE_SQUARE_ACCESS_TOKEN");
    required("WAGATE_SQUARE_LOCATION_ID");
    let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let (backing, _dir) = fresh("sqlite").await;
    let (_, key) = create_account(&backing, "Live test").await;
    let server = start(&backing, &secret, &key).await;

    let health = wait_until(
        &server,
        "/healthz",
        Duration::from_secs(60),
        "WhatsApp to be reachable",
        |h| h["connector"]["state"] == "ok",
    )
    .await;
    assert_eq!(health["connector"]["kind"], "whatsapp_web");
    let (status, card) = server
        .post(
            "/api/v1/billing/card",
            json!({ "source_id": "cnon:card-nonce-ok" }),
        )
        .await;
    assert_eq!(status, 201, "{card}");

    // 1. Link by QR.
    let (status, line) = server.post("/api/v1/wa/lines", json!({})).await;
    assert_eq!(status, 201, "{line}");
    let id = line["id"].as_str().unwrap().to_owned();
    let line_path = format!("/api/v1/wa/lines/{id}");
    say(&format!(
        "Open {} and scan the QR with {phone} (Settings → Linked devices → Link a device)",
        line["connect_url"].as_str().unwrap()
    ));
    let ready = wait_until(
        &server,
        &line_path,
        Duration::from_secs(300),
        "the line to be ready",
        |l| l["status"] == "ready",
    )
    .await;
    assert_eq!(ready["phone_number"], phone.as_str(), "{ready}");

    // 2. Send: paced, then sent → delivered (read when the other phone opens it).
    let (status, sent) = server
        .post(
            &format!("{line_path}/messages"),
            json!({ "to": to, "text": "hello from wagate's live test" }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let message = sent["id"].as_str().unwrap().to_owned();
    say(&format!("{to} should see the message; open it there"));
    wait_until(
        &server,
        &format!("{line_path}/messages"),
        Duration::from_secs(180),
        "the message to be delivered",
        |page| {
            page["data"].as_array().unwrap().iter().any(|m| {
                m["id"] == message.as_str() && (m["status"] == "delivered" || m["status"] == "read")
            })
        },
    )
    .await;

    // 3. Receive: text, then a photo with a caption.
    say(&format!(
        "From {to}, answer with a text, then send a photo with a caption"
    ));
    let messages = format!("{line_path}/messages");
    let got = wait_until(
        &server,
        &messages,
        Duration::from_secs(300),
        "a text and a photo",
        |page| {
            let inbound: Vec<&Value> = page["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["direction"] == "inbound")
                .collect();
            inbound.iter().any(|m| m["type"] == "text")
                && inbound.iter().any(|m| m["type"] == "image")
        },
    )
    .await;
    for m in got["data"].as_array().unwrap() {
        if m["direction"] == "inbound" {
            assert_eq!(m["from"], to.as_str(), "{m}");
        }
    }

    // 4. Unlink from the phone; relink the same line with a pairing code.
    say(&format!(
        "On {phone}: Linked devices → the wagate device → Log out"
    ));
    wait_until(
        &server,
        &line_path,
        Duration::from_secs(300),
        "the line to be logged out",
        |l| l["status"] == "logged_out",
    )
    .await;
    let (status, code) = server
        .post(
            &format!("{line_path}/pair_code"),
            json!({ "phone_number": phone }),
        )
        .await;
    assert_eq!(status, 200, "{code}");
    say(&format!(
        "On {phone}: Linked devices → Link a device → Link with phone number instead, and enter {}",
        code["code"].as_str().unwrap()
    ));
    wait_until(
        &server,
        &line_path,
        Duration::from_secs(300),
        "the line to be ready again",
        |l| l["status"] == "ready",
    )
    .await;
    let (_, events) = server.get("/api/v1/webhooks/events?limit=100").await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "line.ready" && e["body"]["data"]["relinked"] == true),
        "{events}"
    );

    // 5. Restart with the same key: the line comes back without a scan.
    server.terminate().await;
    let server = start(&backing, &secret, &key).await;
    wait_until(
        &server,
        &line_path,
        Duration::from_secs(120),
        "the line to come back after a restart",
        |l| l["status"] == "ready",
    )
    .await;
    let (status, released) = common::send(server.req(reqwest::Method::DELETE, &line_path)).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["status"], "released", "{released}");
    say("Done: the line was released (its device is logged out on the phone).");
}
