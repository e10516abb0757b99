//! The router: public routes, authenticated routes, sandbox routes, and our 404/405/500.

pub(crate) mod account;
pub(crate) mod billing;
pub(crate) mod calls;
pub(crate) mod connect;
pub(crate) mod days;
pub(crate) mod keys;
pub(crate) mod lines;
pub(crate) mod meta;
pub(crate) mod numbers;
pub(crate) mod pricing;
pub(crate) mod sandbox;
pub(crate) mod stripe;
pub(crate) mod system;
pub(crate) mod webhooks;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};
use crate::json::MAX_BODY_BYTES;
use crate::{auth, guard, idempotency, metrics, AppState};

/// The body of a POST that takes no parameters: `{}` or no body at all. Anything else is
/// refused like any body (400 not JSON, 422 naming an unknown field or for not being an
/// object), so a request that meant something else never silently does this.
#[derive(Debug, Default, ToSchema)]
pub struct EmptyIn {}

impl<'de> Deserialize<'de> for EmptyIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Empty;
        impl<'de> Visitor<'de> for Empty {
            type Value = EmptyIn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an empty object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EmptyIn, A::Error> {
                match map.next_key::<String>()? {
                    None => Ok(EmptyIn {}),
                    Some(k) => Err(serde::de::Error::unknown_field(&k, &[])),
                }
            }
        }
        // A map only: serde would also read an empty struct from `[]`.
        d.deserialize_map(Empty)
    }
}

