//! Virtual numbers (PRODUCT.md §12): the price list, orders, cancels and extensions, and the
//! sandbox's controls of its simulated providers.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use wagate_app::numbers::number_json;
use wagate_domain::ids::NumberId;
use wagate_domain::number::{NumberKind, MAX_RENTAL_HOURS};

use super::webhooks::{query, ListParams};
use super::EmptyIn;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::AppState;

/// One SMS a number received.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsOut {
    /// The text.
    pub text: String,
    /// The code read out of it (4 to 8 digits), if any.
    pub code: Option<String>,
    /// RFC 3339.
    pub received_at: String,
}

/// The number object (schema only: the body is built by `wagate_app::numbers::number_json`,
/// and a test checks the two list the same fields). The provider is never named.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberOut {
    /// `num_…`
    pub id: String,
    /// Always `number`.
    pub object: String,
    /// E.164.
    pub phone_number: String,
    /// The service it receives SMS from, e.g. `whatsapp`.
    pub service: String,
    /// ISO 3166 alpha-2, e.g. `GB`.
    pub country: String,
    /// `verification` or `rental`.
    pub kind: String,
    /// `active`, `code_received`, `expired` or `canceled`.
    pub status: String,
    /// Everything charged for it (the order, and a rental's extensions), decimal string.
    pub price: String,
    /// A verification's price, or a rental's price per hour.
    pub unit_price: String,
    /// `USD`.
    pub currency: String,
    /// A rental's hours (with its extensions); null for a verification.
    pub hours: Option<u32>,
    /// A verification's code, once received.
    pub code: Option<String>,
    /// The SMS received, oldest first.
    pub sms: Vec<SmsOut>,
    /// Whether the price was refunded to the wallet (a verification canceled or expired
    /// without a code).
    pub refunded: bool,
    /// RFC 3339.
    pub created_at: String,
    /// When it stops receiving: 20 minutes after the order for a verification.
    pub expires_at: String,
    /// When the code arrived.
    pub code_received_at: Option<String>,
    /// When it was canceled or expired.
    pub ended_at: Option<String>,
}

/// A page of numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberList {
    /// Newest first.
    #[schema(value_type = Vec<NumberOut>)]
    pub data: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
}

/// One line of the price list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceOut {
    /// The service.
    pub service: String,
    /// The country.
    pub country: String,
    /// `verification` or `rental`.
    pub kind: String,
    /// The cheapest offer in stock right now (a verification, or one hour of a rental);
    /// when nothing is in stock, the cheapest offer at all.
    pub price: String,
    /// `USD`.
    pub currency: String,
    /// Whether any provider has a number in stock.
    pub in_stock: bool,
}

/// The price list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceList {
    /// One line per kind sold for the service and country.
    pub data: Vec<PriceOut>,
}

/// Price list parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PriceParams {
    /// The service, e.g. `whatsapp`.
    pub service: String,
    /// ISO 3166 alpha-2 country, e.g. `GB`.
    pub country: String,
}

/// Buy a number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderNumberIn {
    /// The service, e.g. `whatsapp`.
    pub service: String,
    /// ISO 3166 alpha-2 country, e.g. `GB`.
    pub country: String,
    /// `verification` (one code within 20 minutes, refunded without one) or `rental`.
    pub kind: String,
    /// A rental's hours (1–720); not for a verification.
    #[schema(minimum = 1, maximum = 720)]
    pub hours: Option<u32>,
}

/// Extend a rental.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendNumberIn {
    /// Hours to add (1–720), charged at the rental's hourly price.
    #[schema(minimum = 1, maximum = 720)]
    pub hours: u32,
}

/// An SMS for a sandbox number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxSmsIn {
    /// The SMS text (1–1600 characters); a code in it (4 to 8 digits) is the verification's.
    pub text: String,
}

