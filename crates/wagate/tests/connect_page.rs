//! The connect page end to end: the real `wagate serve --sandbox` binary, headless Chromium
//! with a phone viewport, and the sandbox clock and phone. One server and one browser walk
//! through every state an end customer can see: the QR (with and without the calling
//! toggle), a QR that rotates on the business clock, the choice posted and locked by the
//! scan, "Connected" in place, no price anywhere, and the dead link after a release.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::Browser;
use common::{fresh, send, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// How long the page may take to notice a change: it polls every 1.5 s of wall time.
const NOTICE_WITHIN: Duration = Duration::from_secs(10);

/// Texts that would be a price; the end customer never pays, so never sees one.
const PRICE_TEXTS: [&str; 4] = ["$", "15.00", "20.00", "USD"];

async fn create_line(s: &Server, body: Value) -> (String, String) {
    let (st, line) = s.post("/api/v1/wa/lines", body).await;
    assert_eq!(st, 201, "{line}");
    assert_eq!(line["status"], "pending");
    (
        line["id"].as_str().unwrap().to_owned(),
        line["connect_url"].as_str().unwrap().to_owned(),
    )
}

/// What the page itself polls, fetched by the test (not the browser).
async fn status(s: &Server, connect_url: &str) -> (u16, Value) {
    send(s.http.get(format!("{connect_url}/status"))).await
}

/// Fails the test if the rendered page shows anything that looks like a price.
async fn assert_no_price(browser: &mut Browser, when: &str) {
    let text = browser.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    for price in PRICE_TEXTS {
        assert!(
            !text.contains(price),
            "{price:?} on the page {when}: {text}"
        );
    }
}

async fn text_of(browser: &mut Browser, id: &str) -> Value {
    browser
        .eval(&format!("document.getElementById('{id}').textContent"))
        .await
}

/// Every `fetch` the page makes from now on is noted in `window.__fetches` as
/// `[url, method, body]`, then made as usual.
const RECORD_FETCHES: &str = "window.__fetches = []; \
    window.fetch = (function (real) { return function (url, opts) { \
      window.__fetches.push([String(url), (opts && opts.method) || 'GET', (opts && opts.body) || null]); \
      return real.apply(this, arguments); }; })(window.fetch); true";

both_backends!(test_connect_page_in_a_phone_browser, journey);
async fn journey(kind: &str) {
    let started = Instant::now();
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let (st, card) = s
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    assert_eq!(st, 201, "{card}");
    let (calling_id, calling_url) = create_line(&s, json!({"allow_calling": true})).await;
    let (plain_id, plain_url) = create_line(&s, json!({"label": "no calling"})).await;
    let token = calling_url.rsplit('/').next().unwrap().to_owned();

    let mut browser = Browser::launch().await;
    browser.set_viewport_phone().await;

    // (b) Without allow_calling: the QR and no toggle.
    browser.open(&plain_url).await;
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
    assert_no_price(&mut browser, "of a pending line without calling").await;

    // (a) With allow_calling: the QR and the toggle, off, on a page that fits the phone.
    browser.open(&calling_url).await;
    assert_eq!(
        browser.eval("!!document.querySelector('#qr svg')").await,
        true
    );
    assert_eq!(
        text_of(&mut browser, "status").await,
        "Scan this code with WhatsApp"
    );
    assert_eq!(
        browser
            .eval("[document.querySelector('label #calling-toggle').type, document.getElementById('calling-toggle').checked, document.getElementById('calling-toggle').disabled]")
            .await,
        json!(["checkbox", false, false])
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
    assert_no_price(&mut browser, "of a pending line with the calling choice").await;

    // The customer turns calling on: the page posts the choice and the server keeps it.
    assert_eq!(browser.eval(RECORD_FETCHES).await, true);
    browser
        .eval("document.getElementById('calling-toggle').click()")
        .await;
    let deadline = Instant::now() + NOTICE_WITHIN;
    while status(&s, &calling_url).await.1["calling"] != true {
        assert!(
            Instant::now() < deadline,
            "the choice was not stored; the page fetched {}",
            browser.eval("window.__fetches").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = browser
        .eval("window.__fetches.filter(function (f) { return f[1] === 'POST'; })")
        .await;
    assert_eq!(
        posts,
        json!([[
            format!("/connect/{token}/calling"),
            "POST",
            "{\"calling\":true}"
        ]])
    );
    // A fresh load shows the stored choice, still open to change.
    browser.open(&calling_url).await;
    assert_eq!(
        browser
            .eval("[document.getElementById('calling-toggle').checked, document.getElementById('calling-toggle').disabled]")
            .await,
        json!([true, false])
    );

    // (c) The QR stays put while the business clock does, and rotates when 20 s of it pass:
    // the page swaps the new code in without reloading.
    let (_, before) = status(&s, &calling_url).await;
    let (_, again) = status(&s, &calling_url).await;
    assert_eq!(
        before["qr_version"], again["qr_version"],
        "stable between polls"
    );
    let shown = browser
        .eval("document.getElementById('qr').dataset.qrVersion")
        .await;
    assert_eq!(shown, before["qr_version"]);
    browser.eval("window.__marker = 'same page'").await;
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": 25}))
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, after) = status(&s, &calling_url).await;
    assert_ne!(
        after["qr_version"], before["qr_version"],
        "the code rotated"
    );
    let rotated = format!(
        "document.getElementById('qr').dataset.qrVersion === {} \
         && !!document.querySelector('#qr svg')",
        after["qr_version"]
    );
    assert!(
        browser.wait_for(&rotated, NOTICE_WITHIN).await,
        "the page still shows QR {}",
        browser
            .eval("document.getElementById('qr').dataset.qrVersion")
            .await
    );
    assert_eq!(browser.eval("window.__marker").await, "same page");

    // The phone scans without saying anything about calling: the stored choice counts, the
    // line is on the calling plan, and the page turns "Connected" in place with the toggle
    // locked on.
    let (st, scanned) = s
        .post(
            &format!("/api/v1/sandbox/lines/{calling_id}/scan"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{scanned}");
    let connected = "document.getElementById('status').textContent === 'Connected'";
    assert!(
        browser.wait_for(connected, NOTICE_WITHIN).await,
        "status stayed {}",
        text_of(&mut browser, "status").await
    );
    assert_eq!(browser.eval("window.__marker").await, "same page");
    assert_eq!(
        browser
            .eval("performance.getEntriesByType('navigation').length")
            .await,
        1
    );
    assert_eq!(
        browser
            .eval("[document.getElementById('qr').hidden, document.getElementById('steps').hidden, document.getElementById('done').hidden]")
            .await,
        json!([true, true, false])
    );
    assert_eq!(
        text_of(&mut browser, "phone").await,
        scanned["phone_number"]
    );
    assert_eq!(
        browser
            .eval("[document.getElementById('calling-toggle').checked, document.getElementById('calling-toggle').disabled]")
            .await,
        json!([true, true])
    );
    assert_no_price(&mut browser, "of a connected calling line").await;
    let (st, line) = s.get(&format!("/api/v1/wa/lines/{calling_id}")).await;
    assert_eq!(st, 200, "{line}");
    assert_eq!(
        (&line["status"], &line["plan"], &line["price"]),
        (&json!("ready"), &json!("calling"), &json!("20.00")),
        "{line}"
    );

    // (e) The business releases the line: the open page closes the link in place, and a
    // reload finds only the friendly "no longer valid" page.
    let (st, released) =
        send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{calling_id}"))).await;
    assert_eq!(st, 200, "{released}");
    let closed = "document.getElementById('status').textContent === 'This line was closed' \
                  && !document.getElementById('closed').hidden";
    assert!(
        browser.wait_for(closed, NOTICE_WITHIN).await,
        "status stayed {}",
        text_of(&mut browser, "status").await
    );
    assert_eq!(browser.eval("window.__marker").await, "same page");
    assert_eq!(
        browser
            .eval("[document.getElementById('qr').hidden, document.getElementById('calling').hidden, document.body.dataset.state]")
            .await,
        json!([true, true, "released"])
    );
    assert_no_price(&mut browser, "of a released line").await;
    browser.open(&calling_url).await;
    assert_eq!(
        browser
            .eval("document.querySelector('h1').textContent")
            .await,
        "This link is no longer valid"
    );
    assert_eq!(browser.eval("window.__marker === undefined").await, true);
    assert_no_price(&mut browser, "of a dead link").await;
    let resp = s.http.get(&calling_url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // The line without calling was never touched: still pending, no plan.
    let (_, plain) = s.get(&format!("/api/v1/wa/lines/{plain_id}")).await;
    assert_eq!(
        (&plain["status"], &plain["plan"]),
        (&json!("pending"), &Value::Null)
    );

    eprintln!("connect page journey on {kind}: {:?}", started.elapsed());
}

/// Reads server-sent events from `resp` until one whose data has `"state":"<want>"`;
/// returns the data of the events read, in order.
async fn read_events_until(resp: &mut reqwest::Response, want: &str) -> Vec<Value> {
    let mut buf = String::new();
    let mut seen = Vec::new();
    let deadline = Instant::now() + NOTICE_WITHIN;
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(NOTICE_WITHIN, resp.chunk())
            .await
            .expect("an event within the notice time")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).unwrap();
                let done = v["state"] == want;
                seen.push(v);
                if done {
                    return seen;
                }
            }
        }
    }
    panic!("no {want:?} event: {seen:?}");
}

#[tokio::test]
async fn test_the_page_gets_live_updates_and_they_end_with_the_server() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    s.post(
        "/api/v1/billing/card",
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
    let (id, connect_url) = create_line(&s, json!({})).await;
    let mut live = s
        .http
        .get(format!("{connect_url}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(
        live.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let first = read_events_until(&mut live, "awaiting_scan").await;
    assert!(first[0]["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let (st, _) = s
        .post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    assert_eq!(st, 200);
    let after = read_events_until(&mut live, "connected").await;
    assert_eq!(after.last().unwrap()["qr_svg"], Value::Null);

    // Unknown links have no stream.
    let (st, b) = send(s.http.get(format!(
        "{}/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/events",
        s.base
    )))
    .await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));

    // An open stream does not hold up a graceful shutdown (a stream lasts 10 minutes;
    // `terminate` fails if the server is still running 30 s after SIGTERM).
    let exit = s.terminate().await;
    assert!(exit.success(), "{exit:?}");
}
