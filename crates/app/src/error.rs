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
    /// Meta refused a cloud line's phone number id or access token (422
    /// `cloud_credentials_invalid`).
    #[error("Meta refused the Cloud API credentials: {0}")]
    CloudCredentialsInvalid(String),
    /// This server cannot hold Cloud API credentials: it has no server key (503
    /// `cloud_not_configured`).
    #[error(
        "this server has no server key (WAGATE_SECRET_KEY) to seal Cloud API access tokens with"
    )]
    CloudNotConfigured,
    /// An open line already uses the Meta phone number id (409 `phone_number_in_use`).
    #[error("an open line already uses this phone number id")]
    PhoneNumberInUse,
    /// A free-form message with no open customer service window (409
    /// `outside_customer_service_window`): Meta only delivers templates then.
    #[error("the customer service window is closed (no message from this user in the last 24 hours): send a template")]
    OutsideCustomerServiceWindow,
    /// Meta refused the template or its parameters (422 `template_rejected`).
    #[error("{0}")]
    TemplateRejected(String),
    /// Meta's rate limit (429 `rate_limited`, `reason: meta_rate_limit`).
    #[error("Meta asked this number to slow down; retry after {retry_after} s")]
    MetaRateLimit {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Meta refused the message for another reason (422 `meta_rejected`).
    #[error("{0}")]
    MetaRejected(String),
    /// Meta's Graph API could not be reached or failed (502 `meta_unavailable`).
    #[error("{0}")]
    MetaUnavailable(String),
    /// A days-mode line past its `paid_until` (402 `line_unpaid`).
    #[error("the line's days ran out{}: extend it with POST /api/v1/wa/lines/{{id}}/extend", paid_until.as_ref().map(|p| format!(" at {p}")).unwrap_or_default())]
    LineUnpaid {
        /// When its days ran out (none if it never had any).
        paid_until: Option<String>,
    },
    /// The prepaid days balance is short (402 `insufficient_days`).
    #[error("the balance holds {balance} days; {requested} were asked for: buy days with POST /api/v1/billing/invoices")]
    InsufficientDays {
        /// Days on the balance.
        balance: i64,
        /// Days asked for.
        requested: u32,
    },
    /// The account's billing mode cannot change while it has open lines (409
    /// `invalid_state`).
    #[error("the account has open lines: its billing mode changes only when none is open (release them first)")]
    BillingModeLocked,
    /// This server has no Stripe settings (503 `stripe_not_configured`).
    #[error("Stripe is not configured on this server (stripe_secret_key, stripe_webhook_secret)")]
    StripeNotConfigured,
    /// The account is billed flat, not in days (409 `invalid_state`).
    #[error("this account is billed flat (monthly plans from the wallet); days billing is set up by the operator")]
    NotDaysBilling,
    /// The line's plan has no calling (403 `calling_not_enabled`).
    #[error("calling is not enabled on this line: its plan is messaging only")]
    CallingNotEnabled,
    /// The line is in another call (409 `line_busy`).
    #[error("the line is in another call; one call at a time per line")]
    LineBusy,
    /// The call is over (409 `call_ended`).
    #[error("the call has ended")]
    CallEnded,
    /// The call is not in a state that allows this (409 `invalid_state`).
    #[error("{0}")]
    CallNotNow(String),
    /// This server's connector cannot call (503 `calling_unavailable`).
    #[error("{0}")]
    CallingUnavailable(String),
    /// The wallet does not cover a chargeable message (402 `insufficient_balance`).
    #[error(
        "the wallet does not cover this message's Meta charge of {required} USD: top up first"
    )]
    InsufficientBalance {
        /// The message's price.
        required: wagate_domain::money::Micros,
    },
    /// No provider has a number in stock for the service, country and kind (409
    /// `out_of_stock`).
    #[error("no number is in stock for {0} right now; try again later or another country")]
    OutOfStock(String),
    /// The wallet does not cover a number or an extension (402 `insufficient_balance`).
    #[error("the wallet does not cover this number's price of {required} USD: top up first")]
    NumberBalance {
        /// The price.
        required: wagate_domain::money::Micros,
    },
    /// The number is not in a state that allows this (409 `invalid_state`).
    #[error("{0}")]
    NumberNotNow(String),
    /// No number provider could sell one: none configured, or every one with stock failed
    /// (503 `numbers_unavailable`).
    #[error("{0}")]
    NumbersUnavailable(String),
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;
