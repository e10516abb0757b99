//! Webhook endpoints, the signing secret, and the event log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wagate_app::webhooks::{endpoints, events, secret};
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::rfc3339;
use wagate_store::{AttemptRecord, DeliveryRecord, EndpointRecord, EventFilter, EventRecord};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ApiJson;
use crate::openapi::rules::ENDPOINT_DESCRIPTION_MAX_CHARS;
use crate::AppState;

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointOut {
    /// `ep_…`
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: &'static str,
    /// Where events are POSTed.
    pub url: String,
    /// Event types received (`*` for all).
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Your note.
    pub description: Option<String>,
    /// Why wagate disabled it: `gone` (it answered 410) or `failing` (5 days of failures).
    pub disabled_reason: Option<String>,
    /// When wagate disabled it.
    pub disabled_at: Option<String>,
    /// Since when every delivery attempt has failed.
    pub failing_since: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<EndpointRecord> for EndpointOut {
    fn from(e: EndpointRecord) -> Self {
        EndpointOut {
            id: e.id.to_string(),
            object: "webhook_endpoint",
            url: e.url,
            events: e.events,
            enabled: e.enabled,
            description: e.description,
            disabled_reason: e.disabled_reason,
            disabled_at: e.disabled_at.map(rfc3339),
            failing_since: e.failing_since.map(rfc3339),
            created_at: rfc3339(e.created_at),
        }
    }
}

/// A page of objects.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut<T: ToSchema> {
    /// The objects, newest first.
    pub data: Vec<T>,
    /// Whether another page follows (pass the last id as `starting_after`).
    pub has_more: bool,
}

impl<T: ToSchema> ListOut<T> {
    pub(crate) fn from_page<R>(page: Page<R>, f: impl FnMut(R) -> T) -> Self {
        let page = page.map(f);
        ListOut {
            data: page.data,
            has_more: page.has_more,
        }
    }
}

/// Create an endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// `https://…` or `http://…`, at most 2048 characters; outside the sandbox its host must
    /// resolve to public addresses only (never private or loopback).
    pub url: String,
    /// Event types (at least one), or `["*"]` (the default) for all.
    pub events: Option<Vec<String>>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Up to 500 characters.
    pub description: Option<String>,
}

/// Change an endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatchIn {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Enable (clears an automatic disable) or disable.
    pub enabled: Option<bool>,
    /// New description (`null` clears it).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// A deleted object.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedOut {
    /// The id.
    pub id: String,
    /// The object type.
    pub object: &'static str,
    /// Always true.
    pub deleted: bool,
}

/// List parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// The id of the last object of the previous page.
    pub starting_after: Option<String>,
}

impl ListParams {
    pub(crate) fn page(&self) -> ApiResult<PageRequest> {
        PageRequest::new(self.limit, self.starting_after.clone())
            .map_err(|e| ApiError::invalid("limit", e.to_string()))
    }
}

/// Event list parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListParams {
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// The id of the last event of the previous page.
    pub starting_after: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only events about this line.
    pub line_id: Option<String>,
}

pub(crate) fn query<T>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

/// Creates an endpoint. An account has at most 16: one more is 409 `invalid_state`.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", operation_id = "createWebhookEndpoint", tag = "webhooks", security(("api_key" = [])),
    request_body = EndpointIn,
    responses((status = 201, description = "The endpoint", body = EndpointOut),
        (status = 409, description = "`invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn create_endpoint(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<EndpointIn>,
) -> ApiResult<(StatusCode, ApiJson<EndpointOut>)> {
    // The limit is the account's state, not the request's: 409, once the fields are known
    // to be valid (their 422 comes first). The app checks it again as it creates, for
    // requests that race past this.
    let max = endpoints::MAX_ENDPOINTS;
    let some = PageRequest::new(Some(i64::from(max)), None)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if endpoints::list(&st.app, &who, &some).await?.data.len() >= max as usize {
        endpoints::validate_url(&st.app, &input.url).await?;
        endpoints::validate_events(input.events.clone())?;
        if input
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > ENDPOINT_DESCRIPTION_MAX_CHARS)
        {
            return Err(ApiError::invalid(
                "description",
                format!("description is longer than {ENDPOINT_DESCRIPTION_MAX_CHARS} characters"),
            ));
        }
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            format!("an account may have at most {max} endpoints; delete one first"),
        )
        .with("limit", max));
    }
    let ep = endpoints::create(
        &st.app,
        &who,
        &input.url,
        input.events,
        input.enabled,
        input.description,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(ep.into())))
}

