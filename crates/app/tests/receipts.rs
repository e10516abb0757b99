//! Receipts of one message applied at the same time: each `message.status` event stands for
//! a change that was stored, so the events of a message announce each status once, in
//! order, and the last one is the stored status.

mod common;

use std::sync::Arc;

use jiff::Timestamp;
use wagate_app::accounts::Principal;
use wagate_app::connector::ConnectorEvent;
use wagate_app::lines::CreateLine;
use wagate_app::App;
use wagate_domain::clock::ManualClock;
use wagate_domain::line::MessageStatus;
use wagate_domain::page::PageRequest;
use wagate_store::{EventFilter, SqlStore, Store};

/// A sandbox app on `store` with an account and one ready line.
async fn ready_line(
    store: Arc<dyn Store>,
) -> (App, Arc<ManualClock>, Principal, wagate_store::LineRecord) {
    let clock = Arc::new(ManualClock::new(
        "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    let app = App::sandbox(store, clock.clone()).unwrap();
    let who = common::account_with_card(&app, "Receipts Co").await;
    let line = app.lines.create(&who, CreateLine::default()).await.unwrap();
    let sim = app.connector.simulator().unwrap();
    sim.scan(&line.id, "+15550000001".into(), None)
        .await
        .unwrap();
    (app, clock, who, line)
}

async fn receipts_body(store: Arc<dyn Store>) {
    let (app, _clock, who, line) = ready_line(store.clone()).await;
    let mut sent = Vec::new();
    for i in 0..30 {
        let m = app
            .lines
            .send_text(&who, &line.id, "+447700900123", &format!("hello {i}"))
            .await
            .unwrap();
        sent.push(m.id);
    }
    // The sends run now; the simulated receipts (1 s and 3 s later) are not due yet.
    app.scheduler.run_due_now().await.unwrap();
    for id in &sent {
        let receipt = |status| ConnectorEvent::MessageStatus {
            line: line.id.clone(),
            message: id.clone(),
            status,
            error: None,
        };
        let (a, b) = tokio::join!(
            app.lines.apply(receipt(MessageStatus::Delivered)),
            app.lines.apply(receipt(MessageStatus::Read)),
        );
        a.unwrap();
        b.unwrap();
    }
    let filter = EventFilter {
        event_type: Some("message.status".into()),
        line_id: Some(line.id.to_string()),
    };
    let mut announced: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut page = PageRequest::new(Some(200), None).unwrap();
    loop {
        let got = store
            .list_events(&who.account.id, &filter, &page)
            .await
            .unwrap();
        for e in &got.data {
            let body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
            let m = &body["data"]["message"];
            announced
                .entry(m["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(m["status"].as_str().unwrap().to_owned());
        }
        let Some(last) = got.data.last().filter(|_| got.has_more) else {
            break;
        };
        page = PageRequest::new(Some(200), Some(last.id.to_string())).unwrap();
    }
    for id in &sent {
        let stored = store
            .get_message(&who.account.id, id)
            .await
            .unwrap()
            .unwrap()
            .status;
        let mut statuses = announced.remove(id.as_str()).unwrap_or_default();
        statuses.reverse(); // the list is newest first
        let order = ["sent", "delivered", "read"];
        let ranks: Vec<usize> = statuses
            .iter()
            .map(|s| order.iter().position(|o| o == s).unwrap())
            .collect();
        assert!(
            ranks.windows(2).all(|w| w[0] < w[1]),
            "{id}: each status announced once, in order: {statuses:?}"
        );
        assert_eq!(
            statuses.last().map(String::as_str),
            Some(stored.as_str()),
            "{id}: the last event is the stored status ({statuses:?})"
        );
        assert_eq!(stored, MessageStatus::Read, "read wins whatever the order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receipts_announce_only_stored_changes_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    receipts_body(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receipts_announce_only_stored_changes_postgres() {
    let url = wagate_store::testing::fresh_postgres_database()
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open(&url, Default::default()).await.unwrap());
    receipts_body(store).await;
}

/// WhatsApp's rate limit announced after a send (a nack): new sends answer 429 with the wait,
/// and the line sends again once it passed.
#[tokio::test]
async fn a_rate_limit_reported_after_a_send_pauses_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let (app, clock, who, line) = ready_line(store).await;
    app.lines
        .apply(ConnectorEvent::RateLimited {
            line: line.id.clone(),
            retry_after_seconds: 60,
        })
        .await
        .unwrap();
    let refused = app
        .lines
        .send_text(&who, &line.id, "+447700900123", "too soon")
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            wagate_app::AppError::Rule(wagate_app::RuleError::WhatsAppRateLimit {
                retry_after: 60
            })
        ),
        "{refused:?}"
    );
    clock.set("2026-01-01T00:01:00Z".parse::<Timestamp>().unwrap());
    app.lines
        .send_text(&who, &line.id, "+447700900123", "after the wait")
        .await
        .unwrap();
}
