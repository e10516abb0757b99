//! `Idempotency-Key` on POST: the first response is stored and replayed to repeats.
//!
//! The key is claimed in the store before the handler runs, so concurrent requests with one
//! key do the work once: the others wait for the first to finish and get its response. A 5xx
//! is not stored (the key is released so a retry can succeed), nor is a 429. Keys live 24 h.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use wagate_app::accounts::Principal;
use wagate_store::{IdempotencyBegin, StoredResponse};

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
const RETENTION: SignedDuration = SignedDuration::from_hours(24);

fn valid_key(k: &str) -> bool {
    (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
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
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let Some(who) = req.extensions().get::<Principal>().cloned() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
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
    let started = std::time::Instant::now();
    loop {
        let wall = app.wall.now();
        let begun = app
            .store
            .idempotency_begin(
                account,
                &key,
                &fingerprint,
                wall,
                wall + LOCK,
                wall - RETENTION,
            )
            .await;
        match begun {
            Ok(IdempotencyBegin::Started) => break,
            Ok(IdempotencyBegin::Replay(stored)) => return replayed(stored),
            Ok(IdempotencyBegin::Mismatch) => {
                return ApiError::new(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was used with a different request",
                )
                .with("param", "Idempotency-Key")
                .into_response()
            }
            Ok(IdempotencyBegin::InProgress) if started.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(20)).await;
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
    }

    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = resp.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        if let Err(e) = app.store.idempotency_release(account, &key).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
        return resp;
    }
    let (rparts, rbody) = resp.into_parts();
    let rbytes = match to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        body: String::from_utf8_lossy(&rbytes).into_owned(),
    };
    if let Err(e) = app.store.idempotency_finish(account, &key, &stored).await {
        // The work is done; the key stays claimed until its lock lapses.
        tracing::error!(error = %e, "could not store an idempotent response");
    }
    Response::from_parts(rparts, Body::from(rbytes))
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
