//! Lines end to end over HTTP on the sandbox clock: provisioning, the connect page, scan,
//! messages and receipts, inbound, drops that heal, logout and rescan, release, bad input.

mod common;

use common::{create_account, fresh, send, Server};
use reqwest::Method;
use serde_json::{json, Value};

async fn advance(s: &Server, secs: i64) {
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": secs}))
        .await;
    assert_eq!(st, 200, "{b}");
}

/// Events of a type about a line, oldest first.
async fn events(s: &Server, line: &str, ty: &str) -> Vec<Value> {
    let (st, b) = s
        .get(&format!(
            "/api/v1/webhooks/events?type={ty}&line_id={line}&limit=200"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    // The delivered body is `{"id", "type", "created_at", "data"}`.
    let mut v: Vec<Value> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].clone())
        .collect();
    v.reverse();
    v
}

async fn add_card(s: &Server) {
    let (st, b) = s
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
}

async fn line(s: &Server, id: &str) -> Value {
    let (st, b) = s.get(&format!("/api/v1/wa/lines/{id}")).await;
    assert_eq!(st, 200, "{b}");
    b
}

async fn messages(s: &Server, id: &str) -> Vec<Value> {
    let (st, b) = s.get(&format!("/api/v1/wa/lines/{id}/messages")).await;
    assert_eq!(st, 200, "{b}");
    b["data"].as_array().unwrap().clone()
}

