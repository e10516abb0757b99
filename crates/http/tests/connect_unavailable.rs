//! The connect page when the server's WhatsApp connector cannot produce a QR (down, or none
//! configured on a production server): the end customer gets a friendly HTML page with 503
//! and `Retry-After`, never a developer's JSON error, and the page's poll answers 503 so the
//! open page keeps trying. The link itself stays valid.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use jiff::Timestamp;
use tower::ServiceExt;
use wagate_app::accounts::{authenticate, sandbox_demo_account};
use wagate_app::connector::Unavailable;
use wagate_app::lines::CreateLine;
use wagate_app::{App, Outside};
use wagate_domain::clock::ManualClock;
use wagate_http::{router, AppState};
use wagate_store::{LineStore, SqlStore};

async fn get(app: &App, path: &str) -> (StatusCode, Option<String>, String) {
    let resp = router(AppState::new(app.clone()))
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, retry, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_connector_without_qr_gets_a_friendly_retry_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite_dir(dir.path()).await.unwrap();
    let clock = Arc::new(ManualClock::new(
        "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    let outside = Outside {
        connector: Arc::new(Unavailable),
        ..Outside::sandbox()
    };
    let app = App::sandbox_with(Arc::new(store.clone()), clock, outside).unwrap();
    let demo = sandbox_demo_account(&app).await.unwrap();
    let who = authenticate(&app, &demo.api_key).await.unwrap().unwrap();
    app.billing
        .add_card(&who, "cnon:card-nonce-ok")
        .await
        .unwrap();
    let line = app.lines.create(&who, CreateLine::default()).await.unwrap();
    let token = store
        .line_by_id(&line.id)
        .await
        .unwrap()
        .unwrap()
        .connect_token
        .unwrap();

    let (status, retry, html) = get(&app, &format!("/connect/{token}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry.as_deref(), Some("60"));
    assert!(html.contains("<html"), "an HTML page: {html}");
    assert!(html.contains("unavailable right now"), "{html}");
    assert!(html.contains("still valid"), "{html}");
    assert!(!html.contains("connector"), "no developer wording: {html}");

    let (status, retry, json) = get(&app, &format!("/connect/{token}/status")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry.as_deref(), Some("60"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["state"], "unavailable");
    assert_eq!(v["error"], "connector_unavailable");

    // The line itself says why it cannot connect.
    let resp = router(AppState::new(app.clone()))
        .oneshot(
            Request::get(format!("/api/v1/wa/lines/{}", line.id))
                .header(header::AUTHORIZATION, format!("Bearer {}", demo.api_key))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "pending");
    assert!(
        v["status_detail"]
            .as_str()
            .unwrap()
            .contains("no WhatsApp connector"),
        "{v}"
    );

    // An unknown token is still the not-found page, not the retry page.
    let (status, _, html) = get(&app, "/connect/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("no longer valid"), "{html}");
}
