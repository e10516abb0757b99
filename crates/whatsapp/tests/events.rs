//! The crate's own events, fed through a running connector: what wagate is told, what the
//! connect page shows, and what happens to the stored session.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{connector_nowhere, secret, wall, Db, Recorder};
use wagate_app::connector::{Connector, ConnectorEvent, ConnectorSink};
use wagate_domain::ids::{LineId, MessageId};
use wagate_domain::line::{BlockedReason, MessageStatus};
use wagate_whatsapp::backend::{kind, LineBackend};
use wagate_whatsapp::seal::SealKey;
use wagate_whatsapp::{wa_message_id, WhatsAppConnector};
use whatsapp_rust::types::events::{
    ConnectFailureReason, Event, LoggedOut, PairingQrCode, Receipt, ServerAck, StreamReplaced,
    TempBanReason, TemporaryBan,
};
use whatsapp_rust::types::message::MessageSource;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::chrono::{DateTime, TimeDelta};
use whatsapp_rust::wacore::store::traits::DeviceStore;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::Jid;

struct Setup {
    connector: WhatsAppConnector,
    recorder: Arc<Recorder>,
    _sink: Arc<dyn ConnectorSink>,
    store: Arc<dyn wagate_store::Store>,
    _db: Db,
}

async fn setup() -> Setup {
    let db = Db::new(false).await;
    let store = db.open().await;
    let connector = connector_nowhere(store.clone()).await;
    let recorder = Arc::new(Recorder::default());
    let sink: Arc<dyn ConnectorSink> = recorder.clone();
    connector.attach(Arc::downgrade(&sink));
    Setup {
        connector,
        recorder,
        _sink: sink,
        store,
        _db: db,
    }
}

fn backend(store: &Arc<dyn wagate_store::Store>, line: &LineId) -> LineBackend {
    LineBackend::new(
        store.clone(),
        Arc::new(SealKey::from_base64(&secret(1)).unwrap()),
        wall(),
        line.clone(),
    )
}

async fn linked(s: &Setup) -> LineId {
    let line = LineId::generate();
    let mut device = Device::new();
    device.pn = Some(Jid::pn("5511987650001"));
    backend(&s.store, &line).save(&device).await.unwrap();
    s.connector.adopt(&line).await;
    line
}

fn receipt(ids: &[&str], kind: ReceiptType) -> Event {
    Event::Receipt(
        Receipt::builder()
            .source(MessageSource {
                chat: Jid::pn("5511987650002"),
                sender: Jid::pn("5511987650002"),
                ..Default::default()
            })
            .message_ids(ids.iter().map(|i| (*i).into()).collect())
            .timestamp(DateTime::from_timestamp(1_767_225_600, 0).unwrap())
            .r#type(kind)
            .offline(false)
            .build(),
    )
}

#[tokio::test]
async fn receipts_and_nacks_reach_wagates_message() {
    let s = setup().await;
    let line = linked(&s).await;
    let message = MessageId::generate();
    let wa_id = wa_message_id(&message);
    backend(&s.store, &line)
        .remember_message(&wa_id, &message, 1_767_225_600)
        .await
        .unwrap();

    s.connector
        .handle_event(
            &line,
            &receipt(&[&wa_id, "3EB0FROMTHEPHONE"], ReceiptType::Delivered),
        )
        .await;
    s.connector
        .handle_event(&line, &receipt(&[&wa_id], ReceiptType::Read))
        .await;
    let nack = Event::ServerAck(
        ServerAck::builder()
            .id(wa_id.clone())
            .class("message".into())
            .error("479".into())
            .build(),
    );
    s.connector.handle_event(&line, &nack).await;
    let status = |status, error: Option<&str>| ConnectorEvent::MessageStatus {
        line: line.clone(),
        message: message.clone(),
        status,
        error: error.map(str::to_owned),
    };
    assert_eq!(
        s.recorder.events(),
        vec![
            status(MessageStatus::Delivered, None),
            status(MessageStatus::Read, None),
            status(MessageStatus::Failed, Some("whatsapp_refused_479")),
        ]
    );
    s.connector.shutdown().await;
}

