//! `Idempotency-Key` on POST: the first response is stored and replayed to repeats.
//!
//! The key is claimed in the store before the handler runs, so concurrent requests with one
//! key do the work once: the others wait for the first to finish and get its response.
//!
//! Only an answer that records something done is kept, as Stripe does: a 2xx, or a 402
//! `card_declined` (a charge was attempted and refused; a repeat must not try the card
//! again). Any other answer — a validation error, a missing card, a 404, a 409 about the
//! current state, a 429, a 5xx — depends on state that can change or did nothing, so the key
//! is released and a retry runs afresh (with a corrected body, if the caller fixed it).
//!
//! Secrets in an answer (a new API key) are never stored: the handler names them with
//! [`SecretFields`], and a replay answers the same object without them.
//!
//! Keys live 24 h from their first use: the worker sweeps older rows, and a key used again
//! after that is a new request. [`IdempotencyScope`] tells a handler which use of its key it
//! serves, so work it keys on it (a card payment) is shared by retries and never by a reuse
//! after the window.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use wagate_app::accounts::Principal;
use wagate_app::App;
use wagate_domain::ids::AccountId;
use wagate_store::{IdempotencyBegin, StoreResult, StoredResponse};

use crate::error::{ApiError, ErrorCode};
use crate::json::{too_large, MAX_BODY_BYTES};
use crate::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a repeat waits for the first request to finish before giving up with 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
/// How long a claim blocks repeats if its holder dies mid-request.
const LOCK: SignedDuration = SignedDuration::from_secs(60);
/// How long a key is remembered.
pub const RETENTION: SignedDuration = SignedDuration::from_hours(24);

/// Claims `key` for a request with `fingerprint`: what the store answers, after waiting up to
/// [`WAIT_FOR_FIRST`] while an earlier request with the key is still running (then the
/// answer is `InProgress`). Serves the API's middleware and the dashboard's forms.
pub(crate) async fn begin(
    app: &App,
    account: &AccountId,
    key: &str,
    fingerprint: &str,
) -> StoreResult<IdempotencyBegin> {
    let started = std::time::Instant::now();
    loop {
        let wall = app.wall.now();
        let begun = app
            .store
            .idempotency_begin(
                account,
                key,
                fingerprint,
                wall,
                wall + LOCK,
                wall - RETENTION,
            )
            .await?;
        if matches!(begun, IdempotencyBegin::InProgress) && started.elapsed() < WAIT_FOR_FIRST {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        return Ok(begun);
    }
}

/// Which use of an `Idempotency-Key` a request serves (a request extension, present when
/// the request carries a key): the key, when this use began and the request's fingerprint.
/// Retries of one request share it; a reuse after the 24 h window, or a corrected retry
/// with another body, gets another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope(pub String);

/// Top-level fields of a JSON answer that hold secrets (a response extension): they are
/// removed from the copy kept for replays.
#[derive(Debug, Clone, Copy)]
pub struct SecretFields(pub &'static [&'static str]);

/// Shortest `Idempotency-Key`.
pub const KEY_MIN_LEN: usize = 1;
/// Longest `Idempotency-Key`.
pub const KEY_MAX_LEN: usize = 255;

/// Whether `c` may appear in an `Idempotency-Key`: visible ASCII.
pub fn key_char(c: char) -> bool {
    c.is_ascii_graphic()
}

pub(crate) fn valid_key(k: &str) -> bool {
    (KEY_MIN_LEN..=KEY_MAX_LEN).contains(&k.len()) && k.chars().all(key_char)
}

/// The middleware (runs after authentication).
pub async fn replay(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k) if valid_key(k) => k.to_owned(),
        _ => {
            return ApiError::invalid(
                "Idempotency-Key",
                format!(
                "Idempotency-Key must be {KEY_MIN_LEN} to {KEY_MAX_LEN} visible ASCII characters"
            ),
            )
            .into_response()
        }
    };
    let Some(who) = req.extensions().get::<Principal>().cloned() else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return too_large().into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b"\n");
    hasher.update(parts.uri.to_string());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let fingerprint = hex::encode(hasher.finalize());

    let app = &state.app;
    let account = &who.account.id;
    match begin(app, account, &key, &fingerprint).await {
        Ok(IdempotencyBegin::Started { since }) => {
            let scope = format!("{key}:{}:{}", since.as_microsecond(), &fingerprint[..16]);
            parts.extensions.insert(IdempotencyScope(scope));
        }
        Ok(IdempotencyBegin::Replay(stored)) => return replayed(stored),
        Ok(IdempotencyBegin::Mismatch) => {
            return ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request",
            )
            .with("param", "Idempotency-Key")
            .into_response()
        }
        Ok(IdempotencyBegin::InProgress) => {
            return ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .retry_after(1)
            .into_response()
        }
        Err(e) => return ApiError::internal(e).into_response(),
    }

    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = resp.status();
    let (rparts, rbody) = resp.into_parts();
    let rbytes = match to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    if !keeps(status, &rbytes) {
        if let Err(e) = app.store.idempotency_release(account, &key).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
        return Response::from_parts(rparts, Body::from(rbytes));
    }
    let stored = StoredResponse {
        status: status.as_u16(),
        body: kept_body(&rbytes, rparts.extensions.get::<SecretFields>()),
    };
    if let Err(e) = app.store.idempotency_finish(account, &key, &stored).await {
        // The work is done; the key stays claimed until its lock lapses.
        tracing::error!(error = %e, "could not store an idempotent response");
    }
    Response::from_parts(rparts, Body::from(rbytes))
}

/// Whether an answer records something done, and so is replayed (see the module docs).
fn keeps(status: StatusCode, body: &[u8]) -> bool {
    if status.is_success() {
        return true;
    }
    status == StatusCode::PAYMENT_REQUIRED
        && serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|v| v["error"] == ErrorCode::CardDeclined.as_str())
}

/// The body kept for replays: the answer without its secret fields.
fn kept_body(body: &[u8], secrets: Option<&SecretFields>) -> String {
    if let Some(SecretFields(fields)) = secrets {
        if let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_slice(body) {
            for f in *fields {
                obj.remove(*f);
            }
            return serde_json::Value::Object(obj).to_string();
        }
    }
    String::from_utf8_lossy(body).into_owned()
}

fn replayed(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut resp = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        stored.body,
    )
        .into_response();
    resp.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}
