//! Bearer authentication: a middleware that resolves the key once and an extractor that
//! hands handlers the account.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use wagate_app::accounts::{authenticate, Principal};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(ErrorCode::Unauthorized, message).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Rejects requests without a valid `Authorization: Bearer <key>`; otherwise stores the
/// [`Principal`] in the request for [`Authed`].
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let Some(presented) = presented else {
        return unauthorized("send your API key as `Authorization: Bearer <key>`");
    };
    match authenticate(&state.app, &presented).await {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => unauthorized("the API key is not valid (unknown or revoked)"),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authed)
            .ok_or_else(|| unauthorized("authentication required"))
    }
}
