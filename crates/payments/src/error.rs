//! What can go wrong when talking to the processor, sorted by what the caller must do.

/// Why a processor call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was refused (`CARD_DECLINED`, `CVV_FAILURE`, `INSUFFICIENT_FUNDS`, …).
    /// Nothing was charged; the message is safe to show to the business.
    #[error("card declined ({code}): {message}")]
    Declined {
        /// The processor's error code, e.g. `GENERIC_DECLINE`.
        code: String,
        /// A human-readable reason.
        message: String,
    },
    /// The processor rejected our request or its input (a bad or used nonce, an unknown card,
    /// an amount too small, a reused idempotency key, bad credentials). Nothing was charged.
    #[error("payment request rejected ({code}): {message}")]
    Invalid {
        /// The processor's error code, e.g. `INVALID_CARD_DATA`.
        code: String,
        /// A human-readable reason.
        message: String,
    },
    /// The outcome is not known: timeout, connection error, 5xx, 429 or an unreadable answer.
    /// The card may have been charged; resolve with the same request, never charge with a
    /// new key.
    #[error("payment outcome unknown: {0}")]
    Unknown(String),
}

impl PaymentError {
    /// True when the outcome is unknown and must be resolved before anything else.
    pub fn is_unknown(&self) -> bool {
        matches!(self, PaymentError::Unknown(_))
    }

    /// The processor's error code, if the processor gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            PaymentError::Declined { code, .. } | PaymentError::Invalid { code, .. } => Some(code),
            PaymentError::Unknown(_) => None,
        }
    }

    pub(crate) fn declined(code: &str, message: impl Into<String>) -> Self {
        PaymentError::Declined {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(code: &str, message: impl Into<String>) -> Self {
        PaymentError::Invalid {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// A friendly sentence for the decline codes Square documents, if we know the code.
pub(crate) fn decline_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "CARD_DECLINED" | "GENERIC_DECLINE" => "The card was declined.",
        "CVV_FAILURE" => "The card's security code (CVV) was rejected.",
        "ADDRESS_VERIFICATION_FAILURE" | "INVALID_POSTAL_CODE" => {
            "The card's postal code was rejected."
        }
        "INVALID_EXPIRATION" | "BAD_EXPIRATION" | "EXPIRATION_FAILURE" => {
            "The card's expiration date was rejected."
        }
        "CARD_EXPIRED" => "The card has expired.",
        "INSUFFICIENT_FUNDS" => "The card has insufficient funds.",
        "TRANSACTION_LIMIT" | "PAYMENT_LIMIT_EXCEEDED" => {
            "The card issuer refused the amount (limit reached)."
        }
        "CARD_NOT_SUPPORTED" => "This card is not supported.",
        "CARD_DECLINED_CALL_ISSUER" => {
            "The card was declined; the cardholder should call the issuer."
        }
        "CARD_DECLINED_VERIFICATION_REQUIRED" => "The card was declined: verification is required.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_outcomes_need_resolving() {
        assert!(PaymentError::Unknown("timeout".into()).is_unknown());
        assert!(!PaymentError::declined("CARD_DECLINED", "no").is_unknown());
        assert_eq!(
            PaymentError::invalid("NOT_FOUND", "x").code(),
            Some("NOT_FOUND")
        );
    }

    #[test]
    fn errors_display_their_code() {
        let e = PaymentError::declined("CVV_FAILURE", "bad cvv");
        assert_eq!(e.to_string(), "card declined (CVV_FAILURE): bad cvv");
    }
}