/// What a simulated provider is like.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxProviderOut {
    /// Its name (sandbox only: real providers are never named).
    pub name: String,
    /// Numbers in stock per service, country and kind before any was sold.
    pub stock: u64,
    /// Each call's simulated response time (over 10 s counts as no answer).
    pub latency_ms: u64,
    /// The share of orders that fail, spread evenly.
    pub failure_rate: f64,
    /// Every call fails.
    pub down: bool,
    /// Its offers for the service and country asked (`?service=&country=`), if asked.
    pub offers: Vec<SandboxOfferOut>,
}

/// One offer of a simulated provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxOfferOut {
    /// `verification` or `rental`.
    pub kind: String,
    /// Its price.
    pub price: String,
    /// Numbers left.
    pub stock: u64,
}

/// The simulated providers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxProviderList {
    /// In the router's order.
    pub data: Vec<SandboxProviderOut>,
}

/// Optional service and country for the providers' offers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SandboxProviderParams {
    /// Show offers for this service.
    pub service: Option<String>,
    /// …in this country.
    pub country: Option<String>,
}

/// Change a simulated provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxProviderIn {
    /// Numbers in stock for every service, country and kind (0 empties it).
    pub stock: Option<u64>,
    /// Every call fails (`true`) or works again (`false`).
    pub down: Option<bool>,
    /// The share of orders that fail (0–1).
    #[schema(minimum = 0, maximum = 1)]
    pub failure_rate: Option<f64>,
    /// Each call's response time in milliseconds (at most 60 000).
    #[schema(minimum = 0, maximum = 60000)]
    pub latency_ms: Option<u64>,
}

fn number_id(id: &str) -> ApiResult<NumberId> {
    NumberId::parse(id).map_err(|_| ApiError::not_found("number"))
}

/// The price list for a service in a country: per kind, the cheapest offer in stock at this
/// moment, whoever sells it.
#[utoipa::path(get, path = "/api/v1/numbers/prices", operation_id = "listNumberPrices", tag = "numbers", security(("api_key" = [])),
    params(PriceParams), responses((status = 200, description = "The price list", body = PriceList),
        (status = 503, description = "`numbers_unavailable`: no provider is configured", body = crate::openapi::ErrorOut)))]
pub async fn prices(
    State(st): State<AppState>,
    Authed(_who): Authed,
    q: Result<Query<PriceParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<PriceList>> {
    let q = query(q)?;
    let lines = st.app.numbers.prices(&q.service, &q.country).await?;
    Ok(ApiJson(PriceList {
        data: lines
            .into_iter()
            .map(|l| PriceOut {
                service: l.service,
                country: l.country,
                kind: l.kind.as_str().to_owned(),
                price: l.price.to_decimal(2),
                currency: "USD".to_owned(),
                in_stock: l.in_stock,
            })
            .collect(),
    }))
}

/// Buys a number from the cheapest provider in stock (failing over to the next on an error),
/// debiting the wallet (`number_charge`) in the same transaction that records it.
#[utoipa::path(post, path = "/api/v1/numbers", operation_id = "orderNumber", tag = "numbers", security(("api_key" = [])),
    request_body = OrderNumberIn,
    responses((status = 201, description = "The number, active", body = NumberOut),
        (status = 402, description = "`insufficient_balance`: top up first", body = crate::openapi::ErrorOut),
        (status = 409, description = "`out_of_stock`: no provider has one", body = crate::openapi::ErrorOut),
        (status = 503, description = "`numbers_unavailable`: no provider could sell one", body = crate::openapi::ErrorOut)))]
pub async fn order(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<OrderNumberIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let kind = NumberKind::parse(&input.kind)
        .ok_or_else(|| ApiError::invalid("kind", "`verification` or `rental`"))?;
    let n = st
        .app
        .numbers
        .order(&who, &input.service, &input.country, kind, input.hours)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(number_json(&n, &[]))))
}

/// The account's numbers, newest first.
#[utoipa::path(get, path = "/api/v1/numbers", operation_id = "listNumbers", tag = "numbers", security(("api_key" = [])),
    params(ListParams), responses((status = 200, description = "A page of numbers", body = NumberList)))]
