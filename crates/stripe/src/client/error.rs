//! Sorting Stripe's errors into what the caller can do about them.
//!
//! Stripe answers errors as `{"error": {"type", "code"?, "decline_code"?, "message", "param"?,
//! "doc_url"?}}` with a conventional HTTP status (400 bad request, 401 bad key, 402 request
//! failed, 403 forbidden, 404 not found, 409 conflict, 429 too many requests, 5xx Stripe's
//! fault). `type` is one of `api_error`, `card_error`, `idempotency_error`,
//! `invalid_request_error`. The HTTP status decides the class; `type` refines it.

use std::fmt;

use serde::Deserialize;

/// Stripe's own description of a failed request, kept whole for logs and support.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiError {
    /// The HTTP status of Stripe's answer.
    pub http_status: u16,
    /// `error.type`: `api_error`, `card_error`, `idempotency_error` or
    /// `invalid_request_error`.
    pub kind: String,
    /// `error.code`, e.g. `card_declined`, `resource_missing`, `rate_limit`.
    pub code: Option<String>,
    /// `error.decline_code` for card declines, e.g. `generic_decline`, `insufficient_funds`.
    pub decline_code: Option<String>,
    /// `error.message`; for card errors it can be shown to the customer.
    pub message: String,
    /// `error.param`: the parameter at fault.
    pub param: Option<String>,
    /// The `Request-Id` header, which Stripe support asks for.
    pub request_id: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}", self.http_status, self.kind)?;
        if let Some(code) = &self.code {
            write!(f, "/{code}")?;
        }
        if let Some(decline) = &self.decline_code {
            write!(f, " ({decline})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(param) = &self.param {
            write!(f, " [param {param}]")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

/// Why a Stripe call failed, sorted by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// The card was refused (`card_error`, HTTP 402): declined, expired, wrong CVC, … The
    /// customer must use another card; wagate answers 402. The decline reason is in
    /// [`ApiError::code`] and [`ApiError::decline_code`].
    #[error("the card was declined: {0}")]
    CardDeclined(ApiError),
    /// The request was wrong (HTTP 400, 404, 409, …): a missing parameter, an unknown ID, or an
    /// idempotency key reused with other parameters
    /// ([`StripeError::is_idempotency_conflict`]). Retrying it unchanged will not help.
    #[error("Stripe rejected the request: {0}")]
    InvalidRequest(ApiError),
    /// The secret key is missing, wrong, revoked or lacks permission (HTTP 401, 403).
    #[error("Stripe refused the secret key: {0}")]
    Authentication(ApiError),
    /// Too many requests (HTTP 429). Retry later, with the same idempotency key.
    #[error("rate limited by Stripe{}: {error}", retry_text(*.retry_after_secs))]
    RateLimited {
        /// `Retry-After` in seconds, when Stripe sent it.
        retry_after_secs: Option<u64>,
        /// Stripe's description.
        error: ApiError,
    },
    /// Stripe failed (HTTP 5xx or `api_error`), or answered something unreadable. Retry with
    /// the same idempotency key: Stripe replays a finished request's answer instead of
    /// repeating it.
    #[error("Stripe failed: {0}")]
    Api(ApiError),
    /// No answer: connection refused, timeout, broken transfer. For a `POST` the request may
    /// or may not have been carried out; retry with the same idempotency key.
    #[error("could not reach Stripe: {message}")]
    Network {
        /// What went wrong.
        message: String,
    },
}

fn retry_text(secs: Option<u64>) -> String {
    secs.map(|s| format!(", retry after {s} s"))
        .unwrap_or_default()
}

impl StripeError {
    /// Stripe's description of the error, when Stripe answered with one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            StripeError::CardDeclined(e)
            | StripeError::InvalidRequest(e)
            | StripeError::Authentication(e)
            | StripeError::Api(e)
            | StripeError::RateLimited { error: e, .. } => Some(e),
            StripeError::Network { .. } => None,
        }
    }

    /// `error.code`, when there is one.
    pub fn code(&self) -> Option<&str> {
        self.api_error()?.code.as_deref()
    }

    /// Whether the same request (with the same idempotency key) may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StripeError::RateLimited { .. } | StripeError::Api(_) | StripeError::Network { .. }
        )
    }

    /// Whether the idempotency key was already used with other parameters (or another
    /// endpoint): a bug in how keys are derived, never a reason to retry.
    pub fn is_idempotency_conflict(&self) -> bool {
        self.api_error()
            .is_some_and(|e| e.kind == "idempotency_error")
    }

    /// Whether the ID asked for does not exist (`resource_missing`).
    pub fn is_not_found(&self) -> bool {
        self.code() == Some("resource_missing")
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: WireError,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// Sorts a non-2xx answer. `retry_after` is the `Retry-After` header in seconds, if any.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<u64>,
    request_id: Option<String>,
) -> StripeError {
    let error = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error: w }) => ApiError {
            http_status: status,
            kind: w.kind,
            code: w.code.filter(|c| !c.is_empty()),
            decline_code: w.decline_code.filter(|c| !c.is_empty()),
            message: w.message.unwrap_or_default(),
            param: w.param.filter(|p| !p.is_empty()),
            request_id,
        },
        Err(_) => ApiError {
            http_status: status,
            kind: String::new(),
            message: format!(
                "unreadable error answer: {}",
                truncate(&String::from_utf8_lossy(body), 200)
            ),
            request_id,
            ..ApiError::default()
        },
    };
    match status {
        401 | 403 => StripeError::Authentication(error),
        429 => StripeError::RateLimited {
            retry_after_secs: retry_after,
            error,
        },
        s if s >= 500 => StripeError::Api(error),
        _ if error.kind == "card_error" || status == 402 => StripeError::CardDeclined(error),
        _ if error.kind == "api_error" => StripeError::Api(error),
        _ => StripeError::InvalidRequest(error),
    }
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(status: u16, body: serde_json::Value) -> StripeError {
        classify(
            status,
            body.to_string().as_bytes(),
            None,
            Some("req_1".into()),
        )
    }

    #[test]
    fn a_decline_keeps_its_codes() {
        let e = err(
            402,
            json!({"error": {"type": "card_error", "code": "card_declined",
                   "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
                   "param": "", "doc_url": "https://stripe.com/docs/error-codes/card-declined"}}),
        );
        let StripeError::CardDeclined(api) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(api.code.as_deref(), Some("card_declined"));
        assert_eq!(api.decline_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(api.param, None);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("req_1"));
    }

    #[test]
    fn statuses_decide_the_class() {
        let bad_key = json!({"error": {"type": "invalid_request_error",
                             "message": "Invalid API Key provided: sk_test_****1234"}});
        assert!(matches!(err(401, bad_key), StripeError::Authentication(_)));
        let missing = json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                             "message": "No such customer: 'cus_x'", "param": "customer"}});
        let e = err(400, missing);
        assert!(matches!(e, StripeError::InvalidRequest(_)) && e.is_not_found());
        let e = classify(
            429,
            br#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow"}}"#,
            Some(3),
            None,
        );
        assert!(matches!(
            e,
            StripeError::RateLimited {
                retry_after_secs: Some(3),
                ..
            }
        ));
        assert!(e.is_retryable());
        let e = err(
            500,
            json!({"error": {"type": "api_error", "message": "oops"}}),
        );
        assert!(matches!(e, StripeError::Api(_)) && e.is_retryable());
        let e = classify(502, b"<html>bad gateway</html>", None, None);
        assert!(matches!(
            e,
            StripeError::Api(ApiError {
                http_status: 502,
                ..
            })
        ));
    }

    #[test]
    fn an_idempotency_conflict_is_an_invalid_request() {
        let e = err(
            400,
            json!({"error": {"type": "idempotency_error",
                   "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}}),
        );
        assert!(matches!(e, StripeError::InvalidRequest(_)));
        assert!(e.is_idempotency_conflict() && !e.is_retryable());
    }
}
