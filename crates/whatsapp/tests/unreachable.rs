//! WhatsApp cannot be reached: the transport is pointed at local servers that refuse the
//! connection, garble the handshake or never answer. A linked line is reported dropped once,
//! reconnects fail without a panic (the client keeps backing off), the connect page gets a
//! clear error instead of a QR, and the health says so.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{secret, wall, Db, Recorder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wagate_app::connector::{
    Connector, ConnectorEvent, ConnectorSink, ConnectorState, ReconnectError, SendError,
};
use wagate_domain::ids::{LineId, MessageId};
use wagate_whatsapp::backend::LineBackend;
use wagate_whatsapp::seal::SealKey;
use wagate_whatsapp::{Options, WhatsAppConnector};
use whatsapp_rust::wacore::store::traits::DeviceStore;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::Jid;

/// How the local server misbehaves.
#[derive(Clone, Copy)]
enum Peer {
    /// Nothing listens: connection refused.
    Refuses,
    /// Accepts, answers the WebSocket upgrade with bytes that are not HTTP, and hangs up.
    Garbles,
    /// Accepts and never says anything.
    Silent,
}

async fn local_server(peer: Peer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match peer {
        Peer::Refuses => drop(listener),
        Peer::Garbles | Peer::Silent => {
            tokio::spawn(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        let _ = socket.read(&mut buf).await;
                        if let Peer::Garbles = peer {
                            let _ = socket.write_all(b"\x00\xffWA\x06\x03garbage\r\n\r\n").await;
                        } else {
                            tokio::time::sleep(Duration::from_secs(600)).await;
                        }
                    });
                }
            });
        }
    }
    format!("ws://{addr}/ws/chat")
}

fn options(url: String) -> Options {
    Options {
        url: Some(url),
        // Never ask the internet for the current version.
        version: Some((2, 3000, 1)),
        connect_grace: Duration::from_millis(400),
        qr_wait: Duration::from_millis(800),
        reconnect_wait: Duration::from_millis(300),
        pairing_idle: Duration::from_secs(60),
        watch_every: Duration::from_millis(100),
    }
}

async fn linked_line(store: Arc<dyn wagate_store::Store>) -> LineId {
    let line = LineId::generate();
    let mut device = Device::new();
    device.pn = Some(Jid::pn("5511987650001"));
    LineBackend::new(
        store,
        Arc::new(SealKey::from_base64(&secret(1)).unwrap()),
        wall(),
        line.clone(),
    )
    .save(&device)
    .await
    .unwrap();
    line
}

async fn unreachable(peer: Peer) {
    let db = Db::new(false).await;
    let store = db.open().await;
    let connector = WhatsAppConnector::open(
        store.clone(),
        &secret(1),
        wall(),
        options(local_server(peer).await),
    )
    .await
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    let sink: Arc<dyn ConnectorSink> = recorder.clone();
    connector.attach(Arc::downgrade(&sink));
    assert_eq!(connector.health().state, ConnectorState::Ok);

    let line = linked_line(store.clone()).await;
    connector.adopt(&line).await;
    assert_eq!(connector.running_lines(), vec![line.clone()]);
    let now = jiff::Timestamp::UNIX_EPOCH;

    // Sends keep the message queued; a reconnect attempt says "still down".
    let message = MessageId::generate();
    assert_eq!(
        connector
            .send_text(&line, &message, "+5511987650002", "hi", now)
            .await,
        Err(SendError::Disconnected)
    );
    assert_eq!(
        connector.reconnect(&line, now).await,
        Err(ReconnectError::StillDown)
    );

    // After the grace the line is reported dropped, once, and the health says why.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        recorder.events(),
        vec![ConnectorEvent::Dropped { line: line.clone() }]
    );
    let health = connector.health();
    assert_eq!(health.state, ConnectorState::Unreachable);
    assert!(
        health
            .detail
            .as_deref()
            .unwrap()
            .contains("could not be reached"),
        "{health:?}"
    );
    assert!(!connector.reachable().0);

    // A pending line's connect page gets an error it can show, not a QR.
    let pending = LineId::generate();
    let err = connector
        .qr(&pending, 0, now, now)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not be reached"), "{err}");

    // Still no panic, no second drop, and the clients stop cleanly (no logout: the session
    // stays).
    assert_eq!(
        connector.reconnect(&line, now).await,
        Err(ReconnectError::StillDown)
    );
    assert_eq!(recorder.events().len(), 1);
    connector.relinquish(&line).await;
    connector.shutdown().await;
    assert!(connector.running_lines().is_empty());
    assert!(store
        .wa_lines_with(wagate_whatsapp::backend::kind::DEVICE)
        .await
        .unwrap()
        .contains(&line));
}

