//! The dashboard end to end (PRODUCT.md §13, docs/dashboard.md): the real `wagate serve
//! --sandbox` binary on SQLite and PostgreSQL.
//!
//! Over plain HTTP: sign-in and its refusals, the session cookie's attributes, forged forms
//! refused with 403, another account's objects 404, bad input a clear 4xx, a revoked key
//! ending its sessions, sign-out, and (SQLite) a session that survives a restart.
//!
//! In headless Chromium: sign in, create a line, scan it in the sandbox and see it turn ready
//! without a reload, send a message and see a reply arrive live, top up and see the chart
//! change, rotate the webhook secret, redeliver an event, sign out; on every page one `h1`,
//! a label for every control and a status in words. With `WAGATE_SCREENSHOTS=<dir>` the
//! SQLite run also saves each page at desktop and phone width (scripts/screenshots).
//!
//! Waits are wall time for the browser and the server to get on with their work; business
//! time only moves through the sandbox clock.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use browser::Browser;
use common::receiver::Receiver;
use common::{create_account, fresh, send, Server};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};

/// How long the page may take to show a change pushed by the server (it looks every 1 s).
const NOTICE_WITHIN: Duration = Duration::from_secs(15);

/// A browser-like HTTP client of the dashboard: keeps its cookies, follows no redirects.
struct Dash {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    csrf: String,
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("a csrf field in {html}"));
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

impl Dash {
    fn new(base: &str) -> Dash {
        Dash {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the response's cookies (an empty value forgets one); returns the raw headers.
    fn keep(&mut self, resp: &reqwest::Response) -> Vec<String> {
        let raw: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &raw {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        raw
    }

    /// GET: (status, body, Location).
    async fn get(&mut self, path: &str) -> (u16, String, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.text().await.unwrap();
        if let Some(at) = body.find(r#"name="csrf" value=""#) {
            let _ = at;
            self.csrf = csrf_of(&body);
        }
        (status, body, location)
    }

    /// POSTs a form as it is (no token added): (status, body, Location, Set-Cookie).
    async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, String, Vec<String>) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        let cookies = self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, resp.text().await.unwrap(), location, cookies)
    }

