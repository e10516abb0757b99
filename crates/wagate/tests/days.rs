//! Partner billing in days end to end (PRODUCT.md §11), over HTTP and the operator CLI on the
//! sandbox clock: an account billed in days, invoices credited once, lines extended, sending
//! only while paid, unused days returned on release, unpaid lines released after 5 days.

mod common;

use common::{cli, fresh, send, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// A client of the server with another account's key.
struct As<'a> {
    s: &'a Server,
    key: String,
}

impl As<'_> {
    async fn get(&self, path: &str) -> (u16, Value) {
        send(
            self.s
                .http
                .get(format!("{}{path}", self.s.base))
                .bearer_auth(&self.key),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(
            self.s
                .http
                .request(Method::POST, format!("{}{path}", self.s.base))
                .bearer_auth(&self.key)
                .json(&body),
        )
        .await
    }

    async fn ok(&self, path: &str, body: Value) -> Value {
        let (st, b) = self.post(path, body).await;
        assert!((200..300).contains(&st), "{path}: {st} {b}");
        b
    }

    async fn balance(&self) -> i64 {
        let (st, b) = self.get("/api/v1/billing/days").await;
        assert_eq!(st, 200, "{b}");
        b["balance_days"].as_i64().unwrap()
    }
}

async fn advance(s: &Server, secs: i64) {
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({ "seconds": secs }))
        .await;
    assert_eq!(st, 200, "{b}");
}

