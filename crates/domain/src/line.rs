//! Line rules that need no I/O (PRODUCT.md §3): statuses, what a create request may carry,
//! phone numbers and message text, reconnect backoff and the per-line daily limit.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a line reaches WhatsApp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A WhatsApp account linked as a device (QR or pairing code), on the flat plans.
    #[default]
    Web,
    /// An official number on Meta's Cloud API: ready at once, billed Meta's charges.
    Cloud,
}

impl LineKind {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Web => "web",
            LineKind::Cloud => "cloud",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "web" => Some(LineKind::Web),
            "cloud" => Some(LineKind::Cloud),
            _ => None,
        }
    }
}

/// Where a line is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Created; waiting for the end customer to scan the QR.
    Pending,
    /// Linked and connected.
    Ready,
    /// Linked, connection dropped; healing on its own with backoff. Sends are queued.
    Reconnecting,
    /// The phone unlinked wagate; the same connect page shows a new QR.
    LoggedOut,
    /// WhatsApp refuses the account or this client (see [`BlockedReason`]); queued messages
    /// failed, sends are refused until the connector reports the block lifted.
    Blocked,
    /// Terminal: closed by the business or for non-payment.
    Released,
}

impl LineStatus {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Pending => "pending",
            LineStatus::Ready => "ready",
            LineStatus::Reconnecting => "reconnecting",
            LineStatus::LoggedOut => "logged_out",
            LineStatus::Blocked => "blocked",
            LineStatus::Released => "released",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => LineStatus::Pending,
            "ready" => LineStatus::Ready,
            "reconnecting" => LineStatus::Reconnecting,
            "logged_out" => LineStatus::LoggedOut,
            "blocked" => LineStatus::Blocked,
            "released" => LineStatus::Released,
            _ => return None,
        })
    }

    /// Whether a QR can be scanned now: before the first link and after a logout.
    pub fn awaits_scan(self) -> bool {
        matches!(self, LineStatus::Pending | LineStatus::LoggedOut)
    }

    /// Whether the line has been linked and not lost its link since.
    pub fn is_linked(self) -> bool {
        matches!(self, LineStatus::Ready | LineStatus::Reconnecting)
    }
}

/// Why WhatsApp blocked a line (PRODUCT.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockedReason {
    /// A temporary ban: WhatsApp lifts it after a while, and the line comes back by itself.
    TemporarilyBanned,
    /// The account is banned: only WhatsApp's appeal process can bring the number back.
    Banned,
    /// WhatsApp refuses this client version: the operator must upgrade wagate.
    ClientOutdated,
}

impl BlockedReason {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedReason::TemporarilyBanned => "temporarily_banned",
            BlockedReason::Banned => "banned",
            BlockedReason::ClientOutdated => "client_outdated",
        }
    }
}

/// Where a line is in its billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    /// Never linked: nothing is owed and nothing will be until the first scan.
    None,
    /// The account's first line, in its free week.
    Trialing,
    /// The running period is paid.
    Active,
    /// A charge failed; retried daily until the grace end, then the line is released.
    PastDue,
    /// Released: never charged again.
    Canceled,
}

impl BillingStatus {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingStatus::None => "none",
            BillingStatus::Trialing => "trialing",
            BillingStatus::Active => "active",
            BillingStatus::PastDue => "past_due",
            BillingStatus::Canceled => "canceled",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        Some(match s {
            "none" => BillingStatus::None,
            "trialing" => BillingStatus::Trialing,
            "active" => BillingStatus::Active,
            "past_due" => BillingStatus::PastDue,
            "canceled" => BillingStatus::Canceled,
            _ => return None,
        })
    }
}

/// Why a line was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// `DELETE /wa/lines/{id}`.
    Requested,
    /// Unpaid at the end of grace.
    PaymentFailed,
    /// A days-mode line left unextended five days past its `paid_until`.
    Unpaid,
}

impl ReleaseReason {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::Requested => "requested",
            ReleaseReason::PaymentFailed => "payment_failed",
            ReleaseReason::Unpaid => "unpaid",
        }
    }
}

/// Largest number of metadata keys on a line.
pub const METADATA_MAX_KEYS: usize = 20;
/// Longest metadata key, in characters.
pub const METADATA_MAX_KEY_CHARS: usize = 40;
/// Longest metadata value, in characters.
pub const METADATA_MAX_VALUE_CHARS: usize = 500;
/// Longest label, in characters.
pub const LABEL_MAX_CHARS: usize = 200;
/// Longest outbound text, in characters (WhatsApp's own limit).
pub const TEXT_MAX_CHARS: usize = 4096;
/// Fewest digits of an E.164 number, country code included (no country's are shorter).
pub const E164_MIN_DIGITS: usize = 8;
/// Most digits of an E.164 number, country code included (ITU-T E.164's maximum).
pub const E164_MAX_DIGITS: usize = 15;

