//! The call object of the API and of `call.*` webhooks.

use serde_json::{json, Value};
use wagate_domain::call::CallStatus;
use wagate_domain::time::rfc3339;
use wagate_store::CallRecord;

/// The call object. `media_url` is the call's audio socket while the call is not over (its
/// token is good for that call only), null once it ended.
pub fn call_json(c: &CallRecord, public_url: &str) -> Value {
    let time = |t: Option<jiff::Timestamp>| t.map(rfc3339);
    let media_url = (c.status != CallStatus::Ended).then(|| media_url(c, public_url));
    json!({
        "id": c.id,
        "object": "call",
        "line_id": c.line_id,
        "direction": c.direction.as_str(),
        "from": c.from,
        "to": c.to,
        "status": c.status.as_str(),
        "created_at": rfc3339(c.created_at),
        "ringing_at": time(c.ringing_at),
        "answered_at": time(c.answered_at),
        "ended_at": time(c.ended_at),
        "duration_seconds": c.times().duration_seconds(),
        "end_reason": c.end_reason.map(|r| r.as_str()),
        "media_url": media_url,
    })
}

/// `ws(s)://…/api/v1/calls/{id}/media?token=…` under the public base URL.
fn media_url(c: &CallRecord, public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/api/v1/calls/{}/media?token={}", c.id, c.media_token)
}
