//! `/dashboard/lines/{id}`: one line, its messages and calls; send a message; click-to-call
//! (the page's script streams the microphone and the speaker over the call's media socket).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use wagate_app::lines::view::message_json;
use wagate_domain::ids::CallId;
use wagate_domain::page::PageRequest;

use super::lines::LineRow;
use super::session::{Dash, Posted};
use super::view::{render, s, short_time, when, Chrome, DashResult, Section};
use crate::error::ApiError;
use crate::routes::lines::{line_id, line_out};
use crate::AppState;

/// How many messages and calls the page shows.
const SHOWN: i64 = 50;

/// A message as the page shows it.
#[derive(Debug, Clone)]
pub(super) struct MessageRow {
    /// `msg_…`.
    pub id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// "From +…" or "To +…".
    pub who: String,
    /// The text, or `[image]` … for a media message without a caption.
    pub text: String,
    /// `queued`, `sent`, `delivered`, `read`, `failed` or `received`.
    pub status: String,
    /// When, shown short.
    pub at: String,
}

impl MessageRow {
    /// The row of an API message object.
    pub fn from_json(v: &Value) -> Self {
        let direction = s(v, "direction");
        let who = if direction == "inbound" {
            format!("From {}", s(v, "from"))
        } else {
            format!("To {}", s(v, "to"))
        };
        let text = match s(v, "text") {
            t if t.is_empty() => format!("[{}]", s(v, "type")),
            t => t,
        };
        MessageRow {
            id: s(v, "id"),
            direction,
            who,
            text,
            status: s(v, "status"),
            at: when(v, "created_at"),
        }
    }
}

/// A call as the page shows it.
#[derive(Debug, Clone)]
struct CallRow {
    id: String,
    direction: String,
    other: String,
    status: String,
    end_reason: String,
    duration: String,
    at: String,
    live: bool,
    /// An inbound call that rings: it can be answered or rejected.
    incoming: bool,
}

impl CallRow {
    fn from_json(v: &Value) -> Self {
        let direction = s(v, "direction");
        let other = if direction == "inbound" {
            s(v, "from")
        } else {
            s(v, "to")
        };
        let status = s(v, "status");
        CallRow {
            id: s(v, "id"),
            incoming: direction == "inbound" && status == "ringing",
            live: status != "ended",
            direction,
            other,
            status,
            end_reason: s(v, "end_reason"),
            duration: format!("{} s", v["duration_seconds"].as_i64().unwrap_or(0)),
            at: short_time(&s(v, "created_at")),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/line.html")]
struct LineTemplate {
    chrome: Chrome,
    line: LineRow,
    messages: Vec<MessageRow>,
    calls: Vec<CallRow>,
    can_call: bool,
    notice: Option<&'static str>,
}

/// The query of a line's page.
#[derive(Debug, Deserialize)]
pub(super) struct LineQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "sent" => Some("Message queued."),
        "called" => Some("Call placed."),
        "hung_up" => Some("Call ended."),
        "answered" => Some("Call answered."),
        "rejected" => Some("Call rejected."),
        _ => None,
    }
}

/// `GET /dashboard/lines/{id}`.
pub(super) async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    q: Result<Query<LineQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let who = &dash.principal;
    let id = line_id(&id)?;
    let record = st.app.lines.get(&who.account.id, &id).await?;
    let line = line_out(&st, &record).await?;
    let page = PageRequest::new(Some(SHOWN), None)
        .map_err(|e| ApiError::invalid("limit", e.to_string()))?;
    let messages = st.app.lines.messages(who, &id, &page).await?;
    let calls = st.app.calls.list(who, &id, &page).await?;
    let can_call = s(&line, "plan") == "calling" && s(&line, "status") == "ready";
    Ok(render(
        StatusCode::OK,
        &LineTemplate {
            chrome: Chrome::new(&dash, Section::Lines),
            line: LineRow::from_json(&line),
            messages: messages
                .data
                .iter()
                .map(|m| MessageRow::from_json(&message_json(m)))
                .collect(),
            calls: calls
                .data
                .iter()
                .map(|c| CallRow::from_json(&st.app.calls.json(c)))
                .collect(),
            can_call,
            notice: notice(q.done.as_deref()),
        },
    ))
}

