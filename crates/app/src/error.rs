//! The use-case error: what went wrong, in terms the API can turn into a status and a code.

use wagate_store::StoreError;

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The object does not exist for this account (or belongs to another).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field is invalid.
    #[error("{message}")]
    InvalidField {
        /// The offending parameter.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// The feature is not available here (e.g. a sandbox control outside the sandbox).
    #[error("{0}")]
    Forbidden(String),
    /// A business rule refused the request (card required, line not ready, daily limit…).
    #[error("{0}")]
    Rule(#[from] RuleError),
    /// The store failed: an internal error, never the caller's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// An invalid-field error.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::InvalidField {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// A business rule that refused a request; each maps to one API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// No card on file (402 `card_required`).
    #[error("add a card first: POST /api/v1/billing/card")]
    CardRequired,
    /// The card was declined (402 `card_declined`).
    #[error("the card was declined: {message}")]
    CardDeclined {
        /// The processor's decline code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The account has no calling rollout (403 `calling_not_available`).
    #[error("calling is not available on this account")]
    CallingNotAvailable,
    /// The line cannot send yet (409 `line_not_ready`).
    #[error("the line is {0}; it can send once it is ready")]
    LineNotReady(&'static str),
    /// The line was released (409 `line_released`).
    #[error("the line was released")]
    LineReleased,
    /// The line reached its daily outbound limit (429 `rate_limited`).
    #[error("the line reached its daily limit of {limit} outbound messages")]
    DailyLimit {
        /// The limit that applies today.
        limit: u32,
        /// Seconds until the next UTC midnight.
        retry_after: u64,
    },
    /// WhatsApp rate-limited the line (429 `rate_limited`, `reason: whatsapp_rate_limit`).
    #[error("WhatsApp asked this line to slow down; retry after {retry_after} s")]
    WhatsAppRateLimit {
        /// Seconds until WhatsApp's limit passes.
        retry_after: u64,
    },
    /// The payment processor could not be reached or answered oddly (502).
    #[error("the payment processor is unavailable: {0}")]
    ProcessorUnavailable(String),
    /// This server has no payment processor configured (503 `payments_not_configured`).
    #[error("card payments are not configured on this server; ask its operator to set up a payment processor")]
    PaymentsNotConfigured,
    /// The calling choice is locked once the line is scanned (409).
    #[error("the calling choice is locked once the QR code is scanned")]
    CallingLocked,
    /// The webhook endpoint is disabled (409 `invalid_state`).
    #[error("the endpoint is disabled; enable it first")]
    EndpointDisabled,
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;
