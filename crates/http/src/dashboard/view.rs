//! What every dashboard page shares: the layout's values, HTML responses with the page
//! headers, error pages, and small readers of the API's JSON objects.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use wagate_app::AppError;

use crate::error::{ApiError, ErrorCode};

/// Headers of every dashboard answer: never cached, never framed, no outside resources, no
/// inline script (the script is a file of ours).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; media-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The pages of the navigation, for the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    /// Lines (and a line).
    Lines,
    /// The wallet.
    Wallet,
    /// Webhooks.
    Webhooks,
    /// Invoices.
    Invoices,
    /// Virtual numbers.
    Numbers,
}

/// What the layout needs of any signed-in page.
#[derive(Debug, Clone)]
pub(super) struct Chrome {
    /// The account's name, shown in the header.
    pub account: String,
    /// The session's CSRF token, for the sign-out form and every other form.
    pub csrf: String,
    /// The current section, marked in the navigation.
    pub section: Section,
}

impl Chrome {
    /// The layout of `section` for a signed-in session.
    pub fn new(dash: &super::session::Dash, section: Section) -> Self {
        Chrome {
            account: dash.principal.account.name.clone(),
            csrf: dash.csrf.clone(),
            section,
        }
    }

    /// `aria-current="page"` on the current section's link.
    pub fn current(&self, name: &str) -> &'static str {
        let here = match self.section {
            Section::Lines => "lines",
            Section::Wallet => "wallet",
            Section::Webhooks => "webhooks",
            Section::Invoices => "invoices",
            Section::Numbers => "numbers",
        };
        if here == name {
            " aria-current=\"page\""
        } else {
            ""
        }
    }
}

/// An HTML answer with the dashboard's headers.
pub(super) fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    resp
}

/// The dashboard's security headers on any answer.
pub(super) fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Renders a page template; askama writing strings into a String cannot fail, but a failure
/// would be a 500 rather than a panic.
pub(super) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => html(status, body),
        Err(e) => DashError::from(ApiError::internal(e)).into_response(),
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
}

/// A page that says what went wrong, with `status`.
pub(super) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorTemplate {
            title,
            message,
            status: status.as_u16(),
        },
    )
}

/// Any failure of a dashboard handler: the API's error, shown as a page with the API's status
/// (404 for another account's objects, 402 for a payment problem …).
#[derive(Debug)]
pub(super) struct DashError(pub ApiError);

impl From<ApiError> for DashError {
    fn from(e: ApiError) -> Self {
        DashError(e)
    }
}

impl From<AppError> for DashError {
    fn from(e: AppError) -> Self {
        DashError(ApiError::from(e))
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let status = self.0.code().status();
        let title = match self.0.code() {
            ErrorCode::OutOfStock => "Out of stock",
            ErrorCode::InsufficientBalance => "Not enough balance",
            ErrorCode::NumbersUnavailable => "Numbers unavailable",
            _ => title_of(status),
        };
        // API messages are written for clients: an internal error was logged where it
        // happened and its message names only a reference.
        error_page(status, title, self.0.message())
    }
}

/// The title of an error page of `status`.
fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "Not found",
        402 => "Payment problem",
        401 | 403 => "Not allowed",
        409 => "Not possible right now",
        422 | 400 => "Check the form",
        429 => "Too many requests",
        s if s >= 500 => "Something went wrong",
        _ => "Request refused",
    }
}

/// The result of a dashboard handler.
pub(super) type DashResult<T> = Result<T, DashError>;

/// A string field of an API object, or "" when absent or null.
pub(super) fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A time field shown short: `2026-01-01 12:00 UTC` (or "" when absent).
pub(super) fn when(v: &Value, key: &str) -> String {
    short_time(&s(v, key))
}

/// An RFC 3339 time shown short.
pub(super) fn short_time(t: &str) -> String {
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => t.to_owned(),
    }
}

/// A line status in words, with the symbol shown beside it (colour is never the only sign).
pub(super) fn status_words(status: &str) -> &'static str {
    match status {
        "pending" => "Waiting for scan",
        "ready" => "Ready",
        "reconnecting" => "Reconnecting",
        "logged_out" => "Logged out",
        "blocked" => "Blocked",
        "released" => "Released",
        _ => "Unknown",
    }
}