both_backends!(test_days_are_bought_handed_to_lines_and_returned, days);
async fn days(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let created = cli(
        &backing,
        &[
            "accounts",
            "create",
            "--name",
            "Partner",
            "--json",
            "--billing",
            "days",
            "--day-price",
            "0.50",
        ],
    )
    .await;
    let p = As {
        s: &s,
        key: created["api_key"].as_str().unwrap().to_owned(),
    };
    let (st, d) = p.get("/api/v1/billing/days").await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(
        d,
        json!({"object": "days_balance", "balance_days": 0, "day_price": "0.50",
               "currency": "USD", "postpaid": false})
    );

    // An invoice for 75 channels: 2,250 days, credited once however often it is marked paid.
    let (st, inv) = p
        .post("/api/v1/billing/invoices", json!({ "channels": 75 }))
        .await;
    assert_eq!(st, 201, "{inv}");
    assert_eq!(
        (
            inv["status"].as_str(),
            inv["days"].as_u64(),
            inv["amount"].as_str()
        ),
        (Some("open"), Some(2_250), Some("1125.00"))
    );
    let inv_id = inv["id"].as_str().unwrap().to_owned();
    assert_eq!(p.balance().await, 0, "nothing before payment");
    let first = cli(&backing, &["invoices", "mark-paid", &inv_id]).await;
    assert_eq!(first["credited_now"], true, "{first}");
    let again = cli(&backing, &["invoices", "mark-paid", &inv_id]).await;
    assert_eq!(again["credited_now"], false, "{again}");
    assert_eq!(p.balance().await, 2_250);
    let (_, paid) = p.get(&format!("/api/v1/billing/invoices/{inv_id}")).await;
    assert_eq!(
        (paid["status"].as_str(), paid["paid_by"].as_str()),
        (Some("paid"), Some("operator"))
    );
    let (_, events) = p.get("/api/v1/webhooks/events?type=invoice.paid").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");

    // Its hosted page and its PDF say the same numbers.
    let page_url = paid["hosted_url"].as_str().unwrap();
    assert!(
        page_url.starts_with(&format!("{}/invoices/", s.base)),
        "{page_url}"
    );
    let page = s.http.get(page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        inv_id.as_str(),
        "Partner",
        "2250",
        "0.50 USD",
        "1125.00 USD",
        "Paid",
    ] {
        assert!(html.contains(needle), "the page shows {needle}");
    }
    let pdf = s
        .http
        .get(paid["pdf_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    let doc = lopdf::Document::load_mem(&bytes).expect("a well-formed PDF");
    let text = doc.extract_text(&[1]).unwrap();
    for needle in [
        format!("Invoice {inv_id}"),
        "Days: 2250".to_owned(),
        "Price per day: 0.50 USD".to_owned(),
        "Total: 1125.00 USD".to_owned(),
        "Status: Paid".to_owned(),
    ] {
        assert!(text.contains(&needle), "the PDF says {needle:?}: {text:?}");
    }
    let (st, _) = send(s.http.get(format!("{}/invoices/nope", s.base))).await;
    assert_eq!(st, 404);
    let (st, b) = send(s.http.get(format!("{}/invoices/nope/pdf", s.base))).await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));

    // Paid by card: twice is once; a decline leaves it open, and paying again settles it.
    p.ok(
        "/api/v1/billing/card",
        json!({"source_id": "cnon:card-nonce-ok"}),
    )
    .await;
    let small = p.ok("/api/v1/billing/invoices", json!({"days": 10})).await;
    let pay = format!(
        "/api/v1/billing/invoices/{}/pay",
        small["id"].as_str().unwrap()
    );
    p.ok("/api/v1/sandbox/payments/fail_next", json!({"count": 1}))
        .await;
    let (st, b) = p.post(&pay, json!({})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("card_declined")),
        "{b}"
    );
    assert_eq!(p.balance().await, 2_250);
    let paid = p.ok(&pay, json!({})).await;
    assert_eq!(
        (paid["status"].as_str(), paid["paid_by"].as_str()),
        (Some("paid"), Some("card"))
    );
    let again = p.ok(&pay, json!({})).await;
    assert_eq!(again, paid, "paying a paid invoice changes nothing");
    let marked = cli(
        &backing,
        &["invoices", "mark-paid", small["id"].as_str().unwrap()],
    )
    .await;
    assert_eq!(marked["credited_now"], false);
    assert_eq!(p.balance().await, 2_260);
    let (_, tx) = p.get("/api/v1/billing/transactions").await;
    assert!(
        tx["data"].as_array().unwrap().is_empty(),
        "days are never money: {tx}"
    );

    // A line needs no card; ready on scan, it sends only once it has days.
    let line = p.ok("/api/v1/wa/lines", json!({})).await;
    let id = line["id"].as_str().unwrap().to_owned();
    let ready = p
        .ok(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    assert_eq!(
        (ready["status"].as_str(), ready["price"].as_str()),
        (Some("ready"), None)
    );
    assert_eq!(ready["paid_until"], Value::Null);
    let msg = json!({"to": "+447700900123", "text": "hi"});
    let (st, b) = p
        .post(&format!("/api/v1/wa/lines/{id}/messages"), msg.clone())
        .await;
    assert_eq!((st, b["error"].as_str()), (402, Some("line_unpaid")), "{b}");

    let extended = p
        .ok(
            &format!("/api/v1/wa/lines/{id}/extend"),
            json!({"days": 30, "comment": "March"}),
        )
        .await;
    assert_eq!(extended["paid_until"], "2026-01-31T00:00:00Z", "{extended}");
    assert_eq!(p.balance().await, 2_230);
    let (st, b) = p
        .post(&format!("/api/v1/wa/lines/{id}/messages"), msg.clone())
        .await;
    assert_eq!(st, 202, "{b}");

    // Released after 10 days: the 20 whole days left come back.
    advance(&s, 10 * 86_400).await;
    let (st, released) = send(
        s.http
            .delete(format!("{}/api/v1/wa/lines/{id}", s.base))
            .bearer_auth(&p.key),
    )
    .await;
    assert_eq!(st, 200, "{released}");
    assert_eq!(released["days_returned"], 20, "{released}");
    assert_eq!(p.balance().await, 2_250);

    // A line left unpaid: released 5 days after its paid_until, nothing to return.
    let line = p.ok("/api/v1/wa/lines", json!({})).await;
    let id = line["id"].as_str().unwrap().to_owned();
    p.ok(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
        .await;
    p.ok(&format!("/api/v1/wa/lines/{id}/extend"), json!({"days": 1}))
        .await;
    advance(&s, 86_400 + 5 * 86_400 - 1).await;
    let (_, l) = p.get(&format!("/api/v1/wa/lines/{id}")).await;
    assert_eq!(l["status"], "ready", "not yet: {l}");
    let (st, b) = p
        .post(&format!("/api/v1/wa/lines/{id}/messages"), msg.clone())
        .await;
    assert_eq!((st, b["error"].as_str()), (402, Some("line_unpaid")), "{b}");
    advance(&s, 1).await;
    let (_, l) = p.get(&format!("/api/v1/wa/lines/{id}")).await;
    assert_eq!(
        (
            l["status"].as_str(),
            l["release_reason"].as_str(),
            l["days_returned"].as_u64()
        ),
        (Some("released"), Some("unpaid"), Some(0)),
        "{l}"
    );
    assert_eq!(p.balance().await, 2_249);

    // A short balance, and bad input, are refused clearly.
    let line = p.ok("/api/v1/wa/lines", json!({})).await;
    let id = line["id"].as_str().unwrap().to_owned();
    let (st, b) = p
        .post(
            &format!("/api/v1/wa/lines/{id}/extend"),
            json!({"days": 3_000}),
        )
        .await;
    assert_eq!(
        (st, b["error"].as_str()),
        (402, Some("insufficient_days")),
        "{b}"
    );
    assert_eq!(b["balance_days"], 2_249);
    for (path, body) in [
        ("/api/v1/billing/invoices", json!({"channels": 0})),
        (
            "/api/v1/billing/invoices",
            json!({"channels": 1, "days": 1}),
        ),
        ("/api/v1/billing/invoices", json!({})),
        ("/api/v1/billing/invoices", json!({"days": "10"})),
        (
            &*format!("/api/v1/wa/lines/{id}/extend"),
            json!({"days": 0}),
        ),
        (
            &*format!("/api/v1/wa/lines/{id}/extend"),
            json!({"days": -1}),
        ),
    ] {
        let (st, b) = p.post(path, body.clone()).await;
        assert_eq!(
            (st, b["error"].as_str()),
            (422, Some("invalid_field")),
            "{path} {body} {b}"
        );
    }
    assert_eq!(p.balance().await, 2_249, "nothing moved");

    // With lines open, the account's billing mode is locked (they would be billed neither way).
    let out = tokio::process::Command::new(common::bin())
        .args([
            "accounts",
            "update",
            created["account_id"].as_str().unwrap(),
            "--billing",
            "flat",
        ])
        .args(backing.args())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("open lines"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let updated = cli(
        &backing,
        &[
            "accounts",
            "update",
            created["account_id"].as_str().unwrap(),
            "--day-price",
            "0.45",
        ],
    )
    .await;
    assert_eq!(
        (updated["billing"].as_str(), updated["day_price"].as_str()),
        (Some("days"), Some("0.45"))
    );

    // Another account sees none of it; a flat account has no days.
    let (st, b) = s.get(&format!("/api/v1/billing/invoices/{inv_id}")).await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");
    let (st, b) = s.get("/api/v1/billing/days").await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    let (st, b) = s.post("/api/v1/billing/invoices", json!({"days": 5})).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (409, Some("invalid_state")),
        "{b}"
    );
    let (st, b) = s
        .post(&format!("/api/v1/wa/lines/{id}/extend"), json!({"days": 5}))
        .await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")), "{b}");
}

both_backends!(test_a_postpaid_month_is_invoiced_once, postpaid);
async fn postpaid(kind: &str) {
    let (backing, _g) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    let created = cli(
        &backing,
        &[
            "accounts",
            "create",
            "--name",
            "Postpaid Partner",
            "--json",
            "--billing",
            "days",
            "--day-price",
            "0.40",
            "--postpaid",
        ],
    )
    .await;
    let p = As {
        s: &s,
        key: created["api_key"].as_str().unwrap().to_owned(),
    };
    // January: two lines draw 30 and 20 days with nothing bought; one is released after 5.
    let mut lines = Vec::new();
    for days in [30, 20] {
        let line = p.ok("/api/v1/wa/lines", json!({})).await;
        let id = line["id"].as_str().unwrap().to_owned();
        p.ok(&format!("/api/v1/sandbox/lines/{id}/scan"), json!({}))
            .await;
        p.ok(
            &format!("/api/v1/wa/lines/{id}/extend"),
            json!({ "days": days }),
        )
        .await;
        lines.push(id);
    }
    assert_eq!(
        p.balance().await,
        -50,
        "postpaid: the balance goes below zero"
    );
    advance(&s, 5 * 86_400).await;
    let (st, _) = send(
        s.http
            .delete(format!("{}/api/v1/wa/lines/{}", s.base, lines[1]))
            .bearer_auth(&p.key),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(p.balance().await, -35, "15 whole days came back");

    // February 1st: one invoice for the 35 days January used.
    advance(&s, 26 * 86_400 - 1).await;
    let (_, none) = p.get("/api/v1/billing/invoices").await;
    assert!(
        none["data"].as_array().unwrap().is_empty(),
        "not before the 1st"
    );
    advance(&s, 1).await;
    let (_, list) = p.get("/api/v1/billing/invoices").await;
    let invoices = list["data"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{list}");
    assert_eq!(
        (
            invoices[0]["days"].as_u64(),
            invoices[0]["amount"].as_str(),
            invoices[0]["period_start"].as_str()
        ),
        (Some(35), Some("14.00"), Some("2026-01-01T00:00:00Z"))
    );
    let (_, created_events) = p.get("/api/v1/webhooks/events?type=invoice.created").await;
    assert_eq!(created_events["data"].as_array().unwrap().len(), 1);
    let inv = invoices[0]["id"].as_str().unwrap();
    cli(&backing, &["invoices", "mark-paid", inv]).await;
    assert_eq!(p.balance().await, 0, "paid: the balance is square");
    let account = created["account_id"].as_str().unwrap();
    let kept = cli(
        &backing,
        &["accounts", "update", account, "--day-price", "0.40"],
    )
    .await;
    assert_eq!(
        kept["postpaid"], true,
        "an update keeps what it does not name"
    );
    let prepaid = cli(&backing, &["accounts", "update", account, "--prepaid"]).await;
    assert_eq!(prepaid["postpaid"], false);

    // A month without use: no invoice.
    advance(&s, 28 * 86_400).await;
    let (_, list) = p.get("/api/v1/billing/invoices").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}
