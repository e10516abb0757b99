//! The hosted connect page: public, reached by its unguessable token, never showing a price.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use wagate_domain::line::LineStatus;
use wagate_store::LineRecord;

use crate::connect_page::{
    render_not_found, render_page, render_unavailable, status_json, ConnectPage, ConnectState,
};
use crate::error::{ApiError, ErrorCode};
use crate::json::ApiJson;
use crate::AppState;

/// The line, its business name and its current QR payload (when it awaits a scan).
struct Loaded {
    line: LineRecord,
    business: String,
    qr: Option<String>,
}

/// Tokens are 32 base-62 characters; anything else is not looked up at all.
fn plausible(token: &str) -> bool {
    (16..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Why a connect page could not be loaded.
enum LoadError {
    /// The connector could not give a QR: the link is fine, come back later.
    NoQr(anyhow::Error),
    /// Anything else (the database).
    Api(ApiError),
}

impl From<ApiError> for LoadError {
    fn from(e: ApiError) -> Self {
        LoadError::Api(e)
    }
}

async fn load(st: &AppState, token: &str) -> Result<Option<Loaded>, LoadError> {
    if !plausible(token) {
        return Ok(None);
    }
    let Some(line) = st
        .app
        .store
        .line_by_token(token)
        .await
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    if line.status == LineStatus::Released {
        return Ok(None);
    }
    let business = st
        .app
        .store
        .get_account(&line.account_id)
        .await
        .map_err(ApiError::internal)?
        .map(|a| a.name)
        .unwrap_or_default();
    let qr = if line.status.awaits_scan() {
        let code = st.app.pairing.qr(&line).await.map_err(LoadError::NoQr)?;
        Some(code.payload)
    } else {
        None
    };
    Ok(Some(Loaded { line, business, qr }))
}

fn page<'a>(token: &'a str, l: &'a Loaded) -> ConnectPage<'a> {
    let state = match l.line.status {
        LineStatus::Ready => ConnectState::Connected {
            phone_number: l.line.phone_number.as_deref(),
        },
        LineStatus::Reconnecting => ConnectState::Reconnecting,
        LineStatus::Blocked => ConnectState::Blocked,
        LineStatus::Released => ConnectState::Released,
        LineStatus::Pending | LineStatus::LoggedOut => ConnectState::AwaitingScan {
            qr_payload: l.qr.as_deref().unwrap_or_default(),
        },
    };
    ConnectPage {
        token,
        business_name: &l.business,
        state,
        allow_calling: l.line.allow_calling,
        calling_choice: l.line.calling_choice,
        calling_locked: l.line.link_count > 0,
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn not_found_page() -> Response {
    no_store((StatusCode::NOT_FOUND, Html(render_not_found())).into_response())
}

/// `GET /connect/{token}`: the page, or a friendly 404 page for an unknown or dead link.
pub async fn show(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    match load(&st, &token).await {
        Ok(Some(l)) => no_store(Html(render_page(&page(&token, &l))).into_response()),
        Ok(None) => not_found_page(),
        Err(LoadError::NoQr(e)) => {
            tracing::warn!(error = %e, "connect page: no QR from the connector");
            no_store(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "60")],
                    Html(render_unavailable()),
                )
                    .into_response(),
            )
        }
        Err(LoadError::Api(e)) => e.into_response(),
    }
}

/// `GET /connect/{token}/status`: what the page polls.
pub async fn status(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    match load(&st, &token).await {
        Ok(Some(l)) => no_store(ApiJson(status_json(&page(&token, &l))).into_response()),
        Ok(None) => no_store(
            (
                StatusCode::NOT_FOUND,
                ApiJson(serde_json::json!({ "state": "released", "error": "not_found" })),
            )
                .into_response(),
        ),
        Err(LoadError::NoQr(e)) => {
            tracing::warn!(error = %e, "connect page status: no QR from the connector");
            no_store(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "60")],
                    ApiJson(serde_json::json!({
                        "state": "unavailable",
                        "error": "connector_unavailable"
                    })),
                )
                    .into_response(),
            )
        }
        Err(LoadError::Api(e)) => e.into_response(),
    }
}

/// The calling toggle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingIn {
    /// On or off.
    pub calling: bool,
}

