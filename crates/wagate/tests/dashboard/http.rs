//! The dashboard over plain HTTP: sign-in and its refusals, the session cookie, forged
//! forms, tenancy, bad input, escaping and headers, webhook endpoints, a restart, a revoked
//! key and sign-out.

use reqwest::header::COOKIE;
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::client::{add_card, add_card_for, as_key, lines_of, Dash};
use crate::common::{create_account, fresh, send, Server};

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
    let other = |method: Method, path: &str| as_key(&s, &other_key, method, path);
    add_card_for(&s, &other_key).await;
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
