//! Parsing a Stripe event: `{"id": "evt_…", "object": "event", "type", "created",
//! "api_version", "livemode", "data": {"object", "previous_attributes"?}, …}`.

use serde::Deserialize;
use serde_json::Value;

use crate::types::{Invoice, Subscription};

/// A Stripe event, with its object typed for the events wagate acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    /// `evt_…`: Stripe may deliver an event more than once; handle each ID once.
    pub id: String,
    /// `type`, e.g. `invoice.paid`.
    pub event_type: String,
    /// When the event happened (Unix seconds). Stripe does not deliver events in order; this
    /// orders them.
    pub created: i64,
    /// The API version the object is rendered in (the webhook endpoint's version).
    pub api_version: Option<String>,
    /// Whether it comes from live mode.
    pub livemode: bool,
    /// `data.object`, typed where wagate acts on it.
    pub object: EventObject,
    /// `data.previous_attributes` for `*.updated` events: the fields that changed, with their
    /// old values.
    pub previous_attributes: Option<Value>,
}

/// `data.object` of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventObject {
    /// `customer.subscription.created`.
    SubscriptionCreated(Subscription),
    /// `customer.subscription.updated`: a renewal moves its period, a failed payment makes it
    /// `past_due`.
    SubscriptionUpdated(Subscription),
    /// `customer.subscription.deleted`: the subscription ended (cancelled, or unpaid after
    /// Stripe's retries).
    SubscriptionDeleted(Subscription),
    /// `invoice.paid`: an invoice was paid; for a subscription it pays
    /// [`Invoice::service_start`]..[`Invoice::service_end`].
    InvoicePaid(Invoice),
    /// `invoice.payment_failed`: a payment attempt failed.
    InvoicePaymentFailed(Invoice),
    /// Any other event type, with `data.object` as sent.
    Other(Value),
}

/// Why an event could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The payload is not a Stripe event (not JSON, or no `id`, `type`, `data.object`).
    #[error("not a Stripe event: {0}")]
    NotAnEvent(String),
    /// The event's type is one this crate types, but its object does not have the shape
    /// expected (e.g. an `invoice.paid` whose object has no `id`).
    #[error("the {event_type} event's object is not as expected: {reason}")]
    Object {
        /// The event type.
        event_type: String,
        /// What did not fit.
        reason: String,
    },
}

#[derive(Deserialize)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    livemode: bool,
    data: WireData,
}

#[derive(Deserialize)]
struct WireData {
    object: Value,
    #[serde(default)]
    previous_attributes: Option<Value>,
}

/// Parses a delivery's body (after [`verify_signature`](super::verify_signature)).
pub fn parse_event(payload: &[u8]) -> Result<StripeEvent, EventError> {
    let wire: WireEvent =
        serde_json::from_slice(payload).map_err(|e| EventError::NotAnEvent(e.to_string()))?;
    let event_type = wire.event_type;
    let typed = |what: fn(&Value) -> Result<EventObject, serde_json::Error>| {
        what(&wire.data.object).map_err(|e| EventError::Object {
            event_type: event_type.clone(),
            reason: e.to_string(),
        })
    };
    let object = match event_type.as_str() {
        "customer.subscription.created" => {
            typed(|v| Subscription::deserialize(v).map(EventObject::SubscriptionCreated))?
        }
        "customer.subscription.updated" => {
            typed(|v| Subscription::deserialize(v).map(EventObject::SubscriptionUpdated))?
        }
        "customer.subscription.deleted" => {
            typed(|v| Subscription::deserialize(v).map(EventObject::SubscriptionDeleted))?
        }
        "invoice.paid" => typed(|v| Invoice::deserialize(v).map(EventObject::InvoicePaid))?,
        "invoice.payment_failed" => {
            typed(|v| Invoice::deserialize(v).map(EventObject::InvoicePaymentFailed))?
        }
        _ => EventObject::Other(wire.data.object.clone()),
    };
    Ok(StripeEvent {
        id: wire.id,
        event_type,
        created: wire.created,
        api_version: wire.api_version,
        livemode: wire.livemode,
        object,
        previous_attributes: wire.data.previous_attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_and_other_events() {
        let paid = json!({
            "id": "evt_1", "object": "event", "api_version": "2025-03-31.basil",
            "created": 1700000000, "livemode": false, "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null}, "type": "invoice.paid",
            "data": {"object": {"id": "in_1", "object": "invoice", "status": "paid",
                                "currency": "eur", "amount_due": 1, "amount_paid": 1}}
        });
        let e = parse_event(paid.to_string().as_bytes()).unwrap();
        assert_eq!(
            (e.id.as_str(), e.event_type.as_str()),
            ("evt_1", "invoice.paid")
        );
        assert!(matches!(e.object, EventObject::InvoicePaid(ref i) if i.id == "in_1"));

        let other = json!({"id": "evt_2", "type": "customer.created", "created": 1,
                           "data": {"object": {"id": "cus_1"}}});
        let e = parse_event(other.to_string().as_bytes()).unwrap();
        assert_eq!(e.object, EventObject::Other(json!({"id": "cus_1"})));

        let updated = json!({"id": "evt_3", "type": "customer.subscription.updated", "created": 1,
                             "data": {"object": {"id": "sub_1", "status": "past_due"},
                                      "previous_attributes": {"status": "active"}}});
        let e = parse_event(updated.to_string().as_bytes()).unwrap();
        assert!(matches!(e.object, EventObject::SubscriptionUpdated(_)));
        assert_eq!(e.previous_attributes, Some(json!({"status": "active"})));
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(matches!(
            parse_event(b"nope"),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(br#"{"id":"evt_1","type":"invoice.paid"}"#),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse_event(
                br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"status":"paid"}}}"#
            ),
            Err(EventError::Object { .. })
        ));
    }
}