/// A field of a request that breaks a rule: the parameter and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct FieldError {
    /// The offending parameter (`metadata.customer`, `to`).
    pub param: String,
    /// What is wrong, for a human.
    pub message: String,
}

fn field(param: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        param: param.into(),
        message: message.into(),
    }
}

/// Checks a line's metadata: at most 20 keys of 1–40 characters, values of at most 500.
pub fn validate_metadata(m: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if m.len() > METADATA_MAX_KEYS {
        return Err(field(
            "metadata",
            format!("at most {METADATA_MAX_KEYS} keys are allowed"),
        ));
    }
    for (k, v) in m {
        let n = k.chars().count();
        if n == 0 || n > METADATA_MAX_KEY_CHARS {
            return Err(field(
                "metadata",
                format!("keys must be 1 to {METADATA_MAX_KEY_CHARS} characters"),
            ));
        }
        if v.chars().count() > METADATA_MAX_VALUE_CHARS {
            return Err(field(
                format!("metadata.{k}"),
                format!("values must be at most {METADATA_MAX_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// Checks a line's label: at most 200 characters.
pub fn validate_label(label: &str) -> Result<(), FieldError> {
    if label.chars().count() > LABEL_MAX_CHARS {
        return Err(field(
            "label",
            format!("must be at most {LABEL_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks an E.164 number: `+`, a non-zero first digit, 8 to 15 digits in all (ITU-T E.164
/// allows up to 15; no country's numbers are shorter than 8 with the country code).
pub fn validate_e164(param: &str, number: &str) -> Result<(), FieldError> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let ok = (E164_MIN_DIGITS..=E164_MAX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(field(
            param,
            "must be an E.164 phone number: + then 8 to 15 digits, e.g. +447700900123",
        ))
    }
}

/// Checks an outbound text: not blank, at most 4096 characters.
pub fn validate_text(text: &str) -> Result<(), FieldError> {
    if text.trim().is_empty() {
        return Err(field("text", "must not be empty"));
    }
    if text.chars().count() > TEXT_MAX_CHARS {
        return Err(field(
            "text",
            format!("must be at most {TEXT_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The wait before reconnect attempt `attempt` (0-based): 1 s, 2 s, 4 s … at most 60 s.
pub fn reconnect_delay(attempt: u32) -> SignedDuration {
    let secs = 1i64.checked_shl(attempt.min(6)).unwrap_or(64).min(60);
    SignedDuration::from_secs(secs)
}

/// A drop shorter than this is healed silently; one that lasts longer is reported with
/// `line.disconnected` (and its healing with `line.reconnected`).
pub const DISCONNECT_NOTICE_AFTER: SignedDuration = SignedDuration::from_secs(60);

/// How long each QR code is valid before the connector rotates it (WhatsApp rotates its
/// pairing code about every 20 s).
pub const QR_ROTATE_EVERY: SignedDuration = SignedDuration::from_secs(20);

/// The outbound daily limits of a line (server configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyLimits {
    /// Outbound messages per line per UTC day once the line is established.
    pub daily: u32,
    /// The lower limit during the first days after the line's first `ready`.
    pub new_line_daily: u32,
    /// How long a line counts as new.
    pub new_line_days: u32,
}

impl Default for DailyLimits {
    /// 1000 a day, 250 during the first 3 days.
    fn default() -> Self {
        DailyLimits {
            daily: 1000,
            new_line_daily: 250,
            new_line_days: 3,
        }
    }
}

impl DailyLimits {
    /// The limit that applies at `now` to a line first ready at `ready_at`.
    pub fn at(&self, ready_at: Option<Timestamp>, now: Timestamp) -> u32 {
        let young = SignedDuration::from_hours(24 * i64::from(self.new_line_days));
        match ready_at {
            Some(r) if now.duration_since(r) < young => self.new_line_daily,
            _ => self.daily,
        }
    }
}

/// The UTC day number of `t` (days since 1970-01-01): the daily counter's key.
pub fn utc_day(t: Timestamp) -> i64 {
    t.as_second().div_euclid(86_400)
}

/// The next UTC midnight after `t`: when the daily counter resets.
pub fn next_utc_midnight(t: Timestamp) -> Timestamp {
    Timestamp::from_second((utc_day(t) + 1) * 86_400).unwrap_or(Timestamp::MAX)
}

/// Status of a message. Outbound: `queued → sent → delivered → read`, or `failed`.
/// Inbound messages are `received`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Accepted; waiting for the connection.
    Queued,
    /// Handed to WhatsApp.
    Sent,
    /// On the recipient's phone.
    Delivered,
    /// Opened by the recipient.
    Read,
    /// Could not be sent.
    Failed,
    /// An inbound message.
    Received,
}

impl MessageStatus {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Received => "received",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MessageStatus::Queued,
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            "received" => MessageStatus::Received,
            _ => return None,
        })
    }

    /// Whether a report of `next` moves an outbound message forward. Reports can arrive late
    /// or twice (a `delivered` after `read`); the status never goes back.
    pub fn advances_to(self, next: MessageStatus) -> bool {
        use MessageStatus::*;
        matches!(
            (self, next),
            (Queued, Sent | Delivered | Read | Failed)
                | (Sent, Delivered | Read | Failed)
                | (Delivered, Read)
        )
    }
}

/// What a message carries. Outbound messages are `text`; inbound ones are whatever the
/// sender sent, with a caption (if any) as the message's `text`. Media content itself is not
/// downloaded yet: the type says what arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Plain text.
    #[default]
    Text,
    /// A photo (caption as `text`).
    Image,
    /// A video or a round video note (caption as `text`).
    Video,
    /// An audio file.
    Audio,
    /// A voice note recorded in the chat.
    Voice,
    /// A file (caption as `text`).
    Document,
    /// A sticker.
    Sticker,
    /// A shared or live location (its name or address as `text`).
    Location,
    /// One or more contact cards (the names as `text`).
    Contacts,
    /// An approved template sent by a Cloud API line (its name as `text`); outbound only.
    Template,
}

impl MessageKind {
    /// Every kind, in API order: the inbound kinds, then `template`.
    pub const ALL: [MessageKind; 10] = {
        let mut all = [MessageKind::Template; 10];
        let mut i = 0;
        while i < Self::INBOUND.len() {
            all[i] = Self::INBOUND[i];
            i += 1;
        }
        all
    };

    /// The kinds a message from a WhatsApp user can have.
    pub const INBOUND: [MessageKind; 9] = [
        MessageKind::Text,
        MessageKind::Image,
        MessageKind::Video,
        MessageKind::Audio,
        MessageKind::Voice,
        MessageKind::Document,
        MessageKind::Sticker,
        MessageKind::Location,
        MessageKind::Contacts,
    ];

    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::Video => "video",
            MessageKind::Audio => "audio",
            MessageKind::Voice => "voice",
            MessageKind::Document => "document",
            MessageKind::Sticker => "sticker",
            MessageKind::Location => "location",
            MessageKind::Contacts => "contacts",
            MessageKind::Template => "template",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn message_kinds_round_trip() {
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::from_db(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(MessageKind::from_db("gif"), None);
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<i64> = (0..9).map(|a| reconnect_delay(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(reconnect_delay(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn e164_numbers() {
        for ok in ["+447700900123", "+14155550100", "+4930123456"] {
            assert!(validate_e164("to", ok).is_ok(), "{ok}");
        }
        for bad in [
            "447700900123",
            "+0447700900",
            "+44 7700 900123",
            "+1234567",
            "+1234567890123456",
            "",
            "+",
            "+44770090012a",
        ] {
            assert_eq!(validate_e164("to", bad).unwrap_err().param, "to", "{bad}");
        }
    }

    #[test]
    fn text_limits() {
        assert!(validate_text("hi").is_ok());
        assert!(validate_text("  ").is_err());
        assert!(validate_text(&"é".repeat(4096)).is_ok());
        assert!(validate_text(&"a".repeat(4097)).is_err());
    }

    #[test]
    fn metadata_limits() {
        let mut m: BTreeMap<String, String> =
            (0..20).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(validate_metadata(&m).is_ok());
        m.insert("k20".into(), "v".into());
        assert!(validate_metadata(&m).is_err());
        let long: BTreeMap<String, String> = [("customer".into(), "x".repeat(501))].into();
        assert_eq!(
            validate_metadata(&long).unwrap_err().param,
            "metadata.customer"
        );
        let empty_key: BTreeMap<String, String> = [(String::new(), "x".into())].into();
        assert!(validate_metadata(&empty_key).is_err());
    }

    #[test]
    fn daily_limit_is_lower_for_three_days_after_ready() {
        let l = DailyLimits::default();
        let ready = t("2026-01-01T10:00:00Z");
        assert_eq!(l.at(None, ready), 1000);
        assert_eq!(l.at(Some(ready), t("2026-01-04T09:59:59Z")), 250);
        assert_eq!(l.at(Some(ready), t("2026-01-04T10:00:00Z")), 1000);
    }

    #[test]
    fn counters_reset_at_utc_midnight() {
        let now = t("2026-01-01T23:59:30Z");
        assert_eq!(next_utc_midnight(now), t("2026-01-02T00:00:00Z"));
        assert_eq!(utc_day(now) + 1, utc_day(t("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn message_status_never_goes_back() {
        use MessageStatus::*;
        assert!(Queued.advances_to(Sent));
        assert!(Sent.advances_to(Read));
        assert!(!Read.advances_to(Delivered));
        assert!(!Delivered.advances_to(Delivered));
        assert!(!Failed.advances_to(Sent));
    }
}
