//! Flattening a webhook delivery into [`Notification`]s.
//!
//! Meta adds fields, message types and webhook fields over time, so anything unknown is
//! ignored. An item that lacks what its documented shape requires (a message without `id`, a
//! status with an unreadable `timestamp`) is skipped with a warning instead of failing the
//! delivery: a delivery that never parses would be redelivered by Meta for days and would
//! hold back the good items with it.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::types::{
    InboundMessage, MessageStatus, MetaConversation, MetaErrorItem, Notification, Referral,
    StatusUpdate, TierUpdate,
};
use super::wire::{
    Entry, MessagesValue, WireContact, WireConversation, WireErrorItem, WireMessage, WirePricing,
    WireStatus, WireTier,
};

/// Why a delivery could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("the webhook body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON but not Meta's envelope (`{"object", "entry": [...]}`).
    #[error("the webhook body is not a Meta webhook envelope: {0}")]
    Shape(&'static str),
}

const WABA_OBJECT: &str = "whatsapp_business_account";
const TIER_EVENT: &str = "VOLUME_BASED_PRICING_TIER_UPDATE";

/// Reads a webhook delivery (the raw `POST` body, once
/// [`verify_signature`](super::verify_signature) has accepted it) into the notifications
/// wagate uses, in delivery order.
///
/// A delivery for another object than `whatsapp_business_account` yields no notification.
pub fn parse(raw_body: &[u8]) -> Result<Vec<Notification>, ParseError> {
    let body: Value = serde_json::from_slice(raw_body)?;
    let object = body
        .get("object")
        .and_then(Value::as_str)
        .ok_or(ParseError::Shape("no \"object\""))?;
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(ParseError::Shape("no \"entry\" array"))?;
    if object != WABA_OBJECT {
        tracing::warn!(object, "ignoring a webhook for another object");
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in entries {
        let Some(entry) = item::<Entry>(entry, "entry") else {
            continue;
        };
        for change in entry.changes {
            match change.field.as_str() {
                "messages" => messages(&entry.id, change.value, &mut out),
                "account_update" => account_update(&entry.id, change.value, &mut out),
                other => tracing::debug!(field = other, "ignoring a webhook field"),
            }
        }
    }
    Ok(out)
}

/// Reads one item, or logs why it is skipped.
fn item<T: DeserializeOwned>(value: &Value, what: &'static str) -> Option<T> {
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(error) => {
            tracing::warn!(%error, what, "skipping a webhook item that does not match Meta's shape");
            None
        }
    }
}

