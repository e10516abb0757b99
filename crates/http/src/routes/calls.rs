//! Calls (PRODUCT.md §9): place, list, answer, reject, hang up, and the call's audio socket.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use wagate_app::calls::media::MediaRefused;
use wagate_app::calls::MediaMetrics;
use wagate_app::connector::calling::{RemoteCallEvent, FRAME_BYTES, MEDIA_QUEUE_FRAMES};
use wagate_domain::ids::CallId;

use super::lines::line_id;
use super::webhooks::{query, ListParams};
use super::EmptyIn;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ApiJson;
use crate::AppState;

/// The call object (schema only: the body is built by `wagate_app::calls::call_json`, and a
/// test checks the two list the same fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct CallOut {
    /// `call_…`
    pub id: String,
    /// Always `call`.
    pub object: String,
    /// The line the call is on.
    pub line_id: String,
    /// `outbound` (placed by you) or `inbound` (someone called the line).
    pub direction: String,
    /// The caller (E.164).
    pub from: Option<String>,
    /// The called number (E.164).
    pub to: Option<String>,
    /// `initiated`, `ringing`, `answered` or `ended`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    /// When it began to ring.
    pub ringing_at: Option<String>,
    /// When it was answered.
    pub answered_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Whole seconds from the answer to the end, on the business clock (0 if never answered).
    pub duration_seconds: u64,
    /// Once ended: `completed`, `canceled`, `rejected`, `missed`, `busy` or `failed`.
    pub end_reason: Option<String>,
    /// The call's audio WebSocket (`wss://…/api/v1/calls/{id}/media?token=…`, the token
    /// good for this call only); null once the call ended.
    pub media_url: Option<String>,
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallList {
    /// Newest first.
    #[schema(value_type = Vec<CallOut>)]
    pub data: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
}

/// Place a call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCallIn {
    /// E.164 number to call, e.g. `+447700900123`.
    pub to: String,
}

/// Ring a sandbox line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingCallIn {
    /// The caller (E.164).
    pub from: String,
}

/// The media socket's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaParams {
    /// The token from the call's `media_url`.
    pub token: Option<String>,
}

pub(crate) fn call_id(id: &str) -> ApiResult<CallId> {
    CallId::parse(id).map_err(|_| ApiError::not_found("call"))
}

fn out(st: &AppState, c: &wagate_store::CallRecord) -> ApiJson<Value> {
    ApiJson(st.app.calls.json(c))
}

/// Places a call from a calling line. One call at a time per line (409 `line_busy`); a
/// messaging line → 403 `calling_not_enabled`; a line that is not ready → 409
/// `line_not_ready`. The call rings (`call.ringing`), then is answered (`call.answered`) or
/// ends (`call.ended`) with its reason.
#[utoipa::path(post, path = "/api/v1/wa/lines/{id}/calls", operation_id = "placeCall", tag = "calls", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = PlaceCallIn,
    responses((status = 201, description = "The call", body = CallOut),
        (status = 403, description = "`calling_not_enabled`", body = crate::openapi::ErrorOut),
        (status = 409, description = "`line_busy`, `line_not_ready`, `line_released`", body = crate::openapi::ErrorOut),
        (status = 503, description = "`calling_unavailable`: this server's connector cannot call", body = crate::openapi::ErrorOut)))]
pub async fn place(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PlaceCallIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let call = st.app.calls.place(&who, &line_id(&id)?, &input.to).await?;
    Ok((StatusCode::CREATED, out(&st, &call)))
}

/// A line's calls, both directions, newest first.
#[utoipa::path(get, path = "/api/v1/wa/lines/{id}/calls", operation_id = "listCalls", tag = "calls", security(("api_key" = [])),
    params(("id" = String, Path), ListParams), responses((status = 200, description = "A page of calls", body = CallList)))]
pub async fn list(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<CallList>> {
    let page = query(q)?.page()?;
    let found = st.app.calls.list(&who, &line_id(&id)?, &page).await?;
    Ok(ApiJson(CallList {
        data: found.data.iter().map(|c| st.app.calls.json(c)).collect(),
        has_more: found.has_more,
    }))
}

/// One call.
#[utoipa::path(get, path = "/api/v1/calls/{id}", operation_id = "getCall", tag = "calls", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The call", body = CallOut)))]
pub async fn get(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let call = st.app.calls.get(&who, &call_id(&id)?).await?;
    Ok(out(&st, &call))
}

/// Hangs up: `completed` after an answer, `canceled` before it. An ended call → 409
/// `call_ended`.
#[utoipa::path(post, path = "/api/v1/calls/{id}/hangup", operation_id = "hangupCall", tag = "calls", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, ended", body = CallOut),
        (status = 409, description = "`call_ended`", body = crate::openapi::ErrorOut)))]
