//! The dashboard's own script and stylesheet, compiled into the binary: no build step, no
//! CDN, so the dashboard works offline and from the operator's server alone.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::view::error_page;

/// `(name, content type, body)` of every asset.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/dashboard.css"),
    ),
];

/// `GET /dashboard/assets/{name}`.
pub(super) async fn serve(Path(name): Path<String>) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "There is no such file.");
    };
    let mut resp = (*body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Short: an upgraded server's script is picked up within minutes.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
