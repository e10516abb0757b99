//! The OpenAPI document, generated from the handlers' annotations so it cannot drift from
//! the code; a test compares it with the committed `docs/openapi.json`.
//!
//! utoipa writes the operations and schemas; then, in one place, [`rules`] states every
//! rule the validators enforce from their own constants and [`answers`] adds the answers
//! every route gives by its shape (401, 404, 422, 503, …).

mod answers;
pub mod patterns;
pub mod rules;

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes;

/// Every error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorOut {
    /// The machine-readable code, e.g. `not_found`, `invalid_field`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// The offending parameter, for `invalid_field`.
    pub param: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer wg_test_…` or `wg_live_…`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "wagate API", description = "WhatsApp lines with exact billing. Errors are `{\"error\": code, \"message\": …}`; POSTs accept `Idempotency-Key`."),
    paths(
        routes::system::healthz,
        routes::system::metrics,
        routes::system::openapi,
        routes::account::get,
        routes::keys::create,
        routes::keys::list,
        routes::keys::revoke,
        routes::sandbox::clock,
        routes::sandbox::advance,
        routes::sandbox::scan,
        routes::sandbox::disconnect,
        routes::sandbox::inbound,
        routes::sandbox::block,
        routes::sandbox::rate_limit,
        routes::sandbox::fail_next,
        routes::lines::create,
        routes::lines::list,
        routes::lines::get,
        routes::lines::update,
        routes::lines::release,
        routes::lines::pair_code,
        routes::lines::extend,
        routes::stripe::subscribe,
        routes::stripe::receive,
        routes::lines::send,
        routes::lines::messages,
        routes::calls::place,
        routes::calls::list,
        routes::calls::get,
        routes::calls::hangup,
        routes::calls::accept,
        routes::calls::reject,
        routes::calls::media,
        routes::calls::sandbox_incoming,
        routes::calls::sandbox_answer,
        routes::calls::sandbox_reject,
        routes::calls::sandbox_busy,
        routes::calls::sandbox_hangup,
        routes::billing::add_card,
        routes::billing::get_card,
        routes::billing::delete_card,
        routes::billing::wallet,
        routes::billing::topup,
        routes::billing::set_auto_topup,
        routes::billing::transactions,
        routes::billing::forecast,
        routes::days::get_days,
        routes::days::create_invoice,
        routes::days::list_invoices,
        routes::days::get_invoice,
        routes::days::pay_invoice,
        routes::webhooks::create_endpoint,
        routes::webhooks::list_endpoints,
        routes::webhooks::get_endpoint,
        routes::webhooks::update_endpoint,
        routes::webhooks::delete_endpoint,
        routes::webhooks::test_endpoint,
        routes::webhooks::get_secret,
        routes::webhooks::rotate_secret,
        routes::webhooks::list_events,
        routes::webhooks::get_event,
        routes::webhooks::redeliver_event,
        routes::pricing::reconciliation,
        routes::pricing::analytics,
        routes::numbers::prices,
        routes::numbers::order,
        routes::numbers::list,
        routes::numbers::get,
        routes::numbers::cancel,
        routes::numbers::extend,
        routes::numbers::sandbox_sms,
        routes::numbers::sandbox_providers,
        routes::numbers::sandbox_configure,
        routes::meta::verify,
        routes::meta::receive,
    ),
    components(schemas(ErrorOut)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// The OpenAPI document: utoipa's, with the validators' rules and every route's answers.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    rules::apply(&mut doc);
    answers::apply(&mut doc);
    doc
}

/// The OpenAPI document as pretty JSON (what `docs/openapi.json` holds), built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut s = serde_json::to_string_pretty(&document())
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Generated clients name their methods after operation ids: each is present, unique
    /// and says what it does (a verb and a noun, not `get` or `list` alone).
    #[test]
    fn operation_ids_are_unique_and_descriptive() {
        let doc = document();
        let mut seen = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    id.len() > 6 && id.chars().skip(1).any(char::is_uppercase),
                    "{method} {path}: operationId {id:?} is not descriptive"
                );
                assert!(seen.insert(id.to_owned()), "{method} {path}: {id} repeats");
            }
        }
    }
}
