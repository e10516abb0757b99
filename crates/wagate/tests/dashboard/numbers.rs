//! `/dashboard/numbers` over plain HTTP: the price list, buying a verification once however
//! often its form is sent, its code shown when the sandbox delivers the SMS, cancel refused
//! after the code and refunded before one, a rental bought and extended, clear 4xx/503 pages
//! for no stock, no balance, no provider and bad input, forged forms and another account's
//! numbers refused.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::client::{add_card, add_card_for, as_key, Dash};
use crate::common::{create_account, fresh, send, Server};

/// The value of the buy form's idempotency key on a numbers page.
fn order_key(html: &str) -> String {
    let at = html
        .find(r#"name="key" value=""#)
        .unwrap_or_else(|| panic!("a key field in {html}"));
    let rest = &html[at + r#"name="key" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn numbers_of(s: &Server) -> Vec<Value> {
    let (st, list) = s.get("/api/v1/numbers").await;
    assert_eq!(st, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

async fn balance(s: &Server) -> String {
    let (st, w) = s.get("/api/v1/billing/wallet").await;
    assert_eq!(st, 200, "{w}");
    w["balance"].as_str().unwrap().to_owned()
}

/// Sets every simulated provider (`stock`, `down`).
async fn providers(s: &Server, settings: Value) {
    let (st, list) = s.get("/api/v1/sandbox/numbers/providers").await;
    assert_eq!(st, 200, "{list}");
    for p in list["data"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let (st, b) = s
            .post(
                &format!("/api/v1/sandbox/numbers/providers/{name}"),
                settings.clone(),
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
}

/// Fills the buy form of a freshly loaded page and sends it: (status, body, Location, key).
async fn buy(d: &mut Dash, fields: &[(&str, &str)]) -> (u16, String, String, String) {
    let (st, page, _) = d.get("/dashboard/numbers").await;
    assert_eq!(st, 200, "{page}");
    let key = order_key(&page);
    let mut all = vec![("key", key.as_str())];
    all.extend_from_slice(fields);
    let (st, body, location) = d.post("/dashboard/numbers", &all).await;
    (st, body, location, key)
}

const VERIFICATION: &[(&str, &str)] = &[
    ("service", "whatsapp"),
    ("country", "GB"),
    ("kind", "verification"),
    ("hours", "24"),
];

both_backends!(test_dashboard_numbers_page, numbers_page);
async fn numbers_page(kind: &str) {
    let (backing, _guard) = fresh(kind).await;
    let s = Server::sandbox(&backing).await;
    add_card(&s).await;
    let (st, t) = s
        .post("/api/v1/billing/wallet/topups", json!({"amount": "20.00"}))
        .await;
    assert_eq!(st, 201, "{t}");
    providers(&s, json!({"failure_rate": 0.0})).await;
    let mut d = Dash::new(&s.base);

    // Signed out: the page sends you to the sign-in form.
    let (st, _, location) = d.get("/dashboard/numbers").await;
    assert_eq!((st, location.as_str()), (303, "/dashboard"));
    d.sign_in(&s.key).await;

    // The page: one h1, the nav link, the price list the API gives.
    let (st, page, _) = d.get("/dashboard/numbers").await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page.matches("<h1").count(), 1);
    assert!(page.contains(r#"<a href="/dashboard/numbers" aria-current="page">Numbers</a>"#));
    assert!(page.contains(r#"id="no-numbers""#), "{page}");
    let (_, api_prices) = s
        .get("/api/v1/numbers/prices?service=whatsapp&country=GB")
        .await;
    for line in api_prices["data"].as_array().unwrap() {
        assert!(
            page.contains(line["price"].as_str().unwrap()),
            "{line} on {page}"
        );
    }
    assert!(page.contains("In stock"), "{page}");
    let (st, other_prices, _) = d
        .get("/dashboard/numbers?service=telegram&country=US")
        .await;
    assert!(st == 200 || st == 422, "{st} {other_prices}");

    // A forged buy (no token) is refused and buys nothing.
    let (st, page, _) = d.get("/dashboard/numbers").await;
    assert_eq!(st, 200);
    let key = order_key(&page);
    let mut forged = vec![("key", key.as_str())];
    forged.extend_from_slice(VERIFICATION);
    let (st, _, _, _) = d.post_raw("/dashboard/numbers", &forged).await;
    assert_eq!(st, 403);
    assert!(
        numbers_of(&s).await.is_empty(),
        "a forged post bought a number"
    );
    let before = balance(&s).await;

    // Buy a verification; the same form sent twice buys once.
    let (st, body, location, key) = buy(&mut d, VERIFICATION).await;
    assert_eq!(
        (st, location.as_str()),
        (303, "/dashboard/numbers?done=bought"),
        "{body}"
    );
    let mut again = vec![("key", key.as_str())];
    again.extend_from_slice(VERIFICATION);
    let (st, _, location) = d.post("/dashboard/numbers", &again).await;
    assert_eq!(
        (st, location.as_str()),
        (303, "/dashboard/numbers?done=bought")
    );
    let numbers = numbers_of(&s).await;
    assert_eq!(
        numbers.len(),
        1,
        "a double submit bought twice: {numbers:?}"
    );
    let num = numbers[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(numbers[0]["kind"], "verification");
    assert_ne!(balance(&s).await, before, "the wallet paid");
    // The same key with another order is refused, buying nothing.
    let mut changed = vec![("key", key.as_str())];
    changed.extend_from_slice(&[
        ("service", "whatsapp"),
        ("country", "GB"),
        ("kind", "rental"),
        ("hours", "2"),
    ]);
    let (st, body, _) = d.post("/dashboard/numbers", &changed).await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(numbers_of(&s).await.len(), 1);

    let (st, page, _) = d.get("/dashboard/numbers?done=bought").await;
    assert_eq!(st, 200);
    assert!(page.contains("Number bought."), "{page}");
    assert!(page.contains(&num), "{page}");
    assert!(
        page.contains(numbers[0]["phone_number"].as_str().unwrap()),
        "{page}"
    );
    assert!(page.contains("Waiting for a code"), "{page}");
    assert!(page.contains(&format!("/dashboard/numbers/{num}/cancel")));

    // The SMS arrives: the code is on the page, and cancel is refused now.
    let (st, n) = s
        .post(
            &format!("/api/v1/sandbox/numbers/{num}/sms"),
            json!({"text": "Your code: 123-456"}),
        )
        .await;
    assert_eq!(st, 200, "{n}");
    let (st, page, _) = d.get("/dashboard/numbers").await;
    assert_eq!(st, 200);
    assert!(page.contains("<strong>123456</strong>"), "{page}");
    assert!(page.contains("Code received"), "{page}");
    assert!(!page.contains(&format!("/dashboard/numbers/{num}/cancel")));
    let (st, body, _) = d
        .post(
            &format!("/dashboard/numbers/{num}/cancel"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(st, 409, "{body}");
    let (_, n) = s.get(&format!("/api/v1/numbers/{num}")).await;
    assert_eq!(n["status"], "code_received");

    // A second verification, canceled before a code: refunded.
    let (st, body, _, _) = buy(&mut d, VERIFICATION).await;
    assert_eq!(st, 303, "{body}");
    let second = numbers_of(&s).await[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, num);
    let (st, body, _) = d
        .post(&format!("/dashboard/numbers/{second}/cancel"), &[])
        .await;
    assert_eq!(st, 422, "a cancel wants its confirmation: {body}");
    let (st, _, location) = d
        .post(
            &format!("/dashboard/numbers/{second}/cancel"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(
        (st, location.as_str()),
        (303, "/dashboard/numbers?done=canceled")
    );
    let (_, n) = s.get(&format!("/api/v1/numbers/{second}")).await;
    assert_eq!(
        (n["status"].as_str(), n["refunded"].as_bool()),
        (Some("canceled"), Some(true))
    );
    let (_, page, _) = d.get("/dashboard/numbers").await;
    assert!(page.contains("Canceled, refunded"), "{page}");

    // A rental, bought and extended.
    let (st, body, _, _) = buy(
        &mut d,
        &[
            ("service", "whatsapp"),
            ("country", "GB"),
            ("kind", "rental"),
            ("hours", "2"),
        ],
    )
    .await;
    assert_eq!(st, 303, "{body}");
    let rental = numbers_of(&s).await[0].clone();
    assert_eq!(
        (rental["kind"].as_str(), rental["hours"].as_u64()),
        (Some("rental"), Some(2))
    );
    let rid = rental["id"].as_str().unwrap().to_owned();
    let (st, _, location) = d
        .post(
            &format!("/dashboard/numbers/{rid}/extend"),
            &[("hours", "3")],
        )
        .await;
    assert_eq!(
        (st, location.as_str()),
        (303, "/dashboard/numbers?done=extended")
    );
    let (_, n) = s.get(&format!("/api/v1/numbers/{rid}")).await;
    assert_eq!(n["hours"], 5, "{n}");
    let (_, page, _) = d.get("/dashboard/numbers?done=extended").await;
    assert!(page.contains("Rental extended."), "{page}");
    assert!(page.contains(&format!("/dashboard/numbers/{rid}/extend")));

    // Bad input is a clear 4xx, never a 5xx, and buys nothing.
    let count = numbers_of(&s).await.len();
    for (fields, want) in [
        (
            &[
                ("service", "whatsapp"),
                ("country", "GB"),
                ("kind", "bogus"),
            ][..],
            422,
        ),
        (
            &[
                ("service", "nope"),
                ("country", "GB"),
                ("kind", "verification"),
            ][..],
            422,
        ),
        (
            &[
                ("service", "whatsapp"),
                ("country", "ZZ"),
                ("kind", "verification"),
            ][..],
            422,
        ),
        (
            &[
                ("service", "whatsapp"),
                ("country", "GB"),
                ("kind", "rental"),
                ("hours", "0"),
            ][..],
            422,
        ),
        (
            &[
                ("service", "whatsapp"),
                ("country", "GB"),
                ("kind", "rental"),
                ("hours", "x"),
            ][..],
            422,
        ),
    ] {
        let (st, body, _, _) = buy(&mut d, fields).await;
        assert_eq!(st, want, "{fields:?}: {body}");
        assert!(body.contains("id=\"error-message\""), "{body}");
    }
    let (st, body, _) = d
        .post(
            "/dashboard/numbers",
            &[
                ("key", "short"),
                ("service", "whatsapp"),
                ("country", "GB"),
                ("kind", "verification"),
            ],
        )
        .await;
    assert_eq!(st, 422, "{body}");
    let (st, body, _) = d
        .post(
            &format!("/dashboard/numbers/{rid}/extend"),
            &[("hours", "721")],
        )
        .await;
    assert_eq!(st, 422, "{body}");
    let (st, body, _) = d.get("/dashboard/numbers?service=nope").await;
    assert_eq!(st, 422, "{body}");
    for path in [
        "/dashboard/numbers?starting_after=num_unknown",
        "/dashboard/numbers?starting_after=garbage",
        "/dashboard/numbers?country=",
    ] {
        let (st, body, _) = d.get(path).await;
        assert!(st < 500, "{path}: {st} {body}");
    }
    let (st, _, _) = d
        .post("/dashboard/numbers/garbage/cancel", &[("confirm", "yes")])
        .await;
    assert_eq!(st, 404);
    assert_eq!(numbers_of(&s).await.len(), count);

    // No stock anywhere: 409 "Out of stock"; every provider failing: 503 "Numbers unavailable".
    providers(&s, json!({"stock": 0})).await;
    let (st, body, _, _) = buy(&mut d, VERIFICATION).await;
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("Out of stock"), "{body}");
    providers(&s, json!({"stock": 100, "failure_rate": 1.0})).await;
    let (st, body, _, _) = buy(&mut d, VERIFICATION).await;
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("Numbers unavailable"), "{body}");
    providers(&s, json!({"failure_rate": 0.0})).await;
    assert_eq!(numbers_of(&s).await.len(), count, "nothing bought");

    // Another account: its empty wallet is a 402 page; its number is 404 here.
    let (_, other_key) = create_account(&backing, "Other agency").await;
    let mut o = Dash::new(&s.base);
    o.sign_in(&other_key).await;
    let (st, body, _, _) = buy(&mut o, VERIFICATION).await;
    assert_eq!(st, 402, "{body}");
    assert!(body.contains("Not enough balance"), "{body}");
    let other = |method: Method, path: &str| as_key(&s, &other_key, method, path);
    add_card_for(&s, &other_key).await;
    let (st, t) = send(
        other(Method::POST, "/api/v1/billing/wallet/topups").json(&json!({"amount": "10.00"})),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let (st, theirs) = send(other(Method::POST, "/api/v1/numbers").json(&json!({
        "service": "whatsapp", "country": "GB", "kind": "verification"
    })))
    .await;
    assert_eq!(st, 201, "{theirs}");
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let (st, _, _) = d
        .post(
            &format!("/dashboard/numbers/{theirs}/cancel"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(st, 404);
    let (st, _, _) = d
        .post(
            &format!("/dashboard/numbers/{theirs}/extend"),
            &[("hours", "1")],
        )
        .await;
    assert_eq!(st, 404);
    let (_, page, _) = d.get("/dashboard/numbers").await;
    assert!(
        !page.contains(&theirs),
        "another account's number is not listed"
    );
    let (_, n) = send(other(Method::GET, &format!("/api/v1/numbers/{theirs}"))).await;
    assert_eq!(n["status"], "active", "untouched: {n}");
}
