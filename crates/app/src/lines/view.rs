//! The line and message objects as the API and webhook events show them.

use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_domain::line::{next_utc_midnight, utc_day, DailyLimits, LineStatus};
use wagate_domain::time::rfc3339;
use wagate_store::{LineRecord, MessageRecord};

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// The line object of `GET /wa/lines/{id}` (and of every `line.*` event) at `now`.
pub fn line_json(l: &LineRecord, public_url: &str, limits: &DailyLimits, now: Timestamp) -> Value {
    let today = utc_day(now);
    let sent_today = if l.sent_day == today { l.sent_today } else { 0 };
    json!({
        "id": l.id,
        "object": "line",
        "kind": l.kind.as_str(),
        "status": l.status.as_str(),
        "calling_enabled": l.calling_enabled,
        "allow_calling": l.allow_calling,
        "plan": l.plan.map(|p| p.as_str()),
        "price": l.price.map(|p| p.to_string()),
        "currency": "USD",
        "phone_number": l.phone_number,
        "connect_url": l.connect_token.as_ref().map(|t| format!("{}/connect/{t}", public_url.trim_end_matches('/'))),
        "billing_status": l.billing_status.as_str(),
        "trial_ends_at": time(l.trial_ends_at),
        "current_period_start": time(l.current_period_start),
        "current_period_end": time(l.current_period_end),
        "grace_ends_at": time(l.grace_ends_at),
        "label": l.label,
        "metadata": l.metadata,
        "limits": {
            "daily_outbound": limits.at(l.ready_at, now),
            "sent_today": sent_today,
            "resets_at": rfc3339(next_utc_midnight(now)),
        },
        "created_at": rfc3339(l.created_at),
        "ready_at": time(l.ready_at),
        "released_at": time(l.released_at),
        "release_reason": l.release_reason,
        "blocked_reason": l.blocked_reason,
        // Filled in for calling lines where calling minutes are read (the API's line object).
        "fair_use": null,
        // Filled in for lines of accounts billed in days (the API's line object).
        "paid_until": null,
        "days_returned": null,
        "status_detail": status_detail(l),
    })
}

/// A sentence on the line's status for people (a dashboard, a support agent): why it is
/// not working, and what happens next. Null when there is nothing to add to `status`.
pub fn status_detail(l: &LineRecord) -> Option<String> {
    match l.status {
        LineStatus::Reconnecting => Some(match l.reconnect_attempt {
            0 => "The connection to WhatsApp dropped; reconnecting.".to_owned(),
            n => format!("The connection to WhatsApp dropped; reconnecting (attempt {}).", n + 1),
        }),
        LineStatus::LoggedOut => {
            Some("The phone unlinked this line; the connect page shows a new QR code.".to_owned())
        }
        LineStatus::Blocked => Some(
            match l.blocked_reason.as_deref() {
                Some("temporarily_banned") => {
                    "WhatsApp temporarily banned this account; the line comes back when the ban ends."
                }
                Some("banned") => "WhatsApp banned this account; release the line.",
                Some("client_outdated") => {
                    "WhatsApp refuses this wagate version; upgrade the server."
                }
                _ => "WhatsApp blocked this line.",
            }
            .to_owned(),
        ),
        LineStatus::Pending | LineStatus::Ready | LineStatus::Released => None,
    }
}

/// The message object of `GET /wa/lines/{id}/messages` and `message.*` events.
pub fn message_json(m: &MessageRecord) -> Value {
    json!({
        "id": m.id,
        "object": "message",
        "line_id": m.line_id,
        "direction": m.direction.as_str(),
        "from": m.from,
        "to": m.to,
        "text": m.text,
        "type": m.kind.as_str(),
        "status": m.status.as_str(),
        "error": m.error,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
    })
}