pub async fn hangup(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    let call = st.app.calls.hangup(&who, &call_id(&id)?).await?;
    Ok(out(&st, &call))
}

/// Answers an inbound call that rings (not answered within 60 s, it ends `missed`).
#[utoipa::path(post, path = "/api/v1/calls/{id}/accept", operation_id = "acceptCall", tag = "calls", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, answered", body = CallOut),
        (status = 409, description = "`call_ended`, `invalid_state` (not an inbound call that rings)", body = crate::openapi::ErrorOut)))]
pub async fn accept(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    let call = st.app.calls.accept(&who, &call_id(&id)?).await?;
    Ok(out(&st, &call))
}

/// Refuses an inbound call that rings (`rejected`).
#[utoipa::path(post, path = "/api/v1/calls/{id}/reject", operation_id = "rejectCall", tag = "calls", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, ended `rejected`", body = CallOut),
        (status = 409, description = "`call_ended`, `invalid_state` (not an inbound call that rings)", body = crate::openapi::ErrorOut)))]
pub async fn reject(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    let call = st.app.calls.reject(&who, &call_id(&id)?).await?;
    Ok(out(&st, &call))
}

/// The call's audio, both ways, while it is answered: binary frames of 20 ms of 16-bit
/// little-endian mono PCM at 16 kHz (640 bytes). Authenticated by the `token` of the call's
/// `media_url` (no API key: browsers cannot set headers on a WebSocket). A wrong token →
/// 401 `unauthorized`; a call not answered → 409 `invalid_state`; an ended call → 409
/// `call_ended`. The socket closes when the call ends. A client too slow to read loses
/// frames (counted in `/metrics`), never the server's memory.
#[utoipa::path(get, path = "/api/v1/calls/{id}/media", operation_id = "openCallMedia", tag = "calls",
    params(("id" = String, Path), MediaParams),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`bad_request`: the right token, but not a WebSocket request", body = crate::openapi::ErrorOut),
        (status = 401, description = "`unauthorized`: unknown call or wrong token", body = crate::openapi::ErrorOut),
        (status = 409, description = "`invalid_state`, `call_ended`", body = crate::openapi::ErrorOut)))]
pub async fn media(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<MediaParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let token = match q {
        Ok(Query(p)) => p.token.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let refused = |e: MediaRefused| match e {
        MediaRefused::BadToken => {
            ApiError::new(ErrorCode::Unauthorized, "unknown call or wrong media token")
                .into_response()
        }
        MediaRefused::Other(e) => ApiError::from(e).into_response(),
    };
    let call = match st.app.calls.authorize_media(&id, &token).await {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    // Before the audio is opened: a plain GET (a link preview, a retry) must not take the
    // call's audio from the socket that carries it.
    let Ok(upgrade) = upgrade else {
        return ApiError::new(
            ErrorCode::BadRequest,
            "this is a WebSocket: connect with a WebSocket client (Upgrade: websocket)",
        )
        .into_response();
    };
    let media = match st.app.calls.open_media(&call).await {
        Ok(m) => m,
        Err(e) => return refused(e),
    };
    let metrics = st.app.calls.media.clone();
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| bridge(socket, media, metrics))
}

/// How long the bridge waits for a client to take the closing frame before it lets go.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Moves frames between the client's socket and the call until either side stops. Both
/// directions go through bounded queues filled with `try_send`: a side that does not keep
/// up loses frames (counted), and nothing grows. When the phone side ends (the call ended,
/// or another socket took the audio) the client is told and the bridge ends, whether or not
/// the client answers the close.
async fn bridge(
    socket: WebSocket,
    media: wagate_app::connector::calling::CallMedia,
    metrics: Arc<MediaMetrics>,
) {
    let (mut sink, mut stream) = socket.split();
    let wagate_app::connector::calling::CallMedia {
        to_phone,
        mut from_phone,
    } = media;
    let (to_client, mut outbox) = mpsc::channel::<Message>(MEDIA_QUEUE_FRAMES);
    let mut writer = tokio::spawn(async move {
        while let Some(m) = outbox.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    loop {
        tokio::select! {
            frame = from_phone.recv() => match frame {
                Some(frame) => offer(
                    &to_client,
                    Message::Binary(frame),
                    &metrics.frames_to_client,
                    &metrics,
                ),
                None => {
                    // The queue may be full of audio for a client that stopped reading: the
                    // close goes through if there is room, and the wait below is bounded.
                    let _ = to_client.try_send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: axum::extract::ws::close_code::NORMAL,
                        reason: "the call's audio ended".into(),
                    })));
                    break;
                }
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(frame))) if frame.len() == FRAME_BYTES => {
                    match to_phone.try_send(frame) {
                        Ok(()) => MediaMetrics::bump(&metrics.frames_to_phone),
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            MediaMetrics::bump(&metrics.frames_dropped)
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
                Some(Ok(Message::Binary(_))) => MediaMetrics::bump(&metrics.frames_malformed),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // Pings are answered by the WebSocket layer; text carries nothing here.
                Some(Ok(_)) => {}
            },
        }
    }
    drop(to_phone);
    drop(to_client);
    if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// Queues `m` for the client unless its queue is full (then the frame is dropped).
