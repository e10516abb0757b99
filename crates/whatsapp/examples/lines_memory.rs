//! Memory of the connector's state for many linked lines loaded from the store.
//!
//! `cargo run -p wagate-whatsapp --example lines_memory [lines]` (default 1,000): writes that
//! many linked devices to a fresh SQLite store, opens the connector with WhatsApp pointed at a
//! local port nobody listens on (WhatsApp cannot be reached from the test machines), adopts
//! every line — each loads its sealed session and starts its whatsapp-rust client, which then
//! keeps retrying — and prints the process's resident memory before and after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use jiff::Timestamp;
use wagate_app::connector::{Connector, ConnectorEvent, ConnectorSink};
use wagate_domain::clock::{Clock, SystemClock};
use wagate_domain::ids::LineId;
use wagate_store::{SqlStore, Store};
use wagate_whatsapp::backend::LineBackend;
use wagate_whatsapp::seal::SealKey;
use wagate_whatsapp::{Options, WhatsAppConnector};
use whatsapp_rust::wacore::store::traits::DeviceStore;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::Jid;

struct Ignore;

#[async_trait]
impl ConnectorSink for Ignore {
    async fn deliver(&self, _event: ConnectorEvent) -> anyhow::Result<()> {
        Ok(())
    }
    async fn deliver_at(&self, _at: Timestamp, _event: ConnectorEvent) -> anyhow::Result<()> {
        Ok(())
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let lines: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000);
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await?);
    let wall: Arc<dyn Clock> = Arc::new(SystemClock);
    let secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let key = Arc::new(SealKey::from_base64(&secret)?);

    let mut ids = Vec::with_capacity(lines);
    for i in 0..lines {
        let line = LineId::generate();
        let mut device = Device::new();
        device.pn = Some(Jid::pn(format!("55119{i:08}")));
        LineBackend::new(store.clone(), key.clone(), wall.clone(), line.clone())
            .save(&device)
            .await?;
        ids.push(line);
    }

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let options = Options {
        url: Some(format!("ws://127.0.0.1:{port}/ws/chat")),
        version: Some((2, 3000, 1)),
        ..Options::default()
    };
    let connector = WhatsAppConnector::open(store.clone(), &secret, wall, options).await?;
    let sink: Arc<dyn ConnectorSink> = Arc::new(Ignore);
    connector.attach(Arc::downgrade(&sink));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib();
    let started = Instant::now();
    for line in &ids {
        connector.adopt(line).await;
    }
    let adopt_time = started.elapsed();
    // Let every client make its first connect attempts.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = rss_kib();
    let running = connector.running_lines().len();
    println!(
        "lines: {lines}, clients running: {running}, adopt all: {:.1} s",
        adopt_time.as_secs_f64()
    );
    println!(
        "RSS before: {:.1} MiB, after: {:.1} MiB, per line: {:.1} KiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / lines as f64
    );
    connector.shutdown().await;
    Ok(())
}
