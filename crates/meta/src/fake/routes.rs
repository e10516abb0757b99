//! The fake's Graph API endpoints: `GET /{version}/{phone-number-id}` and
//! `POST /{version}/{phone-number-id}/messages`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::SignedDuration;
use serde_json::{json, Map, Value};

use super::{digits, lock, random_id, Number, SentMessage, Shared, FAKE_VERSION};

/// Meta's customer service window: 24 hours from the user's last message.
const SERVICE_WINDOW: SignedDuration = SignedDuration::from_hours(24);
/// Meta's limit on a text message's body.
const MAX_TEXT_CHARS: usize = 4096;
/// The fields `GET /{phone-number-id}` returns when none are asked for.
const DEFAULT_FIELDS: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/{version}/{id}", get(phone_number))
        .route("/{version}/{id}/messages", post(messages))
        .fallback(unknown_path)
        .with_state(state)
}

/// Meta's error envelope: `{"error": {"message", "type", "code", "error_subcode"?,
/// "error_data"?: {"messaging_product", "details"}, "fbtrace_id"}}`.
struct GraphError {
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    kind: &'static str,
    message: String,
    details: Option<String>,
    retry_after: Option<u64>,
}

impl GraphError {
    fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            subcode: None,
            kind: "OAuthException",
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Code 100 "(#100) …": the request's parameters are wrong.
    fn param(message: impl Into<String>) -> Self {
        GraphError::new(400, 100, format!("(#100) {}", message.into()))
    }

    /// 100/33: the object does not exist or this token cannot see it.
    fn no_such_object(method: &str, id: &str) -> Self {
        GraphError {
            subcode: Some(33),
            kind: "GraphMethodException",
            ..GraphError::new(
                400,
                100,
                format!(
                    "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be \
                     loaded due to missing permissions, or does not support this operation. \
                     Please read the Graph API documentation at \
                     https://developers.facebook.com/docs/graph-api"
                ),
            )
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(sub) = self.subcode {
            error.insert("error_subcode".into(), json!(sub));
        }
        if let Some(details) = self.details {
            error.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        error.insert("fbtrace_id".into(), json!(random_id(23, ALNUM)));
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

async fn unknown_path(uri: Uri) -> GraphError {
    GraphError::new(
        400,
        2500,
        format!("Unknown path components: {}", uri.path()),
    )
}

/// The access token of a request: `Authorization: Bearer …` or the `access_token` parameter.
fn token<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a HashMap<String, String>>,
) -> Option<&'a str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            query
                .and_then(|q| q.get("access_token"))
                .map(String::as_str)
        })
        .filter(|t| !t.is_empty())
}

/// The checks every call goes through, in Meta's order: outage, version, token, object.
fn admit(
    state: &Shared,
    method: &str,
    version: &str,
    id: &str,
    token: Option<&str>,
) -> Result<Number, GraphError> {
    let mut s = lock(state);
    if let Some((left, failure)) = s.failures.as_mut() {
        let error = GraphError::new(failure.status, failure.code, failure.message.clone());
        *left -= 1;
        if *left == 0 {
            s.failures = None;
        }
        return Err(error);
    }
    if version != FAKE_VERSION {
        return Err(GraphError::new(
            400,
            2500,
            format!("Unknown path components: /{version}/{id} (this fake serves {FAKE_VERSION})"),
        ));
    }
    let Some(token) = token else {
        return Err(GraphError::new(
            401,
            104,
            "An access token is required to request this resource.",
        ));
    };
    if !s.numbers.values().any(|n| n.token == token) {
        return Err(GraphError::new(
            401,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ));
    }
    match s.numbers.get(id) {
        Some(number) if number.token == token => Ok(number.clone()),
        _ => Err(GraphError::no_such_object(method, id)),
    }
}

