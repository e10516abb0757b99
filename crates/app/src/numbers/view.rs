//! The number object of the API and of `number.*` events.

use serde_json::{json, Value};
use wagate_domain::time::rfc3339;
use wagate_store::{NumberMessageRecord, NumberRecord};

/// One SMS of a number.
pub fn sms_json(m: &NumberMessageRecord) -> Value {
    json!({
        "text": m.text,
        "code": m.code,
        "received_at": rfc3339(m.received_at),
    })
}

/// The number object, with the SMS it received (`sms` holds any messages; those of other
/// numbers are left out). The provider is never named.
pub fn number_json(n: &NumberRecord, sms: &[NumberMessageRecord]) -> Value {
    json!({
        "id": n.id,
        "object": "number",
        "phone_number": n.phone_number,
        "service": n.service,
        "country": n.country,
        "kind": n.kind.as_str(),
        "status": n.status.as_str(),
        "price": n.price.to_decimal(2),
        "unit_price": n.unit_price.to_decimal(2),
        "currency": n.currency,
        "hours": n.hours,
        "code": n.code,
        "sms": sms.iter().filter(|m| m.number_id == n.id).map(sms_json).collect::<Vec<_>>(),
        "refunded": n.refund_transaction_id.is_some(),
        "created_at": rfc3339(n.created_at),
        "expires_at": rfc3339(n.expires_at),
        "code_received_at": n.code_received_at.map(rfc3339),
        "ended_at": n.ended_at.map(rfc3339),
    })
}
