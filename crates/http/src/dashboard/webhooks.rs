//! `/dashboard/webhooks`: the endpoints, the signing secret (revealed on request, rotated),
//! and the event log with each delivery attempt, with redelivery.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use wagate_app::webhooks::{endpoints, events, secret};
use wagate_domain::page::PageRequest;
use wagate_store::EventFilter;

use super::session::{Dash, Posted};
use super::view::{render, short_time, Chrome, DashResult, Section};
use crate::error::ApiError;
use crate::openapi::rules::ENDPOINT_DESCRIPTION_MAX_CHARS;
use crate::routes::webhooks::{secret_out, EndpointOut, EventOut};
use crate::AppState;

/// Events per page of the log.
const EVENTS_PAGE: i64 = 20;

/// One attempt, as the log shows it.
struct AttemptRow {
    at: String,
    outcome: String,
    ok: bool,
    latency_ms: i64,
}

/// One event with its deliveries' attempts.
struct EventRow {
    id: String,
    kind: String,
    at: String,
    line_id: String,
    delivery: String,
    attempts: Vec<AttemptRow>,
}

#[derive(Template)]
#[template(path = "dashboard/webhooks.html")]
struct WebhooksTemplate {
    chrome: Chrome,
    endpoints: Vec<EndpointOut>,
    secret_hint: String,
    secret: Option<String>,
    previous: usize,
    events: Vec<EventRow>,
    next_page: Option<String>,
    notice: Option<&'static str>,
}

/// The query of the page.
#[derive(Debug, Deserialize)]
pub(super) struct WebhooksQuery {
    starting_after: Option<String>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "redelivered" => Some("Event queued for delivery again."),
        "rotated" => {
            Some("Secret rotated. The old secret keeps signing beside the new one for 24 hours.")
        }
        _ => None,
    }
}

