//! Sorting Meta's errors into what an API user can act on.
//!
//! The Graph API answers errors as `{"error": {"message", "type", "code", "error_subcode"?,
//! "error_data"?: {"details"}, "fbtrace_id"}}` (Graph API "Handling Errors"; WhatsApp "error
//! codes"). Meta asks integrators to branch on `code` (and `details`), never on the wording,
//! so the mapping below is by code; the HTTP status only decides what an unknown code means.

use std::fmt;

use serde::Deserialize;

/// Seconds to wait after a rate limit when Meta sends no `Retry-After` (the value Meta's
/// OpenAPI description gives as its `Retry-After` example).
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// Meta's own description of a failed request, kept whole for logs and support tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaError {
    /// The HTTP status of Meta's answer.
    pub http_status: u16,
    /// `error.code`.
    pub code: i64,
    /// `error.error_subcode`, when present.
    pub subcode: Option<i64>,
    /// `error.type`, e.g. `OAuthException`.
    pub kind: String,
    /// `error.message` (Meta's title, e.g. `(#131047) Re-engagement message`).
    pub message: String,
    /// `error.error_data.details`, Meta's longer explanation, when present.
    pub details: Option<String>,
    /// `error.fbtrace_id`, which Meta support asks for.
    pub fbtrace_id: Option<String>,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}", self.code)?;
        if let Some(sub) = self.subcode {
            write!(f, "/{sub}")?;
        }
        write!(f, " (HTTP {}): {}", self.http_status, self.message)?;
        if let Some(details) = &self.details {
            write!(f, " — {details}")?;
        }
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {trace}]")?;
        }
        Ok(())
    }
}

/// Why a Graph API call failed, sorted by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The access token is expired, invalid or lacks permission for this number (codes 0, 3,
    /// 10, 102, 104, 190, 200–299, 131005). A new token is needed; retrying cannot help.
    #[error("Meta refused the access token: {0}")]
    InvalidCredentials(MetaError),
    /// The phone number ID does not exist or this token cannot see it (code 100 with subcode
    /// 33, code 803, or code 33 for a deleted number). For a line being connected this is a
    /// credentials problem too: see [`GraphError::is_credentials_problem`].
    #[error("Meta does not know this phone number ID (or the token cannot see it): {0}")]
    UnknownPhoneNumber(MetaError),
    /// More than 24 hours since the user last wrote (131047): only a template can be sent.
    #[error("outside the customer service window: {0}")]
    OutsideCustomerServiceWindow(MetaError),
    /// The template does not exist in that language, is not approved, or is paused or
    /// disabled (132001, 132015, 132016).
    #[error("unknown or unusable template: {0}")]
    UnknownTemplate(MetaError),
    /// The template exists but its parameters do not fit it (132000, 132005, 132007, 132012).
    #[error("the template's parameters do not match it: {0}")]
    TemplateParameters(MetaError),
    /// A rate limit (4, 17, 80007, 130429, 131048, 131056 or HTTP 429): retry after
    /// `retry_after_secs` (Meta's `Retry-After`, else [`DEFAULT_RETRY_AFTER_SECS`]).
    #[error("rate limited by Meta, retry after {retry_after_secs} s: {meta}")]
    RateLimited {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
        /// Meta's description.
        meta: MetaError,
    },
    /// Meta cannot deliver to this recipient (131026: not on WhatsApp, blocked the business,
    /// old client, terms not accepted).
    #[error("the recipient cannot receive this message: {0}")]
    RecipientUnavailable(MetaError),
    /// Any other refusal (a 4xx): our request was wrong; retrying it unchanged will not help.
    #[error("Meta rejected the request: {0}")]
    Rejected(MetaError),
    /// Meta is down or overloaded (5xx, codes 1, 2, 131000, 131016, 131057, 133004), or the
    /// call timed out or never connected. Retryable, but for a send the outcome is unknown:
    /// the Cloud API has no idempotency key, so a retry may deliver the message twice.
    #[error("Meta's Graph API is unavailable ({}): {message}", status_text(*.status))]
    Unavailable {
        /// The HTTP status, when an answer arrived.
        status: Option<u16>,
        /// Meta's error code, when the answer carried one.
        code: Option<i64>,
        /// What went wrong (Meta's message, or the transport error).
        message: String,
    },
}

fn status_text(status: Option<u16>) -> String {
    match status {
        Some(s) => format!("HTTP {s}"),
        None => "no answer".to_owned(),
    }
}

