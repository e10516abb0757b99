//! Per-line Stripe subscriptions (PRODUCT.md §11) and Stripe's webhooks.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use wagate_app::billing::subscriptions::{subscription_json, SubscriptionInterval, WebhookRefused};

use super::lines::line_id;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ApiJson;
use crate::AppState;

/// Subscribe a line through Stripe.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeIn {
    /// `month` (30 days at your day price) or `year` (10 months' price).
    pub interval: String,
    /// A Stripe PaymentMethod (`pm_…`) to charge: needed for the account's first
    /// subscription, and it becomes the account's default card at Stripe.
    pub payment_method: Option<String>,
}

/// A line's Stripe subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    /// Always `subscription`.
    pub object: String,
    /// Stripe's `sub_…`.
    pub id: String,
    /// The line it keeps paid.
    pub line_id: String,
    /// `month` or `year`.
    pub interval: String,
    /// Stripe's status: `active`, `past_due`, `canceled`, …
    pub status: String,
    /// What each period costs (decimal string).
    pub amount: String,
    /// `USD`.
    pub currency: String,
    /// The line sends until then.
    pub paid_until: Option<String>,
}

/// What a Stripe webhook delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeReceivedOut {
    /// Always `true`: the event was applied, or had been before.
    pub received: bool,
}

/// Subscribes a line of an account billed in days through Stripe, at the account's price (a
/// month is 30 days at the day price; a year costs 10 months): charged now, and the line is
/// paid to the end of the period; Stripe's renewals extend it. A declined card → 402
/// `card_declined`; a server without Stripe settings → 503 `stripe_not_configured`.
#[utoipa::path(post, path = "/api/v1/wa/lines/{id}/subscription", operation_id = "subscribeLine", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = SubscribeIn,
    responses((status = 201, description = "The subscription", body = SubscriptionOut),
        (status = 402, description = "`card_declined`", body = crate::openapi::ErrorOut),
        (status = 409, description = "`line_released`, `invalid_state` (billed flat, or subscribed already)", body = crate::openapi::ErrorOut),
        (status = 502, description = "`processor_unavailable`: Stripe did not answer (retry with the same Idempotency-Key)", body = crate::openapi::ErrorOut),
        (status = 503, description = "`stripe_not_configured`", body = crate::openapi::ErrorOut)))]
pub async fn subscribe(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SubscribeIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let interval = SubscriptionInterval::parse(&input.interval)
        .ok_or_else(|| ApiError::invalid("interval", "must be month or year"))?;
    if let Some(pm) = &input.payment_method {
        if pm.is_empty() || pm.len() > 255 {
            return Err(ApiError::invalid(
                "payment_method",
                "a Stripe PaymentMethod id, 1 to 255 characters",
            ));
        }
    }
    let line = line_id(&id)?;
    let (sub, paid_until) = st
        .app
        .subscriptions
        .subscribe(&who, &line, interval, input.payment_method.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(subscription_json(&sub, paid_until)),
    ))
}

/// Stripe's webhooks: `invoice.paid` extends the line to the end of the period it paid;
/// `invoice.payment_failed` and `customer.subscription.deleted` leave it unpaid from its
/// `paid_until`. Verified by `Stripe-Signature` over the raw body (401 `invalid_signature`
/// and nothing stored otherwise); each event applies once.
#[utoipa::path(post, path = "/stripe/webhooks", operation_id = "receiveStripeWebhook", tag = "billing",
    request_body(content = Object, description = "A Stripe event", content_type = "application/json"),
    params(("Stripe-Signature" = Option<String>, Header, description = "`t=…,v1=…`")),
    responses((status = 200, description = "Applied", body = StripeReceivedOut),
        (status = 400, description = "`bad_request`: not a Stripe event", body = crate::openapi::ErrorOut),
        (status = 401, description = "`invalid_signature`", body = crate::openapi::ErrorOut),
        (status = 503, description = "`stripe_not_configured`", body = crate::openapi::ErrorOut)))]
pub async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<ApiJson<StripeReceivedOut>> {
    let signature = headers
        .get(wagate_stripe::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match st.app.subscriptions.receive(&body, signature).await {
        Ok(()) => Ok(ApiJson(StripeReceivedOut { received: true })),
        Err(e @ WebhookRefused::NotConfigured) => {
            Err(ApiError::new(ErrorCode::StripeNotConfigured, e.to_string()))
        }
        Err(e @ WebhookRefused::Signature(_)) => {
            Err(ApiError::new(ErrorCode::InvalidSignature, e.to_string()))
        }
        Err(e @ WebhookRefused::Malformed(_)) => {
            Err(ApiError::new(ErrorCode::BadRequest, e.to_string()))
        }
        Err(WebhookRefused::App(e)) => Err(e.into()),
    }
}
