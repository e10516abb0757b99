//! Which inbound messages wagate reports, and from which number.

mod support;

use std::sync::Arc;

use support::{secret, wall, Db};
use wagate_domain::ids::{LineId, MessageId};
use wagate_whatsapp::backend::LineBackend;
use wagate_whatsapp::seal::SealKey;
use wagate_whatsapp::{reportable, sender_number, wa_message_id};
use whatsapp_rust::types::message::{MessageInfo, MessageSource};
use whatsapp_rust::wacore::store::traits::{LidPnMappingEntry, ProtocolStore};
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

#[test]
fn only_texts_from_other_people_in_one_to_one_chats_are_reported() {
    let ana = Jid::pn("5511987650002");
    let direct = info(ana.clone(), ana.clone(), false, false);
    assert_eq!(
        reportable(&direct, Some("hello")),
        Some((ana.clone(), None, "hello".to_owned()))
    );
    // No text (a media message without a caption, a reaction): not reported yet.
    assert_eq!(reportable(&direct, None), None);
    // Our own message, sent from the phone and echoed to this device.
    assert_eq!(
        reportable(&info(ana.clone(), ana.clone(), false, true), Some("hi")),
        None
    );
    // Groups and status updates.
    let group = Jid::new("120363021033254949", Server::Group);
    assert_eq!(
        reportable(&info(group, ana.clone(), true, false), Some("hi")),
        None
    );
    let status = Jid::new("status", Server::Broadcast);
    assert_eq!(
        reportable(&info(status, ana, false, false), Some("hi")),
        None
    );
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