async fn phone_number(
    State(state): State<Shared>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GraphError> {
    let number = admit(&state, "get", &version, &id, token(&headers, Some(&query)))?;
    let requested: Vec<&str> = match query.get("fields") {
        Some(fields) => fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    for field in requested {
        let value = match field {
            "id" => json!(id),
            "display_phone_number" => json!(number.display_phone_number),
            "verified_name" => json!(number.verified_name),
            "quality_rating" => json!("GREEN"),
            "code_verification_status" => json!("VERIFIED"),
            "name_status" => json!("APPROVED"),
            "platform_type" => json!("CLOUD_API"),
            "throughput" => json!({"level": "STANDARD"}),
            other => {
                return Err(GraphError::param(format!(
                    "Tried accessing nonexisting field ({other}) on node type \
                     (WhatsAppBusinessPhoneNumber)"
                )))
            }
        };
        out.insert(field.into(), value);
    }
    Ok(Json(Value::Object(out)))
}

async fn messages(
    State(state): State<Shared>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, GraphError> {
    admit(&state, "post", &version, &id, token(&headers, None))?;
    {
        let mut s = lock(&state);
        if let Some((left, retry_after)) = s.rate_limited.as_mut() {
            let mut error = GraphError::new(429, 130429, "(#130429) Rate limit hit")
                .details("Cloud API message throughput has been reached.");
            error.retry_after = Some(*retry_after);
            *left -= 1;
            if *left == 0 {
                s.rate_limited = None;
            }
            return Err(error);
        }
    }
    let request: Value = serde_json::from_slice(&body).map_err(|_| {
        GraphError::param("Invalid parameter").details("The request body is not JSON.")
    })?;
    let mut sent = check_message(&request)?;
    let mut s = lock(&state);
    match (sent.template.clone(), sent.language.clone()) {
        (Some(name), Some(language)) => {
            let Some(category) = s.templates.get(&(name.clone(), language.clone())) else {
                return Err(GraphError::new(
                    404,
                    132001,
                    "(#132001) Template name does not exist in the translation",
                )
                .details(format!(
                    "template name ({name}) does not exist in {language}"
                )));
            };
            sent.category = Some(category.clone());
        }
        _ => {
            let now = s.now();
            let open = s
                .last_inbound
                .get(&(id.clone(), digits(&sent.to)))
                .is_some_and(|&at| at <= now && now < at + SERVICE_WINDOW);
            if !open {
                return Err(
                    GraphError::new(400, 131047, "(#131047) Re-engagement message").details(
                        "Message failed to send because more than 24 hours have passed since \
                         the customer last replied to this number.",
                    ),
                );
            }
        }
    }
    sent.phone_number_id = id;
    sent.wamid = format!("wamid.{}", random_id(48, ALNUM));
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": sent.to, "wa_id": digits(&sent.to)}],
        "messages": [{"id": sent.wamid}],
    });
    s.sent.push(sent);
    Ok(Json(answer))
}

/// Checks a send request's shape like Meta; the message without its ID and number yet.
fn check_message(request: &Value) -> Result<SentMessage, GraphError> {
    let field = |name: &str| request.get(name).and_then(Value::as_str);
    match field("messaging_product") {
        Some("whatsapp") => {}
        None => {
            return Err(GraphError::param(
                "The parameter messaging_product is required.",
            ))
        }
        Some(other) => {
            return Err(GraphError::param(format!(
                "Param messaging_product must be one of {{WHATSAPP}} - got \"{other}\"."
            )))
        }
    }
    if let Some(kind) = field("recipient_type").filter(|k| *k != "individual") {
        return Err(GraphError::param(format!(
            "Param recipient_type must be one of {{INDIVIDUAL}} in this fake - got \"{kind}\"."
        )));
    }
    let Some(to) = field("to").filter(|t| !t.trim().is_empty()) else {
        return Err(GraphError::param("The parameter to is required."));
    };
    if !(5..=15).contains(&digits(to).len()) {
        return Err(
            GraphError::new(400, 131009, "(#131009) Parameter value is not valid")
                .details("Invalid WhatsApp phone number"),
        );
    }
    let mut sent = SentMessage {
        phone_number_id: String::new(),
        to: to.to_owned(),
        kind: String::new(),
        body: None,
        template: None,
        language: None,
        category: None,
        wamid: String::new(),
        callback_data: field("biz_opaque_callback_data").map(str::to_owned),
    };
    // Meta sends a text when `type` is left out.
    match field("type").unwrap_or("text") {
        "text" => {
            let body = request
                .pointer("/text/body")
                .and_then(Value::as_str)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| GraphError::param("The parameter text['body'] is required."))?;
            if body.chars().count() > MAX_TEXT_CHARS {
                return Err(GraphError::param(format!(
                    "Param text['body'] must be at most {MAX_TEXT_CHARS} characters long."
                )));
            }
            sent.kind = "text".into();
            sent.body = Some(body.to_owned());
        }
        "template" => {
            let name = request
                .pointer("/template/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| GraphError::param("The parameter template['name'] is required."))?;
            let language = request
                .pointer("/template/language/code")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    GraphError::param("The parameter template['language']['code'] is required.")
                })?;
            if let Some(c) = request.pointer("/template/components") {
                if !c.is_array() {
                    return Err(GraphError::param(
                        "Param template['components'] must be an array.",
                    ));
                }
            }
            sent.kind = "template".into();
            sent.template = Some(name.to_owned());
            sent.language = Some(language.to_owned());
        }
        other => {
            return Err(
                GraphError::new(400, 131051, "(#131051) Unsupported message type").details(
                    format!("This fake sends text and template messages only, not {other:?}."),
                ),
            )
        }
    }
    Ok(sent)
}