pub async fn list(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<NumberList>> {
    let page = query(q)?.page()?;
    let found = st.app.numbers.list(&who, &page).await?;
    let sms = st
        .app
        .numbers
        .sms(&found.data.iter().collect::<Vec<_>>())
        .await?;
    Ok(ApiJson(NumberList {
        data: found.data.iter().map(|n| number_json(n, &sms)).collect(),
        has_more: found.has_more,
    }))
}

/// One number, with its code and SMS.
#[utoipa::path(get, path = "/api/v1/numbers/{id}", operation_id = "getNumber", tag = "numbers", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The number", body = NumberOut)))]
pub async fn get(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let n = st.app.numbers.get(&who, &number_id(&id)?).await?;
    Ok(ApiJson(st.app.numbers.json(&n).await?))
}

/// Cancels a verification before its code arrived: `canceled`, its price refunded
/// (`refund`). After the code, or a rental → 409 `invalid_state`.
#[utoipa::path(post, path = "/api/v1/numbers/{id}/cancel", operation_id = "cancelNumber", tag = "numbers", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The number, canceled and refunded", body = NumberOut),
        (status = 409, description = "`invalid_state`: the code arrived, or it is a rental or ended", body = crate::openapi::ErrorOut)))]
pub async fn cancel(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    let n = st.app.numbers.cancel(&who, &number_id(&id)?).await?;
    Ok(ApiJson(st.app.numbers.json(&n).await?))
}

/// Extends an active rental by `hours` from its current end, charged at its hourly price
/// (`number_charge`).
#[utoipa::path(post, path = "/api/v1/numbers/{id}/extend", operation_id = "extendNumber", tag = "numbers", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = ExtendNumberIn,
    responses((status = 200, description = "The rental, extended", body = NumberOut),
        (status = 402, description = "`insufficient_balance`", body = crate::openapi::ErrorOut),
        (status = 409, description = "`invalid_state`: not an active rental", body = crate::openapi::ErrorOut),
        (status = 503, description = "`numbers_unavailable`: the provider could not extend it", body = crate::openapi::ErrorOut)))]
pub async fn extend(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ExtendNumberIn>,
) -> ApiResult<ApiJson<Value>> {
    if !(1..=MAX_RENTAL_HOURS).contains(&input.hours) {
        return Err(ApiError::invalid("hours", "1 to 720"));
    }
    let n = st
        .app
        .numbers
        .extend(&who, &number_id(&id)?, input.hours)
        .await?;
    Ok(ApiJson(st.app.numbers.json(&n).await?))
}

/// The sandbox delivers an SMS to a number of its simulated providers: a verification's code
/// (`number.code_received`) or a rental's SMS (`number.sms_received`), shown at once.
#[utoipa::path(post, path = "/api/v1/sandbox/numbers/{id}/sms", operation_id = "deliverSandboxSms", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = SandboxSmsIn,
    responses((status = 200, description = "The number after the SMS", body = NumberOut),
        (status = 409, description = "`invalid_state`: the number ended, or is a real provider's", body = crate::openapi::ErrorOut)))]
pub async fn sandbox_sms(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SandboxSmsIn>,
) -> ApiResult<ApiJson<Value>> {
    let n = st
        .app
        .numbers
        .sandbox_sms(&who, &number_id(&id)?, &input.text)
        .await?;
    Ok(ApiJson(st.app.numbers.json(&n).await?))
}

fn provider_out(
    p: &wagate_app::numbers::sandbox::SandboxProvider,
    offers: Vec<wagate_app::numbers::provider::ProviderOffer>,
) -> SandboxProviderOut {
    let s = p.settings();
    SandboxProviderOut {
        name: wagate_app::numbers::provider::NumberProvider::name(p).to_owned(),
        stock: s.stock,
        latency_ms: u64::try_from(s.latency.as_millis()).unwrap_or(u64::MAX),
        failure_rate: s.failure_rate,
        down: s.down,
        offers: offers
            .into_iter()
            .map(|o| SandboxOfferOut {
                kind: o.kind.as_str().to_owned(),
                price: o.price.to_decimal(2),
                stock: o.stock,
            })
            .collect(),
    }
}

