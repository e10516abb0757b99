//! Health, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::json::ApiJson;
use crate::AppState;

/// The health check body.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// Always `ok` when the server answers.
    pub status: &'static str,
    /// Whether this server can connect WhatsApp lines.
    pub connector: ConnectorOut,
}

/// The WhatsApp connector's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorOut {
    /// `simulator` (sandbox), `whatsapp_web`, or `none`.
    pub kind: &'static str,
    /// `ok`, `unreachable` (WhatsApp cannot be reached now; retrying) or `not_configured`.
    pub state: &'static str,
    /// Why, when not `ok`.
    pub detail: Option<String>,
}

/// Liveness: the process answers (200 even when WhatsApp is unreachable: the server is up;
/// `connector` says the rest).
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "system",
    responses((status = 200, description = "The server is up", body = HealthOut)))]
pub async fn healthz(State(state): State<AppState>) -> ApiJson<HealthOut> {
    let h = state.app.connector.health();
    ApiJson(HealthOut {
        status: "ok",
        connector: ConnectorOut {
            kind: h.kind,
            state: h.state.as_str(),
            detail: h.detail,
        },
    })
}

/// Request counts and latencies in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "system",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    let health = state.app.connector.health();
    let up = u8::from(health.state == wagate_app::connector::ConnectorState::Ok);
    text.push_str(&format!(
        "# HELP wagate_connector_up 1 when the WhatsApp connector can reach WhatsApp.\n\
         # TYPE wagate_connector_up gauge\nwagate_connector_up{{kind=\"{}\"}} {up}\n\
         # HELP wagate_lines_served Lines this server serves (owns their connection and jobs).\n\
         # TYPE wagate_lines_served gauge\nwagate_lines_served {}\n",
        health.kind,
        state.app.ownership.owned_count()
    ));
    let m = &state.app.calls.media;
    let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    text.push_str(&format!(
        "# HELP wagate_call_frames_total Call audio frames relayed by the media sockets, by direction.\n\
         # TYPE wagate_call_frames_total counter\n\
         wagate_call_frames_total{{direction=\"to_phone\"}} {}\n\
         wagate_call_frames_total{{direction=\"to_client\"}} {}\n\
         # HELP wagate_call_frames_dropped_total Call audio frames dropped because the receiving side did not keep up.\n\
         # TYPE wagate_call_frames_dropped_total counter\nwagate_call_frames_dropped_total {}\n\
         # HELP wagate_call_frames_malformed_total Binary messages on media sockets that were not one 640-byte frame.\n\
         # TYPE wagate_call_frames_malformed_total counter\nwagate_call_frames_malformed_total {}\n",
        read(&m.frames_to_phone),
        read(&m.frames_to_client),
        read(&m.frames_dropped),
        read(&m.frames_malformed),
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "getOpenApiDocument", tag = "system",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
}
