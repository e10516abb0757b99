//! Which inbound messages wagate reports, and from which number.

mod support;

use std::sync::Arc;

use support::{secret, wall, Db};
use wagate_domain::ids::{LineId, MessageId};
use wagate_domain::line::MessageKind;
use wagate_whatsapp::backend::LineBackend;
use wagate_whatsapp::seal::SealKey;
use wagate_whatsapp::{content, reportable, sender_number, wa_message_id};
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::prelude::MessageBuilderExt;
use whatsapp_rust::types::message::{MessageInfo, MessageSource};
use whatsapp_rust::wacore::store::traits::{LidPnMappingEntry, ProtocolStore};
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Jid, Server};

fn info(chat: Jid, sender: Jid, group: bool, from_me: bool) -> MessageInfo {
    MessageInfo {
        source: MessageSource {
            chat,
            sender,
            is_group: group,
            is_from_me: from_me,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn text(t: &str) -> wa::Message {
    wa::Message::text(t)
}

#[test]
fn only_messages_from_other_people_in_one_to_one_chats_are_reported() {
    let ana = Jid::pn("5511987650002");
    let direct = info(ana.clone(), ana.clone(), false, false);
    assert_eq!(
        reportable(&direct, &text("hello")),
        Some((ana.clone(), None, MessageKind::Text, "hello".to_owned()))
    );
    // Not a message to a person (a reaction): not reported.
    let reaction = wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            text: Some("👍".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(reportable(&direct, &reaction), None);
    // Our own message, sent from the phone and echoed to this device.
    assert_eq!(
        reportable(&info(ana.clone(), ana.clone(), false, true), &text("hi")),
        None
    );
    // Groups and status updates.
    let group = Jid::new("120363021033254949", Server::Group);
    assert_eq!(
        reportable(&info(group, ana.clone(), true, false), &text("hi")),
        None
    );
    let status = Jid::new("status", Server::Broadcast);
    assert_eq!(
        reportable(&info(status, ana, false, false), &text("hi")),
        None
    );
}

#[test]
fn every_kind_of_message_is_reported_with_its_type_and_caption() {
    use wa::message::*;
    let m = |f: fn(&mut wa::Message)| {
        let mut m = wa::Message::default();
        f(&mut m);
        m
    };
    let cases: Vec<(wa::Message, MessageKind, &str)> = vec![
        (text("hi"), MessageKind::Text, "hi"),
        (
            m(|m| {
                m.image_message = MessageField::some(ImageMessage {
                    caption: Some("receipt".into()),
                    ..Default::default()
                })
            }),
            MessageKind::Image,
            "receipt",
        ),
        (
            m(|m| m.image_message = MessageField::some(ImageMessage::default())),
            MessageKind::Image,
            "",
        ),
        (
            m(|m| {
                m.video_message = MessageField::some(VideoMessage {
                    caption: Some("clip".into()),
                    ..Default::default()
                })
            }),
            MessageKind::Video,
            "clip",
        ),
        (
            m(|m| m.ptv_message = MessageField::some(VideoMessage::default())),
            MessageKind::Video,
            "",
        ),
        (
            m(|m| m.audio_message = MessageField::some(AudioMessage::default())),
            MessageKind::Audio,
            "",
        ),
        (
            m(|m| {
                m.audio_message = MessageField::some(AudioMessage {
                    ptt: Some(true),
                    ..Default::default()
                })
            }),
            MessageKind::Voice,
            "",
        ),
        (
            m(|m| {
                m.document_message = MessageField::some(DocumentMessage {
                    caption: Some("invoice".into()),
                    ..Default::default()
                })
            }),
            MessageKind::Document,
            "invoice",
        ),
        (
            m(|m| {
                m.document_with_caption_message = MessageField::some(FutureProofMessage {
                    message: MessageField::some(wa::Message {
                        document_message: MessageField::some(DocumentMessage {
                            caption: Some("wrapped".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                })
            }),
            MessageKind::Document,
            "wrapped",
        ),
        (
            m(|m| m.sticker_message = MessageField::some(StickerMessage::default())),
            MessageKind::Sticker,
            "",
        ),
        (
            m(|m| {
                m.location_message = MessageField::some(LocationMessage {
                    name: Some("Cafe".into()),
                    address: Some("1 Main St".into()),
                    degrees_latitude: Some(1.5),
                    degrees_longitude: Some(2.5),
                    ..Default::default()
                })
            }),
            MessageKind::Location,
            "Cafe, 1 Main St",
        ),
        (
            m(|m| {
                m.location_message = MessageField::some(LocationMessage {
                    degrees_latitude: Some(1.5),
                    degrees_longitude: Some(-2.25),
                    ..Default::default()
                })
            }),
            MessageKind::Location,
            "geo:1.5,-2.25",
        ),
        (
            m(|m| {
                m.live_location_message = MessageField::some(LiveLocationMessage {
                    caption: Some("on my way".into()),
                    ..Default::default()
                })
            }),
            MessageKind::Location,
            "on my way",
        ),
        (
            m(|m| {
                m.contact_message = MessageField::some(ContactMessage {
                    display_name: Some("Ana".into()),
                    ..Default::default()
                })
            }),
            MessageKind::Contacts,
            "Ana",
        ),
        (
            m(|m| {
                m.contacts_array_message = MessageField::some(ContactsArrayMessage {
                    contacts: vec![
                        ContactMessage {
                            display_name: Some("Ana".into()),
                            ..Default::default()
                        },
                        ContactMessage {
                            display_name: Some("Bo".into()),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                })
            }),
            MessageKind::Contacts,
            "Ana, Bo",
        ),
    ];
    for (message, kind, caption) in cases {
        assert_eq!(
            content(&message),
            Some((kind, caption.to_owned())),
            "{message:?}"
        );
    }
    // Wrapped the way disappearing messages arrive: still the same message.
    let ephemeral = wa::Message {
        ephemeral_message: MessageField::some(FutureProofMessage {
            message: MessageField::some(text("secret")),
        }),
        ..Default::default()
    };
    assert_eq!(
        content(&ephemeral),
        Some((MessageKind::Text, "secret".to_owned()))
    );
    assert_eq!(content(&wa::Message::default()), None);
}

#[tokio::test]
async fn a_sender_known_only_by_lid_is_found_through_the_sessions_map() {
    let db = Db::new(false).await;
    let store = db.open().await;
    let backend = LineBackend::new(
        store,
        Arc::new(SealKey::from_base64(&secret(1)).unwrap()),
        wall(),
        LineId::generate(),
    );
    let lid = Jid::new("100000012345678", Server::Lid);
    assert_eq!(sender_number(&backend, &lid, None).await.unwrap(), None);
    // The server's alternate phone-number JID wins.
    assert_eq!(
        sender_number(&backend, &lid, Some(&Jid::pn("5511987650003")))
            .await
            .unwrap()
            .as_deref(),
        Some("+5511987650003")
    );
    backend
        .put_lid_mapping(&LidPnMappingEntry {
            lid: "100000012345678".into(),
            phone_number: "5511987650004".into(),
            created_at: 0,
            updated_at: 0,
            learning_source: "usync".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        sender_number(&backend, &lid, None)
            .await
            .unwrap()
            .as_deref(),
        Some("+5511987650004")
    );
    assert_eq!(
        backend
            .get_pn_mapping("5511987650004")
            .await
            .unwrap()
            .unwrap()
            .lid,
        "100000012345678"
    );
    assert_eq!(
        sender_number(&backend, &Jid::pn("5511987650002"), None)
            .await
            .unwrap()
            .as_deref(),
        Some("+5511987650002")
    );
}

#[test]
fn whatsapp_message_ids_are_derived_from_ours() {
    let a = MessageId::generate();
    let b = MessageId::generate();
    let id = wa_message_id(&a);
    assert_eq!(id, wa_message_id(&a), "a retried send reuses its id");
    assert_ne!(id, wa_message_id(&b));
    assert!(id.starts_with("3EB0") && id.len() == 20, "{id}");
    assert!(id[4..]
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
}
