//! The dashboard in headless Chromium, from sign-in to sign-out (a number bought on the way), with the accessibility
//! basics checked on every page and (with `WAGATE_SCREENSHOTS`) the screenshots.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::browser::Browser;
use crate::client::{add_card, lines_of};
use crate::common::receiver::Receiver;
use crate::common::{fresh, Server};
use crate::NOTICE_WITHIN;

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

    // Numbers: buy a verification from the page, the SMS arrives, its code is shown.
    browser.open(&format!("{base}/dashboard/numbers")).await;
    assert_accessible(&mut browser, "the numbers page").await;
    browser
        .eval_and_wait_load("document.querySelector('#buy-number button[type=submit]').click()")
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('.notice').textContent.includes('Number bought')")
            .await,
        true
    );
    let (_, numbers) = s.get("/api/v1/numbers").await;
    let num = numbers["data"][0]["id"].as_str().unwrap().to_owned();
    let (st, sms) = s
        .post(
            &format!("/api/v1/sandbox/numbers/{num}/sms"),
            json!({"text": "Your code: 123-456"}),
        )
        .await;
    assert_eq!(st, 200, "{sms}");
    browser.open(&format!("{base}/dashboard/numbers")).await;
    assert_eq!(
        browser
            .eval(&format!(
                "document.querySelector('#number-{num} [data-role=code]').textContent.trim()"
            ))
            .await,
        "123456"
    );
    assert_accessible(&mut browser, "the numbers page with a number").await;

    // Every page fits a phone; with WAGATE_SCREENSHOTS, each is saved at both widths.
    let pages = [
        ("lines", "/dashboard".to_owned()),
        ("line", format!("/dashboard/lines/{id}")),
        ("wallet", "/dashboard/wallet".to_owned()),
        ("webhooks", "/dashboard/webhooks".to_owned()),
        ("invoices", "/dashboard/invoices".to_owned()),
        ("numbers", "/dashboard/numbers".to_owned()),
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