/// The send form.
#[derive(Debug, Deserialize)]
pub(super) struct SendForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
}

/// `POST /dashboard/lines/{id}/messages`: the same use case as the API's send (limits,
/// line state and E.164 checks included).
pub(super) async fn send(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<SendForm>,
) -> DashResult<Response> {
    let id = line_id(&id)?;
    if st
        .app
        .cloud
        .is_cloud_line(&dash.principal.account.id, &id)
        .await?
    {
        return Err(ApiError::invalid(
            "line",
            "Cloud API lines send through the API (templates, the service window); the dashboard sends on WhatsApp Web lines",
        )
        .into());
    }
    st.app
        .lines
        .send_text(&dash.principal, &id, form.to.trim(), &form.text)
        .await?;
    Ok(Redirect::to(&format!("/dashboard/lines/{id}?done=sent")).into_response())
}

/// The call form.
#[derive(Debug, Deserialize)]
pub(super) struct CallForm {
    #[serde(default)]
    to: String,
}

/// Whether the request came from the page's script (which wants the call object, to open
/// its media socket) rather than a plain form post (which wants the page again).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `POST /dashboard/lines/{id}/calls`: places a call through the calls service. The
/// script gets the call object (with its `media_url`); a form post gets the page back.
pub(super) async fn call(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Path(id): Path<String>,
    Posted(form): Posted<CallForm>,
) -> DashResult<Response> {
    let id = line_id(&id)?;
    let call = st
        .app
        .calls
        .place(&dash.principal, &id, form.to.trim())
        .await?;
    if wants_json(&headers) {
        let mut resp = (StatusCode::CREATED, axum::Json(st.app.calls.json(&call))).into_response();
        super::view::secure_headers(resp.headers_mut());
        return Ok(resp);
    }
    Ok(Redirect::to(&format!("/dashboard/lines/{id}?done=called")).into_response())
}

/// What the line's side does to a call.
#[derive(Debug, Clone, Copy)]
enum Action {
    Hangup,
    Accept,
    Reject,
}

/// The line's side acts on a call through the calls service: the script gets the call
/// object (an answered call's `media_url` carries the audio), a form post the page again.
async fn act(
    st: &AppState,
    dash: &Dash,
    headers: &HeaderMap,
    id: &str,
    action: Action,
) -> DashResult<Response> {
    let id = CallId::parse(id).map_err(|_| ApiError::not_found("call"))?;
    let who = &dash.principal;
    let (call, done) = match action {
        Action::Hangup => (st.app.calls.hangup(who, &id).await?, "hung_up"),
        Action::Accept => (st.app.calls.accept(who, &id).await?, "answered"),
        Action::Reject => (st.app.calls.reject(who, &id).await?, "rejected"),
    };
    if wants_json(headers) {
        let mut resp = axum::Json(st.app.calls.json(&call)).into_response();
        super::view::secure_headers(resp.headers_mut());
        return Ok(resp);
    }
    Ok(Redirect::to(&format!("/dashboard/lines/{}?done={done}", call.line_id)).into_response())
}

/// `POST /dashboard/calls/{id}/hangup`.
pub(super) async fn hangup(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Path(id): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    act(&st, &dash, &headers, &id, Action::Hangup).await
}

/// `POST /dashboard/calls/{id}/accept`: answers an inbound call that rings.
pub(super) async fn accept(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Path(id): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    act(&st, &dash, &headers, &id, Action::Accept).await
}

/// `POST /dashboard/calls/{id}/reject`: refuses an inbound call that rings.
pub(super) async fn reject(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Path(id): Path<String>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> DashResult<Response> {
    act(&st, &dash, &headers, &id, Action::Reject).await
}