impl GraphError {
    /// Meta's description of the error, when Meta answered with one.
    pub fn meta(&self) -> Option<&MetaError> {
        match self {
            GraphError::InvalidCredentials(m)
            | GraphError::UnknownPhoneNumber(m)
            | GraphError::OutsideCustomerServiceWindow(m)
            | GraphError::UnknownTemplate(m)
            | GraphError::TemplateParameters(m)
            | GraphError::RecipientUnavailable(m)
            | GraphError::Rejected(m)
            | GraphError::RateLimited { meta: m, .. } => Some(m),
            GraphError::Unavailable { .. } => None,
        }
    }

    /// Meta's error code, when there is one.
    pub fn code(&self) -> Option<i64> {
        match self {
            GraphError::Unavailable { code, .. } => *code,
            other => other.meta().map(|m| m.code),
        }
    }

    /// Whether the same request may succeed later (rate limits and outages).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GraphError::RateLimited { .. } | GraphError::Unavailable { .. }
        )
    }

    /// Whether the line's credentials (token or phone number ID) are what is wrong: wagate
    /// answers these with `cloud_credentials_invalid`.
    pub fn is_credentials_problem(&self) -> bool {
        matches!(
            self,
            GraphError::InvalidCredentials(_) | GraphError::UnknownPhoneNumber(_)
        )
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: WireError,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: String,
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_data: Option<WireErrorData>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// Token and permission problems (Graph API error table; WhatsApp error codes).
const CREDENTIAL_CODES: &[i64] = &[0, 3, 10, 102, 104, 190, 131005];
/// Throttling (WhatsApp error codes, "Throttling errors"; 17 is the Graph user rate limit).
const RATE_LIMIT_CODES: &[i64] = &[4, 17, 80007, 130429, 131048, 131056];
/// Meta-side failures that Meta documents as "try again".
const OUTAGE_CODES: &[i64] = &[1, 2, 131000, 131016, 131057, 133004];
const TEMPLATE_UNUSABLE_CODES: &[i64] = &[132001, 132015, 132016];
const TEMPLATE_PARAMETER_CODES: &[i64] = &[132000, 132005, 132007, 132012];

/// Sorts a non-2xx answer. `retry_after` is the `Retry-After` header in seconds, if any.
pub(crate) fn classify(status: u16, body: &[u8], retry_after: Option<u64>) -> GraphError {
    let rate_limited = |meta| GraphError::RateLimited {
        retry_after_secs: retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECS).max(1),
        meta,
    };
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        let text = String::from_utf8_lossy(body);
        let message = format!("unreadable error answer: {}", truncate(&text, 200));
        let meta = MetaError {
            http_status: status,
            code: 0,
            subcode: None,
            kind: String::new(),
            message: message.clone(),
            details: None,
            fbtrace_id: None,
        };
        return match status {
            429 => rate_limited(meta),
            400..=499 => GraphError::Rejected(meta),
            _ => GraphError::Unavailable {
                status: Some(status),
                code: None,
                message,
            },
        };
    };
    let meta = MetaError {
        http_status: status,
        code: error.code,
        subcode: error.error_subcode,
        kind: error.kind,
        message: error.message,
        details: error.error_data.and_then(|d| d.details),
        fbtrace_id: error.fbtrace_id,
    };
    let code = meta.code;
    match code {
        c if CREDENTIAL_CODES.contains(&c) || (200..=299).contains(&c) => {
            GraphError::InvalidCredentials(meta)
        }
        100 if meta.subcode == Some(33) => GraphError::UnknownPhoneNumber(meta),
        33 | 803 => GraphError::UnknownPhoneNumber(meta),
        131047 => GraphError::OutsideCustomerServiceWindow(meta),
        c if TEMPLATE_UNUSABLE_CODES.contains(&c) => GraphError::UnknownTemplate(meta),
        c if TEMPLATE_PARAMETER_CODES.contains(&c) => GraphError::TemplateParameters(meta),
        c if RATE_LIMIT_CODES.contains(&c) => rate_limited(meta),
        131026 => GraphError::RecipientUnavailable(meta),
        c if OUTAGE_CODES.contains(&c) || status >= 500 => GraphError::Unavailable {
            status: Some(status),
            code: Some(c),
            message: meta.to_string(),
        },
        _ if status == 429 => rate_limited(meta),
        _ => GraphError::Rejected(meta),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn err(status: u16, body: Value) -> GraphError {
        classify(status, body.to_string().as_bytes(), None)
    }

    fn meta_body(code: i64, subcode: Option<i64>, message: &str) -> Value {
        let mut e = json!({"message": message, "type": "OAuthException", "code": code,
                           "fbtrace_id": "AXsgnV2Cm3ZMGF3dF_cfYIn"});
        if let Some(s) = subcode {
            e["error_subcode"] = json!(s);
        }
        json!({ "error": e })
    }

    #[test]
    fn an_invalid_token_is_a_credentials_problem() {
        // Meta's OpenAPI example for GET /{Phone-Number-ID}, 401.
        let e = err(401, meta_body(190, Some(463), "Invalid OAuth access token"));
        assert!(matches!(e, GraphError::InvalidCredentials(_)));
        assert!(e.is_credentials_problem() && !e.is_retryable());
        let meta = e.meta().unwrap();
        assert_eq!((meta.code, meta.subcode), (190, Some(463)));
        assert_eq!(meta.fbtrace_id.as_deref(), Some("AXsgnV2Cm3ZMGF3dF_cfYIn"));
        for code in [10, 104, 200, 299, 131005] {
            assert!(
                matches!(
                    err(403, meta_body(code, None, "x")),
                    GraphError::InvalidCredentials(_)
                ),
                "code {code}"
            );
        }
    }

    #[test]
    fn an_object_that_does_not_exist_is_an_unknown_phone_number() {
        let e = err(
            400,
            json!({"error": {"message": "Unsupported get request. Object with ID '1' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                   "type": "GraphMethodException", "code": 100, "error_subcode": 33,
                   "fbtrace_id": "x"}}),
        );
        assert!(matches!(e, GraphError::UnknownPhoneNumber(_)));
        assert!(e.is_credentials_problem());
        assert!(matches!(
            err(404, meta_body(803, None, "Phone number not found")),
            GraphError::UnknownPhoneNumber(_)
        ));
        // Code 100 without subcode 33 is an ordinary invalid parameter.
        assert!(matches!(
            err(400, meta_body(100, None, "Invalid parameter")),
            GraphError::Rejected(_)
        ));
    }

    #[test]
    fn messaging_codes_map_to_what_the_user_can_do() {
        assert!(matches!(
            err(
                400,
                meta_body(131047, None, "(#131047) Re-engagement message")
            ),
            GraphError::OutsideCustomerServiceWindow(_)
        ));
        assert!(matches!(
            err(
                404,
                meta_body(
                    132001,
                    None,
                    "(#132001) Template name does not exist in the translation"
                )
            ),
            GraphError::UnknownTemplate(_)
        ));
        assert!(matches!(
            err(
                400,
                meta_body(
                    132000,
                    None,
                    "(#132000) Number of parameters does not match the expected number of params"
                )
            ),
            GraphError::TemplateParameters(_)
        ));
        assert!(matches!(
            err(
                400,
                meta_body(131026, None, "(#131026) Message Undeliverable")
            ),
            GraphError::RecipientUnavailable(_)
        ));
        assert!(matches!(
            err(
                400,
                meta_body(131051, None, "(#131051) Unsupported message type")
            ),
            GraphError::Rejected(_)
        ));
    }

    #[test]
    fn rate_limits_use_retry_after_or_the_default() {
        for code in [4, 80007, 130429, 131048, 131056] {
            let e = err(400, meta_body(code, None, "limit"));
            assert_eq!(
                e,
                GraphError::RateLimited {
                    retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                    meta: e.meta().unwrap().clone()
                },
                "code {code}"
            );
        }
        let body = meta_body(130429, None, "(#130429) Rate limit hit").to_string();
        let e = classify(429, body.as_bytes(), Some(7));
        assert!(matches!(
            e,
            GraphError::RateLimited {
                retry_after_secs: 7,
                ..
            }
        ));
        assert!(e.is_retryable());
        // A bare 429 without Meta's body is still a rate limit.
        assert!(matches!(
            classify(429, b"slow down", None),
            GraphError::RateLimited { .. }
        ));
    }

    #[test]
    fn outages_are_retryable_and_keep_the_code() {
        let e = err(500, meta_body(131000, None, "Something went wrong"));
        assert_eq!(e.code(), Some(131000));
        assert!(matches!(
            e,
            GraphError::Unavailable {
                status: Some(500),
                ..
            }
        ));
        assert!(e.is_retryable());
        assert!(matches!(
            err(503, meta_body(2, None, "Service temporarily unavailable")),
            GraphError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(502, b"<html>bad gateway</html>", None),
            GraphError::Unavailable {
                status: Some(502),
                code: None,
                ..
            }
        ));
    }

    #[test]
    fn unknown_4xx_codes_are_rejections_that_keep_metas_words() {
        let e = err(
            400,
            json!({"error": {"message": "(#131009) Parameter value is not valid", "type": "OAuthException",
                   "code": 131009, "error_data": {"messaging_product": "whatsapp",
                   "details": "Invalid WhatsApp phone number"}, "fbtrace_id": "T"}}),
        );
        let GraphError::Rejected(meta) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            meta.details.as_deref(),
            Some("Invalid WhatsApp phone number")
        );
        assert!(e.to_string().contains("131009"));
        assert!(e.to_string().contains("fbtrace_id T"));
    }
}
