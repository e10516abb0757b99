//! The notifications a webhook delivery carries, as wagate uses them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One thing Meta told us, flattened out of `entry[].changes[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A WhatsApp user wrote to a business number.
    Message(InboundMessage),
    /// A message we sent was sent, delivered, read or failed.
    Status(StatusUpdate),
    /// The business portfolio reached a new volume pricing tier (`account_update` with
    /// `event: VOLUME_BASED_PRICING_TIER_UPDATE`).
    TierUpdate(TierUpdate),
}

/// An inbound message (`value.messages[]` of the `messages` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The WhatsApp Business Account ID (`entry[].id`).
    pub waba_id: String,
    /// The business number it was sent to (`metadata.phone_number_id`).
    pub phone_number_id: String,
    /// That number as displayed (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// The sender's WhatsApp ID (their phone number, digits only).
    pub from: String,
    /// The sender's profile name, from `value.contacts[]`, when Meta sends it.
    pub profile_name: Option<String>,
    /// The message ID (`wamid.…`), unique per message: the deduplication key.
    pub id: String,
    /// When the user sent it: this opens (or extends) the customer service window.
    pub timestamp: Timestamp,
    /// Meta's message `type`: `text`, `image`, `reaction`, `button`, `unsupported`, ….
    pub kind: String,
    /// `text.body`, for `text` messages.
    pub text: Option<String>,
    /// The ad or post the user came from (Click to WhatsApp), when there is one.
    pub referral: Option<Referral>,
}

/// Where a user came from when they tapped a Click to WhatsApp ad or post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// The ad's or post's URL.
    pub source_url: String,
    /// The ad's or post's ID.
    pub source_id: String,
    /// `ad` or `post`.
    pub source_type: String,
    /// The ad's headline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The ad's body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The Click to WhatsApp click ID, for conversion reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
}

/// A message status (`value.statuses[]` of the `messages` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The WhatsApp Business Account ID (`entry[].id`).
    pub waba_id: String,
    /// The business number that sent the message.
    pub phone_number_id: String,
    /// The message ID (`wamid.…`) `send` returned.
    pub id: String,
    /// What happened.
    pub status: MessageStatus,
    /// When it happened.
    pub timestamp: Timestamp,
    /// The recipient's WhatsApp ID (or a group ID for group messages).
    pub recipient_id: String,
    /// The `biz_opaque_callback_data` the message was sent with, echoed by Meta.
    pub callback_data: Option<String>,
    /// Meta's pricing of the message; on at most one status per message (usually `sent` or
    /// `delivered`).
    pub pricing: Option<MetaPricing>,
    /// The conversation, on API versions up to v23.0 (v24.0+ only for free entry point
    /// windows).
    pub conversation: Option<MetaConversation>,
    /// Why a `failed` message failed.
    pub errors: Vec<MetaErrorItem>,
}

/// A message status wagate tracks. Meta's other statuses (`played` for voice messages) are
/// skipped by [`parse`](super::parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Sent from Meta's servers (one check mark).
    Sent,
    /// Delivered to the user's device (two check marks); the moment wagate prices a message.
    Delivered,
    /// Displayed in the user's chat (two blue check marks). May come without `delivered`.
    Read,
    /// Could not be sent or delivered; see [`StatusUpdate::errors`].
    Failed,
}

impl MessageStatus {
    /// Meta's spelling: `sent`, `delivered`, `read`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
        }
    }

    /// Reads Meta's spelling; `None` for statuses wagate does not track.
    pub fn from_meta(s: &str) -> Option<Self> {
        Some(match s {
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            _ => return None,
        })
    }
}

/// Meta's `pricing` object of a status, as Meta wrote it (kept beside wagate's own price for
/// reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaPricing {
    /// Whether Meta charges the message. Meta will drop `billable` in a future version; when
    /// it is absent this is `type == "regular"`, as Meta advises.
    pub billable: bool,
    /// `PMP` (per-message pricing) or, before July 2025, `CBP`.
    pub pricing_model: String,
    /// The rate applied: `marketing`, `utility`, `authentication`,
    /// `authentication_international`, `marketing_lite`, `service`, `referral_conversion`, ….
    pub category: String,
    /// Meta's `type`: `regular`, `free_customer_service` or `free_entry_point`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Meta's `conversation` object of a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaConversation {
    /// The conversation (or, for v23.0 and lower, per-message) ID.
    pub id: String,
    /// `origin.type`: the conversation category (`marketing`, `service`, …), when present.
    pub origin: Option<String>,
    /// `expiration_timestamp`, only on `sent` statuses.
    pub expires_at: Option<Timestamp>,
}

/// One entry of a status's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaErrorItem {
    /// Meta's error code, e.g. `131049`.
    pub code: i64,
    /// The code's title.
    pub title: String,
    /// The message (Meta sets it to the title).
    pub message: Option<String>,
    /// `error_data.details`, Meta's explanation.
    pub details: Option<String>,
}

/// A volume pricing tier change (`account_update`, `VOLUME_BASED_PRICING_TIER_UPDATE`).
///
/// Meta may send several webhooks for one tier switch; the one with the earliest
/// `updated_at` is the official one (Meta's pricing documentation, "Tiering webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierUpdate {
    /// The WhatsApp Business Account ID (`entry[].id`).
    pub waba_id: String,
    /// The market the tier applies to, as Meta writes it (e.g. `India`).
    pub region: String,
    /// The template category, e.g. `UTILITY`.
    pub pricing_category: String,
    /// The tier's bounds, `lower:upper` in messages per month, e.g. `25000001:50000000`.
    pub tier: String,
    /// The month the tier's rate applies in, `YYYY-MM`.
    pub effective_month: String,
    /// When the account reached the tier (`tier_update_time`).
    pub updated_at: Timestamp,
}
