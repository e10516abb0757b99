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
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "system",
    responses((status = 200, description = "The server is up", body = HealthOut)))]
pub async fn healthz() -> ApiJson<HealthOut> {
    ApiJson(HealthOut { status: "ok" })
}

/// Request counts and latencies in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "system",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut text = state.metrics.render();
        text.push_str(&format!(
                "# HELP wagate_lines_served Lines this server serves (owns their connection and jobs).\n\
                 # TYPE wagate_lines_served gauge\nwagate_lines_served {}\n",
                state.app.ownership.owned_count()
            ));
        text
    })
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