    /// POSTs a form with the session's CSRF token: (status, body, Location).
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let (st, body, location, _) = self.post_raw(path, &all).await;
        (st, body, location)
    }

    /// Signs in with `key`; returns the Set-Cookie headers of the sign-in.
    async fn sign_in(&mut self, key: &str) -> Vec<String> {
        let (st, page, _) = self.get("/dashboard").await;
        assert_eq!(st, 200, "{page}");
        assert!(page.contains(r#"id="sign-in-form""#), "{page}");
        let token = self.csrf.clone();
        let (st, body, location, cookies) = self
            .post_raw("/dashboard/sign_in", &[("csrf", &token), ("api_key", key)])
            .await;
        assert_eq!((st, location.as_str()), (303, "/dashboard"), "{body}");
        let (st, page, _) = self.get("/dashboard").await;
        assert_eq!(st, 200);
        assert!(page.contains("<h1>Lines</h1>"), "{page}");
        cookies
    }
}

async fn add_card(s: &Server) {
    let (st, card) = s
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    assert_eq!(st, 201, "{card}");
}

async fn lines_of(s: &Server) -> Vec<Value> {
    let (st, list) = s.get("/api/v1/wa/lines").await;
    assert_eq!(st, 200);
    list["data"].as_array().unwrap().clone()
}

both_backends!(test_dashboard_sessions_csrf_and_tenancy, over_http);
async fn over_http(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let mut d = Dash::new(&s.base);

    // Signed out: the sign-in form; pages send you to it; posts are refused.
    let (st, _, location) = d.get("/dashboard/wallet").await;
    assert_eq!((st, location.as_str()), (303, "/dashboard"));
    let (st, _, _, _) = d.post_raw("/dashboard/lines", &[("calling", "off")]).await;
    assert_eq!(st, 403);

    // The sign-in form itself needs its token, and a valid key.
    let (st, _, _) = d.get("/dashboard").await;
    assert_eq!(st, 200);
    let (st, _, _, _) = d
        .post_raw("/dashboard/sign_in", &[("api_key", &s.key)])
        .await;
    assert_eq!(st, 403, "a sign-in without the form's token is refused");
    let token = d.csrf.clone();
    let (st, body, _, _) = d
        .post_raw(
            "/dashboard/sign_in",
            &[("csrf", &token), ("api_key", "sk_test_nope")],
        )
        .await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("not valid"), "{body}");

    let cookies = d.sign_in(&s.key).await;
    let session = cookies
        .iter()
        .find(|c| c.starts_with("wagate_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(session.contains(attribute), "{attribute}: {session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain http serves no Secure cookie: {session}"
    );
    let secret = d
        .cookies
        .iter()
        .find(|(k, _)| k == "wagate_session")
        .unwrap()
        .1
        .clone();

    // A forged form (no token, or another token) is refused and changes nothing.
    let (st, body, _, _) = d
        .post_raw(
            "/dashboard/lines",
            &[("calling", "off"), ("label", "forged")],
        )
        .await;
    assert_eq!(st, 403, "{body}");
    let (st, _, _, _) = d
        .post_raw(
            "/dashboard/lines",
            &[("csrf", &"0".repeat(64)), ("calling", "off")],
        )
        .await;
    assert_eq!(st, 403);
    assert!(
        lines_of(&s).await.is_empty(),
        "a forged post created a line"
    );

    // A real one goes through the same service as the API.
    let (st, _, location) = d
        .post("/dashboard/lines", &[("calling", "off"), ("label", "Shop")])
        .await;
    assert_eq!((st, location.as_str()), (303, "/dashboard?done=created"));
    let lines = lines_of(&s).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["label"], "Shop");
    let mine = lines[0]["id"].as_str().unwrap().to_owned();
    let (st, page, _) = d.get("/dashboard").await;
    assert_eq!(st, 200);
    assert!(page.contains(&mine) && page.contains("Waiting for scan"));

    // What the business typed is shown as text, never as markup.
    let (st, _, _) = d
        .post(
            &format!("/dashboard/lines/{mine}/label"),
            &[("label", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(st, 303);
    let (_, page, _) = d.get("/dashboard").await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("alert(1)"), "the label is there, escaped");

    // Pages are private, unframeable, and load nothing from elsewhere.
    let resp = d
        .http
        .get(format!("{}/dashboard", s.base))
        .header(COOKIE, d.cookie_header())
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-frame-options"), "DENY");
    assert!(header("content-security-policy").contains("default-src 'self'"));
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    let script = d
        .http
        .get(format!("{}/dashboard/assets/dashboard.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let script = script.text().await.unwrap();
    for outside in ["http://", "https://", "cdn"] {
        assert!(!script.contains(outside), "{outside} in the script");
    }

    // Bad input is a clear 4xx, never a 5xx.
    for (path, fields, want) in [
        ("/dashboard/lines", vec![("calling", "maybe")], 422),
        ("/dashboard/wallet/topup", vec![("amount", "lots")], 422),
        (
            "/dashboard/wallet/topup",
            vec![
                ("amount", "1.00"),
                ("key", "00112233445566778899aabbccddeeff"),
            ],
            422,
        ),
        (
            "/dashboard/wallet/auto_topup",
            vec![("threshold", "x"), ("amount", "10")],
            422,
        ),
        (
            "/dashboard/lines/line_nope/messages",
            vec![("to", "+447700900123"), ("text", "hi")],
            404,
        ),
        (&format!("/dashboard/lines/{mine}/release"), vec![], 422),
        (
            &format!("/dashboard/lines/{mine}/messages"),
            vec![("to", "not a number"), ("text", "hi")],
            0,
        ),
    ] {
        let (st, body, _) = d.post(path, &fields).await;
        if want == 0 {
            assert!((400..500).contains(&st), "{path} {fields:?}: {st} {body}");
        } else {
            assert_eq!(st, want, "{path} {fields:?}: {body}");
        }
        assert!(body.contains("<h1>"), "an HTML page: {body}");
    }
    for (path, want) in [
        ("/dashboard?status=bogus", 422),
        ("/dashboard/lines/garbage", 404),
        ("/dashboard/wallet?starting_after=txn_unknown", 200),
        ("/dashboard/assets/nothing.js", 404),
        ("/dashboard/events?line=line_nope", 404),
    ] {
        let (st, body, _) = d.get(path).await;
        assert!(
            st == want || (want == 200 && st < 500),
            "{path}: {st} {body}"
        );
    }

    // Another account's objects are 404 here as in the API.
    let (_, other_key) = create_account(&backing, "Other agency").await;
    let other = |method: Method, path: &str| {
        s.http
            .request(method, format!("{}{path}", s.base))
            .bearer_auth(&other_key)
    };
    let (st, card) = send(
        other(Method::POST, "/api/v1/billing/card")
            .json(&json!({"source_id": "cnon:card-nonce-ok"})),
    )
    .await;
    assert_eq!(st, 201, "{card}");
    let (st, line) = send(other(Method::POST, "/api/v1/wa/lines").json(&json!({}))).await;
    assert_eq!(st, 201, "{line}");
    let theirs = line["id"].as_str().unwrap().to_owned();
    let (_, events) = send(other(Method::GET, "/api/v1/webhooks/events")).await;
    let their_event = events["data"][0]["id"].as_str().map(str::to_owned);
    let (st, _, _) = d.get(&format!("/dashboard/lines/{theirs}")).await;
    assert_eq!(st, 404);
    let (st, _, _) = d.get(&format!("/dashboard/events?line={theirs}")).await;
    assert_eq!(st, 404);
    let (st, _, _) = d
        .post(
            &format!("/dashboard/lines/{theirs}/release"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(st, 404);
    let (st, _, _) = d
        .post(
            &format!("/dashboard/lines/{theirs}/label"),
            &[("label", "x")],
        )
        .await;
    assert_eq!(st, 404);
    if let Some(ev) = their_event {
        let (st, _, _) = d
            .post(&format!("/dashboard/webhooks/events/{ev}/redeliver"), &[])
            .await;
        assert_eq!(st, 404);
    }
    let (_, their_line) = send(other(Method::GET, &format!("/api/v1/wa/lines/{theirs}"))).await;
    assert_eq!(their_line["status"], "pending", "untouched");
    assert!(their_line["label"].is_null(), "untouched");

    // Webhook endpoints through the dashboard: a bad URL is 422, another account's is 404.
    let (st, body, _) = d
        .post(
            "/dashboard/webhooks/endpoints",
            &[("url", "not a url"), ("events", "*")],
        )
        .await;
    assert_eq!(st, 422, "{body}");
    let (st, body, _) = d
        .post(
            "/dashboard/webhooks/endpoints",
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "no.such_type"),
            ],
        )
        .await;
    assert_eq!(st, 422, "{body}");
    let (st, their_endpoint) = send(
        other(Method::POST, "/api/v1/webhooks/endpoints")
            .json(&json!({"url": "http://127.0.0.1:9/theirs"})),
    )
    .await;
    assert_eq!(st, 201, "{their_endpoint}");
    let their_endpoint = their_endpoint["id"].as_str().unwrap();
    for (action, fields) in [
        ("delete", vec![("confirm", "yes")]),
        ("enabled", vec![("enabled", "false")]),
        ("test", vec![]),
    ] {
        let (st, _, _) = d
            .post(
                &format!("/dashboard/webhooks/endpoints/{their_endpoint}/{action}"),
                &fields,
            )
            .await;
        assert_eq!(st, 404, "{action}");
    }
    let (st, _, location) = d
        .post(
            "/dashboard/webhooks/endpoints",
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "line.ready, line.released"),
            ],
        )
        .await;
    assert_eq!(
        (st, location.as_str()),
        (303, "/dashboard/webhooks?done=endpoint_added")
    );
    let (_, mine_eps) = s.get("/api/v1/webhooks/endpoints").await;
    let ep = mine_eps["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        mine_eps["data"][0]["events"],
        json!(["line.ready", "line.released"])
    );
    let (st, _, _) = d
        .post(&format!("/dashboard/webhooks/endpoints/{ep}/delete"), &[])
        .await;
    assert_eq!(st, 422, "deleting needs the confirmation");
    let (st, _, _) = d
        .post(
            &format!("/dashboard/webhooks/endpoints/{ep}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(st, 303);
    let (_, mine_eps) = s.get("/api/v1/webhooks/endpoints").await;
    assert_eq!(mine_eps["data"], json!([]));

    // Release with confirmation.

    let (st, _, location) = d
        .post(
            &format!("/dashboard/lines/{mine}/release"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!((st, location.as_str()), (303, "/dashboard?done=released"));
    let (_, line) = s.get(&format!("/api/v1/wa/lines/{mine}")).await;
    assert_eq!(line["status"], "released");

    // A session survives a restart of the server (SQLite: the same data directory).
    let s = if kind == "sqlite" {
        drop(s);
        let s = Server::sandbox(&backing).await;
        d.base = s.base.clone();
        let (st, page, _) = d.get("/dashboard").await;
        assert_eq!(st, 200);
        assert!(page.contains("<h1>Lines</h1>"), "still signed in: {page}");
        s
    } else {
        s
    };

    // A second key's session dies with the key.
    let (st, created) = s.post("/api/v1/account/keys", json!({})).await;
    assert_eq!(st, 201, "{created}");
    let mut d2 = Dash::new(&s.base);
    d2.sign_in(created["secret"].as_str().unwrap()).await;
    let (st, _) = send(s.req(
        Method::DELETE,
        &format!("/api/v1/account/keys/{}", created["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(st, 200);
    let (st, page, _) = d2.get("/dashboard").await;
    assert_eq!(st, 200);
    assert!(page.contains(r#"id="sign-in-form""#), "signed out: {page}");
    let (st, _, _) = d2.post("/dashboard/wallet/topup", &[("amount", "5")]).await;
    assert_eq!(st, 403);

    // Sign-out ends the session for good, even for a copy of the cookie.
    let (st, _, location) = d.post("/dashboard/sign_out", &[]).await;
    assert_eq!((st, location.as_str()), (303, "/dashboard"));
    assert!(!d.cookies.iter().any(|(k, _)| k == "wagate_session"));
    d.cookies.push(("wagate_session".into(), secret));
    let (st, page, _) = d.get("/dashboard").await;
    assert_eq!(st, 200);
    assert!(page.contains(r#"id="sign-in-form""#), "{page}");
}

/// Problems a page has with the basics: not exactly one `h1`, a form control without a
/// label, a status shown without words, a button without a name.
const ACCESSIBILITY: &str = r#"(function () {
  var problems = [];
  var h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) { problems.push(h1 + ' h1 elements'); }
  document.querySelectorAll('input, select, textarea').forEach(function (el) {
    if (el.type === 'hidden') { return; }
    var named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) { problems.push('no label: ' + (el.id || el.name)); }
  });
  document.querySelectorAll('.status').forEach(function (el) {
    if (!el.textContent.trim()) { problems.push('a status without words'); }
  });
  document.querySelectorAll('button').forEach(function (b) {
    if (!b.textContent.trim() && !b.getAttribute('aria-label')) { problems.push('a button without a name'); }
  });
  return problems;
})()"#;

async fn assert_accessible(browser: &mut Browser, page: &str) {
    let problems = browser.eval(ACCESSIBILITY).await;
    assert_eq!(problems, json!([]), "on {page}");
}

/// Where screenshots go, when asked for (scripts/screenshots).
fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("WAGATE_SCREENSHOTS").map(PathBuf::from)
}

both_backends!(test_dashboard_in_a_browser, in_a_browser);
async fn in_a_browser(kind: &str) {
    let started = Instant::now();
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let receiver = Receiver::start().await;

    // A fake microphone (a beep), allowed without a prompt: click-to-call has audio to send.
    let mut browser = Browser::launch_with(&[
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ])
    .await;
    browser.set_viewport(1280, 900, false).await;
    let base = s.base.clone();

    // Sign in.
    browser.open(&format!("{base}/dashboard")).await;
    assert_accessible(&mut browser, "the sign-in page").await;
    browser
        .eval_and_wait_load(&format!(
            "document.getElementById('api-key').value = {}; document.querySelector('#sign-in-form button').click()",
            json!(s.key)
        ))
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('h1').textContent")
            .await,
        "Lines"
    );
    assert_accessible(&mut browser, "the lines page").await;

    // An endpoint for every event, added on the webhooks page; its test event arrives.
    browser.open(&format!("{base}/dashboard/webhooks")).await;
    browser
        .eval_and_wait_load(&format!(
            "document.getElementById('endpoint-url').value = {}; \
             document.getElementById('endpoint-description').value = 'receiver'; \
             document.querySelector('#endpoint-form button').click()",
            json!(receiver.url)
        ))
        .await;
    let (_, endpoints) = s.get("/api/v1/webhooks/endpoints").await;
    assert_eq!(endpoints["data"][0]["url"], json!(receiver.url));
    assert_eq!(endpoints["data"][0]["events"], json!(["*"]));
    let endpoint = endpoints["data"][0]["id"].as_str().unwrap().to_owned();
    browser
        .eval_and_wait_load(&format!(
            "document.querySelector('[data-test-endpoint=\"{endpoint}\"]').click()"
        ))
        .await;
    receiver.wait_for(1, NOTICE_WITHIN).await;
    assert_eq!(receiver.received()[0].json()["type"], "webhook.test");
    browser.open(&format!("{base}/dashboard")).await;

    // Create a line with the calling choice.
    browser
        .eval_and_wait_load(
            "document.getElementById('new-label').value = 'Bakery'; \
             document.getElementById('calling-on').checked = true; \
             document.querySelector('#create-line button').click()",
        )
        .await;
    let lines = lines_of(&s).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["calling_enabled"], true);
    let id = lines[0]["id"].as_str().unwrap().to_owned();
    let status =
        format!("document.querySelector('#line-{id} [data-role=status-text]').textContent");
    assert_eq!(browser.eval(&status).await, "Waiting for scan");
    assert_eq!(
        browser
            .eval(&format!("document.getElementById('connect-{id}').value"))
            .await,
        lines[0]["connect_url"]
    );
    assert_accessible(&mut browser, "the lines page with a line").await;

    // Scanned in the sandbox, it turns ready on the page without a reload.
    assert!(
        browser
            .wait_for(
                "document.body.dataset.liveConnected === 'yes'",
                NOTICE_WITHIN
            )
            .await,
        "the live updates never connected"
    );
    browser.eval("window.__sameDocument = true").await;
    let (st, scanned) = s
        .post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    assert_eq!(st, 200, "{scanned}");
    assert!(
        browser
            .wait_for(&format!("{status} === 'Ready'"), NOTICE_WITHIN)
            .await,
        "the line never showed Ready: {}",
        browser.eval(&status).await
    );
    assert_eq!(
        browser.eval("window.__sameDocument === true").await,
        true,
        "the page reloaded"
    );
    assert_eq!(
        browser
            .eval(&format!(
                "document.querySelector('#line-{id} [data-role=status]').dataset.status"
            ))
            .await,
        "ready"
    );

    // The line's page: send a message; a reply arrives live.
    browser.open(&format!("{base}/dashboard/lines/{id}")).await;
    assert_accessible(&mut browser, "a line's page").await;
    browser
        .eval_and_wait_load(
            "document.getElementById('send-to').value = '+447700900123'; \
             document.getElementById('send-text').value = 'Hello from the dashboard'; \
             document.querySelector('#send-form button').click()",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('messages').textContent.includes('Hello from the dashboard')")
            .await,
        true
    );
    assert!(
        browser
            .wait_for(
                "document.body.dataset.liveConnected === 'yes'",
                NOTICE_WITHIN
            )
            .await
    );
    browser.eval("window.__sameDocument = true").await;
    let (st, _) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/inbound"),
            json!({"from": "+447700900123", "text": "Thanks, see you at 9"}),
        )
        .await;
    assert!((200..300).contains(&st), "{st}");
    assert!(
        browser
            .wait_for(
                "document.getElementById('messages').textContent.includes('Thanks, see you at 9')",
                NOTICE_WITHIN
            )
            .await,
        "the reply never appeared"
    );
    assert_eq!(browser.eval("window.__sameDocument === true").await, true);
    let (_, messages) = s.get(&format!("/api/v1/wa/lines/{id}/messages")).await;
    assert_eq!(messages["data"].as_array().unwrap().len(), 2);

    // Click-to-call: the page places the call, and once the sandbox's other phone answers,
    // the microphone's frames go out over the media socket and its echo comes back.
    browser
        .eval(
            "document.getElementById('call-to').value = '+447700900124'; \
             document.querySelector('#call-form button').click(); true",
        )
        .await;
    let call_id = {
        let deadline = Instant::now() + NOTICE_WITHIN;
        loop {
            let (_, calls) = s.get(&format!("/api/v1/wa/lines/{id}/calls")).await;
            // The sandbox's other phone answers once the call rings.
            if let Some(c) = calls["data"].as_array().and_then(|d| d.first()) {
                assert_eq!(c["to"], "+447700900124");
                if c["status"] == "ringing" {
                    break c["id"].as_str().unwrap().to_owned();
                }
            }
            assert!(Instant::now() < deadline, "the page placed no call");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (st, answered) = s
        .post(
            &format!("/api/v1/sandbox/calls/{call_id}/answer"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{answered}");
    assert!(
        browser
            .wait_for(
                "document.getElementById('call-state').textContent === 'Connected'",
                NOTICE_WITHIN
            )
            .await,
        "the call's audio never connected: {}",
        browser
            .eval("document.getElementById('call-state').textContent")
            .await
    );
    assert!(
        browser
            .wait_for(
                "Number(document.getElementById('call-panel').dataset.framesOut) > 10 && \
                 Number(document.getElementById('call-panel').dataset.framesIn) > 10",
                NOTICE_WITHIN
            )
            .await,
        "audio did not flow both ways: {}",
        browser
            .eval("JSON.stringify(document.getElementById('call-panel').dataset)")
            .await
    );
    browser
        .eval("document.getElementById('call-hangup').click(); true")
        .await;
    let deadline = Instant::now() + NOTICE_WITHIN;
    loop {
        let (_, call) = s.get(&format!("/api/v1/calls/{call_id}")).await;
        if call["status"] == "ended" {
            assert_eq!(call["end_reason"], "completed");
            break;
        }
        assert!(Instant::now() < deadline, "the call never ended: {call}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An incoming call rings on the page without a reload; answering it carries audio too.
    let (st, incoming) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/incoming_call"),
            json!({"from": "+447700900125"}),
        )
        .await;
    assert!((200..300).contains(&st), "{incoming}");
    let incoming_id = incoming["id"].as_str().unwrap().to_owned();
    assert!(
        browser
            .wait_for(
                "!document.getElementById('call-answer').hidden && \
                 document.getElementById('call-state').textContent === 'Incoming call from +447700900125'",
                NOTICE_WITHIN
            )
            .await,
        "the incoming call never showed: {}",
        browser
            .eval("document.getElementById('call-state').textContent")
            .await
    );
    browser
        .eval("document.getElementById('call-answer').click(); true")
        .await;
    assert!(
        browser
            .wait_for(
                "document.getElementById('call-state').textContent === 'Connected' && \
                 Number(document.getElementById('call-panel').dataset.framesIn) > 10",
                NOTICE_WITHIN
            )
            .await,
        "the answered call carried no audio: {}",
        browser
            .eval("JSON.stringify(document.getElementById('call-panel').dataset)")
            .await
    );
    let (_, call) = s.get(&format!("/api/v1/calls/{incoming_id}")).await;
    assert_eq!(call["status"], "answered");
    browser
        .eval("document.getElementById('call-hangup').click(); true")
        .await;
    let deadline = Instant::now() + NOTICE_WITHIN;
    while s.get(&format!("/api/v1/calls/{incoming_id}")).await.1["status"] != "ended" {
        assert!(Instant::now() < deadline, "the answered call never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The wallet: top up and the chart moves.
    browser.open(&format!("{base}/dashboard/wallet")).await;
    assert_accessible(&mut browser, "the wallet").await;
    let chart_balance = "Number(document.getElementById('balance-chart').dataset.balance)";
    let before = browser.eval(chart_balance).await.as_i64().unwrap();
    let points_before = browser
        .eval("document.querySelector('#balance-chart .history').getAttribute('points')")
        .await;
    browser
        .eval_and_wait_load(
            "document.getElementById('topup-amount').value = '50.00'; \
             document.querySelector('#topup-form button').click()",
        )
        .await;
    let after = browser.eval(chart_balance).await.as_i64().unwrap();
    assert_eq!(
        after - before,
        50_000_000,
        "the chart's balance moved by the top-up"
    );
    assert_ne!(
        browser
            .eval("document.querySelector('#balance-chart .history').getAttribute('points')")
            .await,
        points_before,
        "the line of the chart changed"
    );
    let (_, wallet) = s.get("/api/v1/billing/wallet").await;
    assert_eq!(wallet["balance"], "50.00");
    assert_eq!(
        browser
            .eval("document.getElementById('transactions').textContent.includes('topup')")
            .await,
        true
    );
    // Auto top-up settings go through the same service.
    browser
        .eval_and_wait_load(
            "document.getElementById('auto-enabled').checked = true; \
             document.getElementById('auto-threshold').value = '10.00'; \
             document.getElementById('auto-amount').value = '25.00'; \
             document.querySelector('#auto-topup-form button').click()",
        )
        .await;
    let (_, wallet) = s.get("/api/v1/billing/wallet").await;
    assert_eq!(
        wallet["auto_topup"],
        json!({"enabled": true, "threshold": "10.00", "amount": "25.00"})
    );

    // Eight days on the sandbox clock: the trial converts, the wallet pays the line, and the
    // chart follows the charge.
    let (st, moved) = s
        .post(
            "/api/v1/sandbox/clock/advance",
            json!({"seconds": 8 * 86_400}),
        )
        .await;
    assert_eq!(st, 200, "{moved}");
    browser.open(&format!("{base}/dashboard/wallet")).await;
    assert_eq!(
        browser.eval(chart_balance).await.as_i64().unwrap(),
        30_000_000,
        "the chart shows the balance after the $20 charge"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('transactions').textContent.includes('line_charge')")
            .await,
        true
    );

    // Webhooks: rotate the secret, redeliver an event.
    browser.open(&format!("{base}/dashboard/webhooks")).await;
    assert_accessible(&mut browser, "the webhooks page").await;
    let (_, old) = s.get("/api/v1/webhooks/secret").await;
    browser
        .eval("window.confirm = function () { return true; }")
        .await;
    browser
        .eval_and_wait_load("document.getElementById('rotate-secret').click()")
        .await;
    let (_, new) = s.get("/api/v1/webhooks/secret").await;
    assert_ne!(old["secret"], new["secret"]);
    assert_eq!(
        browser
            .eval("document.getElementById('secret-value').value")
            .await,
        new["secret"]
    );
    assert_accessible(&mut browser, "the webhooks page with the secret").await;

    let ready_event = {
        let (_, events) = s.get("/api/v1/webhooks/events?type=line.ready").await;
        events["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let delivered = |receiver: &Receiver| {
        receiver
            .received()
            .iter()
            .filter(|r| r.header("webhook-id") == ready_event)
            .count()
    };
    let deadline = Instant::now() + NOTICE_WITHIN;
    while delivered(&receiver) == 0 {
        assert!(Instant::now() < deadline, "line.ready was never delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.open(&format!("{base}/dashboard/webhooks")).await;
    assert_eq!(
        browser
            .eval(&format!(
                "document.getElementById('event-{ready_event}').textContent.includes('Delivered')"
            ))
            .await,
        true,
        "the attempt is in the log"
    );
    browser
        .eval_and_wait_load(&format!(
            "document.querySelector('[data-redeliver=\"{ready_event}\"]').click()"
        ))
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('.notice').textContent.includes('queued for delivery again')")
            .await,
        true
    );
    let deadline = Instant::now() + NOTICE_WITHIN;
    while delivered(&receiver) < 2 {
        assert!(Instant::now() < deadline, "the redelivery never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    browser.open(&format!("{base}/dashboard/invoices")).await;
    assert_accessible(&mut browser, "the invoices page").await;

    // Every page fits a phone; with WAGATE_SCREENSHOTS, each is saved at both widths.
    let pages = [
        ("lines", "/dashboard".to_owned()),
        ("line", format!("/dashboard/lines/{id}")),
        ("wallet", "/dashboard/wallet".to_owned()),
        ("webhooks", "/dashboard/webhooks".to_owned()),
        ("invoices", "/dashboard/invoices".to_owned()),
    ];
    let shots = screenshot_dir().filter(|_| kind == "sqlite");
    for (width, height, mobile, size) in [(390, 844, true, "phone"), (1280, 900, false, "desktop")]
    {
        browser.set_viewport(width, height, mobile).await;
        for (name, path) in &pages {
            browser.open(&format!("{base}{path}")).await;
            let wide = browser
                .eval("document.documentElement.scrollWidth")
                .await
                .as_u64()
                .unwrap();
            if wide > u64::from(width) {
                let culprits = browser
                    .eval(&format!(
                        "Array.prototype.slice.call(document.querySelectorAll('body *'))\
                         .filter(function (e) {{ return e.getBoundingClientRect().right > {width}; }})\
                         .map(function (e) {{ return e.tagName + '#' + e.id + '.' + e.className; }})"
                    ))
                    .await;
                panic!("{name} is {wide} px wide at {width} px: {culprits}");
            }
            if let Some(dir) = &shots {
                browser
                    .screenshot(&dir.join(format!("{name}-{size}.png")))
                    .await;
            }
        }
    }

    // Sign out: back to the sign-in form, and the pages are closed.
    browser
        .eval_and_wait_load("document.getElementById('sign-out').click()")
        .await;
    assert_eq!(
        browser
            .eval("!!document.getElementById('sign-in-form')")
            .await,
        true
    );
    browser.open(&format!("{base}/dashboard/wallet")).await;
    assert_eq!(
        browser
            .eval("!!document.getElementById('sign-in-form')")
            .await,
        true,
        "signed out"
    );
    if let Some(dir) = &shots {
        for (width, height, mobile, size) in
            [(390, 844, true, "phone"), (1280, 900, false, "desktop")]
        {
            browser.set_viewport(width, height, mobile).await;
            browser.open(&format!("{base}/dashboard")).await;
            browser
                .screenshot(&dir.join(format!("sign-in-{size}.png")))
                .await;
        }
    }
    eprintln!(
        "dashboard browser journey ({kind}) took {:?}",
        started.elapsed()
    );
}