fn offer(to: &mpsc::Sender<Message>, m: Message, sent: &AtomicU64, metrics: &MediaMetrics) {
    match to.try_send(m) {
        Ok(()) => MediaMetrics::bump(sent),
        Err(_) => MediaMetrics::bump(&metrics.frames_dropped),
    }
}

async fn sandbox_act(
    st: &AppState,
    who: &wagate_app::accounts::Principal,
    id: &str,
    event: RemoteCallEvent,
) -> ApiResult<ApiJson<Value>> {
    let call = st
        .app
        .calls
        .sandbox_remote(who, &call_id(id)?, event)
        .await?;
    Ok(out(st, &call))
}

/// The sandbox as the other phone of an outbound call: it picks up (`call.answered`), and
/// the call's audio is echoed back from then on.
#[utoipa::path(post, path = "/api/v1/sandbox/calls/{id}/answer", operation_id = "answerSandboxCall", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, answered", body = CallOut),
        (status = 409, description = "`call_ended`, `invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn sandbox_answer(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    sandbox_act(&st, &who, &id, RemoteCallEvent::Answer).await
}

/// The sandbox as the other phone of an outbound call: it refuses (`rejected`).
#[utoipa::path(post, path = "/api/v1/sandbox/calls/{id}/reject", operation_id = "rejectSandboxCall", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, ended `rejected`", body = CallOut),
        (status = 409, description = "`call_ended`, `invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn sandbox_reject(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    sandbox_act(&st, &who, &id, RemoteCallEvent::Reject).await
}

/// The sandbox as the other phone of an outbound call: it is in another call (`busy`).
#[utoipa::path(post, path = "/api/v1/sandbox/calls/{id}/busy", operation_id = "busySandboxCall", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, ended `busy`", body = CallOut),
        (status = 409, description = "`call_ended`, `invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn sandbox_busy(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    sandbox_act(&st, &who, &id, RemoteCallEvent::Busy).await
}

/// The sandbox as the other phone hangs up: `completed` after an answer; before it, an
/// outbound call ends `canceled` and an inbound caller giving up leaves it `missed`.
#[utoipa::path(post, path = "/api/v1/sandbox/calls/{id}/hangup", operation_id = "hangupSandboxCall", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The call, ended", body = CallOut),
        (status = 409, description = "`call_ended`", body = crate::openapi::ErrorOut)))]
pub async fn sandbox_hangup(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    sandbox_act(&st, &who, &id, RemoteCallEvent::Hangup).await
}

/// Someone calls the sandbox line from `from`: an inbound call rings (`call.ringing`).
/// Accept or reject it within 60 s on the clock, or it ends `missed`.
#[utoipa::path(post, path = "/api/v1/sandbox/lines/{id}/incoming_call", operation_id = "ringSandboxLine", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = IncomingCallIn,
    responses((status = 201, description = "The inbound call, ringing", body = CallOut),
        (status = 403, description = "`calling_not_enabled`", body = crate::openapi::ErrorOut),
        (status = 409, description = "`line_busy`, `line_not_ready`", body = crate::openapi::ErrorOut)))]
pub async fn sandbox_incoming(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<IncomingCallIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let call = st
        .app
        .calls
        .sandbox_incoming(&who, &line_id(&id)?, &input.from)
        .await?;
    Ok((StatusCode::CREATED, out(&st, &call)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// The documented schema and the built object list the same fields.
    #[test]
    fn call_schema_matches_the_built_object() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let record = wagate_store::CallRecord {
            id: CallId::generate(),
            account_id: wagate_domain::ids::AccountId::generate(),
            line_id: wagate_domain::ids::LineId::generate(),
            version: 0,
            direction: wagate_domain::call::CallDirection::Outbound,
            from: None,
            to: None,
            status: wagate_domain::call::CallStatus::Initiated,
            end_reason: None,
            provider_id: None,
            media_token: "t".into(),
            created_at: now,
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            updated_at: now,
        };
        let built = wagate_app::calls::call_json(&record, "https://x");
        assert!(built["media_url"]
            .as_str()
            .unwrap()
            .starts_with("wss://x/api/v1/calls/call_"));
        let schema = CallOut {
            id: String::new(),
            object: String::new(),
            line_id: String::new(),
            direction: String::new(),
            from: None,
            to: None,
            status: String::new(),
            created_at: String::new(),
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            duration_seconds: 0,
            end_reason: None,
            media_url: None,
        };
        assert_eq!(keys(&serde_json::to_value(&schema).unwrap()), keys(&built));
    }
}
