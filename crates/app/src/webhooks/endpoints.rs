//! Webhook endpoints: create, list, change, delete, and send a test event.

use std::net::IpAddr;

use wagate_domain::ids::EndpointId;
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::webhook::address::{check_literal_host, is_forbidden_ip, parse_endpoint_url};
use wagate_store::{EndpointPatch, EndpointRecord, EventRecord, NewEndpoint};

use super::{new_event, only_to, EVENT_TYPES};
use crate::accounts::Principal;
use crate::{App, AppError, AppResult, RuleError};

/// Endpoints an account may have.
pub const MAX_ENDPOINTS: u32 = 16;
/// Longest description.
const MAX_DESCRIPTION: usize = 500;

/// Validates a URL: http(s) only; outside the sandbox, never an address inside the network
/// (checked on the literal host and on every address the name resolves to now; the
/// deliverer checks again at each attempt, so a DNS change cannot reach inside later).
pub async fn validate_url(app: &App, raw: &str) -> AppResult<String> {
    let url = parse_endpoint_url(raw).map_err(|e| AppError::invalid("url", e.to_string()))?;
    if !app.is_sandbox() {
        check_literal_host(&url).map_err(|e| AppError::invalid("url", e.to_string()))?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| AppError::invalid("url", format!("cannot resolve {host}: {e}")))?
                .map(|a| a.ip())
                .collect();
            if addrs.iter().any(|ip| is_forbidden_ip(*ip)) {
                return Err(AppError::invalid(
                    "url",
                    format!("{host} resolves to a private or loopback address"),
                ));
            }
        }
    }
    Ok(url.to_string())
}

/// Validates a list of event types (`["*"]` by default).
pub fn validate_events(events: Option<Vec<String>>) -> AppResult<Vec<String>> {
    let events = events.unwrap_or_else(|| vec!["*".to_owned()]);
    if events.is_empty() {
        return Err(AppError::invalid(
            "events",
            "give at least one event type, or \"*\"",
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| *e != "*" && !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(AppError::invalid(
            "events",
            format!("unknown event type {bad:?}"),
        ));
    }
    let mut events = events;
    events.sort();
    events.dedup();
    Ok(events)
}

fn validate_description(d: Option<String>) -> AppResult<Option<String>> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(AppError::invalid(
            "description",
            format!("description is longer than {MAX_DESCRIPTION} characters"),
        )),
        other => Ok(other),
    }
}

fn parse_id(id: &str) -> AppResult<EndpointId> {
    EndpointId::parse(id).map_err(|_| AppError::NotFound("webhook endpoint"))
}

/// Creates an endpoint.
pub async fn create(
    app: &App,
    who: &Principal,
    url: &str,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
    description: Option<String>,
) -> AppResult<EndpointRecord> {
    let new = NewEndpoint {
        url: validate_url(app, url).await?,
        events: validate_events(events)?,
        enabled: enabled.unwrap_or(true),
        description: validate_description(description)?,
    };
    app.store
        .create_endpoint(&who.account.id, new, app.clock.now(), MAX_ENDPOINTS)
        .await?
        .map_err(|_| {
            AppError::invalid(
                "url",
                format!("an account may have at most {MAX_ENDPOINTS} endpoints"),
            )
        })
}

/// A page of endpoints.
pub async fn list(
    app: &App,
    who: &Principal,
    page: &PageRequest,
) -> AppResult<Page<EndpointRecord>> {
    Ok(app.store.list_endpoints(&who.account.id, page).await?)
}

/// One endpoint.
pub async fn get(app: &App, who: &Principal, id: &str) -> AppResult<EndpointRecord> {
    app.store
        .get_endpoint(&who.account.id, &parse_id(id)?)
        .await?
        .ok_or(AppError::NotFound("webhook endpoint"))
}

/// Changes an endpoint; re-enabling clears an automatic disable.
pub async fn update(
    app: &App,
    who: &Principal,
    id: &str,
    url: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
    description: Option<Option<String>>,
) -> AppResult<EndpointRecord> {
    let id = parse_id(id)?;
    let patch = EndpointPatch {
        url: match url {
            Some(u) => Some(validate_url(app, &u).await?),
            None => None,
        },
        events: match events {
            Some(e) => Some(validate_events(Some(e))?),
            None => None,
        },
        enabled,
        description: match description {
            Some(d) => Some(validate_description(d)?),
            None => None,
        },
    };
    app.store
        .update_endpoint(&who.account.id, &id, patch, app.clock.now())
        .await?
        .ok_or(AppError::NotFound("webhook endpoint"))
}

/// Deletes an endpoint; its pending deliveries are abandoned.
pub async fn delete(app: &App, who: &Principal, id: &str) -> AppResult<EndpointId> {
    let id = parse_id(id)?;
    if app
        .store
        .delete_endpoint(&who.account.id, &id, app.clock.now())
        .await?
    {
        Ok(id)
    } else {
        Err(AppError::NotFound("webhook endpoint"))
    }
}

/// Sends a `webhook.test` event to this endpoint only.
pub async fn send_test(app: &App, who: &Principal, id: &str) -> AppResult<EventRecord> {
    let ep = get(app, who, id).await?;
    if !ep.enabled {
        return Err(RuleError::EndpointDisabled.into());
    }
    let now = app.clock.now();
    let event = only_to(
        new_event(
            &who.account.id,
            "webhook.test",
            None,
            serde_json::json!({ "endpoint_id": ep.id, "message": "This is a test event from wagate." }),
            now,
        ),
        &ep.id,
    );
    let record = EventRecord {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        line_id: None,
        body: event.body.clone(),
        created_at: now,
    };
    app.store.emit_events(&[event], now).await?;
    app.scheduler.wake();
    Ok(record)
}
