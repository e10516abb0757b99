//! Shared by the connector's tests: stores on both backends, a recording sink, local servers
//! that are not WhatsApp.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use jiff::Timestamp;
use wagate_app::connector::{ConnectorEvent, ConnectorSink};
use wagate_domain::clock::{Clock, SystemClock};
use wagate_store::{testing, SqlStore, Store};

/// A server key, as `WAGATE_SECRET_KEY` holds it.
pub fn secret(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

pub fn wall() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A connector on `store` whose clients point at a local port nobody listens on: they exist,
/// and never reach WhatsApp by themselves (tests feed them the crate's events).
pub async fn connector_nowhere(store: Arc<dyn Store>) -> wagate_whatsapp::WhatsAppConnector {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    wagate_whatsapp::WhatsAppConnector::open(
        store,
        &secret(1),
        wall(),
        wagate_whatsapp::Options {
            url: Some(format!("ws://127.0.0.1:{port}/ws/chat")),
            version: Some((2, 3000, 1)),
            connect_grace: std::time::Duration::from_secs(600),
            qr_wait: std::time::Duration::from_millis(200),
            ..wagate_whatsapp::Options::default()
        },
    )
    .await
    .unwrap()
}

/// One database, opened as many times as a test restarts.
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    pub async fn new(postgres: bool) -> Self {
        if postgres {
            Db::Postgres(testing::fresh_postgres_database().await.unwrap())
        } else {
            Db::Sqlite(tempfile::tempdir().unwrap())
        }
    }

    pub async fn open(&self) -> Arc<dyn Store> {
        Arc::new(match self {
            Db::Sqlite(dir) => SqlStore::open_sqlite_dir(dir.path()).await.unwrap(),
            Db::Postgres(url) => SqlStore::open(url, Default::default()).await.unwrap(),
        })
    }
}

/// Runs `$body(db)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::support::Db::new(false).await).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(super::support::Db::new(true).await).await;
            }
        }
    };
}

/// A sink that keeps what it is given.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<ConnectorEvent>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<ConnectorEvent> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl ConnectorSink for Recorder {
    async fn deliver(&self, event: ConnectorEvent) -> anyhow::Result<()> {
        self.events.lock().unwrap().push(event);
        Ok(())
    }

    async fn deliver_at(&self, _at: Timestamp, event: ConnectorEvent) -> anyhow::Result<()> {
        self.events.lock().unwrap().push(event);
        Ok(())
    }
}
