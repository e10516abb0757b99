//! Meta's webhooks for Cloud API lines: the subscription check and signed deliveries.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;
use wagate_app::cloud::WebhookRefused;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ApiJson;
use crate::AppState;

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetaReceivedOut {
    /// Notifications applied now.
    pub applied: usize,
    /// Notifications applied before (Meta's retries) or for numbers and messages wagate does
    /// not serve.
    pub skipped: usize,
}

/// Meta's subscription check: answers `hub.challenge` when `hub.mode` is `subscribe` and
/// `hub.verify_token` is the configured `meta_verify_token`; 403 otherwise.
#[utoipa::path(get, path = "/meta/webhooks", operation_id = "verifyMetaWebhook", tag = "meta",
    params(
        ("hub.mode" = Option<String>, Query, description = "`subscribe`"),
        ("hub.verify_token" = Option<String>, Query, description = "The configured verify token"),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back"),
    ),
    responses((status = 200, description = "The challenge", content_type = "text/plain"),
        (status = 403, description = "`forbidden`: wrong token or mode", body = crate::openapi::ErrorOut)))]
pub async fn verify(
    State(st): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<impl IntoResponse> {
    let pairs = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match st.app.cloud.verify_subscription(pairs) {
        Some(challenge) => Ok(([(header::CONTENT_TYPE, "text/plain")], challenge)),
        None => Err(ApiError::new(
            ErrorCode::Forbidden,
            "the verify token does not match this server's meta_verify_token",
        )),
    }
}

/// A delivery of Meta's webhooks (inbound messages, statuses with Meta's pricing). The body
/// must carry `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with `meta_app_secret`), or
/// it is refused (401) and nothing is stored. Each notification is applied once (Meta
/// retries), durably, before the 200; a 500 makes Meta deliver again.
#[utoipa::path(post, path = "/meta/webhooks", operation_id = "receiveMetaWebhook", tag = "meta",
    request_body(content = Object, description = "Meta's webhook body", content_type = "application/json"),
    params(("X-Hub-Signature-256" = Option<String>, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body")),
    responses((status = 200, description = "Applied", body = MetaReceivedOut),
        (status = 400, description = "`bad_request`: not a Meta webhook body", body = crate::openapi::ErrorOut),
        (status = 401, description = "`invalid_signature`", body = crate::openapi::ErrorOut)))]
pub async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, ApiJson<MetaReceivedOut>)> {
    let signature = headers
        .get(wagate_meta::webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    match st.app.cloud.receive(&body, signature).await {
        Ok(applied) => {
            let r = applied?;
            Ok((
                StatusCode::OK,
                ApiJson(MetaReceivedOut {
                    applied: r.applied,
                    skipped: r.skipped,
                }),
            ))
        }
        Err(e @ (WebhookRefused::NotConfigured | WebhookRefused::BadSignature)) => {
            Err(ApiError::new(ErrorCode::InvalidSignature, e.to_string()))
        }
        Err(e @ WebhookRefused::Malformed(_)) => {
            Err(ApiError::new(ErrorCode::BadRequest, e.to_string()))
        }
    }
}
