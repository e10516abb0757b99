//! `/dashboard`: the sign-in form when signed out, else the account's lines: filter by
//! status, create (with the calling choice), copy the connect link, edit the label, release.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use wagate_app::connector::ConnectorState;
use wagate_app::lines::CreateLine;
use wagate_domain::line::ReleaseReason;
use wagate_domain::page::PageRequest;

use super::session::{self, Dash, Posted};
use super::view::{self, render, s, status_words, Chrome, DashResult, Section};
use crate::error::{ApiError, ErrorCode};
use crate::routes::lines::{line_id, lines_out};
use crate::AppState;

/// The status filters, as `(value, words)`; "" is every status.
const FILTERS: [(&str, &str); 7] = [
    ("", "All lines"),
    ("pending", "Waiting for scan"),
    ("ready", "Ready"),
    ("reconnecting", "Reconnecting"),
    ("logged_out", "Logged out"),
    ("blocked", "Blocked"),
    ("released", "Released"),
];

/// How many lines one page reads (the filter applies to them).
const PAGE: i64 = 200;

/// A line as a row of the list (and the head of its own page).
#[derive(Debug, Clone)]
pub(super) struct LineRow {
    /// `line_…`.
    pub id: String,
    /// The API's status value (`ready` …), for `data-status`.
    pub status: String,
    /// The status in words.
    pub status_text: &'static str,
    /// The business's label ("" when none).
    pub label: String,
    /// The plan and its price, or "Chosen at scan".
    pub plan: String,
    /// The linked number ("" until known).
    pub phone: String,
    /// The end of the running period ("" when none).
    pub renews: String,
    /// The connect page ("" when the line has none).
    pub connect_url: String,
    /// The calling choice in words.
    pub calling: &'static str,
    /// `active`, `trialing`, `past_due` …
    pub billing_status: String,
    /// Why a waiting line cannot connect, when the connector is down ("" otherwise).
    pub status_detail: String,
}

impl LineRow {
    /// The row of an API line object.
    pub fn from_json(v: &Value) -> Self {
        let status = s(v, "status");
        let plan = match (s(v, "plan").as_str(), s(v, "price").as_str()) {
            ("", _) => "Chosen at scan".to_owned(),
            (plan, "") => plan.to_owned(),
            (plan, price) => format!("{plan} · {price} {}/month", s(v, "currency")),
        };
        let calling = match (v["calling_enabled"].as_bool(), v["allow_calling"].as_bool()) {
            (Some(true), _) => "Calling included",
            (_, Some(true)) => "Customer chooses",
            _ => "Messaging only",
        };
        LineRow {
            id: s(v, "id"),
            status_text: status_words(&status),
            status,
            label: s(v, "label"),
            plan,
            phone: s(v, "phone_number"),
            renews: view::when(v, "current_period_end"),
            connect_url: s(v, "connect_url"),
            calling,
            billing_status: s(v, "billing_status"),
            status_detail: s(v, "status_detail"),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/signin.html")]
struct SignInTemplate<'a> {
    csrf: String,
    problem: Option<&'a str>,
}

/// The sign-in form, with a fresh double-submit token in its cookie.
pub(super) fn sign_in_page(st: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    let token = session::signin_token();
    let mut resp = render(
        status,
        &SignInTemplate {
            csrf: token.clone(),
            problem,
        },
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(st, session::SIGNIN_COOKIE, &token, 3600),
    );
    resp
}

#[derive(Template)]
#[template(path = "dashboard/lines.html")]
struct LinesTemplate {
    chrome: Chrome,
    lines: Vec<LineRow>,
    filters: [(&'static str, &'static str); 7],
    filter: String,
    next_page: Option<String>,
    calling_available: bool,
    notice: Option<&'static str>,
}

/// The query of `/dashboard`.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: String,
    starting_after: Option<String>,
    done: Option<String>,
}

/// The words of a `?done=` notice after a redirect (never text from the URL itself).
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("Line created. Send its connect link to your customer."),
        "released" => Some("Line released."),
        "labelled" => Some("Label saved."),
        _ => None,
    }
}