fn messages(waba_id: &str, value: Value, out: &mut Vec<Notification>) {
    let Some(value) = item::<MessagesValue>(&value, "messages value") else {
        return;
    };
    let profile_name = |wa_id: &str| {
        value.contacts.iter().find_map(|c| {
            let c = WireContact::deserialize(c).ok()?;
            (c.wa_id.as_deref() == Some(wa_id))
                .then_some(c.profile?.name)
                .flatten()
        })
    };
    for m in &value.messages {
        let Some(m) = item::<WireMessage>(m, "message") else {
            continue;
        };
        let referral = m
            .referral
            .as_ref()
            .and_then(|r| item::<Referral>(r, "referral"));
        let text = m
            .text
            .as_ref()
            .and_then(|t| t.get("body"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        out.push(Notification::Message(InboundMessage {
            waba_id: waba_id.to_owned(),
            phone_number_id: value.metadata.phone_number_id.clone(),
            display_phone_number: value.metadata.display_phone_number.clone(),
            profile_name: profile_name(&m.from),
            from: m.from,
            id: m.id,
            timestamp: m.timestamp.0,
            kind: m.kind,
            text,
            referral,
        }));
    }
    for s in &value.statuses {
        let Some(s) = item::<WireStatus>(s, "status") else {
            continue;
        };
        let Some(status) = MessageStatus::from_meta(&s.status) else {
            tracing::debug!(status = %s.status, "ignoring a message status wagate does not track");
            continue;
        };
        out.push(Notification::Status(StatusUpdate {
            waba_id: waba_id.to_owned(),
            phone_number_id: value.metadata.phone_number_id.clone(),
            id: s.id,
            status,
            timestamp: s.timestamp.0,
            recipient_id: s.recipient_id,
            callback_data: s.biz_opaque_callback_data,
            pricing: s
                .pricing
                .as_ref()
                .and_then(|p| item::<WirePricing>(p, "pricing"))
                .map(WirePricing::into_pricing),
            conversation: s
                .conversation
                .as_ref()
                .and_then(|c| item::<WireConversation>(c, "conversation"))
                .map(|c| MetaConversation {
                    id: c.id,
                    origin: c.origin.and_then(|o| o.kind),
                    expires_at: c.expiration_timestamp.map(|t| t.0),
                }),
            errors: s
                .errors
                .iter()
                .filter_map(|e| item::<WireErrorItem>(e, "status error"))
                .map(|e| MetaErrorItem {
                    code: e.code,
                    title: e.title,
                    message: e.message,
                    details: e.error_data.and_then(|d| d.details),
                })
                .collect(),
        }));
    }
}

fn account_update(waba_id: &str, value: Value, out: &mut Vec<Notification>) {
    if value.get("event").and_then(Value::as_str) != Some(TIER_EVENT) {
        tracing::debug!(event = ?value.get("event"), "ignoring an account_update event");
        return;
    }
    let Some(info) = value
        .get("volume_tier_info")
        .and_then(|v| item::<WireTier>(v, "volume_tier_info"))
    else {
        return;
    };
    out.push(Notification::TierUpdate(TierUpdate {
        waba_id: waba_id.to_owned(),
        region: info.region,
        pricing_category: info.pricing_category,
        tier: info.tier,
        effective_month: info.effective_month,
        updated_at: info.tier_update_time.0,
    }));
}

#[cfg(test)]
mod tests {
    use super::super::types::MetaPricing;
    use super::*;
    use jiff::Timestamp;
    use serde_json::json;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn parse_value(v: Value) -> Vec<Notification> {
        parse(v.to_string().as_bytes()).unwrap()
    }

    /// The "Text Message" example of Meta's OpenAPI description (`/whatsapp/webhooks`).
    #[test]
    fn metas_text_message_example() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "419561257915477", "changes": [{"value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{"from": "16505551234",
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
              "timestamp": "1749416383", "type": "text",
              "text": {"body": "Does it come in another color?"}}]},
            "field": "messages"}]}]
        }));
        assert_eq!(
            got,
            vec![Notification::Message(InboundMessage {
                waba_id: "419561257915477".into(),
                phone_number_id: "106540352242922".into(),
                display_phone_number: "15550783881".into(),
                from: "16505551234".into(),
                profile_name: Some("Sheena Nelson".into()),
                id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".into(),
                timestamp: ts(1749416383),
                kind: "text".into(),
                text: Some("Does it come in another color?".into()),
                referral: None,
            })]
        );
    }

    /// The "Text Message from Click to WhatsApp Ad" example of Meta's OpenAPI description.
    #[test]
    fn metas_click_to_whatsapp_example_keeps_the_referral() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "102290129340398", "changes": [{"value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{
              "referral": {
                "source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120226305854810726",
                "source_type": "ad", "body": "Summer Succulents are here!",
                "headline": "Chat with us", "media_type": "image",
                "image_url": "https://scontent.xx.fbcdn.net/v/t45.1...",
                "ctwa_clid": "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0NiNhEgpGo0AHemvuSoifXaytfTzcchptiErTKCqTrJ5nW1h7IHYeYymGb5K5J5iTROpBhWAGaIAeUzHL50",
                "welcome_message": {"text": "Hi there! Let us know how we can help!"}},
              "from": "16505551234",
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA=",
              "timestamp": "1750275992",
              "text": {"body": "Hello! Can I get more info on this?"},
              "type": "text"}]},
            "field": "messages"}]}]
        }));
        let [Notification::Message(m)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(
            m.text.as_deref(),
            Some("Hello! Can I get more info on this?")
        );
        assert_eq!(
            m.referral,
            Some(Referral {
                source_url: "https://fb.me/3cr4Wqqkv".into(),
                source_id: "120226305854810726".into(),
                source_type: "ad".into(),
                headline: Some("Chat with us".into()),
                body: Some("Summer Succulents are here!".into()),
                ctwa_clid: Some("Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0NiNhEgpGo0AHemvuSoifXaytfTzcchptiErTKCqTrJ5nW1h7IHYeYymGb5K5J5iTROpBhWAGaIAeUzHL50".into()),
            })
        );
    }

    /// The first example of Meta's status messages webhook reference: a marketing message
    /// sent, with both `conversation` and `pricing`.
    #[test]
    fn metas_sent_status_example_with_conversation_and_pricing() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "102290129340398", "changes": [{"value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [{
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
              "status": "sent", "timestamp": "1750030073", "recipient_id": "16505551234",
              "conversation": {"id": "72b14d6bd5407799e66f64d1b338e567",
                               "expiration_timestamp": "1750116480",
                               "origin": {"type": "marketing"}},
              "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular",
                          "category": "marketing"}}]},
            "field": "messages"}]}]
        }));
        assert_eq!(
            got,
            vec![Notification::Status(StatusUpdate {
                waba_id: "102290129340398".into(),
                phone_number_id: "106540352242922".into(),
                id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=".into(),
                status: MessageStatus::Sent,
                timestamp: ts(1750030073),
                recipient_id: "16505551234".into(),
                callback_data: None,
                pricing: Some(MetaPricing {
                    billable: true,
                    pricing_model: "PMP".into(),
                    category: "marketing".into(),
                    kind: Some("regular".into()),
                }),
                conversation: Some(MetaConversation {
                    id: "72b14d6bd5407799e66f64d1b338e567".into(),
                    origin: Some("marketing".into()),
                    expires_at: Some(ts(1750116480)),
                }),
                errors: vec![],
            })]
        );
    }

    /// The "failed" example of Meta's status messages webhook reference.
    #[test]
    fn metas_failed_status_example_keeps_the_errors() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "102290129340398", "changes": [{"value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [{
              "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
              "status": "failed", "timestamp": "1751142888", "recipient_id": "16505551234",
              "errors": [{"code": 131049,
                "title": "This message was not delivered to maintain healthy ecosystem engagement.",
                "message": "This message was not delivered to maintain healthy ecosystem engagement.",
                "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},
                "href": "/documentation/business-messaging/whatsapp/support/error-codes"}]}]},
            "field": "messages"}]}]
        }));
        let [Notification::Status(s)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(s.status, MessageStatus::Failed);
        assert_eq!((s.pricing.clone(), s.conversation.clone()), (None, None));
        assert_eq!(
            s.errors,
            vec![MetaErrorItem {
                code: 131049,
                title: "This message was not delivered to maintain healthy ecosystem engagement.".into(),
                message: Some("This message was not delivered to maintain healthy ecosystem engagement.".into()),
                details: Some("In order to maintain a healthy ecosystem engagement, the message failed to be delivered.".into()),
            }]
        );
    }

    /// The example of Meta's pricing page, "Tiering webhooks".
    #[test]
    fn metas_tier_update_example() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "102290129340398", "time": 1743451903, "changes": [{"value": {
            "volume_tier_info": {"tier_update_time": 1743451903, "pricing_category": "UTILITY",
                                 "tier": "25000001:50000000", "effective_month": "2025-11",
                                 "region": "India"},
            "event": "VOLUME_BASED_PRICING_TIER_UPDATE"},
            "field": "account_update"}]}]
        }));
        assert_eq!(
            got,
            vec![Notification::TierUpdate(TierUpdate {
                waba_id: "102290129340398".into(),
                region: "India".into(),
                pricing_category: "UTILITY".into(),
                tier: "25000001:50000000".into(),
                effective_month: "2025-11".into(),
                updated_at: ts(1743451903),
            })]
        );
    }

    #[test]
    fn pricing_without_billable_is_billable_when_regular() {
        // Meta's "Free non-template messages" and "Webhooks" pricing objects, less `billable`.
        let status = |pricing: Value| {
            json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
              "field": "messages", "value": {"metadata": {"display_phone_number": "1", "phone_number_id": "2"},
              "statuses": [{"id": "wamid.A", "status": "delivered", "timestamp": "1750030073",
                            "recipient_id": "16505551234", "pricing": pricing}]}}]}]})
        };
        let pricing_of = |v| match parse_value(v).pop() {
            Some(Notification::Status(s)) => s.pricing.unwrap(),
            other => panic!("{other:?}"),
        };
        let free = pricing_of(status(
            json!({"pricing_model": "PMP", "type": "free_customer_service", "category": "service"}),
        ));
        assert!(!free.billable);
        let paid = pricing_of(status(
            json!({"pricing_model": "PMP", "type": "regular", "category": "utility"}),
        ));
        assert!(paid.billable);
    }

    #[test]
    fn unknown_fields_types_statuses_and_events_are_ignored() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "1", "time": 1, "brand_new": {"x": 1}, "changes": [
            {"field": "message_template_status_update", "value": {"event": "APPROVED"}},
            {"field": "account_update", "value": {"event": "PARTNER_ADDED"}},
            {"field": "messages", "value": {
              "messaging_product": "whatsapp", "new_top_level": true,
              "metadata": {"display_phone_number": "1", "phone_number_id": "2", "extra": 3},
              "messages": [{"from": "3", "id": "wamid.R", "timestamp": 1749419544, "type": "reaction",
                            "reaction": {"message_id": "wamid.X", "emoji": "👍"}, "new_field": [1]}],
              "statuses": [{"id": "wamid.V", "status": "played", "timestamp": "1", "recipient_id": "3"}]}}
          ]}]
        }));
        let [Notification::Message(m)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!((m.kind.as_str(), m.text.as_deref()), ("reaction", None));
        assert_eq!(m.timestamp, ts(1749419544));
        assert_eq!(m.profile_name, None);
    }

    #[test]
    fn a_malformed_item_is_skipped_and_the_rest_kept() {
        let got = parse_value(json!({
          "object": "whatsapp_business_account",
          "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "metadata": {"display_phone_number": "1", "phone_number_id": "2"},
            "messages": [
              {"from": "3", "timestamp": "1", "type": "text"},
              {"from": "3", "id": "wamid.bad-time", "timestamp": "yesterday", "type": "text"},
              {"from": "3", "id": "wamid.ok", "timestamp": "1750000000", "type": "text",
               "text": {"body": "hi"}, "referral": {"headline": "no source"}}
            ],
            "statuses": [{"id": "wamid.S", "status": "delivered", "timestamp": "1750000001",
                          "recipient_id": "3", "pricing": {"billable": "yes"}}]}}]}]
        }));
        assert_eq!(got.len(), 2, "{got:?}");
        let Notification::Message(m) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!((m.id.as_str(), m.referral.clone()), ("wamid.ok", None));
        let Notification::Status(s) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(
            (s.status, s.pricing.clone()),
            (MessageStatus::Delivered, None)
        );
    }

    #[test]
    fn what_is_not_a_webhook_is_an_error_and_other_objects_are_empty() {
        assert!(matches!(parse(b"not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[]"), Err(ParseError::Shape(_))));
        assert!(matches!(
            parse(br#"{"object":"whatsapp_business_account"}"#),
            Err(ParseError::Shape(_))
        ));
        assert!(
            parse(br#"{"object":"page","entry":[{"id":"1","changes":[]}]}"#)
                .unwrap()
                .is_empty()
        );
    }
}
