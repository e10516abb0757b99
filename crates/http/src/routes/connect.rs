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
        let code = st
            .app
            .connector
            .qr(
                &line.id,
                line.link_count,
                line.pairing_started_at,
                st.app.clock.now(),
            )
            .await
            .map_err(LoadError::NoQr)?;
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
