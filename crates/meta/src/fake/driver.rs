//! Posting Meta-shaped webhooks to a wagate server, signed like Meta signs them.

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use super::{digits, lock, random_id, Shared};
use crate::webhook::{
    self, MessageStatus, MetaConversation, MetaErrorItem, MetaPricing, Referral, TierUpdate,
};

/// Why the driver could not deliver a webhook.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The phone number ID was never given to [`FakeGraph::add_number`](super::FakeGraph::add_number),
    /// so the driver knows neither its WABA nor its display number.
    #[error("the fake has no phone number {0}: add it with FakeGraph::add_number")]
    UnknownNumber(String),
    /// The POST itself failed (connection refused, timeout, …).
    #[error("posting the webhook failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// What the driver posted and what the target answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The target's HTTP status.
    pub status: StatusCode,
    /// The message ID the delivery is about (a new `wamid.…` for an inbound message).
    pub id: Option<String>,
    /// The exact body posted, to post again (Meta redelivers) with [`Driver::post_raw`].
    pub body: String,
}

/// A status webhook to deliver with [`Driver::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    /// The business number that sent the message.
    pub phone_number_id: String,
    /// The message ID `send` returned.
    pub wamid: String,
    /// The recipient's WhatsApp ID.
    pub recipient: String,
    /// What happened.
    pub status: MessageStatus,
    /// When.
    pub at: Timestamp,
    /// Meta's `pricing` object, if this status carries it.
    pub pricing: Option<MetaPricing>,
    /// Meta's `conversation` object, if this status carries it.
    pub conversation: Option<MetaConversation>,
    /// Why a `failed` message failed.
    pub errors: Vec<MetaErrorItem>,
}

impl StatusEvent {
    /// A status without pricing, conversation or errors.
    pub fn new(
        phone_number_id: &str,
        wamid: &str,
        recipient: &str,
        status: MessageStatus,
        at: Timestamp,
    ) -> Self {
        StatusEvent {
            phone_number_id: phone_number_id.to_owned(),
            wamid: wamid.to_owned(),
            recipient: recipient.to_owned(),
            status,
            at,
            pricing: None,
            conversation: None,
            errors: Vec::new(),
        }
    }

    /// With Meta's `pricing` object.
    pub fn with_pricing(mut self, pricing: MetaPricing) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// With Meta's `conversation` object.
    pub fn with_conversation(mut self, conversation: MetaConversation) -> Self {
        self.conversation = Some(conversation);
        self
    }

    /// With one more entry in `errors`.
    pub fn with_error(mut self, error: MetaErrorItem) -> Self {
        self.errors.push(error);
        self
    }
}

/// Delivers webhooks to one target URL, signed with one app secret.
#[derive(Clone)]
pub struct Driver {
    state: Shared,
    http: reqwest::Client,
    target: String,
    app_secret: Vec<u8>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("target", &self.target)
            .field("app_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub(crate) fn new(
        state: Shared,
        http: reqwest::Client,
        target: &str,
        app_secret: &str,
    ) -> Self {
        Driver {
            state,
            http,
            target: target.to_owned(),
            app_secret: app_secret.as_bytes().to_vec(),
        }
    }