/// `POST /connect/{token}/calling`: the end customer's calling choice, before the scan.
pub async fn set_calling(
    State(st): State<AppState>,
    Path(token): Path<String>,
    ApiJson(input): ApiJson<CallingIn>,
) -> Response {
    if !plausible(&token) {
        return ApiError::new(ErrorCode::NotFound, "no such connect link").into_response();
    }
    if let Err(e) = st.app.lines.set_calling_choice(&token, input.calling).await {
        return ApiError::from(e).into_response();
    }
    status(State(st), Path(token)).await
}

/// The end customer's number, to link by pairing code instead of the QR.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairCodeIn {
    /// E.164.
    pub phone_number: String,
}

/// `POST /connect/{token}/pair_code`: "link with phone number instead" — the code to type in
/// WhatsApp, the same as `POST /api/v1/wa/lines/{id}/pair_code` gives the business.
pub async fn pair_code(
    State(st): State<AppState>,
    Path(token): Path<String>,
    ApiJson(input): ApiJson<PairCodeIn>,
) -> Response {
    if !plausible(&token) {
        return ApiError::new(ErrorCode::NotFound, "no such connect link").into_response();
    }
    if let Err(e) = wagate_domain::line::validate_e164("phone_number", &input.phone_number) {
        return ApiError::invalid(e.param, e.message).into_response();
    }
    let line = match st.app.store.line_by_token(&token).await {
        Ok(Some(line)) if line.status != LineStatus::Released => line,
        Ok(_) => return ApiError::new(ErrorCode::NotFound, "no such connect link").into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    match super::lines::pairing_code(&st, &line, &input.phone_number).await {
        Ok(code) => no_store(ApiJson(serde_json::json!({ "code": code })).into_response()),
        Err(e) => e.into_response(),
    }
}

/// How often the live updates look for a change (wall time): a rotated QR or "Connected"
/// shows within this.
const LIVE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long one live-update stream lasts before the browser reconnects (EventSource does so
/// by itself): bounds what a forgotten tab holds.
const LIVE_STREAM_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// What the page shows now, as the `status` JSON, and whether it is final (released).
async fn snapshot(st: &AppState, token: &str) -> Option<(String, bool)> {
    match load(st, token).await {
        Ok(Some(l)) => Some((status_json(&page(token, &l)).to_string(), false)),
        Ok(None) => Some((
            serde_json::json!({ "state": "released", "error": "not_found" }).to_string(),
            true,
        )),
        Err(LoadError::NoQr(_)) => Some((
            serde_json::json!({ "state": "unavailable", "error": "connector_unavailable" })
                .to_string(),
            false,
        )),
        // The database hiccuped: say nothing new, look again at the next tick.
        Err(LoadError::Api(_)) => None,
    }
}

/// `GET /connect/{token}/events`: the page's live updates as server-sent events — a `status`
/// event (the same JSON as `/status`) whenever what the page shows changes: a rotated QR,
/// "Connected", a drop. The page falls back to polling `/status` without it.
pub async fn events(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    if !plausible(&token) {
        return ApiError::new(ErrorCode::NotFound, "no such connect link").into_response();
    }
    match load(&st, &token).await {
        Ok(None) => {
            return ApiError::new(ErrorCode::NotFound, "no such connect link").into_response()
        }
        Err(LoadError::Api(e)) => return e.into_response(),
        Ok(Some(_)) | Err(LoadError::NoQr(_)) => {}
    }
    let until = tokio::time::Instant::now() + LIVE_STREAM_FOR;
    let state = (st, token, None::<String>, false);
    let stream = futures_util::stream::unfold(state, move |(st, token, last, done)| async move {
        if done {
            return None;
        }
        let mut stopping = st.stopping.clone();
        loop {
            if last.is_some() {
                tokio::select! {
                    _ = tokio::time::sleep(LIVE_CHECK_EVERY) => {}
                    _ = stopping.wait_for(|s| *s) => return None,
                }
            }
            if tokio::time::Instant::now() >= until || *stopping.borrow() {
                return None;
            }
            let Some((now, last_one)) = snapshot(&st, &token).await else {
                tokio::time::sleep(LIVE_CHECK_EVERY).await;
                continue;
            };
            if last.as_deref() != Some(now.as_str()) {
                let event = Event::default().event("status").data(now.clone());
                return Some((
                    Ok::<_, std::convert::Infallible>(event),
                    (st, token, Some(now), last_one),
                ));
            }
        }
    });
    no_store(
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}
