//! What wagate sends to and reads from the Graph API, in Meta's wire shapes.

use serde::{Deserialize, Serialize};

/// A business phone number as `GET /{phone-number-id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PhoneNumber {
    /// The phone number ID (the one wagate was given).
    pub id: String,
    /// The number as WhatsApp users see it, e.g. `+1 555-555-5555`.
    pub display_phone_number: String,
    /// The business name Meta verified for the number, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `NA` (Meta adds values; kept as Meta writes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<String>,
}

/// A message to send with [`GraphClient::send`](super::GraphClient::send).
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A free-form text, which Meta only delivers inside the customer service window.
    Text {
        /// The WhatsApp user's phone number (digits, `+` allowed).
        to: String,
        /// The text, at most 4,096 characters.
        body: String,
    },
    /// An approved template, which may open a conversation at any time.
    Template {
        /// The WhatsApp user's phone number (digits, `+` allowed).
        to: String,
        /// The template's name.
        name: String,
        /// The template's language and locale code, e.g. `en_US`.
        language: String,
        /// Meta's `components` array (header, body and button parameters), passed through.
        components: Option<serde_json::Value>,
    },
}

impl Outbound {
    /// A text message to `to`.
    pub fn text(to: impl Into<String>, body: impl Into<String>) -> Self {
        Outbound::Text {
            to: to.into(),
            body: body.into(),
        }
    }

    /// A template message to `to`, without parameters.
    pub fn template(
        to: impl Into<String>,
        name: impl Into<String>,
        language: impl Into<String>,
    ) -> Self {
        Outbound::Template {
            to: to.into(),
            name: name.into(),
            language: language.into(),
            components: None,
        }
    }

    /// The same template with Meta's `components` (ignored for a text message).
    pub fn with_components(mut self, value: serde_json::Value) -> Self {
        if let Outbound::Template { components, .. } = &mut self {
            *components = Some(value);
        }
        self
    }

    /// The recipient.
    pub fn to(&self) -> &str {
        match self {
            Outbound::Text { to, .. } | Outbound::Template { to, .. } => to,
        }
    }

    /// The request body of `POST /{phone-number-id}/messages`, with Meta's
    /// `biz_opaque_callback_data` (echoed on the message's status webhooks) when given.
    pub(crate) fn wire<'a>(&'a self, callback_data: Option<&'a str>) -> WireSend<'a> {
        match self {
            Outbound::Text { to, body } => WireSend {
                messaging_product: "whatsapp",
                recipient_type: "individual",
                to,
                kind: "text",
                text: Some(WireText { body }),
                template: None,
                biz_opaque_callback_data: callback_data,
            },
            Outbound::Template {
                to,
                name,
                language,
                components,
            } => WireSend {
                messaging_product: "whatsapp",
                recipient_type: "individual",
                to,
                kind: "template",
                text: None,
                template: Some(WireTemplate {
                    name,
                    language: WireLanguage { code: language },
                    components: components.as_ref(),
                }),
                biz_opaque_callback_data: callback_data,
            },
        }
    }
}

/// What Meta answered to an accepted send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message ID (`wamid.…`) that later status webhooks refer to.
    pub id: String,
    /// The recipient's WhatsApp ID as Meta normalised it, when Meta says.
    pub wa_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireSend<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<WireText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<WireTemplate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireText<'a> {
    body: &'a str,
}

#[derive(Debug, Serialize)]
struct WireTemplate<'a> {
    name: &'a str,
    language: WireLanguage<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<&'a serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct WireLanguage<'a> {
    code: &'a str,
}

/// `{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],"messages":[{"id"}]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireSent {
    #[serde(default)]
    contacts: Vec<WireContact>,
    #[serde(default)]
    messages: Vec<WireMessageId>,
}

#[derive(Debug, Deserialize)]
struct WireContact {
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessageId {
    id: String,
}

impl WireSent {
    /// The first (and, for one recipient, only) message ID; `None` if Meta sent none.
    pub(crate) fn into_sent(self) -> Option<Sent> {
        let id = self.messages.into_iter().next()?.id;
        let wa_id = self.contacts.into_iter().next().and_then(|c| c.wa_id);
        Some(Sent { id, wa_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_text_is_sent_in_the_documented_shape() {
        let wire = serde_json::to_value(Outbound::text("+16505551234", "hi").wire(None)).unwrap();
        assert_eq!(
            wire,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "+16505551234", "type": "text", "text": {"body": "hi"}})
        );
    }

    #[test]
    fn a_template_carries_its_language_and_components() {
        let components = json!([{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]);
        let msg = Outbound::template("16505551234", "order_update", "en_US")
            .with_components(components.clone());
        let wire = serde_json::to_value(msg.wire(Some("msg_1"))).unwrap();
        assert_eq!(
            wire,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "16505551234", "type": "template",
                   "template": {"name": "order_update", "language": {"code": "en_US"},
                                "components": components},
                   "biz_opaque_callback_data": "msg_1"})
        );
    }

    #[test]
    fn the_documented_send_answer_gives_the_wamid() {
        let answer: WireSent = serde_json::from_value(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "48XXXXXXXXX", "wa_id": "48XXXXXXXXX"}],
            "messages": [{"id": "wamid.gBGGSFcCNEOPAgkO_KJ55r4w_ww"}]
        }))
        .unwrap();
        assert_eq!(
            answer.into_sent(),
            Some(Sent {
                id: "wamid.gBGGSFcCNEOPAgkO_KJ55r4w_ww".into(),
                wa_id: Some("48XXXXXXXXX".into())
            })
        );
    }
}
