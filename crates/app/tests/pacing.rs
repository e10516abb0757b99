//! Per-line pacing (PRODUCT.md §8): with a connector that asks for it, each send on a line
//! is preceded by the typing indicator and spaced from the line's previous send by a gap
//! within the connector's range, whatever the order the messages were queued in.

mod common;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_app::connector::{
    Connector, ConnectorEvent, ConnectorHealth, ConnectorSink, ConnectorState, Pacing, QrCode,
    ReconnectError, SendError, Sent,
};
use wagate_app::lines::CreateLine;
use wagate_app::{App, Outside};
use wagate_domain::clock::ManualClock;
use wagate_domain::ids::{LineId, MessageId};
use wagate_store::SqlStore;

const PACING: Pacing = Pacing {
    min: Duration::from_millis(40),
    max: Duration::from_millis(80),
};

/// What the connector saw, in order, with when (real time).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Typing(String),
    Sent(String, Instant),
}

#[derive(Default)]
struct Paced {
    seen: Mutex<Vec<Seen>>,
}

#[async_trait]
impl Connector for Paced {
    fn attach(&self, _sink: Weak<dyn ConnectorSink>) {}
    async fn qr(&self, _: &LineId, _: u32, _: Timestamp, now: Timestamp) -> anyhow::Result<QrCode> {
        Ok(QrCode {
            payload: "qr".into(),
            expires_at: now,
        })
    }
    async fn send_text(
        &self,
        _line: &LineId,
        _message: &MessageId,
        _to: &str,
        text: &str,
        _now: Timestamp,
    ) -> Result<Sent, SendError> {
        self.seen
            .lock()
            .unwrap()
            .push(Seen::Sent(text.to_owned(), Instant::now()));
        Ok(Sent {
            provider_id: format!("p-{text}"),
            later: Vec::new(),
        })
    }
    async fn reconnect(&self, _: &LineId, _: Timestamp) -> Result<(), ReconnectError> {
        Ok(())
    }
    async fn unlink(&self, _: &LineId) -> anyhow::Result<()> {
        Ok(())
    }
    fn health(&self) -> ConnectorHealth {
        ConnectorHealth {
            kind: "paced",
            state: ConnectorState::Ok,
            detail: None,
        }
    }
    fn pacing(&self) -> Option<Pacing> {
        Some(PACING)
    }
    async fn typing(&self, _line: &LineId, to: &str) {
        self.seen.lock().unwrap().push(Seen::Typing(to.to_owned()));
    }
}

#[tokio::test]
async fn sends_are_typed_then_spaced_within_the_connectors_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap()));
    let paced = Arc::new(Paced::default());
    let outside = Outside {
        connector: paced.clone(),
        ..Outside::sandbox()
    };
    let app = App::sandbox_with(store, clock, outside).unwrap();
    let who = common::account_with_card(&app, "Paced Co").await;
    let line = app.lines.create(&who, CreateLine::default()).await.unwrap();
    app.lines
        .apply(ConnectorEvent::Scanned {
            line: line.id.clone(),
            phone_number: "+15550000001".into(),
            calling: None,
        })
        .await
        .unwrap();
    for i in 0..5 {
        app.lines
            .send_text(
                &who,
                &line.id,
                &format!("+4477009001{i:02}"),
                &format!("m{i}"),
            )
            .await
            .unwrap();
    }
    app.scheduler.run_due_now().await.unwrap();

    let seen = paced.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 10, "{seen:?}");
    let mut last_sent: Option<Instant> = None;
    for (i, pair) in seen.chunks(2).enumerate() {
        assert_eq!(
            pair[0],
            Seen::Typing(format!("+4477009001{i:02}")),
            "typing first"
        );
        let Seen::Sent(text, at) = &pair[1] else {
            panic!("a send after the typing: {pair:?}");
        };
        assert_eq!(text, &format!("m{i}"), "in the order queued");
        if let Some(before) = last_sent {
            let gap = at.duration_since(before);
            assert!(
                gap >= PACING.min,
                "send {i} only {gap:?} after the one before"
            );
        }
        last_sent = Some(*at);
    }
}