#[tokio::test]
async fn the_connect_page_gets_the_latest_qr_code() {
    let s = setup().await;
    let line = LineId::generate();
    let now = jiff::Timestamp::UNIX_EPOCH;
    // The first qr() starts the pairing client; WhatsApp cannot be reached, so no code yet.
    assert!(s.connector.qr(&line, 0, now, now).await.is_err());
    for code in ["2@first,k1,k2,k3", "2@second,k1,k2,k3"] {
        let qr = Event::PairingQrCode(
            PairingQrCode::builder()
                .code(code.into())
                .timeout(Duration::from_secs(20))
                .build(),
        );
        s.connector.handle_event(&line, &qr).await;
        let shown = s.connector.qr(&line, 0, now, now).await.unwrap();
        assert_eq!(shown.payload, code);
        let left = shown
            .expires_at
            .duration_since(wagate_domain::clock::Clock::now(&*wall()));
        assert!(left.as_secs() > 15 && left.as_secs() <= 20, "{left}");
    }
    // A new pairing (the line was logged out and relinked) starts from scratch.
    assert!(s.connector.qr(&line, 1, now, now).await.is_err());
    s.connector.shutdown().await;
}

#[tokio::test]
async fn an_unlink_from_the_phone_forgets_the_session() {
    let s = setup().await;
    let line = linked(&s).await;
    let out = Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(false)
            .reason(ConnectFailureReason::LoggedOut)
            .build(),
    );
    s.connector.handle_event(&line, &out).await;
    assert_eq!(
        s.recorder.events(),
        vec![ConnectorEvent::LoggedOut { line: line.clone() }]
    );
    // The client stops and the session goes, in the background.
    for _ in 0..100 {
        if s.connector.running_lines().is_empty()
            && s.store
                .wa_list(&line, kind::DEVICE)
                .await
                .unwrap()
                .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s.connector.running_lines().is_empty());
    assert!(backend(&s.store, &line).load().await.unwrap().is_none());
    assert_eq!(
        s.connector
            .reconnect(&line, jiff::Timestamp::UNIX_EPOCH)
            .await,
        Err(wagate_app::connector::ReconnectError::LoggedOut)
    );
}

#[tokio::test]
async fn a_temporary_ban_blocks_the_line() {
    let s = setup().await;
    let line = linked(&s).await;
    let ban = Event::TemporaryBan(
        TemporaryBan::builder()
            .code(TempBanReason::BlockedByUsers)
            .expire(TimeDelta::hours(24))
            .build(),
    );
    s.connector.handle_event(&line, &ban).await;
    assert_eq!(
        s.recorder.events(),
        vec![ConnectorEvent::Blocked {
            line: line.clone(),
            reason: BlockedReason::TemporarilyBanned
        }]
    );
    // The session is kept: the ban ends by itself.
    assert!(backend(&s.store, &line).load().await.unwrap().is_some());
    s.connector.shutdown().await;
}

#[tokio::test]
async fn a_session_taken_over_elsewhere_is_not_fought_for_until_the_line_is_given_back() {
    let s = setup().await;
    let line = linked(&s).await;
    assert_eq!(s.connector.running_lines(), vec![line.clone()]);
    s.connector
        .handle_event(
            &line,
            &Event::StreamReplaced(StreamReplaced::builder().build()),
        )
        .await;
    for _ in 0..100 {
        if s.connector.running_lines().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.connector.running_lines().is_empty(), "the client stopped");
    // The reconnect job asks: no new client, so the other process keeps the session.
    assert_eq!(
        s.connector
            .reconnect(&line, jiff::Timestamp::UNIX_EPOCH)
            .await,
        Err(wagate_app::connector::ReconnectError::StillDown)
    );
    assert!(s.connector.running_lines().is_empty(), "no client started");
    // Line ownership gives the line to this server again: it connects.
    s.connector.adopt(&line).await;
    assert_eq!(s.connector.running_lines(), vec![line.clone()]);
    s.connector.shutdown().await;
}
