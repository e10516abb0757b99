//! An in-test webhook receiver on loopback: records every request and answers with a
//! programmable sequence of statuses (200 when the sequence is empty), optionally slowly.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    got: Mutex<Vec<Received>>,
    statuses: Mutex<VecDeque<u16>>,
    delay_ms: Mutex<u64>,
}

/// The receiver; clones share state.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    pub url: String,
}

async fn handle(State(r): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = *r.delay_ms.lock().unwrap();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = r.statuses.lock().unwrap().pop_front().unwrap_or(200);
    r.got.lock().unwrap().push(Received { headers, body });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 at a free port.
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { inner, url }
    }

    /// Answer the next requests with these statuses.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.inner
            .statuses
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }

    /// Answer every request after this delay.
    pub fn set_delay_ms(&self, ms: u64) {
        *self.inner.delay_ms.lock().unwrap() = ms;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.got.lock().unwrap().clone()
    }

    /// Waits (real time: delivery is asynchronous) until every event in `ids` arrived
    /// (distinct `webhook-id`s), failing with how many did after `within`.
    pub async fn wait_for_ids(&self, ids: &std::collections::HashSet<String>, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen: std::collections::HashSet<String> = self
                .received()
                .iter()
                .map(|r| r.header("webhook-id"))
                .collect();
            let arrived = ids.intersection(&seen).count();
            if arrived == ids.len() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{arrived} of {} accepted events arrived within {within:?}",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (real time: delivery is asynchronous) until `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} webhooks arrived within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
