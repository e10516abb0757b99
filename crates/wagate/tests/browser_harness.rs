//! The headless-Chromium harness, tested on the connect page itself: a small axum app serves
//! the rendered page and a status the test controls, and Chromium runs the page's script.

// Included by path so this test does not compile the whole server harness in common/mod.rs.
#[path = "common/browser.rs"]
mod browser;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use browser::Browser;
use serde_json::{json, Value};
use wagate_http::connect_page::{
    render_not_found, render_page, status_json, ConnectPage, ConnectState,
};

/// The line as the fake server sees it; the test flips it.
#[derive(Clone, Default)]
struct FakeLine {
    connected: Arc<AtomicBool>,
    /// Bumped to make the "connector" rotate its QR payload.
    qr_round: Arc<AtomicUsize>,
    /// Every JSON body posted to `/connect/{token}/calling`, in order.
    calling_posts: Arc<Mutex<Vec<Value>>>,
}

/// Two known links: one offering the calling choice, one not.
const WITH_CALLING: &str = "tok-with-calling";
const WITHOUT_CALLING: &str = "tok-without-calling";
const PHONE: &str = "+447700900123";

impl FakeLine {
    /// Renders with the page for `token`, or `None` for an unknown token.
    fn with_page<T>(&self, token: &str, f: impl FnOnce(&ConnectPage) -> T) -> Option<T> {
        let allow_calling = match token {
            WITH_CALLING => true,
            WITHOUT_CALLING => false,
            _ => return None,
        };
        let connected = self.connected.load(Ordering::SeqCst);
        let payload = format!(
            "2@fake-ref-{},bm9pc2U=,a2V5",
            self.qr_round.load(Ordering::SeqCst)
        );
        let calling_choice = self
            .calling_posts
            .lock()
            .unwrap()
            .last()
            .and_then(|body| body["calling"].as_bool())
            .unwrap_or(false);
        Some(f(&ConnectPage {
            token,
            business_name: "Acme Bakery",
            state: if connected {
                ConnectState::Connected {
                    phone_number: Some(PHONE),
                }
            } else {
                ConnectState::AwaitingScan {
                    qr_payload: &payload,
                }
            },
            allow_calling,
            calling_choice,
            calling_locked: connected,
        }))
    }
}

async fn page(State(line): State<FakeLine>, Path(token): Path<String>) -> Response {
    match line.with_page(&token, render_page) {
        Some(html) => Html(html).into_response(),
        None => (StatusCode::NOT_FOUND, Html(render_not_found())).into_response(),
    }
}

async fn status(State(line): State<FakeLine>, Path(token): Path<String>) -> Response {
    match line.with_page(&token, status_json) {
        Some(body) => Json(body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `Json` rejects a body that is not sent as `application/json`, so a recorded post is also
/// proof of the content type.
async fn calling(State(line): State<FakeLine>, Json(body): Json<Value>) -> StatusCode {
    line.calling_posts.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

/// Serves the fake connect routes on a free local port; returns the base URL.
async fn serve(line: FakeLine) -> String {
    let app = Router::new()
        .route("/connect/{token}", get(page))
        .route("/connect/{token}/status", get(status))
        .route("/connect/{token}/calling", post(calling))
        .with_state(line);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Waits (wall time) until the browser has posted a calling choice.
async fn wait_for_posts(line: &FakeLine, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let posts = line.calling_posts.lock().unwrap().clone();
        if posts.len() >= count || Instant::now() >= deadline {
            return posts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_connect_page_turns_connected_in_place_on_a_phone() {
    let line = FakeLine::default();
    let base = serve(line.clone()).await;
    let mut browser = Browser::launch().await;
    browser.set_viewport_phone().await;
    browser
        .open(&format!("{base}/connect/{WITH_CALLING}"))
        .await;

    assert_eq!(
        browser.eval("!!document.querySelector('#qr svg')").await,
        true
    );
    assert_eq!(
        browser
            .eval("document.getElementById('status').textContent")
            .await,
        "Scan this code with WhatsApp"
    );
    assert_eq!(
        browser
            .eval("document.querySelector('label #calling-toggle').type")
            .await,
        "checkbox"
    );
    let width = browser
        .eval("document.documentElement.scrollWidth")
        .await
        .as_u64()
        .unwrap();
    assert!(
        width <= 390,
        "the page is {width} px wide on a 390 px phone"
    );

    // The customer chooses calling: the page posts the choice as JSON.
    browser
        .eval("document.getElementById('calling-toggle').click()")
        .await;
    assert_eq!(
        wait_for_posts(&line, 1).await,
        vec![json!({"calling": true})]
    );

    // The connector rotates the QR: the page swaps it in place.
    let first = browser
        .eval("document.getElementById('qr').dataset.qrVersion")
        .await;
    browser.eval("window.__marker = 'same page'").await;
    line.qr_round.fetch_add(1, Ordering::SeqCst);
    let rotated = format!(
        "document.getElementById('qr').dataset.qrVersion !== {first} \
         && !!document.querySelector('#qr svg')"
    );
    assert!(browser.wait_for(&rotated, Duration::from_secs(10)).await);

    // The phone scans: the page says so without reloading.
    line.connected.store(true, Ordering::SeqCst);
    let connected = "document.getElementById('status').textContent === 'Connected'";
    assert!(
        browser.wait_for(connected, Duration::from_secs(10)).await,
        "status stayed {}",
        browser
            .eval("document.getElementById('status').textContent")
            .await
    );
    assert_eq!(
        browser
            .eval("performance.getEntriesByType('navigation').length")
            .await,
        1
    );
    assert_eq!(browser.eval("window.__marker").await, "same page");
    assert_eq!(
        browser.eval("document.getElementById('qr').hidden").await,
        true
    );
    assert_eq!(
        browser
            .eval("document.getElementById('phone').textContent")
            .await,
        PHONE
    );
    // The scan locked the choice: the toggle shows it and no longer changes.
    assert_eq!(
        browser
            .eval("[document.getElementById('calling-toggle').checked, document.getElementById('calling-toggle').disabled]")
            .await,
        json!([true, true])
    );
}

#[tokio::test]
async fn the_calling_toggle_is_absent_unless_the_line_allows_calling() {
    let base = serve(FakeLine::default()).await;
    let mut browser = Browser::launch().await;
    browser.set_viewport_phone().await;
    browser
        .open(&format!("{base}/connect/{WITHOUT_CALLING}"))
        .await;

    assert_eq!(
        browser.eval("!!document.querySelector('#qr svg')").await,
        true
    );
    assert_eq!(
        browser
            .eval("document.getElementById('calling-toggle') === null")
            .await,
        true
    );
    assert_eq!(
        browser
            .eval("document.body.innerText.includes('Make and receive calls?')")
            .await,
        false
    );
}

#[tokio::test]
async fn an_unknown_link_shows_the_friendly_page() {
    let base = serve(FakeLine::default()).await;
    let mut browser = Browser::launch().await;
    browser.open(&format!("{base}/connect/tok-unknown")).await;
    assert_eq!(
        browser
            .eval("document.querySelector('h1').textContent")
            .await,
        "This link is no longer valid"
    );
}
