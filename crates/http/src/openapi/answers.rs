//! The answers an operation gives besides its own, derived from the route's shape so that no
//! operation forgets one: the guard's 503s on every route, 401 and 500 behind the key, 400,
//! 413 and 422 where a body is read, 422 where a query is read, 404 where an id is looked
//! up, and on authenticated POSTs the `Idempotency-Key` header with its 409 and 422.
//!
//! A handler's own errors are declared in its `#[utoipa::path]` with a description that
//! lists their codes in backticks (`` "`line_not_ready`, `line_released`" ``); here they are
//! merged with the generic ones into one response per status, each with the `ErrorOut`
//! body and the headers that come with it.

use serde_json::{json, Map, Value};

use super::rules::idempotency_key_parameter;
use crate::error::ErrorCode::{self, *};

/// What decides the generic answers of one operation.
#[derive(Debug, Clone, Copy)]
struct Shape {
    secured: bool,
    body: bool,
    query: bool,
    id: bool,
    post: bool,
}

impl Shape {
    fn of(path: &str, method: &str, op: &Value) -> Self {
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let params = op["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Shape {
            secured,
            body: op.get("requestBody").is_some(),
            query: params.iter().any(|p| p["in"] == "query"),
            id: path.contains('{'),
            post: method == "post",
        }
    }

    /// The codes every operation of this shape can answer, besides its own.
    fn generic(self) -> Vec<ErrorCode> {
        let mut codes = vec![ServerBusy, RequestTimeout];
        if self.secured {
            codes.extend([Unauthorized, InternalError]);
        }
        if self.body {
            codes.extend([InvalidJson, BadRequest, PayloadTooLarge, InvalidField]);
        }
        if self.query {
            codes.push(InvalidField);
        }
        if self.id {
            codes.push(NotFound);
        }
        if self.secured && self.post {
            codes.extend([
                IdempotencyInProgress,
                PayloadTooLarge,
                InvalidField,
                IdempotencyKeyReused,
            ]);
        }
        codes
    }
}

/// The codes named in backticks in a response's description.
fn named_codes(description: &str) -> Vec<ErrorCode> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(ErrorCode::from_code)
        .collect()
}

fn error_response(codes: &[ErrorCode]) -> Value {
    let names: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
    let mut resp = json!({
        "description": names.join(", "),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    });
    let mut headers = Map::new();
    if codes.contains(&Unauthorized) {
        headers.insert(
            "WWW-Authenticate".into(),
            json!({"description": "`Bearer`", "required": true, "schema": {"type": "string"}}),
        );
    }
    let retry: Vec<ErrorCode> = codes
        .iter()
        .copied()
        .filter(|c| {
            matches!(
                c,
                RateLimited | ServerBusy | RequestTimeout | IdempotencyInProgress
            )
        })
        .collect();
    if !retry.is_empty() {
        let all = retry.len() == codes.len();
        let names: Vec<&str> = retry.iter().map(|c| c.as_str()).collect();
        headers.insert(
            "Retry-After".into(),
            json!({
                "description": format!("Seconds to wait before retrying (with `{}`).", names.join("`, `")),
                "required": all,
                "schema": {"type": "integer", "minimum": 0},
            }),
        );
    }
    if !headers.is_empty() {
        resp["headers"] = Value::Object(headers);
    }
    resp
}

/// Whether a request body schema accepts `{}`: then an empty body is accepted too (the
/// server reads it as `{}`), so the body is optional.
fn accepts_empty(doc: &Value, body: &Value) -> bool {
    let schema = &body["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => schema,
    };
    schema.is_object()
        && schema["required"].as_array().is_none_or(Vec::is_empty)
        && schema.get("oneOf").is_none()
        && schema.get("anyOf").is_none()
}

/// Adds the generic answers, the `Idempotency-Key` header and the bodies' optionality to
/// every operation of `doc`.
pub(super) fn apply(doc: &mut Value) {
    let snapshot = doc.clone();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let shape = Shape::of(path, method, op);
            if let Some(body) = op.get_mut("requestBody") {
                let optional = accepts_empty(&snapshot, body);
                body["required"] = json!(!optional);
            }
            if shape.secured && shape.post {
                let params = op
                    .as_object_mut()
                    .map(|o| o.entry("parameters").or_insert_with(|| json!([])));
                if let Some(Value::Array(params)) = params {
                    params.retain(|p| p["name"] != "Idempotency-Key");
                    params.push(idempotency_key_parameter());
                }
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            // Each status: its own codes first, then the generic ones, once each.
            let mut by_status: Vec<(u16, Vec<ErrorCode>)> = Vec::new();
            let mut add = |code: ErrorCode| {
                let status = code.status().as_u16();
                match by_status.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, codes)) if codes.contains(&code) => {}
                    Some((_, codes)) => codes.push(code),
                    None => by_status.push((status, vec![code])),
                }
            };
            for (status, resp) in responses.iter() {
                if status.starts_with(['4', '5']) {
                    let named = named_codes(resp["description"].as_str().unwrap_or(""));
                    debug_assert!(
                        named.iter().all(|c| c.status().as_str() == status),
                        "{method} {path}: {status} names a code of another status"
                    );
                    named.into_iter().for_each(&mut add);
                }
            }
            shape.generic().into_iter().for_each(&mut add);
            for (status, codes) in by_status {
                responses.insert(status.to_string(), error_response(&codes));
            }
            if shape.secured && shape.post {
                for (status, resp) in responses.iter_mut() {
                    if status.starts_with('2') {
                        resp["headers"]["Idempotent-Replayed"] = json!({
                            "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
                            "required": false,
                            "schema": {"type": "string", "enum": ["true"]},
                        });
                    }
                }
            }
            sort_responses(responses);
        }
    }
}

/// Responses in the order of their status.
fn sort_responses(responses: &mut Map<String, Value>) {
    let mut all: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(all);
}
