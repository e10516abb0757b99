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
