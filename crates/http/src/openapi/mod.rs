//! The OpenAPI document, generated from the handlers' annotations so it cannot drift from
//! the code; a test compares it with the committed `docs/openapi.json`.

use serde::Serialize;
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
        routes::sandbox::fail_next,
        routes::lines::create,
        routes::lines::list,
        routes::lines::get,
        routes::lines::update,
        routes::lines::release,
        routes::lines::send,
        routes::lines::messages,
        routes::billing::add_card,
        routes::billing::get_card,
        routes::billing::delete_card,
        routes::billing::wallet,
        routes::billing::topup,
        routes::billing::set_auto_topup,
        routes::billing::transactions,
        routes::billing::forecast,
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
    ),
    components(schemas(ErrorOut)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as pretty JSON (what `docs/openapi.json` holds).
pub fn json() -> String {
    let mut s = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Generated clients name their methods after operation ids: each is present, unique
    /// and says what it does (a verb and a noun, not `get` or `list` alone).
    #[test]
    fn operation_ids_are_unique_and_descriptive() {
        let doc = serde_json::to_value(document()).unwrap();
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