    /// Meta's verification request: `GET target?hub.mode=subscribe&hub.verify_token=…&
    /// hub.challenge=…`. Returns the status and body answered.
    pub async fn subscribe(
        &self,
        verify_token: &str,
        challenge: &str,
    ) -> Result<(StatusCode, String), DriverError> {
        let response = self
            .http
            .get(&self.target)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.challenge", challenge),
                ("hub.verify_token", verify_token),
            ])
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.text().await?))
    }

    /// A WhatsApp user `from` writes `text` to the business number at `at` (from an ad when
    /// `referral` is given). Opens the user's customer service window in the fake.
    pub async fn inbound(
        &self,
        phone_number_id: &str,
        from: &str,
        text: &str,
        at: Timestamp,
        referral: Option<Referral>,
    ) -> Result<Posted, DriverError> {
        let (waba_id, display) = self.number(phone_number_id)?;
        let from = digits(from);
        let id = format!(
            "wamid.{}",
            random_id(48, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        );
        let mut message = json!({
            "from": from,
            "id": id,
            "timestamp": at.as_second().to_string(),
            "type": "text",
            "text": {"body": text},
        });
        if let Some(referral) = referral {
            message["referral"] = json!(referral);
        }
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": format!("User {from}")}, "wa_id": from}],
            "messages": [message],
        });
        // Meta opens the window when the user writes, whatever the webhook's fate.
        lock(&self.state)
            .last_inbound
            .insert((phone_number_id.to_owned(), from), at);
        self.post_change(&waba_id, None, "messages", value, Some(id))
            .await
    }

    /// A status webhook about a message sent from `event.phone_number_id`.
    pub async fn status(&self, event: &StatusEvent) -> Result<Posted, DriverError> {
        let (waba_id, display) = self.number(&event.phone_number_id)?;
        let mut status = Map::new();
        status.insert("id".into(), json!(event.wamid));
        status.insert("status".into(), json!(event.status.as_str()));
        status.insert("timestamp".into(), json!(event.at.as_second().to_string()));
        status.insert("recipient_id".into(), json!(digits(&event.recipient)));
        let callback = lock(&self.state)
            .sent
            .iter()
            .find(|m| m.wamid == event.wamid)
            .and_then(|m| m.callback_data.clone());
        if let Some(callback) = callback {
            status.insert("biz_opaque_callback_data".into(), json!(callback));
        }
        if let Some(c) = &event.conversation {
            let mut conversation = Map::new();
            conversation.insert("id".into(), json!(c.id));
            if let Some(expires) = c.expires_at {
                conversation.insert(
                    "expiration_timestamp".into(),
                    json!(expires.as_second().to_string()),
                );
            }
            if let Some(origin) = &c.origin {
                conversation.insert("origin".into(), json!({ "type": origin }));
            }
            status.insert("conversation".into(), Value::Object(conversation));
        }
        if let Some(pricing) = &event.pricing {
            status.insert("pricing".into(), json!(pricing));
        }
        if !event.errors.is_empty() {
            let errors: Vec<Value> = event
                .errors
                .iter()
                .map(|e| {
                    let mut item = json!({
                        "code": e.code,
                        "title": e.title,
                        "message": e.message.clone().unwrap_or_else(|| e.title.clone()),
                        "href": "/documentation/business-messaging/whatsapp/support/error-codes",
                    });
                    if let Some(details) = &e.details {
                        item["error_data"] = json!({ "details": details });
                    }
                    item
                })
                .collect();
            status.insert("errors".into(), Value::Array(errors));
        }
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display, "phone_number_id": event.phone_number_id},
            "statuses": [Value::Object(status)],
        });
        self.post_change(&waba_id, None, "messages", value, Some(event.wamid.clone()))
            .await
    }

    /// An `account_update` webhook with `event: VOLUME_BASED_PRICING_TIER_UPDATE`.
    pub async fn tier_update(&self, update: &TierUpdate) -> Result<Posted, DriverError> {
        let time = update.updated_at.as_second();
        let value = json!({
            "volume_tier_info": {
                "tier_update_time": time,
                "pricing_category": update.pricing_category,
                "tier": update.tier,
                "effective_month": update.effective_month,
                "region": update.region,
            },
            "event": "VOLUME_BASED_PRICING_TIER_UPDATE",
        });
        self.post_change(&update.waba_id, Some(time), "account_update", value, None)
            .await
    }

    /// Posts `body` as is, signed correctly, or with `signature_override` as the
    /// `X-Hub-Signature-256` value (to test that a bad signature is refused).
    pub async fn post_raw(
        &self,
        body: impl Into<Vec<u8>>,
        signature_override: Option<String>,
    ) -> Result<Posted, DriverError> {
        let body = body.into();
        let signature =
            signature_override.unwrap_or_else(|| webhook::sign(&self.app_secret, &body));
        self.post(body, Some(signature), None).await
    }

    /// Posts `body` without any `X-Hub-Signature-256` header.
    pub async fn post_unsigned(&self, body: impl Into<Vec<u8>>) -> Result<Posted, DriverError> {
        self.post(body.into(), None, None).await
    }

    fn number(&self, phone_number_id: &str) -> Result<(String, String), DriverError> {
        lock(&self.state)
            .numbers
            .get(phone_number_id)
            .map(|n| (n.waba_id.clone(), n.display_phone_number.clone()))
            .ok_or_else(|| DriverError::UnknownNumber(phone_number_id.to_owned()))
    }

    /// Wraps one change in Meta's envelope: `{"object", "entry": [{"id", "changes":
    /// [{"value", "field"}]}]}`, and posts it signed.
    async fn post_change(
        &self,
        waba_id: &str,
        time: Option<i64>,
        field: &str,
        value: Value,
        id: Option<String>,
    ) -> Result<Posted, DriverError> {
        let mut entry = json!({
            "id": waba_id,
            "changes": [{"value": value, "field": field}],
        });
        if let Some(time) = time {
            entry["time"] = json!(time);
        }
        let body = json!({"object": "whatsapp_business_account", "entry": [entry]})
            .to_string()
            .into_bytes();
        let signature = webhook::sign(&self.app_secret, &body);
        self.post(body, Some(signature), id).await
    }

    async fn post(
        &self,
        body: Vec<u8>,
        signature: Option<String>,
        id: Option<String>,
    ) -> Result<Posted, DriverError> {
        let text = String::from_utf8_lossy(&body).into_owned();
        let mut request = self
            .http
            .post(&self.target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, "facebookexternalua")
            .body(body);
        if let Some(signature) = signature {
            request = request.header(webhook::SIGNATURE_HEADER, signature);
        }
        let status = request.send().await?.status();
        Ok(Posted {
            status,
            id,
            body: text,
        })
    }
}
