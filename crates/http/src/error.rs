//! The error catalogue: every code the API returns, each with its HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use wagate_app::{AppError, RuleError};

/// A machine-readable error code. Each knows its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: the body is not valid JSON.
    InvalidJson,
    /// 400: a malformed request that is not about one field.
    BadRequest,
    /// 401: no key, or an unknown or revoked one.
    Unauthorized,
    /// 402: a card is needed.
    CardRequired,
    /// 402: the card was declined.
    CardDeclined,
    /// 402: the wallet cannot cover it.
    InsufficientBalance,
    /// 403: the feature is not available to this account or server.
    Forbidden,
    /// 403: calling is not rolled out to this account.
    CallingNotAvailable,
    /// 404: no such object (or another account's).
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: the same idempotent request is still being processed.
    IdempotencyInProgress,
    /// 409: the line is not ready.
    LineNotReady,
    /// 409: the line is released.
    LineReleased,
    /// 413: the body is over 1 MiB.
    PayloadTooLarge,
    /// 422: a field is invalid.
    InvalidField,
    /// 422: the idempotency key was used for a different request.
    IdempotencyKeyReused,
    /// 409: the calling choice is locked once the QR is scanned.
    CallingLocked,
    /// 409: the object is in a state that does not allow this.
    InvalidState,
    /// 502: the payment processor did not answer.
    ProcessorUnavailable,
    /// 429: too many requests.
    RateLimited,
    /// 500: our fault; the cause is logged, never returned.
    InternalError,
    /// 503: temporarily unavailable (e.g. shutting down).
    Unavailable,
    /// 503: this server has no payment processor configured.
    PaymentsNotConfigured,
    /// 503: the server is at its limit of requests in flight.
    ServerBusy,
    /// 503: the request did not answer in time (it may still complete).
    RequestTimeout,
    /// No WhatsApp connector on this server (503): lines cannot be connected here.
    ConnectorUnavailable,
    /// `cloud_credentials_invalid`.
    CloudCredentialsInvalid,
    /// `cloud_not_configured`.
    CloudNotConfigured,
    /// `phone_number_in_use`.
    PhoneNumberInUse,
    /// `outside_customer_service_window`.
    OutsideCustomerServiceWindow,
    /// `template_rejected`.
    TemplateRejected,
    /// `meta_rejected`.
    MetaRejected,
    /// `meta_unavailable`.
    MetaUnavailable,
    /// `invalid_signature`.
    InvalidSignature,
    /// 403 `calling_not_enabled`: the line's plan has no calling.
    CallingNotEnabled,
    /// 409 `line_busy`: the line is in another call.
    LineBusy,
    /// 409 `call_ended`: the call is over.
    CallEnded,
    /// 503 `calling_unavailable`: this server's connector cannot call.
    CallingUnavailable,
    /// 402 `line_unpaid`: a days-mode line past its `paid_until`.
    LineUnpaid,
    /// 402 `insufficient_days`: the prepaid days balance is short.
    InsufficientDays,
    /// 503 `stripe_not_configured`: this server has no Stripe settings.
    StripeNotConfigured,
    /// 409 `out_of_stock`: no provider has a number in stock.
    OutOfStock,
    /// 503 `numbers_unavailable`: no number provider could sell one.
    NumbersUnavailable,
}

impl ErrorCode {
    /// Every code of the catalogue.
    pub const ALL: [ErrorCode; 43] = {
        use ErrorCode::*;
        [
            InvalidJson,
            BadRequest,
            Unauthorized,
            CardRequired,
            CardDeclined,
            InsufficientBalance,
            Forbidden,
            CallingNotAvailable,
            NotFound,
            MethodNotAllowed,
            IdempotencyInProgress,
            LineNotReady,
            LineReleased,
            PayloadTooLarge,
            InvalidField,
            IdempotencyKeyReused,
            CallingLocked,
            InvalidState,
            ProcessorUnavailable,
            RateLimited,
            InternalError,
            Unavailable,
            PaymentsNotConfigured,
            ServerBusy,
            RequestTimeout,
            ConnectorUnavailable,
            CloudCredentialsInvalid,
            CloudNotConfigured,
            PhoneNumberInUse,
            OutsideCustomerServiceWindow,
            TemplateRejected,
            MetaRejected,
            MetaUnavailable,
            InvalidSignature,
            CallingNotEnabled,
            LineBusy,
            CallEnded,
            CallingUnavailable,
            LineUnpaid,
            InsufficientDays,
            StripeNotConfigured,
            OutOfStock,
            NumbersUnavailable,
        ]
    };