/// The whole HTTP application. Sandbox routes exist only when the app runs as a sandbox.
pub fn router(state: AppState) -> Router {
    let mut authed = Router::new()
        .route("/api/v1/account", get(account::get))
        .route("/api/v1/account/keys", get(keys::list).post(keys::create))
        .route("/api/v1/account/keys/{id}", delete(keys::revoke))
        .route(
            "/api/v1/webhooks/endpoints",
            get(webhooks::list_endpoints).post(webhooks::create_endpoint),
        )
        .route(
            "/api/v1/webhooks/endpoints/{id}",
            get(webhooks::get_endpoint)
                .patch(webhooks::update_endpoint)
                .delete(webhooks::delete_endpoint),
        )
        .route(
            "/api/v1/webhooks/endpoints/{id}/test",
            post(webhooks::test_endpoint),
        )
        .route("/api/v1/webhooks/secret", get(webhooks::get_secret))
        .route(
            "/api/v1/webhooks/secret/rotate",
            post(webhooks::rotate_secret),
        )
        .route("/api/v1/webhooks/events", get(webhooks::list_events))
        .route("/api/v1/webhooks/events/{id}", get(webhooks::get_event))
        .route(
            "/api/v1/webhooks/events/{id}/redeliver",
            post(webhooks::redeliver_event),
        )
        .route("/api/v1/wa/lines", get(lines::list).post(lines::create))
        .route(
            "/api/v1/wa/lines/{id}",
            get(lines::get).patch(lines::update).delete(lines::release),
        )
        .route("/api/v1/wa/lines/{id}/pair_code", post(lines::pair_code))
        .route("/api/v1/wa/lines/{id}/extend", post(lines::extend))
        .route(
            "/api/v1/wa/lines/{id}/subscription",
            post(stripe::subscribe),
        )
        .route(
            "/api/v1/wa/lines/{id}/messages",
            get(lines::messages).post(lines::send),
        )
        .route(
            "/api/v1/wa/lines/{id}/calls",
            get(calls::list).post(calls::place),
        )
        .route("/api/v1/calls/{id}", get(calls::get))
        .route("/api/v1/calls/{id}/hangup", post(calls::hangup))
        .route("/api/v1/calls/{id}/accept", post(calls::accept))
        .route("/api/v1/calls/{id}/reject", post(calls::reject))
        .route(
            "/api/v1/billing/card",
            get(billing::get_card)
                .post(billing::add_card)
                .delete(billing::delete_card),
        )
        .route("/api/v1/billing/wallet", get(billing::wallet))
        .route("/api/v1/billing/wallet/topups", post(billing::topup))
        .route(
            "/api/v1/billing/wallet/auto_topup",
            put(billing::set_auto_topup),
        )
        .route("/api/v1/billing/transactions", get(billing::transactions))
        .route("/api/v1/billing/forecast", get(billing::forecast))
        .route("/api/v1/billing/days", get(days::get_days))
        .route(
            "/api/v1/billing/invoices",
            get(days::list_invoices).post(days::create_invoice),
        )
        .route("/api/v1/billing/invoices/{id}", get(days::get_invoice))
        .route("/api/v1/billing/invoices/{id}/pay", post(days::pay_invoice))
        .route(
            "/api/v1/pricing/reconciliation",
            get(pricing::reconciliation),
        )
        .route("/api/v1/pricing/analytics", get(pricing::analytics))
        .route("/api/v1/numbers", get(numbers::list).post(numbers::order))
        .route("/api/v1/numbers/prices", get(numbers::prices))
        .route("/api/v1/numbers/{id}", get(numbers::get))
        .route("/api/v1/numbers/{id}/cancel", post(numbers::cancel))
        .route("/api/v1/numbers/{id}/extend", post(numbers::extend));
    if state.app.is_sandbox() {
        authed = authed
            .route("/api/v1/sandbox/clock", get(sandbox::clock))
            .route("/api/v1/sandbox/clock/advance", post(sandbox::advance))
            .route("/api/v1/sandbox/lines/{id}/scan", post(sandbox::scan))
            .route(
                "/api/v1/sandbox/lines/{id}/disconnect",
                post(sandbox::disconnect),
            )
            .route("/api/v1/sandbox/lines/{id}/inbound", post(sandbox::inbound))
            .route("/api/v1/sandbox/lines/{id}/block", post(sandbox::block))
            .route(
                "/api/v1/sandbox/lines/{id}/rate_limit",
                post(sandbox::rate_limit),
            )
            .route(
                "/api/v1/sandbox/payments/fail_next",
                post(sandbox::fail_next),
            )
            .route(
                "/api/v1/sandbox/lines/{id}/incoming_call",
                post(calls::sandbox_incoming),
            )
            .route(
                "/api/v1/sandbox/calls/{id}/answer",
                post(calls::sandbox_answer),
            )
            .route(
                "/api/v1/sandbox/calls/{id}/reject",
                post(calls::sandbox_reject),
            )
            .route("/api/v1/sandbox/calls/{id}/busy", post(calls::sandbox_busy))
            .route(
                "/api/v1/sandbox/calls/{id}/hangup",
                post(calls::sandbox_hangup),
            )
            .route(
                "/api/v1/sandbox/numbers/{id}/sms",
                post(numbers::sandbox_sms),
            )
            .route(
                "/api/v1/sandbox/numbers/providers",
                get(numbers::sandbox_providers),
            )
            .route(
                "/api/v1/sandbox/numbers/providers/{name}",
                post(numbers::sandbox_configure),
            );
    }
    // Layers run outside-in from the last added: authenticate, then idempotency.
    let authed = authed
        .layer(from_fn_with_state(state.clone(), idempotency::replay))
        .layer(from_fn_with_state(state.clone(), auth::require_key));

    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/openapi.json", get(system::openapi))
        .route("/connect/{token}", get(connect::show))
        .route("/connect/{token}/status", get(connect::status))
        .route("/connect/{token}/events", get(connect::events))
        .route("/connect/{token}/calling", post(connect::set_calling))
        .route("/connect/{token}/pair_code", post(connect::pair_code))
        .route("/meta/webhooks", get(meta::verify).post(meta::receive))
        .route("/stripe/webhooks", post(stripe::receive))
        .route("/invoices/{token}", get(days::page))
        .route("/invoices/{token}/pdf", get(days::pdf))
        // Authenticated by the call's own token: browsers cannot set headers on a WebSocket.
        .route("/api/v1/calls/{id}/media", get(calls::media))
        .merge(authed)
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panicked))
        // Outside everything that does work, so no client can cancel that work halfway.
        .layer(from_fn_with_state(
            state.limits.clone(),
            guard::run_to_completion,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a handler panicked").into_response()
}