/// `GET /dashboard`.
pub(super) async fn index(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match session::current(&st, &headers).await {
        Ok(Some(dash)) => list(st, dash, q)
            .await
            .unwrap_or_else(|e| e.into_response()),
        Ok(None) => sign_in_page(&st, StatusCode::OK, None),
        Err(e) => e.into_response(),
    }
}

async fn list(
    st: AppState,
    dash: Dash,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    if !FILTERS.iter().any(|(v, _)| *v == q.status) {
        return Err(ApiError::invalid("status", "not a line status").into());
    }
    let page = PageRequest::new(Some(PAGE), q.starting_after.filter(|a| !a.is_empty()))
        .map_err(|e| ApiError::invalid("starting_after", e.to_string()))?;
    let found = st.app.lines.list(&dash.principal.account.id, &page).await?;
    let next_page = found
        .has_more
        .then(|| found.data.last().map(|l| l.id.to_string()))
        .flatten();
    let lines = lines_out(&st, &found.data)
        .await?
        .iter()
        .map(LineRow::from_json)
        .filter(|l| q.status.is_empty() || l.status == q.status)
        .collect();
    Ok(render(
        StatusCode::OK,
        &LinesTemplate {
            chrome: Chrome::new(&dash, Section::Lines),
            lines,
            filters: FILTERS,
            filter: q.status,
            next_page,
            calling_available: dash.principal.account.calling_enabled,
            notice: notice(q.done.as_deref()),
        },
    ))
}

/// The new-line form.
#[derive(Debug, Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    label: String,
    /// `off`, `on` (calling included) or `choice` (the customer chooses).
    #[serde(default)]
    calling: String,
}

/// `POST /dashboard/lines`: through the same use case as `POST /api/v1/wa/lines`.
pub(super) async fn create(
    State(st): State<AppState>,
    dash: Dash,
    Posted(form): Posted<CreateForm>,
) -> DashResult<Response> {
    let (calling_enabled, allow_calling) = match form.calling.as_str() {
        "" | "off" => (false, false),
        "on" => (true, false),
        "choice" => (false, true),
        _ => return Err(ApiError::invalid("calling", "choose off, on or choice").into()),
    };
    if st.app.connector.health().state == ConnectorState::NotConfigured {
        return Err(ApiError::new(
            ErrorCode::ConnectorUnavailable,
            "this server has no WhatsApp connector configured, so no line could be connected",
        )
        .into());
    }
    let label = Some(form.label.trim().to_owned()).filter(|l| !l.is_empty());
    st.app
        .lines
        .create(
            &dash.principal,
            CreateLine {
                calling_enabled,
                allow_calling,
                label,
                metadata: Default::default(),
            },
        )
        .await?;
    Ok(Redirect::to("/dashboard?done=created").into_response())
}

/// The label form.
#[derive(Debug, Deserialize)]
pub(super) struct LabelForm {
    #[serde(default)]
    label: String,
}

/// `POST /dashboard/lines/{id}/label`: an empty label removes it.
pub(super) async fn label(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<LabelForm>,
) -> DashResult<Response> {
    let id = line_id(&id)?;
    let label = Some(form.label.trim().to_owned()).filter(|l| !l.is_empty());
    st.app
        .lines
        .update(&dash.principal.account.id, &id, Some(label), None)
        .await?;
    Ok(Redirect::to("/dashboard?done=labelled").into_response())
}

/// The release form: `confirm=yes` is the confirmation (the page's script also asks).
#[derive(Debug, Deserialize)]
pub(super) struct ReleaseForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/lines/{id}/release`.
pub(super) async fn release(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<ReleaseForm>,
) -> DashResult<Response> {
    let id = line_id(&id)?;
    if form.confirm != "yes" {
        return Err(ApiError::invalid("confirm", "tick the box to confirm the release").into());
    }
    st.app
        .lines
        .release(&dash.principal.account.id, &id, ReleaseReason::Requested)
        .await?;
    Ok(Redirect::to("/dashboard?done=released").into_response())
}
