//! JSON in and out, with rejections in our error format.
//!
//! The body is parsed as JSON whatever its `Content-Type` says (curl's `-d` sends a form type),
//! so a client never fails on a header alone. Malformed JSON is 400 `invalid_json`; a well-formed body with a wrong type, a missing or an
//! unknown field is 422 `invalid_field` naming the `param`; a body over the limit is 413.
//!
//! A whole number is an integer however it is written: `2.0` and `2e0` are the integer 2, as
//! JSON Schema (and so the OpenAPI document) counts them, and are read as `2`.

use std::borrow::Cow;

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
    let bytes = whole_numbers_as_integers(bytes);
    let mut de = serde_json::Deserializer::from_slice(&bytes);
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

/// `bytes` with every number token outside strings that is written with a fraction or an
/// exponent but is whole (`2.0`, `1e3`, `-150e-1`) rewritten as that integer (`2`, `1000`,
/// `-15`). Nothing else changes: not JSON stays not JSON, and a fraction stays a fraction.
fn whole_numbers_as_integers(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                if let Some(int) = whole_integer(&bytes[start..i]) {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
                    out.extend_from_slice(&bytes[copied..start]);
                    out.extend_from_slice(int.as_bytes());
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(bytes),
        Some(mut out) => {
            out.extend_from_slice(&bytes[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The integer a JSON number token with a fraction or an exponent stands for, when it is
/// whole and has at most 20 digits; `None` otherwise (and for a token that is not a number).
fn whole_integer(token: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(token).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
    if !int_ok || frac.is_some_and(|f| !digits(f)) || (frac.is_none() && exp.is_none()) {
        return None;
    }
    let exp: i64 = match exp {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if !digits(unsigned) || unsigned.len() > 4 {
                return None;
            }
            e.parse().ok()?
        }
    };
    let frac = frac.unwrap_or("");
    let all = format!("{int}{frac}");
    let all = all.trim_start_matches('0');
    // The value is all × 10^(exp − frac.len()).
    let shift = exp - frac.len() as i64;
    let int = if all.is_empty() {
        "0".to_owned()
    } else if shift >= 0 {
        format!("{all}{}", "0".repeat(usize::try_from(shift).ok()?.min(21)))
    } else {
        let drop = usize::try_from(-shift).ok()?;
        let zeros = all.len() - all.trim_end_matches('0').len();
        if drop > zeros {
            return None;
        }
        all[..all.len() - drop].to_owned()
    };
    if int.len() > 20 {
        return None;
    }
    Some(if neg && int != "0" {
        format!("-{int}")
    } else {
        int
    })
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
        for (body, n) in [
            (&b"{\"name\": \"2.0 1e3\", \"n\": 2.0}"[..], 2),
            (b"{\"name\": \"x\", \"n\": 1e3}", 1000),
            (b"{\"name\": \"x\", \"n\": 150E-1}", 15),
            (b"{\"name\": \"x\", \"n\": 4294967295.000}", 4294967295),
        ] {
            let read = parse::<In>(body).unwrap_or_else(|e| panic!("{body:?}: {e:?}"));
            assert_eq!(read.n, Some(n), "a whole number is an integer");
        }
        for body in [
            &b"{\"name\": \"x\", \"n\": 2.5}"[..],
            b"{\"name\": \"x\", \"n\": 15e-1}",
            b"{\"name\": \"x\", \"n\": 4294967296.0}",
        ] {
            let e = parse::<In>(body).unwrap_err();
            assert_eq!(e.param(), Some("n"), "{body:?}");
        }
        assert_eq!(
            parse::<In>(b"{\"name\": \"x\", \"n\": 01.0}")
                .unwrap_err()
                .code(),
            ErrorCode::InvalidJson,
            "not JSON stays not JSON"
        );
        assert!(
            parse::<In>(b"  ").is_err(),
            "an empty body is {{}} and name is required"
        );
    }
}
