//! JSON in and out, with rejections in our error format.
//!
//! The body is parsed as JSON whatever its `Content-Type` says (curl's `-d` sends a form type),
//! so a client never fails on a header alone. Malformed JSON is 400 `invalid_json`; a well-formed body with a wrong type, a missing or an
//! unknown field is 422 `invalid_field` naming the `param`; a body over the limit is 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ErrorCode};

/// Largest request body accepted: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body (or response) in our error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(ErrorCode::BadRequest, "could not read the request body")
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// The 413 error.
pub fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// Parses a body; an empty body counts as `{}` so endpoints whose fields are all optional
/// accept a bare POST.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                let param = if path == "." {
                    // A missing or unknown field is reported at its parent; name it.
                    msg.split('`').nth(1).unwrap_or("body").to_owned()
                } else {
                    path
                };
                ApiError::invalid(param, msg)
            }
            _ => invalid_json(&inner),
        }
    })?;
    de.end().map_err(|e| invalid_json(&e))?;
    Ok(value)
}

fn invalid_json(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidJson,
        format!("request body is not valid JSON: {e}"),
    )
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        name: String,
        #[serde(default)]
        n: Option<u32>,
    }

    #[test]
    fn malformed_is_400_and_wrong_types_are_422_with_param() {
        for body in [&b"{"[..], b"{\"name\": \"a\"} x", b"nope", b"\xff"] {
            let e = parse::<In>(body).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidJson, "{body:?}");
        }
        for (body, param) in [
            (&b"{\"name\": 5}"[..], "name"),
            (b"{\"name\": \"a\", \"n\": -1}", "n"),
            (b"{}", "name"),
            (b"{\"name\": \"a\", \"nmae\": 1}", "nmae"),
        ] {
            let e = parse::<In>(body).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidField, "{body:?}");
            assert_eq!(e.param(), Some(param), "{body:?}");
            assert_eq!(e.into_response().status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert!(parse::<In>(b"{\"name\": \"a\"}").is_ok());
        assert!(
            parse::<In>(b"  ").is_err(),
            "an empty body is {{}} and name is required"
        );
    }
}