/// The page; `reveal` shows the whole secret (only in answer to a CSRF-checked post, never
/// in a URL).
async fn page(
    st: &AppState,
    dash: &Dash,
    starting_after: Option<String>,
    reveal: bool,
    notice: Option<&'static str>,
) -> DashResult<Response> {
    let who = &dash.principal;
    let first =
        PageRequest::new(Some(100), None).map_err(|e| ApiError::invalid("limit", e.to_string()))?;
    let endpoints = endpoints::list(&st.app, who, &first)
        .await?
        .data
        .into_iter()
        .map(EndpointOut::from)
        .collect();
    let secrets = secret_out(secret::secrets(&st.app, who).await?)?;
    let page = PageRequest::new(Some(EVENTS_PAGE), starting_after.filter(|a| !a.is_empty()))
        .map_err(|e| ApiError::invalid("starting_after", e.to_string()))?;
    let filter = EventFilter {
        event_type: None,
        line_id: None,
    };
    let found = events::list(&st.app, who, &filter, &page).await?;
    let next_page = found
        .has_more
        .then(|| found.data.last().map(|e| e.id.to_string()))
        .flatten();
    let mut rows = Vec::with_capacity(found.data.len());
    for e in &found.data {
        let (e, d, a) = events::get(&st.app, who, e.id.as_str()).await?;
        let out = EventOut::new(e, Some((d, a)));
        let deliveries = out.deliveries.unwrap_or_default();
        let delivery = if deliveries.is_empty() {
            "no endpoint".to_owned()
        } else {
            deliveries
                .iter()
                .map(|d| d.status.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let attempts = deliveries
            .iter()
            .flat_map(|d| d.attempt_log.iter())
            .map(|a| {
                let ok = a.status_code.is_some_and(|c| (200..300).contains(&c));
                let outcome = match (a.status_code, &a.error) {
                    (Some(code), _) => format!("HTTP {code}"),
                    (None, Some(err)) => err.clone(),
                    (None, None) => "no answer".to_owned(),
                };
                AttemptRow {
                    at: short_time(&a.attempted_at),
                    outcome,
                    ok,
                    latency_ms: a.latency_ms,
                }
            })
            .collect();
        rows.push(EventRow {
            id: out.id,
            kind: out.event_type,
            at: short_time(&out.created_at),
            line_id: out.line_id.unwrap_or_default(),
            delivery,
            attempts,
        });
    }
    let tail: String = secrets
        .secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Ok(render(
        StatusCode::OK,
        &WebhooksTemplate {
            chrome: Chrome::new(dash, Section::Webhooks),
            endpoints,
            secret_hint: format!("whsec_…{tail}"),
            secret: reveal.then_some(secrets.secret),
            previous: secrets.previous.len(),
            events: rows,
            next_page,
            notice,
        },
    ))
}

/// `GET /dashboard/webhooks`.
pub(super) async fn show(
    State(st): State<AppState>,
    dash: Dash,
    q: Result<Query<WebhooksQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    page(
        &st,
        &dash,
        q.starting_after,
        false,
        notice(q.done.as_deref()),
    )
    .await
}

/// `POST /dashboard/webhooks/secret/reveal`: the page with the whole secret shown.
pub(super) async fn reveal(
    State(st): State<AppState>,
    dash: Dash,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    page(&st, &dash, None, true, None).await
}

/// `POST /dashboard/webhooks/secret/rotate`: rotates, then shows the new secret.
pub(super) async fn rotate(
    State(st): State<AppState>,
    dash: Dash,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    secret::rotate(&st.app, &dash.principal).await?;
    page(&st, &dash, None, true, notice(Some("rotated"))).await
}

/// `POST /dashboard/webhooks/events/{id}/redeliver`.
pub(super) async fn redeliver(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    events::redeliver(&st.app, &dash.principal, &id).await?;
    Ok(Redirect::to("/dashboard/webhooks?done=redelivered").into_response())
}

/// The new-endpoint form: `events` is `*` or event types separated by commas or spaces.
#[derive(Debug, Deserialize)]
pub(super) struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: String,
    #[serde(default)]
    description: String,
}

/// The event types of the form's `events` field (`None`: every type).
fn event_types(field: &str) -> Option<Vec<String>> {
    let types: Vec<String> = field
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    (!types.is_empty()).then_some(types)
}

/// `POST /dashboard/webhooks/endpoints`: the same use case as the API's create (URL rules,
/// event types, the per-account limit).
pub(super) async fn create_endpoint(
    State(st): State<AppState>,
    dash: Dash,
    Posted(form): Posted<EndpointForm>,
) -> DashResult<Response> {
    let description = Some(form.description.trim().to_owned()).filter(|d| !d.is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > ENDPOINT_DESCRIPTION_MAX_CHARS)
    {
        return Err(ApiError::invalid(
            "description",
            format!("description is longer than {ENDPOINT_DESCRIPTION_MAX_CHARS} characters"),
        )
        .into());
    }
    endpoints::create(
        &st.app,
        &dash.principal,
        form.url.trim(),
        event_types(&form.events),
        Some(true),
        description,
    )
    .await?;
    Ok(Redirect::to("/dashboard/webhooks?done=endpoint_added").into_response())
}

/// The enable/disable form.
#[derive(Debug, Deserialize)]
pub(super) struct EnableForm {
    #[serde(default)]
    enabled: String,
}

/// `POST /dashboard/webhooks/endpoints/{id}/enabled`: `enabled=true` or `false`.
pub(super) async fn set_enabled(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<EnableForm>,
) -> DashResult<Response> {
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(ApiError::invalid("enabled", "true or false").into()),
    };
    endpoints::update(
        &st.app,
        &dash.principal,
        &id,
        None,
        None,
        Some(enabled),
        None,
    )
    .await?;
    let done = if enabled {
        "endpoint_enabled"
    } else {
        "endpoint_disabled"
    };
    Ok(Redirect::to(&format!("/dashboard/webhooks?done={done}")).into_response())
}

/// `POST /dashboard/webhooks/endpoints/{id}/test`: a `webhook.test` event to that endpoint.
pub(super) async fn test_endpoint(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    endpoints::send_test(&st.app, &dash.principal, &id).await?;
    Ok(Redirect::to("/dashboard/webhooks?done=tested").into_response())
}

/// The delete form: `confirm=yes` is the confirmation (the page's script also asks).
#[derive(Debug, Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/webhooks/endpoints/{id}/delete`.
pub(super) async fn delete_endpoint(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<DeleteForm>,
) -> DashResult<Response> {
    if form.confirm != "yes" {
        return Err(ApiError::invalid("confirm", "tick the box to confirm the deletion").into());
    }
    endpoints::delete(&st.app, &dash.principal, &id).await?;
    Ok(Redirect::to("/dashboard/webhooks?done=endpoint_deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::event_types;

    #[test]
    fn event_types_are_split_on_commas_and_spaces() {
        assert_eq!(event_types(""), None);
        assert_eq!(event_types(" , "), None);
        assert_eq!(
            event_types("line.ready, message.received  call.ended"),
            Some(vec![
                "line.ready".to_owned(),
                "message.received".to_owned(),
                "call.ended".to_owned()
            ])
        );
        assert_eq!(event_types("*"), Some(vec!["*".to_owned()]));
    }
}
