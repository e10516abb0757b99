//! Sorting Square's answers into [`PaymentError`]s.
//!
//! Square reports errors as `{"errors": [{"category", "code", "detail"}]}`
//! (<https://developer.squareup.com/docs/build-basics/handling-errors>). The category says who
//! is at fault: `PAYMENT_METHOD_ERROR` is the card (a decline), `INVALID_REQUEST_ERROR` and
//! `AUTHENTICATION_ERROR` are us, `API_ERROR` and `RATE_LIMIT_ERROR` are Square or load, where
//! the outcome of a write is not known.

use super::wire::{ErrorBody, SquareError};
use crate::error::decline_message;
use crate::PaymentError;

/// Codes that mean the card itself was refused, whatever the category says
/// (<https://developer.squareup.com/docs/payments-api/error-codes>).
const DECLINE_CODES: &[&str] = &[
    "ADDRESS_VERIFICATION_FAILURE",
    "ALLOWABLE_PIN_TRIES_EXCEEDED",
    "BAD_EXPIRATION",
    "CARD_DECLINED",
    "CARD_DECLINED_CALL_ISSUER",
    "CARD_DECLINED_VERIFICATION_REQUIRED",
    "CARD_EXPIRED",
    "CARD_NOT_SUPPORTED",
    "CARDHOLDER_INSUFFICIENT_PERMISSIONS",
    "CVV_FAILURE",
    "EXPIRATION_FAILURE",
    "GENERIC_DECLINE",
    "INSUFFICIENT_FUNDS",
    "INVALID_ACCOUNT",
    "INVALID_EXPIRATION",
    "INVALID_PIN",
    "INVALID_POSTAL_CODE",
    "PAN_FAILURE",
    "PAYMENT_LIMIT_EXCEEDED",
    "TRANSACTION_LIMIT",
    "VOICE_FAILURE",
];

/// Codes about the nonce or card token rather than the card: our input is bad, not a decline.
const TOKEN_CODES: &[&str] = &[
    "INVALID_CARD_DATA",
    "INVALID_CARD",
    "CARD_TOKEN_EXPIRED",
    "CARD_TOKEN_USED",
    "SOURCE_USED",
    "SOURCE_EXPIRED",
];

/// Whether `e` is the card being refused.
fn is_decline(e: &SquareError) -> bool {
    !TOKEN_CODES.contains(&e.code.as_str())
        && (e.category == "PAYMENT_METHOD_ERROR" || DECLINE_CODES.contains(&e.code.as_str()))
}

/// Whether `e` leaves the outcome of a write unknown.
fn is_transient(e: &SquareError) -> bool {
    matches!(e.category.as_str(), "API_ERROR" | "RATE_LIMIT_ERROR")
}

/// `CODE: detail, CODE: detail` for logs and unknown outcomes.
fn summary(errors: &[SquareError]) -> String {
    errors
        .iter()
        .map(|e| match &e.detail {
            Some(d) => format!("{}: {d}", e.code),
            None => e.code.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The declined error for `e`, with a friendly message where we know the code.
pub(super) fn declined(e: &SquareError) -> PaymentError {
    let message = decline_message(&e.code)
        .map(str::to_owned)
        .or_else(|| e.detail.clone())
        .unwrap_or_else(|| "The card was declined.".to_owned());
    PaymentError::declined(&e.code, message)
}

/// The error for a non-2xx answer of `op` with HTTP `status` and raw `body`.
pub(super) fn from_response(op: &str, status: u16, body: &[u8]) -> PaymentError {
    let errors = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .errors;
    classify(op, status, &errors)
}

/// The error for HTTP `status` with Square's `errors` list.
pub(super) fn classify(op: &str, status: u16, errors: &[SquareError]) -> PaymentError {
    if status >= 500 || status == 429 || status == 408 {
        return PaymentError::Unknown(format!(
            "{op}: Square answered HTTP {status} ({})",
            summary(errors)
        ));
    }
    if errors.is_empty() {
        return PaymentError::Unknown(format!(
            "{op}: Square answered HTTP {status} without an error list"
        ));
    }
    if let Some(e) = errors.iter().find(|e| is_decline(e)) {
        return declined(e);
    }
    if errors.iter().any(is_transient) {
        return PaymentError::Unknown(format!(
            "{op}: Square answered HTTP {status} ({})",
            summary(errors)
        ));
    }
    let e = &errors[0];
    PaymentError::invalid(&e.code, e.detail.clone().unwrap_or_else(|| e.code.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(category: &str, code: &str) -> Vec<u8> {
        serde_json::json!({"errors": [{"category": category, "code": code, "detail": "d"}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn card_errors_are_declines() {
        let e = from_response("op", 402, &body("PAYMENT_METHOD_ERROR", "GENERIC_DECLINE"));
        assert!(matches!(e, PaymentError::Declined { ref code, .. } if code == "GENERIC_DECLINE"));
        let e = from_response("op", 400, &body("INVALID_REQUEST_ERROR", "CVV_FAILURE"));
        assert!(matches!(e, PaymentError::Declined { .. }));
    }

    #[test]
    fn request_and_token_errors_are_invalid() {
        for (category, code) in [
            ("INVALID_REQUEST_ERROR", "INVALID_CARD_DATA"),
            ("PAYMENT_METHOD_ERROR", "CARD_TOKEN_USED"),
            ("INVALID_REQUEST_ERROR", "NOT_FOUND"),
            ("AUTHENTICATION_ERROR", "UNAUTHORIZED"),
            ("INVALID_REQUEST_ERROR", "IDEMPOTENCY_KEY_REUSED"),
        ] {
            let e = from_response("op", 400, &body(category, code));
            assert!(
                matches!(e, PaymentError::Invalid { code: ref c, .. } if c == code),
                "{e}"
            );
        }
    }

    #[test]
    fn server_trouble_and_unreadable_answers_are_unknown() {
        assert!(from_response("op", 500, &body("API_ERROR", "INTERNAL_SERVER_ERROR")).is_unknown());
        assert!(from_response("op", 429, &body("RATE_LIMIT_ERROR", "RATE_LIMITED")).is_unknown());
        assert!(from_response("op", 400, &body("API_ERROR", "SERVICE_UNAVAILABLE")).is_unknown());
        assert!(from_response("op", 400, b"<html>bad gateway</html>").is_unknown());
        assert!(from_response("op", 503, b"").is_unknown());
    }
}
