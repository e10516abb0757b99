//! Meta's webhook payloads as they arrive, before they become
//! [`Notification`](super::Notification)s. Unknown fields are ignored (serde's default);
//! optional parts are `#[serde(default)]`.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::types::MetaPricing;

#[derive(Deserialize)]
pub(super) struct Entry {
    pub(super) id: String,
    #[serde(default)]
    pub(super) changes: Vec<Change>,
}

#[derive(Deserialize)]
pub(super) struct Change {
    pub(super) field: String,
    #[serde(default)]
    pub(super) value: Value,
}

#[derive(Deserialize)]
pub(super) struct MessagesValue {
    pub(super) metadata: Metadata,
    #[serde(default)]
    pub(super) contacts: Vec<Value>,
    #[serde(default)]
    pub(super) messages: Vec<Value>,
    #[serde(default)]
    pub(super) statuses: Vec<Value>,
}

#[derive(Deserialize)]
pub(super) struct Metadata {
    pub(super) display_phone_number: String,
    pub(super) phone_number_id: String,
}

#[derive(Deserialize)]
pub(super) struct WireContact {
    #[serde(default)]
    pub(super) wa_id: Option<String>,
    #[serde(default)]
    pub(super) profile: Option<WireProfile>,
}

#[derive(Deserialize)]
pub(super) struct WireProfile {
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireMessage {
    pub(super) from: String,
    pub(super) id: String,
    pub(super) timestamp: UnixTime,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) text: Option<Value>,
    #[serde(default)]
    pub(super) referral: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireStatus {
    pub(super) id: String,
    pub(super) status: String,
    pub(super) timestamp: UnixTime,
    pub(super) recipient_id: String,
    #[serde(default)]
    pub(super) conversation: Option<Value>,
    #[serde(default)]
    pub(super) pricing: Option<Value>,
    #[serde(default)]
    pub(super) errors: Vec<Value>,
    #[serde(default)]
    pub(super) biz_opaque_callback_data: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WirePricing {
    #[serde(default)]
    pub(super) billable: Option<bool>,
    pub(super) pricing_model: String,
    pub(super) category: String,
    #[serde(default, rename = "type")]
    pub(super) kind: Option<String>,
}

impl WirePricing {
    pub(super) fn into_pricing(self) -> MetaPricing {
        let billable = self
            .billable
            .unwrap_or(self.kind.as_deref() == Some("regular"));
        MetaPricing {
            billable,
            pricing_model: self.pricing_model,
            category: self.category,
            kind: self.kind,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct WireConversation {
    pub(super) id: String,
    #[serde(default)]
    pub(super) expiration_timestamp: Option<UnixTime>,
    #[serde(default)]
    pub(super) origin: Option<WireOrigin>,
}

#[derive(Deserialize)]
pub(super) struct WireOrigin {
    #[serde(default, rename = "type")]
    pub(super) kind: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireErrorItem {
    pub(super) code: i64,
    #[serde(default)]
    pub(super) title: String,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) error_data: Option<WireErrorData>,
}

#[derive(Deserialize)]
pub(super) struct WireErrorData {
    #[serde(default)]
    pub(super) details: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireTier {
    pub(super) tier_update_time: UnixTime,
    pub(super) pricing_category: String,
    pub(super) tier: String,
    pub(super) effective_month: String,
    pub(super) region: String,
}

/// Unix seconds, which Meta writes as a string (`"1750030073"`) in message webhooks and as a
/// number in `account_update`.
#[derive(Deserialize)]
#[serde(try_from = "Seconds")]
pub(super) struct UnixTime(pub(super) Timestamp);

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Seconds {
    Text(String),
    Number(i64),
}

impl TryFrom<Seconds> for UnixTime {
    type Error = String;

    fn try_from(s: Seconds) -> Result<Self, String> {
        let secs = match s {
            Seconds::Number(n) => n,
            Seconds::Text(t) => t
                .trim()
                .parse()
                .map_err(|_| format!("not unix seconds: {t:?}"))?,
        };
        Timestamp::from_second(secs)
            .map(UnixTime)
            .map_err(|e| e.to_string())
    }
}
