//! Pairing runs on one server per line. Two servers share a store, each with its own
//! connector that tags what it produces: a connect page served by either shows the codes of
//! the one server that pairs the line (never a second pairing client), rotations reach the
//! other server, a pairing code asked for on the other server comes from the owner, and a
//! server without a worker leaves pairing to the servers that have one.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use wagate_app::connector::{
    Connector, ConnectorHealth, ConnectorSink, ConnectorState, PairCodeError, QrCode,
    ReconnectError, SendError, Sent,
};
use wagate_app::lines::CreateLine;
use wagate_app::scheduler::WorkerOptions;
use wagate_app::{App, Outside};
use wagate_domain::clock::ManualClock;
use wagate_domain::ids::{LineId, MessageId};
use wagate_store::{LineRecord, SqlStore, Store};

/// A connector whose codes say which server made them.
struct Tagged {
    name: &'static str,
    /// Bumped to make the next code a new one (WhatsApp rotating its QR).
    generation: AtomicUsize,
    qr_calls: AtomicUsize,
    pair_calls: AtomicUsize,
}

impl Tagged {
    fn new(name: &'static str) -> Arc<Tagged> {
        Arc::new(Tagged {
            name,
            generation: AtomicUsize::new(0),
            qr_calls: AtomicUsize::new(0),
            pair_calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Connector for Tagged {
    fn attach(&self, _sink: Weak<dyn ConnectorSink>) {}

    async fn qr(
        &self,
        _line: &LineId,
        link: u32,
        _since: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<QrCode> {
        self.qr_calls.fetch_add(1, Ordering::SeqCst);
        let generation = self.generation.load(Ordering::SeqCst);
        Ok(QrCode {
            payload: format!("{}-link{link}-qr{generation}", self.name),
            expires_at: now + SignedDuration::from_secs(20),
        })
    }

    async fn send_text(
        &self,
        _line: &LineId,
        _message: &MessageId,
        _to: &str,
        _text: &str,
        _now: Timestamp,
    ) -> Result<Sent, SendError> {
        Err(SendError::Disconnected)
    }

    async fn reconnect(&self, _line: &LineId, _now: Timestamp) -> Result<(), ReconnectError> {
        Err(ReconnectError::StillDown)
    }

    async fn unlink(&self, _line: &LineId) -> anyhow::Result<()> {
        Ok(())
    }

    fn health(&self) -> ConnectorHealth {
        ConnectorHealth {
            kind: "tagged",
            state: ConnectorState::Ok,
            detail: None,
        }
    }

    async fn pair_code(
        &self,
        _line: &LineId,
        _link: u32,
        _since: Timestamp,
        phone_number: &str,
        _now: Timestamp,
    ) -> Result<String, PairCodeError> {
        self.pair_calls.fetch_add(1, Ordering::SeqCst);
        if phone_number == "+440000000000" {
            return Err(PairCodeError::Rejected("not on WhatsApp".into()));
        }
        Ok(format!("{}CODE", self.name.to_uppercase()))
    }
}

fn server(store: &Arc<dyn Store>, clock: &Arc<ManualClock>, connector: &Arc<Tagged>) -> App {
    let outside = Outside {
        connector: connector.clone(),
        ..Outside::sandbox()
    };
    App::sandbox_with(store.clone(), clock.clone(), outside).unwrap()
}

async fn pending_line(app: &App, who: &wagate_app::accounts::Principal) -> LineRecord {
    app.lines.create(who, CreateLine::default()).await.unwrap()
}

async fn one_server_pairs_each_line(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(
        "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    let (ca, cb) = (Tagged::new("a"), Tagged::new("b"));
    let (a, b) = (server(&store, &clock, &ca), server(&store, &clock, &cb));
    let who = common::account_with_card(&a, "Two servers").await;
    let line = pending_line(&a, &who).await;

    // The page opens on server A: A pairs the line. The same page polled through B shows
    // A's code, and B never starts a pairing client.
    assert_eq!(a.pairing.qr(&line).await.unwrap().payload, "a-link0-qr0");
    assert_eq!(b.pairing.qr(&line).await.unwrap().payload, "a-link0-qr0");
    assert_eq!(cb.qr_calls.load(Ordering::SeqCst), 0);

    // WhatsApp rotates the code on A; A republishes it for the page on B.
    ca.generation.store(1, Ordering::SeqCst);
    assert_eq!(a.pairing.refresh().await.unwrap(), 1);
    assert_eq!(b.pairing.qr(&line).await.unwrap().payload, "a-link0-qr1");
    assert_eq!(cb.qr_calls.load(Ordering::SeqCst), 0);

    // A pairing code asked for through B is made by A's pairing client (A's worker runs the
    // request), refusals included.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let scheduler = a.scheduler.clone();
    let worker = tokio::spawn(async move {
        scheduler
            .run_forever(
                WorkerOptions {
                    concurrency: 4,
                    poll_interval: Duration::from_millis(20),
                },
                rx,
            )
            .await
    });
    assert_eq!(
        b.pairing.pair_code(&line, "+447700900123").await.unwrap(),
        "ACODE"
    );
    assert!(matches!(
        b.pairing.pair_code(&line, "+440000000000").await,
        Err(PairCodeError::Rejected(why)) if why == "not on WhatsApp"
    ));
    assert_eq!(ca.pair_calls.load(Ordering::SeqCst), 2);
    assert_eq!(cb.pair_calls.load(Ordering::SeqCst), 0);

    // A server without a worker never pairs: its first look at a new line asks the workers,
    // and the one that takes the line publishes its code.
    b.pairing.set_serves_lines(false);
    let fresh = pending_line(&a, &who).await;
    assert_eq!(b.pairing.qr(&fresh).await.unwrap().payload, "a-link0-qr1");
    assert_eq!(cb.qr_calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        b.pairing.pair_code(&fresh, "+447700900123").await.unwrap(),
        "ACODE"
    );
    assert_eq!(cb.pair_calls.load(Ordering::SeqCst), 0);

    stop.send(true).unwrap();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_pairs_each_line_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    one_server_pairs_each_line(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_pairs_each_line_postgres() {
    let url = wagate_store::testing::fresh_postgres_database()
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open(&url, Default::default()).await.unwrap());
    one_server_pairs_each_line(store).await;
}
