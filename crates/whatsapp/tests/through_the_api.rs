//! The crate's own event values fed through the WhatsApp connector inside a whole wagate
//! (application, store, HTTP router): what a user of the API sees. A QR on the connect page,
//! the line turning `ready` with the linked phone's number, inbound text and media as messages
//! and `message.received` events with their type and caption, and an unlink from the phone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use jiff::Timestamp;
use serde_json::{json, Value};
use support::{connector_nowhere, Db};
use tower::ServiceExt;
use wagate_app::accounts::sandbox_demo_account;
use wagate_app::connector::Connector;
use wagate_app::{App, Outside};
use wagate_domain::clock::ManualClock;
use wagate_domain::ids::LineId;
use wagate_http::{router, AppState};
use wagate_whatsapp::WhatsAppConnector;
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::prelude::MessageBuilderExt;
use whatsapp_rust::types::durability_hook::InboundMessage;
use whatsapp_rust::types::events::{
    ConnectFailureReason, Connected, Event, LoggedOut, PairSuccess, PairingQrCode,
};
use whatsapp_rust::types::message::{MessageInfo, MessageSource};
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Jid, Server};

struct World {
    app: App,
    key: String,
    connector: Arc<WhatsAppConnector>,
    _db: Db,
}

impl World {
    async fn new() -> World {
        let db = Db::new(false).await;
        let store = db.open().await;
        let connector = Arc::new(connector_nowhere(store.clone()).await);
        let clock = Arc::new(ManualClock::new(
            "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        ));
        let outside = Outside {
            connector: connector.clone(),
            ..Outside::sandbox()
        };
        let app = App::sandbox_with(store, clock, outside).unwrap();
        let demo = sandbox_demo_account(&app).await.unwrap();
        World {
            app,
            key: demo.api_key,
            connector,
            _db: db,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = router(AppState::new(self.app.clone()))
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// The types of the account's events, oldest first.
    async fn event_types(&self) -> Vec<String> {
        let page = self.get("/api/v1/webhooks/events?limit=100").await;
        let mut types: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        types.reverse();
        types
    }
}

fn inbound(id: &str, from: &str, message: wa::Message) -> InboundMessage {
    let who = Jid::pn(from);
    InboundMessage::builder()
        .message(Arc::new(message))
        .info(Arc::new(MessageInfo {
            source: MessageSource {
                chat: who.clone(),
                sender: who,
                ..Default::default()
            },
            id: id.into(),
            ..Default::default()
        }))
        .build()
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_line_links_receives_media_and_is_unlinked_as_the_api_shows_it() {
    let w = World::new().await;
    let (status, card) = w
        .call(
            Method::POST,
            "/api/v1/billing/card",
            Some(json!({ "source_id": "cnon:card-nonce-ok" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{card}");
    let (status, line) = w
        .call(Method::POST, "/api/v1/wa/lines", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{line}");
    let id = LineId::parse(line["id"].as_str().unwrap()).unwrap();
    let token = line["connect_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Opening the connect page starts the pairing client; the QR appears when the client
    // emits it, and the next code replaces it.
    let mut versions = Vec::new();
    for code in ["2@first,k1,k2,k3", "2@second,k1,k2,k3"] {
        let _ = w
            .call(Method::GET, &format!("/connect/{token}"), None)
            .await;
        let qr = Event::PairingQrCode(
            PairingQrCode::builder()
                .code(code.into())
                .timeout(Duration::from_secs(20))
                .build(),
        );
        w.connector.handle_event(&id, &qr).await;
        let (status, page) = w
            .call(Method::GET, &format!("/connect/{token}/status"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["state"], "awaiting_scan", "{page}");
        assert!(page["qr_svg"].as_str().unwrap().contains("<svg"), "{page}");
        versions.push(page["qr_version"].clone());
    }
    assert_ne!(versions[0], versions[1], "a new code is a new QR");

    // The phone scans: paired, then connected. The line is ready with the phone's number.
    let paired = Event::PairSuccess(
        PairSuccess::builder()
            .id(Jid::pn("5511987650001"))
            .lid(Jid::new("100000012345678", Server::Lid))
            .business_name(String::new())
            .platform("android".into())
            .build(),
    );
    w.connector.handle_event(&id, &paired).await;
    w.connector
        .handle_event(&id, &Event::Connected(Connected::builder().build()))
        .await;
    let path = format!("/api/v1/wa/lines/{id}");
    wait_for("the line to be ready", async || {
        w.get(&path).await["status"] == "ready"
    })
    .await;
    let ready = w.get(&path).await;
    assert_eq!(ready["phone_number"], "+5511987650001", "{ready}");
    assert_eq!(
        w.connector.health().state,
        wagate_app::connector::ConnectorState::Ok
    );

    // Inbound: a text, a photo with a caption, a voice note, a location; a reaction is not
    // a message to report.
    let photo = wa::Message {
        image_message: MessageField::some(wa::message::ImageMessage {
            caption: Some("the receipt".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let voice = wa::Message {
        audio_message: MessageField::some(wa::message::AudioMessage {
            ptt: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let place = wa::Message {
        location_message: MessageField::some(wa::message::LocationMessage {
            degrees_latitude: Some(-23.55),
            degrees_longitude: Some(-46.63),
            ..Default::default()
        }),
        ..Default::default()
    };
    let reaction = wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            text: Some("👍".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let from = "5511987650002";
    let batch = [
        inbound("3EB0A1", from, wa::Message::text("hello")),
        inbound("3EB0A2", from, photo),
        inbound("3EB0A3", from, voice),
        inbound("3EB0A4", from, place),
        inbound("3EB0A5", from, reaction),
    ];
    w.connector.handle_inbound(&id, &batch).await.unwrap();
    // WhatsApp redelivers a batch it did not see acknowledged: nothing twice.
    w.connector.handle_inbound(&id, &batch[1..2]).await.unwrap();

    let messages = w.get(&format!("/api/v1/wa/lines/{id}/messages")).await;
    let seen: Vec<(String, String, String)> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|m| {
            assert_eq!(m["direction"], "inbound");
            assert_eq!(m["from"], "+5511987650002");
            assert_eq!(m["status"], "received");
            (
                m["type"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
                m["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let to = "+5511987650001".to_owned();
    assert_eq!(
        seen,
        vec![
            ("text".into(), "hello".into(), to.clone()),
            ("image".into(), "the receipt".into(), to.clone()),
            ("voice".into(), String::new(), to.clone()),
            ("location".into(), "geo:-23.55,-46.63".into(), to),
        ]
    );
    let events = w.get("/api/v1/webhooks/events?limit=100").await;
    let received: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message.received")
        .collect();
    assert_eq!(received.len(), 4, "{events}");
    assert!(
        received
            .iter()
            .map(|e| &e["body"]["data"]["message"])
            .any(|m| m["type"] == "image" && m["text"] == "the receipt"),
        "{events}"
    );

    // The phone removes the device: logged out, with its event; a new scan is needed.
    let out = Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(false)
            .reason(ConnectFailureReason::LoggedOut)
            .build(),
    );
    w.connector.handle_event(&id, &out).await;
    wait_for("the line to be logged out", async || {
        w.get(&path).await["status"] == "logged_out"
    })
    .await;
    let types = w.event_types().await;
    let ready_at = types.iter().position(|t| t == "line.ready").unwrap();
    let out_at = types.iter().position(|t| t == "line.logged_out").unwrap();
    assert!(ready_at < out_at, "{types:?}");
    w.connector.shutdown().await;
}
