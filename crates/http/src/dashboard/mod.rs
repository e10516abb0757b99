//! The dashboard (PRODUCT.md §13, docs/dashboard.md): server-rendered HTML pages for an
//! account signed in with its API key. Every action goes through the same application
//! services as the JSON API, with the same checks (another account's objects are 404 here
//! too); only the way in (a session cookie and a CSRF token instead of a bearer key) and the
//! way out (HTML and redirects instead of JSON) differ.

mod assets;
mod chart;
mod events;
mod invoices;
mod line;
mod lines;
mod numbers;
mod session;
mod view;
mod wallet;
mod webhooks;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use chart::{balance_chart, ChartPoint};

/// The dashboard's routes, all under `/dashboard`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(lines::index))
        .route("/dashboard/sign_in", post(session::sign_in))
        .route("/dashboard/sign_out", post(session::sign_out))
        .route("/dashboard/events", get(events::stream))
        .route("/dashboard/assets/{name}", get(assets::serve))
        .route("/dashboard/lines", post(lines::create))
        .route("/dashboard/lines/{id}", get(line::show))
        .route("/dashboard/lines/{id}/label", post(lines::label))
        .route("/dashboard/lines/{id}/release", post(lines::release))
        .route("/dashboard/lines/{id}/messages", post(line::send))
        .route("/dashboard/lines/{id}/calls", post(line::call))
        .route("/dashboard/calls/{id}/hangup", post(line::hangup))
        .route("/dashboard/calls/{id}/accept", post(line::accept))
        .route("/dashboard/calls/{id}/reject", post(line::reject))
        .route("/dashboard/wallet", get(wallet::show))
        .route("/dashboard/wallet/topup", post(wallet::topup))
        .route("/dashboard/wallet/auto_topup", post(wallet::auto_topup))
        .route("/dashboard/webhooks", get(webhooks::show))
        .route(
            "/dashboard/webhooks/endpoints",
            post(webhooks::create_endpoint),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/enabled",
            post(webhooks::set_enabled),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/test",
            post(webhooks::test_endpoint),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/delete",
            post(webhooks::delete_endpoint),
        )
        .route("/dashboard/webhooks/secret/reveal", post(webhooks::reveal))
        .route("/dashboard/webhooks/secret/rotate", post(webhooks::rotate))
        .route(
            "/dashboard/webhooks/events/{id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/dashboard/invoices", get(invoices::show))
        .route(
            "/dashboard/numbers",
            get(numbers::show).post(numbers::order),
        )
        .route("/dashboard/numbers/{id}/cancel", post(numbers::cancel))
        .route("/dashboard/numbers/{id}/extend", post(numbers::extend))
}
