//! Webhook storage: secrets, endpoints, the event outbox, deliveries and attempts.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::{AccountId, DeliveryId, EndpointId, EventId, JobId};
use wagate_domain::page::{Page, PageRequest};

use crate::StoreResult;

/// A signing secret of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// `whsec_…`
    pub secret: String,
    /// When it was created (wall time).
    pub created_at: Timestamp,
    /// When a rotated-out secret stops signing (wall time); `None` for the current one.
    pub expires_at: Option<Timestamp>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// `ep_…`
    pub id: EndpointId,
    /// The owner.
    pub account_id: AccountId,
    /// Where events are POSTed.
    pub url: String,
    /// Event types it receives (`*` for all).
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// The owner's note.
    pub description: Option<String>,
    /// Why wagate disabled it (`gone`, `failing`), if it did.
    pub disabled_reason: Option<String>,
    /// When wagate disabled it.
    pub disabled_at: Option<Timestamp>,
    /// Since when every attempt has failed (business time).
    pub failing_since: Option<Timestamp>,
    /// Created (business time).
    pub created_at: Timestamp,
    /// Last changed (business time).
    pub updated_at: Timestamp,
}

/// An endpoint to create.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Validated URL.
    pub url: String,
    /// Validated event types.
    pub events: Vec<String>,
    /// Enabled at creation.
    pub enabled: bool,
    /// The owner's note.
    pub description: Option<String>,
}

/// Changes to an endpoint (absent fields stay as they are).
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Enable (clears an automatic disable) or disable.
    pub enabled: Option<bool>,
    /// New note (`Some(None)` clears it).
    pub description: Option<Option<String>>,
}

/// An event to write to the outbox, with its exact body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `evt_…`: also the `webhook-id` of every attempt.
    pub id: EventId,
    /// The owner.
    pub account_id: AccountId,
    /// `line.ready`, `webhook.test`, …
    pub event_type: String,
    /// The line it is about, for filtering.
    pub line_id: Option<String>,
    /// The exact JSON body sent on every attempt.
    pub body: String,
    /// Business time.
    pub created_at: Timestamp,
    /// Deliver only to this endpoint (`webhook.test`) instead of every matching one.
    pub only_endpoint: Option<EndpointId>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// `evt_…`
    pub id: EventId,
    /// The type.
    pub event_type: String,
    /// The line it is about.
    pub line_id: Option<String>,
    /// The exact body.
    pub body: String,
    /// Business time.
    pub created_at: Timestamp,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `dlv_…`
    pub id: DeliveryId,
    /// The event.
    pub event_id: EventId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (business time), while pending.
    pub next_attempt_at: Option<Timestamp>,
}

/// One HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Wall time of the attempt.
    pub attempted_at: Timestamp,
    /// The response status, if there was a response.
    pub status_code: Option<u16>,
    /// How long it took.
    pub latency_ms: i64,
    /// What went wrong, if it did.
    pub error: Option<String>,
}

/// Everything the delivery worker needs for one attempt.
#[derive(Debug, Clone)]
pub struct DeliveryTask {
    /// The delivery.
    pub delivery: DeliveryRecord,
    /// The owner.
    pub account_id: AccountId,
    /// The exact body.
    pub body: String,
    /// The endpoint, unless it was deleted.
    pub endpoint: Option<EndpointRecord>,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFollowUp {
    /// 2xx: done.
    Delivered,
    /// Try again at this business time.
    RetryAt(Timestamp),
    /// The schedule is exhausted.
    GiveUp,
    /// Disable the endpoint (`gone` or `failing`) and record this `endpoint.disabled` event.
    DisableEndpoint {
        /// Why.
        reason: String,
        /// The event to record.
        event: NewEvent,
    },
}

/// Filters of the event list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this type.
    pub event_type: Option<String>,
    /// Only events about this line.
    pub line_id: Option<String>,
}

/// Why an endpoint could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointLimitReached;

/// Webhook storage.
#[async_trait]
pub trait WebhookStore {
    /// The account's secrets still signing at `wall_now`, newest first; creates the first
    /// secret (`initial`) if the account has none.
    async fn webhook_secrets(
        &self,
        account: &AccountId,
        initial: &str,
        wall_now: Timestamp,
    ) -> StoreResult<Vec<SecretRecord>>;
    /// Makes `new_secret` current; the previous current one keeps signing until `old_until`.
    async fn rotate_webhook_secret(
        &self,
        account: &AccountId,
        new_secret: &str,
        wall_now: Timestamp,
        old_until: Timestamp,
    ) -> StoreResult<Vec<SecretRecord>>;
    /// Creates an endpoint unless the account already has `max` of them.
    async fn create_endpoint(
        &self,
        account: &AccountId,
        new: NewEndpoint,
        now: Timestamp,
        max: u32,
    ) -> StoreResult<Result<EndpointRecord, EndpointLimitReached>>;
    /// A page of the account's endpoints, newest first.
    async fn list_endpoints(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<EndpointRecord>>;
    /// One endpoint of the account.
    async fn get_endpoint(
        &self,
        account: &AccountId,
        id: &EndpointId,
    ) -> StoreResult<Option<EndpointRecord>>;
    /// Changes an endpoint of the account.
    async fn update_endpoint(
        &self,
        account: &AccountId,
        id: &EndpointId,
        patch: EndpointPatch,
        now: Timestamp,
    ) -> StoreResult<Option<EndpointRecord>>;
    /// Deletes an endpoint of the account; its pending deliveries fail.
    async fn delete_endpoint(
        &self,
        account: &AccountId,
        id: &EndpointId,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Writes events and their deliveries (and the delivery jobs) in one transaction.
    async fn emit_events(&self, events: &[NewEvent], now: Timestamp) -> StoreResult<()>;
    /// A page of the account's events, newest first.
    async fn list_events(
        &self,
        account: &AccountId,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EventRecord>>;
    /// One event with its deliveries and attempts.
    async fn get_event(
        &self,
        account: &AccountId,
        id: &EventId,
    ) -> StoreResult<Option<(EventRecord, Vec<DeliveryRecord>, Vec<AttemptRecord>)>>;
    /// Queues a new attempt now for each of the event's deliveries to enabled endpoints (and
    /// creates deliveries for matching endpoints added since). `None` if no such event.
    async fn redeliver_event(
        &self,
        account: &AccountId,
        id: &EventId,
        now: Timestamp,
    ) -> StoreResult<Option<EventRecord>>;
    /// What the worker needs to attempt a delivery.
    async fn delivery_task(&self, id: &DeliveryId) -> StoreResult<Option<DeliveryTask>>;
    /// [`WebhookStore::delivery_task`] for several deliveries in one read (those that
    /// exist, in no particular order).
    async fn delivery_tasks(&self, ids: &[DeliveryId]) -> StoreResult<Vec<DeliveryTask>>;
    /// Records an attempt and what follows, and removes the job that made it, atomically.
    async fn record_attempt(
        &self,
        job: &JobId,
        event_id: &EventId,
        account: &AccountId,
        attempt: &AttemptRecord,
        follow_up: AttemptFollowUp,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Marks a pending delivery failed without an attempt (its endpoint is gone or disabled).
    async fn abandon_delivery(&self, id: &DeliveryId, now: Timestamp) -> StoreResult<()>;
}
