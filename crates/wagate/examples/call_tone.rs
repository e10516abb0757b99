//! A small calling client (docs/calling.md): places a call from a line, waits for the answer,
//! plays a 1 kHz tone into the call's media socket for two seconds, records what comes back
//! to `echo.wav`, and hangs up.
//!
//! ```sh
//! cargo run -p wagate --example call_tone -- http://127.0.0.1:8080 wg_test_… line_… +447700900123
//! ```
//! In the sandbox the other phone is the sandbox itself: the client answers for it (`POST
//! /api/v1/sandbox/calls/{id}/answer`) and the party echoes the tone. On a real line,
//! someone answers the phone, and `echo.wav` holds what they said.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const RATE: u32 = 16_000;

/// 20 ms (320 samples) of a 1 kHz tone from sample `from`, 16-bit little-endian.
fn tone(from: usize) -> Vec<u8> {
    (from..from + 320)
        .map(|n| {
            let t = n as f64 / f64::from(RATE);
            ((t * 1_000.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16
        })
        .flat_map(i16::to_le_bytes)
        .collect()
}

/// A mono 16-bit PCM WAV file around `pcm`.
fn wav(pcm: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + pcm.len());
    let len = pcm.len() as u32;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

async fn call_api(http: &reqwest::Client, key: &str, url: String, body: Value) -> Value {
    let r = http.post(&url).bearer_auth(key).json(&body).send().await;
    let r = r.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, key, line, to] = <[String; 4]>::try_from(args).unwrap_or_else(|_| {
        eprintln!("usage: call_tone BASE_URL API_KEY LINE_ID +E164");
        std::process::exit(2)
    });
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::new();
    let call = call_api(
        &http,
        &key,
        format!("{base}/api/v1/wa/lines/{line}/calls"),
        json!({ "to": to }),
    )
    .await;
    let id = call["id"].as_str().unwrap().to_owned();
    println!("call {id}: {}", call["status"]);
    if key.starts_with("wg_test_") {
        let answered = call_api(
            &http,
            &key,
            format!("{base}/api/v1/sandbox/calls/{id}/answer"),
            json!({}),
        )
        .await;
        println!("the sandbox party answered: {}", answered["status"]);
    } else {
        println!("waiting for the answer…");
        loop {
            let c: Value = http
                .get(format!("{base}/api/v1/calls/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match c["status"].as_str() {
                Some("answered") => break,
                Some("ended") => {
                    println!("the call ended: {}", c["end_reason"]);
                    return;
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    let url = call["media_url"].as_str().unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        // In real time: one frame every 20 ms, as a microphone would.
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..100 {
            tick.tick().await;
            tx.send(Message::Binary(tone(i * 320).into()))
                .await
                .unwrap();
        }
        tx
    });
    let mut heard = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(1), rx.next()).await {
        if let Message::Binary(frame) = m {
            heard.extend_from_slice(&frame);
        }
    }
    let _tx = writer.await;
    std::fs::write("echo.wav", wav(&heard)).unwrap();
    println!(
        "recorded {} frames ({:.2} s) to echo.wav",
        heard.len() / 640,
        heard.len() as f64 / 640.0 * 0.02
    );
    let ended = call_api(
        &http,
        &key,
        format!("{base}/api/v1/calls/{id}/hangup"),
        json!({}),
    )
    .await;
    println!(
        "hung up: {} after {} s",
        ended["end_reason"], ended["duration_seconds"]
    );
}
