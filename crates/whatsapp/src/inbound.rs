//! Inbound messages: committed to wagate before WhatsApp hears them acknowledged.
//!
//! whatsapp-rust calls the durability hook with each batch of decrypted messages before it
//! acks them; the hook applies one [`ConnectorEvent::Inbound`] per text message through the
//! sink (which stores it with its webhook event) and only then answers `Ok`, so a crash in
//! between means a redelivery, never a lost message. A redelivered message carries the same
//! WhatsApp id, which wagate deduplicates as the `provider_id`.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use wagate_app::connector::ConnectorEvent;
use wagate_domain::ids::LineId;
use whatsapp_rust::types::durability_hook::{InboundDurabilityHook, InboundMessage};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore::store::traits::ProtocolStore;
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

/// What wagate reports of one inbound message, before the sender is resolved: the
/// sender's JIDs and the text. `None` for what wagate does not report (groups, status
/// updates, our own messages echoed from the phone, messages without text).
pub fn reportable(info: &MessageInfo, text: Option<&str>) -> Option<(Jid, Option<Jid>, String)> {
    let source = &info.source;
    if source.is_group || source.is_from_me || !(source.chat.is_pn() || source.chat.is_lid()) {
        return None;
    }
    let text = text?.to_owned();
    Some((source.sender.clone(), source.sender_alt.clone(), text))
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
        let backend = inner.backend_of(&self.line);
        for m in batch {
            let base = m.message.get_base_message();
            let text = base.text_content().or_else(|| base.get_caption());
            let Some((sender, alt, text)) = reportable(&m.info, text) else {
                tracing::debug!(line = %self.line, id = %m.info.id, "inbound message not reported");
                continue;
            };
            let Some(from) = sender_number(&backend, &sender, alt.as_ref()).await? else {
                tracing::warn!(line = %self.line, id = %m.info.id, "inbound message from an unknown number");
                continue;
            };
            inner
                .deliver_durably(ConnectorEvent::Inbound {
                    line: self.line.clone(),
                    from,
                    text,
                    provider_id: m.info.id.to_string(),
                })
                .await?;
        }
        Ok(())
    }
}