    /// The code whose [`as_str`](Self::as_str) is `s`.
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The code as it appears in the body.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            BadRequest => "bad_request",
            Unauthorized => "unauthorized",
            CardRequired => "card_required",
            CardDeclined => "card_declined",
            InsufficientBalance => "insufficient_balance",
            Forbidden => "forbidden",
            CallingNotAvailable => "calling_not_available",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            IdempotencyInProgress => "idempotency_in_progress",
            LineNotReady => "line_not_ready",
            LineReleased => "line_released",
            PayloadTooLarge => "payload_too_large",
            InvalidField => "invalid_field",
            IdempotencyKeyReused => "idempotency_key_reused",
            CallingLocked => "calling_locked",
            InvalidState => "invalid_state",
            ProcessorUnavailable => "processor_unavailable",
            RateLimited => "rate_limited",
            InternalError => "internal_error",
            Unavailable => "unavailable",
            ServerBusy => "server_busy",
            PaymentsNotConfigured => "payments_not_configured",
            RequestTimeout => "request_timeout",
            ConnectorUnavailable => "connector_unavailable",
            CloudCredentialsInvalid => "cloud_credentials_invalid",
            CloudNotConfigured => "cloud_not_configured",
            PhoneNumberInUse => "phone_number_in_use",
            OutsideCustomerServiceWindow => "outside_customer_service_window",
            TemplateRejected => "template_rejected",
            MetaRejected => "meta_rejected",
            MetaUnavailable => "meta_unavailable",
            InvalidSignature => "invalid_signature",
            CallingNotEnabled => "calling_not_enabled",
            LineBusy => "line_busy",
            CallEnded => "call_ended",
            CallingUnavailable => "calling_unavailable",
            LineUnpaid => "line_unpaid",
            InsufficientDays => "insufficient_days",
            StripeNotConfigured => "stripe_not_configured",
            OutOfStock => "out_of_stock",
            NumbersUnavailable => "numbers_unavailable",
        }
    }

    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidJson | BadRequest => StatusCode::BAD_REQUEST,
            Unauthorized | InvalidSignature => StatusCode::UNAUTHORIZED,
            CardRequired | CardDeclined | InsufficientBalance | LineUnpaid | InsufficientDays => {
                StatusCode::PAYMENT_REQUIRED
            }
            Forbidden | CallingNotAvailable | CallingNotEnabled => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IdempotencyInProgress
            | LineNotReady
            | LineReleased
            | CallingLocked
            | InvalidState
            | PhoneNumberInUse
            | OutsideCustomerServiceWindow
            | LineBusy
            | CallEnded
            | OutOfStock => StatusCode::CONFLICT,
            ProcessorUnavailable | MetaUnavailable => StatusCode::BAD_GATEWAY,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidField
            | IdempotencyKeyReused
            | CloudCredentialsInvalid
            | TemplateRejected
            | MetaRejected => StatusCode::UNPROCESSABLE_ENTITY,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable
            | ServerBusy
            | RequestTimeout
            | PaymentsNotConfigured
            | ConnectorUnavailable
            | CloudNotConfigured
            | CallingUnavailable
            | StripeNotConfigured
            | NumbersUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An API error: a code, a human message and fields that help (`param`, `reason`, …).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    extra: Map<String, Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// 422 about one field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidField, message).with("param", param.into())
    }

    /// 404 for an object kind.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// The opaque 500: logs `cause` with a reference, returns only the reference.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let reference = wagate_domain::ids::random_base62(12);
        tracing::error!(reference = %reference, error = %cause, "internal error");
        Self::new(
            ErrorCode::InternalError,
            "an internal error occurred; it has been logged",
        )
        .with("reference", reference)
    }

    /// Adds a helpful field to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `Retry-After` (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The `param` field, if the error names one.
    pub fn param(&self) -> Option<&str> {
        self.extra.get("param").and_then(|v| v.as_str())
    }

    /// The human-readable message (the dashboard shows it on its error pages).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), self.code.as_str().into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra);
        let mut resp = (self.code.status(), axum::Json(Value::Object(body))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::InvalidField { param, message } => ApiError::invalid(param, message),
            AppError::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
            AppError::Rule(rule) => {
                let message = rule.to_string();
                match rule {
                    RuleError::CardRequired => ApiError::new(ErrorCode::CardRequired, message),
                    RuleError::CardDeclined { code, .. } => {
                        ApiError::new(ErrorCode::CardDeclined, message).with("decline_code", code)
                    }
                    RuleError::CallingNotAvailable => {
                        ApiError::new(ErrorCode::CallingNotAvailable, message)
                    }
                    RuleError::LineNotReady(status) => {
                        ApiError::new(ErrorCode::LineNotReady, message).with("status", status)
                    }
                    RuleError::LineReleased => ApiError::new(ErrorCode::LineReleased, message),
                    RuleError::DailyLimit { limit, retry_after } => {
                        ApiError::new(ErrorCode::RateLimited, message)
                            .with("reason", "line_daily_limit")
                            .with("limit", limit)
                            .retry_after(retry_after)
                    }
                    RuleError::WhatsAppRateLimit { retry_after } => {
                        ApiError::new(ErrorCode::RateLimited, message)
                            .with("reason", "whatsapp_rate_limit")
                            .retry_after(retry_after)
                    }
                    RuleError::ProcessorUnavailable(_) => ApiError::new(
                        ErrorCode::ProcessorUnavailable,
                        "the payment processor did not answer; nothing was charged twice — retry with the same Idempotency-Key",
                    ),
                    RuleError::CallingLocked => ApiError::new(ErrorCode::CallingLocked, message),
                    RuleError::EndpointDisabled => ApiError::new(ErrorCode::InvalidState, message),
                    RuleError::PaymentsNotConfigured => {
                        ApiError::new(ErrorCode::PaymentsNotConfigured, message)
                    }
                    RuleError::CloudCredentialsInvalid(_) => {
                        ApiError::new(ErrorCode::CloudCredentialsInvalid, message)
                    }
                    RuleError::CloudNotConfigured => {
                        ApiError::new(ErrorCode::CloudNotConfigured, message)
                    }
                    RuleError::PhoneNumberInUse => {
                        ApiError::new(ErrorCode::PhoneNumberInUse, message)
                            .with("param", "cloud.phone_number_id")
                    }
                    RuleError::OutsideCustomerServiceWindow => {
                        ApiError::new(ErrorCode::OutsideCustomerServiceWindow, message)
                    }
                    RuleError::TemplateRejected(_) => {
                        ApiError::new(ErrorCode::TemplateRejected, message).with("param", "template")
                    }
                    RuleError::MetaRateLimit { retry_after } => {
                        ApiError::new(ErrorCode::RateLimited, message)
                            .with("reason", "meta_rate_limit")
                            .retry_after(retry_after)
                    }
                    RuleError::MetaRejected(_) => ApiError::new(ErrorCode::MetaRejected, message),
                    RuleError::MetaUnavailable(_) => {
                        ApiError::new(ErrorCode::MetaUnavailable, message)
                    }
                    RuleError::NotDaysBilling | RuleError::BillingModeLocked => {
                        ApiError::new(ErrorCode::InvalidState, message)
                    }
                    RuleError::StripeNotConfigured => {
                        ApiError::new(ErrorCode::StripeNotConfigured, message)
                    }
                    RuleError::LineUnpaid { paid_until } => {
                        ApiError::new(ErrorCode::LineUnpaid, message).with("paid_until", paid_until)
                    }
                    RuleError::InsufficientDays { balance, requested } => {
                        ApiError::new(ErrorCode::InsufficientDays, message)
                            .with("balance_days", balance)
                            .with("requested_days", requested)
                    }
                    RuleError::CallingNotEnabled => {
                        ApiError::new(ErrorCode::CallingNotEnabled, message)
                    }
                    RuleError::LineBusy => ApiError::new(ErrorCode::LineBusy, message),
                    RuleError::CallEnded => ApiError::new(ErrorCode::CallEnded, message),
                    RuleError::CallNotNow(_) => ApiError::new(ErrorCode::InvalidState, message),
                    RuleError::CallingUnavailable(_) => {
                        ApiError::new(ErrorCode::CallingUnavailable, message)
                    }
                    RuleError::InsufficientBalance { required }
                    | RuleError::NumberBalance { required } => {
                        ApiError::new(ErrorCode::InsufficientBalance, message)
                            .with("required", required.to_decimal(2))
                    }
                    RuleError::OutOfStock(_) => ApiError::new(ErrorCode::OutOfStock, message),
                    RuleError::NumberNotNow(_) => ApiError::new(ErrorCode::InvalidState, message),
                    RuleError::NumbersUnavailable(_) => {
                        ApiError::new(ErrorCode::NumbersUnavailable, message)
                    }
                }
            }
            AppError::Store(e) => ApiError::internal(e),
            AppError::Internal(e) => ApiError::internal(format!("{e:#}")),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