/// The sandbox's simulated number providers, with their offers for `?service=&country=`.
#[utoipa::path(get, path = "/api/v1/sandbox/numbers/providers", operation_id = "listSandboxNumberProviders", tag = "sandbox", security(("api_key" = [])),
    params(SandboxProviderParams), responses((status = 200, description = "The simulated providers", body = SandboxProviderList)))]
pub async fn sandbox_providers(
    State(st): State<AppState>,
    Authed(_who): Authed,
    q: Result<Query<SandboxProviderParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<SandboxProviderList>> {
    let q = query(q)?;
    let mut data = Vec::new();
    for p in st.app.numbers.sandbox_providers() {
        let offers = match (&q.service, &q.country) {
            (Some(s), Some(c)) => p.offers_now(s, c),
            _ => Vec::new(),
        };
        data.push(provider_out(p, offers));
    }
    Ok(ApiJson(SandboxProviderList { data }))
}

/// Changes a simulated number provider: empty or refill its stock, take it down, make a share
/// of its orders fail, or slow it down.
#[utoipa::path(post, path = "/api/v1/sandbox/numbers/providers/{name}", operation_id = "configureSandboxNumberProvider", tag = "sandbox", security(("api_key" = [])),
    params(("name" = String, Path)), request_body = SandboxProviderIn,
    responses((status = 200, description = "The provider", body = SandboxProviderOut)))]
pub async fn sandbox_configure(
    State(st): State<AppState>,
    Authed(_who): Authed,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<SandboxProviderIn>,
) -> ApiResult<ApiJson<SandboxProviderOut>> {
    if let Some(r) = input.failure_rate {
        if !(0.0..=1.0).contains(&r) {
            return Err(ApiError::invalid("failure_rate", "from 0 to 1"));
        }
    }
    if input.latency_ms.is_some_and(|l| l > 60_000) {
        return Err(ApiError::invalid("latency_ms", "at most 60000"));
    }
    let p = st
        .app
        .numbers
        .sandbox_providers()
        .into_iter()
        .find(|p| wagate_app::numbers::provider::NumberProvider::name(*p) == name)
        .ok_or_else(|| ApiError::not_found("sandbox provider"))?;
    p.configure(
        input.stock,
        input.down,
        input.failure_rate,
        input.latency_ms.map(Duration::from_millis),
    );
    Ok(ApiJson(provider_out(p, Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn the_schema_lists_the_fields_the_number_object_has() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let record = wagate_store::NumberRecord {
            id: NumberId::generate(),
            account_id: wagate_domain::ids::AccountId::generate(),
            version: 0,
            kind: NumberKind::Verification,
            status: wagate_domain::number::NumberStatus::Active,
            service: "whatsapp".into(),
            country: "GB".into(),
            phone_number: "+447700900123".into(),
            provider: "secret".into(),
            provider_ref: "ref".into(),
            unit_price: wagate_domain::money::Micros(500_000),
            price: wagate_domain::money::Micros(500_000),
            currency: "USD".into(),
            hours: None,
            code: None,
            charge_transaction_id: wagate_domain::ids::TransactionId::generate(),
            refund_transaction_id: None,
            created_at: now,
            expires_at: now,
            code_received_at: None,
            ended_at: None,
            updated_at: now,
        };
        let built = number_json(&record, &[]);
        assert!(
            !built.to_string().contains("secret"),
            "the provider is never named"
        );
        let schema = NumberOut {
            id: String::new(),
            object: String::new(),
            phone_number: String::new(),
            service: String::new(),
            country: String::new(),
            kind: String::new(),
            status: String::new(),
            price: String::new(),
            unit_price: String::new(),
            currency: String::new(),
            hours: None,
            code: None,
            sms: Vec::new(),
            refunded: false,
            created_at: String::new(),
            expires_at: String::new(),
            code_received_at: None,
            ended_at: None,
        };
        assert_eq!(keys(&serde_json::to_value(&schema).unwrap()), keys(&built));
    }
}
