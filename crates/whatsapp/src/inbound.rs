//! Inbound messages: committed to wagate before WhatsApp hears them acknowledged.
//!
//! whatsapp-rust calls the durability hook with each batch of decrypted messages before it
//! acks them; the hook applies one [`ConnectorEvent::Inbound`] per reportable message through the
//! sink (which stores it with its webhook event) and only then answers `Ok`, so a crash in
//! between means a redelivery, never a lost message. A redelivered message carries the same
//! WhatsApp id, which wagate deduplicates as the `provider_id`.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use wagate_app::connector::ConnectorEvent;
use wagate_domain::ids::LineId;
use wagate_domain::line::MessageKind;
use whatsapp_rust::types::durability_hook::{InboundDurabilityHook, InboundMessage};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore::store::traits::ProtocolStore;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, Jid};

use crate::backend::LineBackend;
use crate::connector::Inner;

/// The durability hook of one line's client.
pub(crate) struct InboundHook {
    inner: Weak<Inner>,
    line: LineId,
}

impl InboundHook {
    pub(crate) fn new(inner: Weak<Inner>, line: LineId) -> Self {
        InboundHook { inner, line }
    }
}

/// What a message carries, as wagate reports it: its type and its text (a media message's
/// caption, a location's name, contact names; empty when there is none). `None` for what is
/// not a message to a person: reactions, edits, deletions, polls, protocol messages.
pub fn content(message: &wa::Message) -> Option<(MessageKind, String)> {
    let base = message.get_base_message();
    if let Some(text) = base.text_content().filter(|t| !t.is_empty()) {
        return Some((MessageKind::Text, text.to_owned()));
    }
    let caption = |c: &Option<String>| c.clone().unwrap_or_default();
    if let Some(m) = base.image_message.as_option() {
        return Some((MessageKind::Image, caption(&m.caption)));
    }
    if let Some(m) = base
        .video_message
        .as_option()
        .or(base.ptv_message.as_option())
    {
        return Some((MessageKind::Video, caption(&m.caption)));
    }
    if let Some(m) = base.audio_message.as_option() {
        let kind = if m.ptt == Some(true) {
            MessageKind::Voice
        } else {
            MessageKind::Audio
        };
        return Some((kind, String::new()));
    }
    let document = base.document_message.as_option().or_else(|| {
        // A document sent with a caption arrives wrapped.
        base.document_with_caption_message
            .as_option()
            .and_then(|w| w.message.as_option())
            .and_then(|m| m.document_message.as_option())
    });
    if let Some(m) = document {
        return Some((MessageKind::Document, caption(&m.caption)));
    }
    if base.sticker_message.is_set() {
        return Some((MessageKind::Sticker, String::new()));
    }
    if let Some(m) = base.location_message.as_option() {
        let named: Vec<&str> = [m.name.as_deref(), m.address.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        let text = if named.is_empty() {
            // RFC 5870: where it is, when it has no name.
            match (m.degrees_latitude, m.degrees_longitude) {
                (Some(lat), Some(lon)) => format!("geo:{lat},{lon}"),
                _ => String::new(),
            }
        } else {
            named.join(", ")
        };
        return Some((MessageKind::Location, text));
    }
    if let Some(m) = base.live_location_message.as_option() {
        return Some((MessageKind::Location, caption(&m.caption)));
    }
    if let Some(m) = base.contact_message.as_option() {
        return Some((MessageKind::Contacts, caption(&m.display_name)));
    }
    if let Some(m) = base.contacts_array_message.as_option() {
        let names: Vec<&str> = m
            .contacts
            .iter()
            .filter_map(|c| c.display_name.as_deref())
            .collect();
        let text = if names.is_empty() {
            caption(&m.display_name)
        } else {
            names.join(", ")
        };
        return Some((MessageKind::Contacts, text));
    }
    None
}

/// What wagate reports of one inbound message, before the sender is resolved: the
/// sender's JIDs, the message's type and its text. `None` for what wagate does not report
/// (groups, status updates, our own messages echoed from the phone, and what [`content`]
/// does not report).
pub fn reportable(
    info: &MessageInfo,
    message: &wa::Message,
) -> Option<(Jid, Option<Jid>, MessageKind, String)> {
    let source = &info.source;
    if source.is_group || source.is_from_me || !(source.chat.is_pn() || source.chat.is_lid()) {
        return None;
    }
    let (kind, text) = content(message)?;
    Some((source.sender.clone(), source.sender_alt.clone(), kind, text))
}

/// The sender's number (E.164): its phone-number JID, the alternate one the server sent, or
/// the LID mapping the session learnt.
pub async fn sender_number(
    backend: &LineBackend,
    sender: &Jid,
    alt: Option<&Jid>,
) -> anyhow::Result<Option<String>> {
    if sender.is_pn() {
        return Ok(Some(format!("+{}", sender.user)));
    }
    if let Some(alt) = alt.filter(|a| a.is_pn()) {
        return Ok(Some(format!("+{}", alt.user)));
    }
    if sender.is_lid() {
        if let Some(mapping) = backend.get_lid_mapping(&sender.user).await? {
            return Ok(Some(format!("+{}", mapping.phone_number)));
        }
    }
    Ok(None)
}

#[async_trait]
impl InboundDurabilityHook for InboundHook {
    async fn on_messages(
        &self,
        _client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> anyhow::Result<()> {
        let Some(inner) = self.inner.upgrade() else {
            anyhow::bail!("the connector is gone");
        };
        receive(&inner, &self.line, batch).await
    }
}

/// Stores each reportable message of `batch` through the sink; `Ok` once all are stored.
pub(crate) async fn receive(
    inner: &Inner,
    line: &LineId,
    batch: &[InboundMessage],
) -> anyhow::Result<()> {
    let backend = inner.backend_of(line);
    for m in batch {
        let Some((sender, alt, kind, text)) = reportable(&m.info, &m.message) else {
            tracing::debug!(%line, id = %m.info.id, "inbound message not reported");
            continue;
        };
        let Some(from) = sender_number(&backend, &sender, alt.as_ref()).await? else {
            tracing::warn!(%line, id = %m.info.id, "inbound message from an unknown number");
            continue;
        };
        inner
            .deliver_durably(ConnectorEvent::Inbound {
                line: line.clone(),
                from,
                kind,
                text,
                provider_id: m.info.id.to_string(),
            })
            .await?;
    }
    Ok(())
}