async fn page(s: &Server, url: &str) -> (u16, String) {
    let resp = s.http.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

both_backends!(test_line_lifecycle, lifecycle);
async fn lifecycle(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;

    // No card: no line.
    let (st, b) = s.post("/api/v1/wa/lines", json!({})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("card_required")),
        "{b}"
    );
    let (st, b) = s
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-declined"}),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("card_declined")),
        "{b}"
    );
    add_card(&s).await;

    // Create: pending, with a connect page that shows a QR and no price.
    let (st, created) = s
        .post(
            "/api/v1/wa/lines",
            json!({"label": "Shop 1", "metadata": {"customer_id": "c_42"}}),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["plan"], Value::Null);
    assert_eq!(created["metadata"]["customer_id"], "c_42");
    let id = created["id"].as_str().unwrap().to_owned();
    let connect_url = created["connect_url"].as_str().unwrap().to_owned();
    assert!(connect_url.starts_with(&s.base), "{connect_url}");
    let (st, html) = page(&s, &connect_url).await;
    assert_eq!(st, 200);
    assert!(html.contains("<svg"), "the page shows the QR");
    assert!(!html.contains("15.00") && !html.contains('$'), "no price");
    assert!(
        !html.contains("id=\"calling-toggle\""),
        "no toggle without allow_calling"
    );

    // Not linked yet: cannot send.
    let path = format!("/api/v1/wa/lines/{id}/messages");
    let (st, b) = s
        .post(&path, json!({"to": "+447700900123", "text": "hi"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_not_ready")),
        "{b}"
    );

    // Scan: ready, line.ready once, the first line is on trial.
    let (st, ready) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/scan"),
            json!({"phone_number": "+447700900001"}),
        )
        .await;
    assert_eq!(st, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["phone_number"], "+447700900001");
    assert_eq!(ready["plan"], "messaging");
    assert_eq!(ready["price"], "15.00");
    assert_eq!(ready["billing_status"], "trialing");
    let ready_events = events(&s, &id, "line.ready").await;
    assert_eq!(ready_events.len(), 1);
    let data = &ready_events[0]["data"];
    assert_eq!(data["line"]["metadata"]["customer_id"], "c_42");
    assert_eq!(data["trial"], true);
    let (_, html) = page(&s, &connect_url).await;
    assert!(html.contains("Connected"), "the page says Connected");

    // Send: queued → sent → delivered → read, each a message.status event.
    let (st, m) = s
        .post(&path, json!({"to": "+447700900123", "text": "hello"}))
        .await;
    assert_eq!(st, 202, "{m}");
    assert_eq!(m["status"], "queued");
    let msg_id = m["id"].as_str().unwrap().to_owned();
    // Right after the send: whether the background worker or the advance runs the send job
    // (due now) is a race, and the answer does not show it: only the two receipts, due 1 s
    // and 3 s later, are counted.
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": 5}))
        .await;
    assert_eq!((st, &b["jobs_run"]), (200, &json!(2)), "{b}");
    let listed = messages(&s, &id).await;
    assert_eq!(listed[0]["id"], msg_id.as_str());
    assert_eq!(listed[0]["status"], "read");
    let statuses: Vec<String> = events(&s, &id, "message.status")
        .await
        .iter()
        .map(|e| e["data"]["message"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);

    // Inbound.
    let (st, b) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/inbound"),
            json!({"from": "+447700900999", "text": "hi back"}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let received = events(&s, &id, "message.received").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["data"]["message"]["text"], "hi back");
    let listed = messages(&s, &id).await;
    assert_eq!(listed[0]["direction"], "inbound");
    assert_eq!(listed[0]["type"], "text");
    assert_eq!(listed[1]["direction"], "outbound");
    assert_eq!(listed[1]["type"], "text");

    // Inbound media: its type, and the caption (if any) as the text.
    let inbound = format!("/api/v1/sandbox/lines/{id}/inbound");
    let (st, b) = s
        .post(
            &inbound,
            json!({"from": "+447700900999", "type": "image", "text": "the receipt"}),
        )
        .await;
    assert_eq!(
        (st, &b["type"], &b["text"]),
        (202, &json!("image"), &json!("the receipt")),
        "{b}"
    );
    let (st, b) = s
        .post(&inbound, json!({"from": "+447700900999", "type": "voice"}))
        .await;
    assert_eq!(
        (st, &b["type"], &b["text"]),
        (202, &json!("voice"), &json!("")),
        "{b}"
    );
    let received = events(&s, &id, "message.received").await;
    assert_eq!(received.len(), 3);
    assert!(received
        .iter()
        .any(|e| e["data"]["message"]["type"] == "image"
            && e["data"]["message"]["text"] == "the receipt"));
    // A text needs its text; an unknown type is named.
    for (body, param) in [
        (json!({"from": "+447700900999", "type": "text"}), "text"),
        (json!({"from": "+447700900999"}), "text"),
        (
            json!({"from": "+447700900999", "type": "gif", "text": "x"}),
            "type",
        ),
        (
            json!({"from": "+447700900999", "type": "image", "text": "  "}),
            "text",
        ),
    ] {
        let (st, b) = s.post(&inbound, body.clone()).await;
        assert_eq!((st, b["param"].as_str()), (422, Some(param)), "{body}: {b}");
    }

    // A drop that outlasts a minute: reconnecting, sends are kept, line.disconnected after
    // 60 s, then it heals by itself and the queued messages go out in order.
    let (st, b) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/disconnect"),
            json!({"transient": true, "duration_seconds": 100}),
        )
        .await;
    assert_eq!(
        (st, b["status"].as_str()),
        (200, Some("reconnecting")),
        "{b}"
    );
    let mut queued = Vec::new();
    for n in 0..3 {
        let (st, m) = s
            .post(
                &path,
                json!({"to": "+447700900123", "text": format!("queued {n}")}),
            )
            .await;
        assert_eq!(st, 202, "{m}");
        queued.push(m["id"].as_str().unwrap().to_owned());
    }
    advance(&s, 30).await;
    assert_eq!(line(&s, &id).await["status"], "reconnecting");
    assert!(events(&s, &id, "line.disconnected").await.is_empty());
    advance(&s, 31).await;
    assert_eq!(events(&s, &id, "line.disconnected").await.len(), 1);
    for m in messages(&s, &id)
        .await
        .iter()
        .filter(|m| queued.contains(&m["id"].as_str().unwrap().to_owned()))
    {
        assert_eq!(m["status"], "queued", "nothing is sent while down");
    }
    advance(&s, 120).await;
    assert_eq!(line(&s, &id).await["status"], "ready");
    assert_eq!(events(&s, &id, "line.reconnected").await.len(), 1);
    let sent_order: Vec<String> = events(&s, &id, "message.status")
        .await
        .iter()
        .filter(|e| e["data"]["message"]["status"] == "sent")
        .map(|e| e["data"]["message"]["id"].as_str().unwrap().to_owned())
        .filter(|m| queued.contains(m))
        .collect();
    assert_eq!(
        sent_order, queued,
        "queued messages leave in order, none lost"
    );

    // A short drop heals silently (no disconnected/reconnected events).
    s.post(
        &format!("/api/v1/sandbox/lines/{id}/disconnect"),
        json!({"transient": true}),
    )
    .await;
    advance(&s, 2).await;
    assert_eq!(line(&s, &id).await["status"], "ready");
    assert_eq!(events(&s, &id, "line.disconnected").await.len(), 1);
    assert_eq!(
        events(&s, &id, "line.ready").await.len(),
        1,
        "a heal is not a new link"
    );

    // Logout: a message still queued from a drop fails; sends are refused, the same connect
    // page shows a new QR; a rescan brings the same line back with a new line.ready.
    s.post(
        &format!("/api/v1/sandbox/lines/{id}/disconnect"),
        json!({"transient": true, "duration_seconds": 1000}),
    )
    .await;
    let (st, doomed) = s
        .post(&path, json!({"to": "+447700900123", "text": "doomed"}))
        .await;
    assert_eq!(st, 202, "{doomed}");
    let (st, b) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/disconnect"),
            json!({"transient": false}),
        )
        .await;
    assert_eq!((st, b["status"].as_str()), (200, Some("logged_out")), "{b}");
    assert_eq!(events(&s, &id, "line.logged_out").await.len(), 1);
    let failed = messages(&s, &id)
        .await
        .into_iter()
        .find(|m| m["id"] == doomed["id"])
        .unwrap();
    assert_eq!(
        (failed["status"].as_str(), failed["error"].as_str()),
        (Some("failed"), Some("line_logged_out"))
    );
    let (st, b) = s
        .post(&path, json!({"to": "+447700900123", "text": "x"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_not_ready")),
        "{b}"
    );
    let (st, html) = page(&s, &connect_url).await;
    assert_eq!(st, 200);
    assert!(html.contains("<svg"));
    let (st, again) = s
        .post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["status"], "ready");
    assert_eq!(events(&s, &id, "line.ready").await.len(), 2);

    // Release: terminal; the page dies with the line.
    let (st, rel) = send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(st, 200, "{rel}");
    assert_eq!(rel["status"], "released");
    assert_eq!(rel["release_reason"], "requested");
    assert_eq!(rel["connect_url"], Value::Null);
    let released = events(&s, &id, "line.released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["data"]["reason"], "requested");
    let (st, html) = page(&s, &connect_url).await;
    assert_eq!(st, 404);
    assert!(
        html.contains("<html") || html.contains("<!DOCTYPE"),
        "a friendly page"
    );
    let (st, b) = s
        .post(&path, json!({"to": "+447700900123", "text": "x"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_released")),
        "{b}"
    );
    let (st, _) = send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(st, 200, "releasing twice is harmless");
}

both_backends!(test_bad_input_is_refused_clearly, bad_input);
async fn bad_input(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (_, l) = s.post("/api/v1/wa/lines", json!({})).await;
    let id = l["id"].as_str().unwrap().to_owned();
    s.post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    let path = format!("/api/v1/wa/lines/{id}/messages");
    for to in [
        "447700900123",
        "+0123",
        "+44 7700 900123",
        "",
        "+1234567890123456",
    ] {
        let (st, b) = s.post(&path, json!({"to": to, "text": "hi"})).await;
        assert_eq!((st, b["param"].as_str()), (422, Some("to")), "{to}: {b}");
    }
    let (st, b) = s
        .post(
            &path,
            json!({"to": "+447700900123", "text": "a".repeat(4097)}),
        )
        .await;
    assert_eq!((st, b["param"].as_str()), (422, Some("text")), "{b}");
    let (st, _) = s
        .post(
            &path,
            json!({"to": "+447700900123", "text": "é".repeat(4096)}),
        )
        .await;
    assert_eq!(st, 202, "4096 characters are fine");
    let (st, b) = s
        .post(&path, json!({"to": 447700900123u64, "text": "hi"}))
        .await;
    assert_eq!(st, 422, "{b}");
    let (st, b) = send(
        s.req(Method::POST, &path)
            .header("content-type", "application/json")
            .body("{\"to\": "),
    )
    .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (400, Some("invalid_json")),
        "{b}"
    );
    for bad in ["line_doesnotexist", "nope", "acct_x"] {
        let (st, b) = s.get(&format!("/api/v1/wa/lines/{bad}")).await;
        assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");
        let (st, _) = s
            .post(
                &format!("/api/v1/wa/lines/{bad}/messages"),
                json!({"to": "+447700900123", "text": "hi"}),
            )
            .await;
        assert_eq!(st, 404);
    }
    // Create-line validation.
    let (st, b) = s
        .post(
            "/api/v1/wa/lines",
            json!({"calling_enabled": true, "allow_calling": true}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (st, b) = s.post("/api/v1/wa/lines", json!({"metadata": many})).await;
    assert_eq!((st, b["param"].as_str()), (422, Some("metadata")), "{b}");
    let (st, b) = s
        .post(
            "/api/v1/wa/lines",
            json!({"metadata": {"k": "x".repeat(501)}}),
        )
        .await;
    assert_eq!((st, b["param"].as_str()), (422, Some("metadata.k")), "{b}");
    let (st, b) = s
        .post("/api/v1/wa/lines", json!({"metadata": {"k": 1}}))
        .await;
    assert_eq!(st, 422, "{b}");
    let (st, b) = s.post("/api/v1/wa/lines", json!({"colour": "red"})).await;
    assert_eq!(st, 422, "{b}");

    // Another account sees none of it.
    let (_, other_key) = create_account(&backing, "Other Ltd").await;
    let other = |m: Method, p: &str| {
        s.http
            .request(m, format!("{}{}", s.base, p))
            .bearer_auth(&other_key)
    };
    let (st, _) = send(other(Method::GET, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(st, 404);
    let (st, _) =
        send(other(Method::POST, &path).json(&json!({"to": "+447700900123", "text": "hi"}))).await;
    assert_eq!(st, 404);
    let (st, _) = send(other(Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(st, 404);
    let (st, b) = send(other(Method::GET, "/api/v1/wa/lines")).await;
    assert_eq!((st, b["data"].as_array().map(Vec::len)), (200, Some(0)));
    // And the line is untouched.
    assert_eq!(line(&s, &id).await["status"], "ready");
    // No calling rollout on that account.
    let (st, b) = send(
        other(Method::POST, "/api/v1/billing/card")
            .json(&json!({"source_id": "cnon:card-nonce-ok"})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) =
        send(other(Method::POST, "/api/v1/wa/lines").json(&json!({"allow_calling": true}))).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (403, Some("calling_not_available")),
        "{b}"
    );
    // Unknown connect tokens get the friendly page.
    let (st, html) = page(&s, &format!("{}/connect/notARealTokenAtAll123", s.base)).await;
    assert_eq!(st, 404);
    assert!(html.to_lowercase().contains("link"), "{html}");
}

#[tokio::test]
async fn test_daily_limit_is_enforced_with_retry_after() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (_, l) = s.post("/api/v1/wa/lines", json!({})).await;
    let id = l["id"].as_str().unwrap().to_owned();
    s.post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    let l = line(&s, &id).await;
    assert_eq!(
        l["limits"]["daily_outbound"], 250,
        "a new line gets the lower limit"
    );
    let path = format!("/api/v1/wa/lines/{id}/messages");
    for n in 0..250 {
        let (st, b) = s
            .post(
                &path,
                json!({"to": "+447700900123", "text": format!("m{n}")}),
            )
            .await;
        assert_eq!(st, 202, "{n}: {b}");
    }
    let resp = s
        .req(Method::POST, &path)
        .json(&json!({"to": "+447700900123", "text": "one too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry, 86_400,
        "the clock stands at midnight: a whole day to wait"
    );
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"], "rate_limited");
    assert_eq!(b["reason"], "line_daily_limit");
    assert_eq!(line(&s, &id).await["limits"]["sent_today"], 250);
    // Inbound is never limited.
    let (st, _) = s
        .post(
            &format!("/api/v1/sandbox/lines/{id}/inbound"),
            json!({"from": "+447700900999", "text": "still here"}),
        )
        .await;
    assert_eq!(st, 202);
    // The next UTC day the counter starts again.
    advance(&s, 86_400).await;
    let (st, b) = s
        .post(&path, json!({"to": "+447700900123", "text": "new day"}))
        .await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(line(&s, &id).await["limits"]["sent_today"], 1);
}

/// Sends that arrive together share one SQLite transaction (group commit), where a line with
/// one message is counted in a multi-row statement and a line with several one by one: under
/// any mix, a line takes exactly its daily limit and every taken message is listed, queued
/// once, and sent.
#[tokio::test]
async fn test_concurrent_sends_take_exactly_the_daily_limit() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (_, l) = s.post("/api/v1/wa/lines", json!({})).await;
        let id = l["id"].as_str().unwrap().to_owned();
        s.post(
            &format!("/api/v1/sandbox/lines/{id}/scan"),
            json!({"phone_number": format!("+44770090010{n}")}),
        )
        .await;
        ids.push(id);
    }
    // Line 0 gets 300 sends at once (over its limit of 250); lines 1 and 2 get one each,
    // interleaved, so groups hold both kinds.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..300 {
        for (i, id) in ids.iter().enumerate() {
            if i > 0 && n % 150 != 0 {
                continue;
            }
            let req = s
                .req(Method::POST, &format!("/api/v1/wa/lines/{id}/messages"))
                .json(&json!({"to": "+447700900123", "text": format!("{i}-{n}")}));
            tasks.spawn(async move { (i, req.send().await.unwrap().status().as_u16()) });
        }
    }
    let mut accepted = [0u32; 3];
    let mut refused = [0u32; 3];
    while let Some(r) = tasks.join_next().await {
        let (i, st) = r.unwrap();
        match st {
            202 => accepted[i] += 1,
            429 => refused[i] += 1,
            other => panic!("line {i}: unexpected {other}"),
        }
    }
    assert_eq!(accepted, [250, 2, 2]);
    assert_eq!(refused, [50, 0, 0]);
    for (i, id) in ids.iter().enumerate() {
        let l = line(&s, id).await;
        assert_eq!(l["limits"]["sent_today"], accepted[i], "line {i}");
        // Each taken message is stored once, and the worker sends every one of them.
        let mut listed = 0;
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/wa/lines/{id}/messages?limit=100");
            if let Some(a) = &after {
                path.push_str(&format!("&starting_after={a}"));
            }
            let (st, page) = s.get(&path).await;
            assert_eq!(st, 200, "{page}");
            let data = page["data"].as_array().unwrap();
            listed += data.len();
            if page["has_more"] != true {
                break;
            }
            after = Some(data.last().unwrap()["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(listed, accepted[i] as usize, "line {i}");
    }
    // Everything queued gets sent: no message is left queued once the worker has run.
    advance(&s, 1).await;
    for (i, id) in ids.iter().enumerate() {
        let mut left = u32::MAX;
        for _ in 0..200 {
            let (_, page) = s
                .get(&format!("/api/v1/wa/lines/{id}/messages?limit=100"))
                .await;
            left = page["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["status"] == "queued")
                .count() as u32;
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(left, 0, "line {i}: messages still queued");
    }
}

both_backends!(test_label_and_metadata_can_be_changed, update_line);
async fn update_line(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (st, created) = s
        .post(
            "/api/v1/wa/lines",
            json!({"label": "Shop 1", "metadata": {"customer_id": "c_42", "tier": "gold"}}),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/wa/lines/{id}");
    let patch = |body: Value| send(s.req(Method::PATCH, &path).json(&body));

    let (st, b) =
        patch(json!({"label": "Shop 2", "metadata": {"tier": null, "region": "eu"}})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["label"], "Shop 2");
    assert_eq!(
        b["metadata"],
        json!({"customer_id": "c_42", "region": "eu"})
    );
    assert_eq!(line(&s, &id).await, b, "what GET shows");

    // Absent fields stay; `null` clears the label; an empty body changes nothing.
    let (st, b) = patch(json!({"label": null})).await;
    assert_eq!((st, &b["label"]), (200, &Value::Null));
    assert_eq!(
        b["metadata"],
        json!({"customer_id": "c_42", "region": "eu"})
    );
    let (st, same) = patch(json!({})).await;
    assert_eq!((st, &same), (200, &b));

    // Bad input changes nothing.
    let long = "x".repeat(201);
    let (st, e) = patch(json!({"label": long})).await;
    assert_eq!((st, e["param"].as_str()), (422, Some("label")));
    let many: serde_json::Map<String, Value> =
        (0..20).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (st, e) = patch(json!({"metadata": many})).await;
    assert_eq!(
        (st, e["error"].as_str(), e["param"].as_str()),
        (409, Some("invalid_state"), Some("metadata")),
        "22 keys: the line's 2 and these 20 (the line's state refuses it)"
    );
    let (st, e) = patch(json!({"colour": "red"})).await;
    assert_eq!(st, 422, "{e}");
    let (st, e) = send(
        s.req(Method::PATCH, &path)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_json")));
    assert_eq!(line(&s, &id).await, b, "unchanged");

    // Another account's line, or none: 404.
    let (_, other) = create_account(&backing, "Other").await;
    let (st, _) = send(
        s.http
            .patch(format!("{}{path}", s.base))
            .bearer_auth(&other)
            .json(&json!({"label": "mine"})),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = patch_missing(&s).await;
    assert_eq!(st, 404);

    // Released lines keep their bookkeeping editable.
    let (st, _) = send(s.req(Method::DELETE, &path)).await;
    assert_eq!(st, 200);
    let (st, b) = patch(json!({"metadata": {"closed": "yes"}})).await;
    assert_eq!((st, &b["metadata"]["closed"]), (200, &json!("yes")));
    assert_eq!(b["status"], "released");
}

async fn patch_missing(s: &Server) -> (u16, Value) {
    send(
        s.req(
            Method::PATCH,
            "/api/v1/wa/lines/line_000000000000000000000000",
        )
        .json(&json!({"label": "x"})),
    )
    .await
}

both_backends!(test_a_blocked_line_says_why_and_comes_back, blocked);
async fn blocked(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (st, created) = s.post("/api/v1/wa/lines", json!({})).await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let connect_url = created["connect_url"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/wa/lines/{id}/messages");
    let block = format!("/api/v1/sandbox/lines/{id}/block");

    // Only a connected line can be blocked.
    let (st, b) = s.post(&block, json!({"reason": "banned"})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    let (st, b) = s
        .post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["blocked_reason"], Value::Null);
    assert_eq!(b["status_detail"], Value::Null);
    let (st, b) = s.post(&block, json!({"reason": "sunspots"})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (422, Some("invalid_field")),
        "{b}"
    );

    // A message queued while the line is down fails when WhatsApp blocks it.
    s.post(
        &format!("/api/v1/sandbox/lines/{id}/disconnect"),
        json!({"transient": true, "duration_seconds": 1000}),
    )
    .await;
    let (st, doomed) = s
        .post(&path, json!({"to": "+447700900123", "text": "doomed"}))
        .await;
    assert_eq!(st, 202, "{doomed}");
    let (st, b) = s
        .post(
            &block,
            json!({"reason": "temporarily_banned", "duration_seconds": 3600}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["status"], "blocked");
    assert_eq!(b["blocked_reason"], "temporarily_banned");
    assert!(
        b["status_detail"]
            .as_str()
            .unwrap()
            .contains("temporarily banned"),
        "{b}"
    );
    let blocked = events(&s, &id, "line.blocked").await;
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["data"]["reason"], "temporarily_banned");
    assert_eq!(blocked[0]["data"]["line"]["status"], "blocked");
    let failed = messages(&s, &id)
        .await
        .into_iter()
        .find(|m| m["id"] == doomed["id"])
        .unwrap();
    assert_eq!(
        (failed["status"].as_str(), failed["error"].as_str()),
        (Some("failed"), Some("line_blocked"))
    );
    let (st, b) = s
        .post(&path, json!({"to": "+447700900123", "text": "x"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_not_ready")),
        "{b}"
    );
    let (st, status) = send(s.http.get(format!("{connect_url}/status"))).await;
    assert_eq!(
        (st, status["state"].as_str()),
        (200, Some("blocked")),
        "{status}"
    );

    // The ban runs out on the clock: the line reconnects and says so once.
    advance(&s, 3599).await;
    assert_eq!(line(&s, &id).await["status"], "blocked");
    advance(&s, 1).await;
    advance(&s, 2).await;
    let back = line(&s, &id).await;
    assert_eq!(back["status"], "ready", "{back}");
    assert_eq!(back["blocked_reason"], Value::Null);
    assert_eq!(events(&s, &id, "line.reconnected").await.len(), 1);
    let (st, m) = s
        .post(&path, json!({"to": "+447700900123", "text": "back"}))
        .await;
    assert_eq!(st, 202, "{m}");

    // A ban without an end stays; the business releases the line.
    let (st, b) = s.post(&block, json!({"reason": "banned"})).await;
    assert_eq!(
        (st, b["blocked_reason"].as_str()),
        (200, Some("banned")),
        "{b}"
    );
    advance(&s, 86_400 * 30).await;
    assert_eq!(line(&s, &id).await["status"], "blocked");
    let (st, rel) = send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    assert_eq!(
        (st, rel["status"].as_str()),
        (200, Some("released")),
        "{rel}"
    );
}

both_backends!(test_a_line_links_by_phone_number, pair_code);
async fn pair_code(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (st, created) = s.post("/api/v1/wa/lines", json!({})).await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let connect_url = created["connect_url"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/wa/lines/{id}/pair_code");

    let (st, code) = s
        .post(&path, json!({"phone_number": "+447700900321"}))
        .await;
    assert_eq!(st, 200, "{code}");
    assert_eq!(code["object"], "pair_code");
    assert_eq!(code["line_id"], id.as_str());
    let text = code["code"].as_str().unwrap();
    assert_eq!(text.len(), 9, "{text}");
    assert_eq!(&text[4..5], "-");
    assert!(text
        .chars()
        .all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit()));
    // The connect page offers the same code to the end customer.
    let (st, page_code) = send(
        s.http
            .post(format!("{connect_url}/pair_code"))
            .json(&json!({"phone_number": "+447700900321"})),
    )
    .await;
    assert_eq!(
        (st, page_code["code"].as_str()),
        (200, Some(text)),
        "{page_code}"
    );
    let (_, html) = page(&s, &connect_url).await;
    assert!(html.contains("Link with phone number instead"));

    // Bad input and other accounts' lines.
    let (st, b) = s.post(&path, json!({"phone_number": "07700 900321"})).await;
    assert_eq!(
        (st, b["error"].as_str(), b["param"].as_str()),
        (422, Some("invalid_field"), Some("phone_number")),
        "{b}"
    );
    let (st, b) = s.post(&path, json!({})).await;
    assert_eq!(st, 422, "{b}");
    let (_, other_key) = create_account(&backing, "Other").await;
    let (st, b) = send(
        s.http
            .post(format!("{}{path}", s.base))
            .bearer_auth(&other_key)
            .json(&json!({"phone_number": "+447700900321"})),
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");
    let (st, b) = send(
        s.http
            .post(format!(
                "{}/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/pair_code",
                s.base
            ))
            .json(&json!({"phone_number": "+447700900321"})),
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");

    // Once linked there is nothing to pair; once released, the line says so.
    s.post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    let (st, b) = s
        .post(&path, json!({"phone_number": "+447700900321"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str(), b["status"].as_str()),
        (409, Some("invalid_state"), Some("ready")),
        "{b}"
    );
    send(s.req(Method::DELETE, &format!("/api/v1/wa/lines/{id}"))).await;
    let (st, b) = s
        .post(&path, json!({"phone_number": "+447700900321"}))
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("line_released")),
        "{b}"
    );
}

both_backends!(test_whatsapps_rate_limit_pauses_the_line, rate_limit);
async fn rate_limit(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (_, created) = s.post("/api/v1/wa/lines", json!({})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    s.post(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    let path = format!("/api/v1/wa/lines/{id}/messages");
    let limit = format!("/api/v1/sandbox/lines/{id}/rate_limit");
    let (st, b) = s.post(&limit, json!({"retry_after_seconds": 0})).await;
    assert_eq!(
        (st, b["param"].as_str()),
        (422, Some("retry_after_seconds")),
        "{b}"
    );
    let (st, b) = s.post(&limit, json!({"retry_after_seconds": 120})).await;
    assert_eq!(st, 200, "{b}");

    // The send WhatsApp refuses stays queued; new messages are refused until the limit passes.
    let (st, first) = s
        .post(&path, json!({"to": "+447700900123", "text": "first"}))
        .await;
    assert_eq!(st, 202, "{first}");
    advance(&s, 0).await;
    let status_of = |list: &[Value], id: &Value| {
        list.iter().find(|m| m["id"] == *id).unwrap()["status"].clone()
    };
    assert_eq!(status_of(&messages(&s, &id).await, &first["id"]), "queued");
    let resp = s
        .req(Method::POST, &path)
        .json(&json!({"to": "+447700900123", "text": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"], "rate_limited");
    assert_eq!(b["reason"], "whatsapp_rate_limit");

    // When it passes, the queue resumes in order and the line takes messages again.
    advance(&s, 120).await;
    assert_eq!(status_of(&messages(&s, &id).await, &first["id"]), "sent");
    let (st, second) = s
        .post(&path, json!({"to": "+447700900123", "text": "second"}))
        .await;
    assert_eq!(st, 202, "{second}");
    advance(&s, 0).await;
    assert_eq!(status_of(&messages(&s, &id).await, &second["id"]), "sent");
}
