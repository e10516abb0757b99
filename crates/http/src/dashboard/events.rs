//! `GET /dashboard/events`: the dashboard's live updates as server-sent events.
//!
//! The stream polls the application layer once a second (wall time) and sends what changed
//! since its last look: a `line` event per line whose status or number changed, and, with
//! `?line=<id>`, a `message` event per new message of that line or message whose status
//! changed. Polling the app layer rather than listening to an in-process bus means any
//! server sharing the database serves any browser: a line scanned through server A shows up
//! on a dashboard connected to server B. The first look sends everything it sees, so nothing
//! that changed between the page's render and the stream's start is missed. The stream ends
//! after ten minutes (the browser reconnects by itself), when the server stops, and as soon
//! as the session ends (signed out, or its key revoked).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use wagate_app::lines::view::message_json;
use wagate_domain::ids::LineId;
use wagate_domain::page::PageRequest;

use super::line::MessageRow;
use super::session::{cookie, Dash, SESSION_COOKIE};
use super::view::{status_words, DashResult};
use crate::error::ApiError;
use crate::routes::lines::line_id;
use crate::AppState;

/// Between two looks.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one stream lasts before the browser reconnects.
const STREAM_FOR: Duration = Duration::from_secs(600);
/// How many lines and messages one look reads.
const LINES_LOOKED_AT: i64 = 200;
const MESSAGES_LOOKED_AT: i64 = 20;

/// The query: the line whose messages the page shows, if any.
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    line: Option<String>,
}

/// What the stream has sent so far.
struct Seen {
    st: AppState,
    dash: Dash,
    secret: String,
    line: Option<LineId>,
    lines: HashMap<String, String>,
    messages: HashMap<String, String>,
    calls: HashMap<String, String>,
    queue: std::collections::VecDeque<Event>,
    until: tokio::time::Instant,
    first: bool,
}

impl Seen {
    /// One look at the app layer: queues the events of what changed. `false` when the stream
    /// should end (the session is gone).
    async fn look(&mut self) -> DashResult<bool> {
        let alive = wagate_app::dashboard::session(&self.st.app, &self.secret).await?;
        if alive.is_none() {
            return Ok(false);
        }
        let who = &self.dash.principal;
        let page = PageRequest::new(Some(LINES_LOOKED_AT), None)
            .map_err(|e| ApiError::invalid("limit", e.to_string()))?;
        let lines = self.st.app.lines.list(&who.account.id, &page).await?;
        for l in &lines.data {
            let status = l.status.as_str();
            let phone = l.phone_number.clone().unwrap_or_default();
            let fingerprint = format!("{status}|{phone}");
            if self.lines.get(l.id.as_str()) != Some(&fingerprint) {
                self.lines.insert(l.id.to_string(), fingerprint);
                let data = json!({
                    "id": l.id,
                    "status": status,
                    "status_text": status_words(status),
                    "phone_number": phone,
                });
                self.queue
                    .push_back(Event::default().event("line").data(data.to_string()));
            }
        }
        if let Some(line) = &self.line {
            let page = PageRequest::new(Some(MESSAGES_LOOKED_AT), None)
                .map_err(|e| ApiError::invalid("limit", e.to_string()))?;
            let found = self.st.app.lines.messages(who, line, &page).await?;
            // Oldest first, so the page adds them in order.
            for m in found.data.iter().rev() {
                let status = m.status.as_str().to_owned();
                if self.messages.get(m.id.as_str()) != Some(&status) {
                    self.messages.insert(m.id.to_string(), status);
                    let row = MessageRow::from_json(&message_json(m));
                    let data = json!({
                        "id": row.id,
                        "direction": row.direction,
                        "who": row.who,
                        "text": row.text,
                        "status": row.status,
                        "at": row.at,
                    });
                    self.queue
                        .push_back(Event::default().event("message").data(data.to_string()));
                }
            }
            let found = self.st.app.calls.list(who, line, &page).await?;
            for c in found.data.iter().rev() {
                let status = c.status.as_str().to_owned();
                if self.calls.get(c.id.as_str()) != Some(&status) {
                    self.calls.insert(c.id.to_string(), status);
                    let v = self.st.app.calls.json(c);
                    let data = json!({
                        "id": v["id"],
                        "direction": v["direction"],
                        "from": v["from"],
                        "to": v["to"],
                        "status": v["status"],
                        "end_reason": v["end_reason"],
                    });
                    self.queue
                        .push_back(Event::default().event("call").data(data.to_string()));
                }
            }
        }
        Ok(true)
    }
}

/// `GET /dashboard/events[?line=<id>]`.
pub(super) async fn stream(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let line = match q.line.filter(|l| !l.is_empty()) {
        Some(id) => {
            let id = line_id(&id)?;
            // Another account's line is 404 here too.
            st.app.lines.get(&dash.principal.account.id, &id).await?;
            Some(id)
        }
        None => None,
    };
    let secret = cookie(&headers, SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let seen = Seen {
        st,
        dash,
        secret,
        line,
        lines: HashMap::new(),
        messages: HashMap::new(),
        calls: HashMap::new(),
        queue: std::collections::VecDeque::new(),
        until: tokio::time::Instant::now() + STREAM_FOR,
        first: true,
    };
    let events = futures_util::stream::unfold(seen, |mut seen| async move {
        let mut stopping = seen.st.stopping.clone();
        loop {
            if let Some(event) = seen.queue.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(event), seen));
            }
            if !seen.first {
                tokio::select! {
                    _ = tokio::time::sleep(CHECK_EVERY) => {}
                    _ = stopping.wait_for(|s| *s) => return None,
                }
            }
            seen.first = false;
            if tokio::time::Instant::now() >= seen.until || *stopping.borrow() {
                return None;
            }
            match seen.look().await {
                Ok(true) => {}
                Ok(false) => return None,
                // A failed look (the database briefly away) is tried again next time.
                Err(e) => tracing::warn!(error = ?e.0, "dashboard live update failed"),
            }
        }
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    super::view::secure_headers(resp.headers_mut());
    Ok(resp)
}
