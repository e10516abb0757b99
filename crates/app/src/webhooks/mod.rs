//! Webhooks: endpoints, the signing secret, events and their durable delivery.
//!
//! Events are written to the outbox in the same transaction as the change that causes them
//! (see `wagate_store::WebhookStore`); the [`delivery::Deliverer`] job handler makes each
//! attempt, signed per Standard Webhooks, and schedules retries on the business clock.

pub mod delivery;
pub mod endpoints;
pub mod events;
pub mod secret;

use jiff::Timestamp;
use serde_json::{json, Value};
use wagate_domain::ids::{AccountId, EndpointId, EventId};
use wagate_domain::time::rfc3339;
use wagate_store::NewEvent;

/// Every event type an endpoint may subscribe to (besides `*`).
pub const EVENT_TYPES: &[&str] = &[
    "line.ready",
    "line.disconnected",
    "line.reconnected",
    "line.logged_out",
    "line.blocked",
    "line.released",
    "line.renewed",
    "line.past_due",
    "charge.succeeded",
    "charge.failed",
    "wallet.topped_up",
    "wallet.topup_failed",
    "message.received",
    "message.status",
    "call.ringing",
    "call.answered",
    "call.ended",
    "line.fair_use_exceeded",
    "invoice.created",
    "invoice.paid",
    "number.code_received",
    "number.sms_received",
    "number.expired",
    "account_update",
    "endpoint.disabled",
    "webhook.test",
];

/// Builds an event with its exact body `{"id", "type", "created_at", "data"}`; the body is
/// fixed here once and sent byte for byte on every attempt.
pub fn new_event(
    account: &AccountId,
    event_type: &str,
    line_id: Option<&str>,
    data: Value,
    now: Timestamp,
) -> NewEvent {
    let id = EventId::generate();
    let body = json!({
        "id": id,
        "type": event_type,
        "created_at": rfc3339(now),
        "data": data,
    })
    .to_string();
    NewEvent {
        id,
        account_id: account.clone(),
        event_type: event_type.to_owned(),
        line_id: line_id.map(str::to_owned),
        body,
        created_at: now,
        only_endpoint: None,
    }
}

/// Targets an event at one endpoint only (`webhook.test`).
pub fn only_to(mut event: NewEvent, endpoint: &EndpointId) -> NewEvent {
    event.only_endpoint = Some(endpoint.clone());
    event
}