/// The account's endpoints, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", operation_id = "listWebhookEndpoints", tag = "webhooks", security(("api_key" = [])),
    params(ListParams), responses((status = 200, description = "A page of endpoints", body = ListOut<EndpointOut>)))]
pub async fn list_endpoints(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<ListOut<EndpointOut>>> {
    let page = query(q)?.page()?;
    let found = endpoints::list(&st.app, &who, &page).await?;
    Ok(ApiJson(ListOut::from_page(found, EndpointOut::from)))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", operation_id = "getWebhookEndpoint", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The endpoint", body = EndpointOut)))]
pub async fn get_endpoint(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<EndpointOut>> {
    Ok(ApiJson(endpoints::get(&st.app, &who, &id).await?.into()))
}

/// Changes an endpoint.
#[utoipa::path(patch, path = "/api/v1/webhooks/endpoints/{id}", operation_id = "updateWebhookEndpoint", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = EndpointPatchIn,
    responses((status = 200, description = "The endpoint, changed", body = EndpointOut)))]
pub async fn update_endpoint(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EndpointPatchIn>,
) -> ApiResult<ApiJson<EndpointOut>> {
    let ep = endpoints::update(
        &st.app,
        &who,
        &id,
        input.url,
        input.events,
        input.enabled,
        input.description,
    )
    .await?;
    Ok(ApiJson(ep.into()))
}

/// Deletes an endpoint; its pending deliveries are abandoned.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", operation_id = "deleteWebhookEndpoint", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The endpoint, deleted", body = DeletedOut)))]
pub async fn delete_endpoint(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<DeletedOut>> {
    let id = endpoints::delete(&st.app, &who, &id).await?;
    Ok(ApiJson(DeletedOut {
        id: id.to_string(),
        object: "webhook_endpoint",
        deleted: true,
    }))
}

/// Sends a `webhook.test` event to this endpoint only. A disabled endpoint is 409
/// `invalid_state`: enable it first.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/test", operation_id = "testWebhookEndpoint", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = super::EmptyIn,
    responses((status = 202, description = "The test event", body = EventOut),
        (status = 409, description = "`invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn test_endpoint(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(super::EmptyIn {}): ApiJson<super::EmptyIn>,
) -> ApiResult<(StatusCode, ApiJson<EventOut>)> {
    // A disabled endpoint is a state, not a bad request: 409 `invalid_state`.
    let ev = endpoints::send_test(&st.app, &who, &id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(EventOut::new(ev, None))))
}

/// The signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    /// Always `webhook_secret`.
    pub object: &'static str,
    /// The current secret (`whsec_…`): verify `webhook-signature` with it.
    pub secret: String,
    /// When it was created.
    pub created_at: String,
    /// Secrets rotated out in the last 24 h, still signing beside the current one.
    pub previous: Vec<PreviousSecretOut>,
}

/// A rotated-out secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviousSecretOut {
    /// `whsec_…`
    pub secret: String,
    /// When it stops signing.
    pub expires_at: Option<String>,
}

pub(crate) fn secret_out(list: Vec<wagate_store::SecretRecord>) -> ApiResult<SecretOut> {
    let mut it = list.into_iter();
    let current = it
        .next()
        .ok_or_else(|| ApiError::internal("no webhook secret"))?;
    Ok(SecretOut {
        object: "webhook_secret",
        secret: current.secret,
        created_at: rfc3339(current.created_at),
        previous: it
            .map(|s| PreviousSecretOut {
                secret: s.secret,
                expires_at: s.expires_at.map(rfc3339),
            })
            .collect(),
    })
}

/// The account's signing secret (created on first use).
#[utoipa::path(get, path = "/api/v1/webhooks/secret", operation_id = "getWebhookSecret", tag = "webhooks", security(("api_key" = [])),
    responses((status = 200, description = "The secret", body = SecretOut)))]