#[tokio::test]
async fn a_refused_connection_drops_the_line_and_backs_off() {
    unreachable(Peer::Refuses).await;
}

#[tokio::test]
async fn a_garbled_handshake_drops_the_line_and_backs_off() {
    unreachable(Peer::Garbles).await;
}

#[tokio::test]
async fn a_silent_server_drops_the_line_and_backs_off() {
    unreachable(Peer::Silent).await;
}

/// A local server that hangs up on every connection until `serve` is set, and then answers
/// the WebSocket upgrade and records the first frame of each connection.
struct Comeback {
    url: String,
    serve: Arc<std::sync::atomic::AtomicBool>,
    refused: Arc<std::sync::atomic::AtomicUsize>,
    first_frames: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Comeback {
    async fn start() -> Comeback {
        use futures_util::StreamExt;
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws/chat", listener.local_addr().unwrap());
        let serve = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let first_frames = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, r, f) = (serve.clone(), refused.clone(), first_frames.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if !s.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(socket);
                    continue;
                }
                let f = f.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else {
                        return;
                    };
                    if let Some(Ok(msg)) = ws.next().await {
                        f.lock().unwrap().push(msg.into_data().to_vec());
                    }
                    // Hold the connection the way a server mid-handshake would.
                    tokio::time::sleep(Duration::from_secs(600)).await;
                });
            }
        });
        Comeback {
            url,
            serve,
            refused,
            first_frames,
        }
    }
}

#[tokio::test]
async fn a_line_comes_back_when_whatsapp_answers_again() {
    use std::sync::atomic::Ordering;
    let db = Db::new(false).await;
    let store = db.open().await;
    let server = Comeback::start().await;
    let connector = WhatsAppConnector::open(
        store.clone(),
        &secret(1),
        wall(),
        options(server.url.clone()),
    )
    .await
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    let sink: Arc<dyn ConnectorSink> = recorder.clone();
    connector.attach(Arc::downgrade(&sink));
    let line = linked_line(store.clone()).await;
    connector.adopt(&line).await;

    // Down: reported once, and the client backs off instead of hammering the server.
    let down_for = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        recorder.events(),
        vec![ConnectorEvent::Dropped { line: line.clone() }]
    );
    assert_eq!(connector.health().state, ConnectorState::Unreachable);
    let tries = server.refused.load(Ordering::SeqCst);
    assert!(
        (1..=5).contains(&tries),
        "{tries} connection attempts in {:?}: the client must back off",
        down_for.elapsed()
    );

    // WhatsApp answers again: the same client reconnects by itself and speaks WhatsApp's
    // protocol (the Noise prologue, "WA" or the edge-routing "ED" preamble) to the server.
    server.serve.store(true, Ordering::SeqCst);
    let mut spoke = false;
    for _ in 0..200 {
        if let Some(frame) = server.first_frames.lock().unwrap().first() {
            assert!(
                frame.starts_with(b"WA") || frame.starts_with(b"ED"),
                "{frame:?}"
            );
            spoke = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(spoke, "the client never came back to the server");

    // The handshake itself needs WhatsApp's certificate, which no local server has: the
    // client's `Connected` (what it emits once the handshake is done) is fed in its place.
    connector
        .handle_event(
            &line,
            &whatsapp_rust::types::events::Event::Connected(
                whatsapp_rust::types::events::Connected::builder().build(),
            ),
        )
        .await;
    assert_eq!(connector.health().state, ConnectorState::Ok);
    assert_eq!(
        connector
            .reconnect(&line, jiff::Timestamp::UNIX_EPOCH)
            .await,
        Ok(())
    );
    assert_eq!(recorder.events().len(), 1, "no second drop");
    connector.shutdown().await;
}

#[tokio::test]
async fn a_line_without_a_session_is_logged_out_not_reconnected() {
    let db = Db::new(false).await;
    let store = db.open().await;
    let connector = WhatsAppConnector::open(
        store,
        &secret(1),
        wall(),
        options(local_server(Peer::Refuses).await),
    )
    .await
    .unwrap();
    let line = LineId::generate();
    connector.adopt(&line).await;
    assert!(connector.running_lines().is_empty());
    assert_eq!(
        connector
            .reconnect(&line, jiff::Timestamp::UNIX_EPOCH)
            .await,
        Err(ReconnectError::LoggedOut)
    );
}