pub async fn get_secret(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<SecretOut>> {
    Ok(ApiJson(secret_out(secret::secrets(&st.app, &who).await?)?))
}

/// Rotates the secret; the old one keeps signing beside the new one for 24 hours.
#[utoipa::path(post, path = "/api/v1/webhooks/secret/rotate", operation_id = "rotateWebhookSecret", tag = "webhooks", security(("api_key" = [])),
    request_body = super::EmptyIn,
    responses((status = 200, description = "The new secret", body = SecretOut)))]
pub async fn rotate_secret(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(super::EmptyIn {}): ApiJson<super::EmptyIn>,
) -> ApiResult<ApiJson<SecretOut>> {
    Ok(ApiJson(secret_out(secret::rotate(&st.app, &who).await?)?))
}

/// An event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// `evt_…` (also the `webhook-id` header of every attempt).
    pub id: String,
    /// Always `event`.
    pub object: &'static str,
    /// The type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Business time.
    pub created_at: String,
    /// The line it is about.
    pub line_id: Option<String>,
    /// The exact body delivered.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// Per endpoint (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryOut>>,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// `dlv_…`
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (business time), while pending.
    pub next_attempt_at: Option<String>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptOut>,
}

/// One HTTP attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    /// 1 for the first.
    pub attempt: u32,
    /// Wall-clock time of the attempt.
    pub attempted_at: String,
    /// The response status, if any.
    pub status_code: Option<u16>,
    /// Milliseconds.
    pub latency_ms: i64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

impl EventOut {
    pub(crate) fn new(
        e: EventRecord,
        detail: Option<(Vec<DeliveryRecord>, Vec<AttemptRecord>)>,
    ) -> Self {
        let deliveries = detail.map(|(ds, attempts)| {
            ds.into_iter()
                .map(|d| DeliveryOut {
                    attempt_log: attempts
                        .iter()
                        .filter(|a| a.delivery_id == d.id)
                        .map(|a| AttemptOut {
                            attempt: a.attempt,
                            attempted_at: rfc3339(a.attempted_at),
                            status_code: a.status_code,
                            latency_ms: a.latency_ms,
                            error: a.error.clone(),
                        })
                        .collect(),
                    id: d.id.to_string(),
                    endpoint_id: d.endpoint_id.to_string(),
                    status: d.status,
                    attempts: d.attempts,
                    next_attempt_at: d.next_attempt_at.map(rfc3339),
                })
                .collect()
        });
        EventOut {
            id: e.id.to_string(),
            object: "event",
            event_type: e.event_type,
            created_at: rfc3339(e.created_at),
            line_id: e.line_id,
            body: serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null),
            deliveries,
        }
    }
}

/// The account's events, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/events", operation_id = "listWebhookEvents", tag = "webhooks", security(("api_key" = [])),
    params(EventListParams), responses((status = 200, description = "A page of events", body = ListOut<EventOut>)))]
pub async fn list_events(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<EventListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<ListOut<EventOut>>> {
    let q = query(q)?;
    let page = PageRequest::new(q.limit, q.starting_after.clone())
        .map_err(|e| ApiError::invalid("limit", e.to_string()))?;
    let filter = EventFilter {
        event_type: q.event_type,
        line_id: q.line_id,
    };
    let found = events::list(&st.app, &who, &filter, &page).await?;
    Ok(ApiJson(ListOut::from_page(found, |e| {
        EventOut::new(e, None)
    })))
}

/// One event with its deliveries and every attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/events/{id}", operation_id = "getWebhookEvent", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The event", body = EventOut)))]
pub async fn get_event(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<EventOut>> {
    let (e, d, a) = events::get(&st.app, &who, &id).await?;
    Ok(ApiJson(EventOut::new(e, Some((d, a)))))
}

/// Queues a new attempt of the event to each of its enabled endpoints, now.
#[utoipa::path(post, path = "/api/v1/webhooks/events/{id}/redeliver", operation_id = "redeliverWebhookEvent", tag = "webhooks", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = super::EmptyIn,
    responses((status = 202, description = "The event, queued again", body = EventOut)))]
pub async fn redeliver_event(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(super::EmptyIn {}): ApiJson<super::EmptyIn>,
) -> ApiResult<(StatusCode, ApiJson<EventOut>)> {
    let e = events::redeliver(&st.app, &who, &id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(EventOut::new(e, None))))
}
