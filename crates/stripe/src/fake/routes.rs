//! The fake's API endpoints. One handler takes every request so that authentication,
//! injected failures, idempotency and the request log apply to all of them alike, as they do
//! at Stripe; it then dispatches on the method and path:
//!
//! - `POST /v1/customers`, `GET|POST /v1/customers/{id}`
//! - `GET /v1/payment_methods/{id}`, `POST /v1/payment_methods/{id}/attach`
//! - `POST|GET /v1/prices` (the list filters on `lookup_keys[]`, `active`, `product`),
//!   `GET /v1/prices/{id}`
//! - `POST /v1/subscriptions`, `GET|DELETE /v1/subscriptions/{id}`
//! - `GET /v1/invoices/{id}`, `GET /v1/events/{id}`

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::billing::{Cause, ChargeFailure};
use super::{
    lock, new_id, render, test_card, CustomerRec, Decline, PaymentMethodRec, PriceRec,
    RecordedRequest, Shared, State as FakeState, StoredAnswer, SubscriptionRec,
};
use crate::types::{Interval, Metadata, SubscriptionStatus};

pub(crate) fn router(state: Shared) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// An answer before it becomes an HTTP response.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Answer {
            status: 200,
            body,
            retry_after: None,
        }
    }

    /// Stripe's error envelope.
    fn error(
        status: u16,
        kind: &str,
        code: Option<&str>,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        let mut error = json!({ "type": kind, "message": message.into() });
        if let Some(code) = code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = param {
            error["param"] = json!(param);
        }
        Answer {
            status,
            body: json!({ "error": error }),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Answer::error(400, "invalid_request_error", None, message, param)
    }

    fn missing_param(param: &str) -> Self {
        Answer::invalid(format!("Missing required param: {param}."), Some(param))
    }

    /// A referenced object that does not exist: 404 for the one in the path, 400 for one
    /// named by a parameter.
    fn no_such(what: &str, id: &str, param: Option<&str>) -> Self {
        let status = if param.is_some() { 400 } else { 404 };
        Answer::error(
            status,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such {what}: '{id}'"),
            param,
        )
    }

    fn card(decline: Decline) -> Self {
        let mut answer =
            Answer::error(402, "card_error", Some(decline.code), decline.message, None);
        if let Some(decline_code) = decline.decline_code {
            answer.body["error"]["decline_code"] = json!(decline_code);
        }
        answer
    }
}

/// A request as the dispatcher sees it.
struct Call<'a> {
    method: &'a Method,
    segments: Vec<&'a str>,
    params: &'a [(String, String)],
    cause: Cause,
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn metadata(&self) -> Metadata {
        self.params
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((key.to_owned(), v.clone()))
            })
            .collect()
    }

    fn expands(&self, field: &str) -> bool {
        self.params
            .iter()
            .any(|(k, v)| (k == "expand[]" || k.starts_with("expand[")) && v == field)
    }

    /// Refuses parameters the endpoint does not take, as Stripe does. `allowed` holds names,
    /// or prefixes ending in `[*]` (e.g. `metadata[*]`).
    fn only(&self, allowed: &[&str]) -> Result<(), Answer> {
        for (name, _) in self.params {
            let known = name.starts_with("expand[")
                || allowed.iter().any(|a| match a.strip_suffix("*]") {
                    Some(prefix) => name.starts_with(prefix) && name.ends_with(']'),
                    None => a == name,
                });
            if !known {
                return Err(Answer::invalid(
                    format!("Received unknown parameter: {name}"),
                    Some(name),
                ));
            }
        }
        Ok(())
    }
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut params = uri.query().map(|q| form(q.as_bytes())).unwrap_or_default();
    if method != Method::GET {
        params.extend(form(&body));
    }
    let idempotency_key = header(&headers, "idempotency-key");
    let stripe_version = header(&headers, "stripe-version");
    let request_id = new_id("req", 14);
    let (answer, replayed) = {
        let mut st = lock(&state);
        let (answer, replayed) = process(
            &mut st,
            &method,
            &path,
            &params,
            header(&headers, "authorization"),
            idempotency_key.clone(),
            &request_id,
        );
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            params,
            idempotency_key: idempotency_key.clone(),
            stripe_version,
            status: answer.status,
            replayed,
        });
        (answer, replayed)
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(answer.body)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    h.insert(
        "stripe-version",
        HeaderValue::from_static(render::API_VERSION),
    );
    if let Some(key) = idempotency_key.and_then(|k| HeaderValue::from_str(&k).ok()) {
        h.insert("idempotency-key", key);
    }
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(secs) = answer.retry_after {
        h.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Authentication, injected failures and idempotency, then the endpoint. Returns the answer
/// and whether it is a replay.
fn process(
    st: &mut FakeState,
    method: &Method,
    path: &str,
    params: &[(String, String)],
    authorization: Option<String>,
    idempotency_key: Option<String>,
    request_id: &str,
) -> (Answer, bool) {
    if let Err(answer) = authenticate(st, authorization) {
        return (answer, false);
    }
    if let Some((n, retry_after)) = st.rate_limited {
        st.rate_limited = (n > 1).then_some((n - 1, retry_after));
        let mut answer = Answer::error(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            None,
        );
        answer.retry_after = retry_after;
        return (answer, false);
    }
    if let Some((n, failure)) = st.failures.clone() {
        st.failures = (n > 1).then_some((n - 1, failure.clone()));
        return (
            Answer::error(failure.status, &failure.kind, None, failure.message, None),
            false,
        );
    }
    // Stripe's idempotency covers POST; GET and DELETE are idempotent by nature.
    let key = idempotency_key.filter(|_| method == Method::POST);
    let mut sorted = params.to_vec();
    sorted.sort();
    if let Some(key) = &key {
        if key.len() > 255 {
            return (
                Answer::invalid(
                    "Invalid idempotency key: keys may be at most 255 characters long.",
                    None,
                ),
                false,
            );
        }
        if let Some(stored) = st.idempotency.get(key) {
            if stored.method == method.as_str() && stored.path == path && stored.params == sorted {
                return (
                    Answer {
                        status: stored.status,
                        body: stored.body.clone(),
                        retry_after: None,
                    },
                    true,
                );
            }
            return (
                Answer::error(
                    400,
                    "idempotency_error",
                    None,
                    format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ),
                    None,
                ),
                false,
            );
        }
    }
    let call = Call {
        method,
        segments: path.trim_matches('/').split('/').collect(),
        params,
        cause: Some((request_id.to_owned(), key.clone())),
    };
    let answer = dispatch(st, &call).unwrap_or_else(|error| error);
    // Stripe saves the answer once the endpoint ran: successes and card declines, not
    // requests refused before running (validation errors).
    if let Some(key) = key {
        if matches!(answer.status, 200 | 402) {
            st.idempotency.insert(
                key,
                StoredAnswer {
                    method: method.to_string(),
                    path: path.to_owned(),
                    params: sorted,
                    status: answer.status,
                    body: answer.body.clone(),
                },
            );
        }
    }
    (answer, false)
}

fn authenticate(st: &FakeState, authorization: Option<String>) -> Result<(), Answer> {
    let Some(given) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return Err(Answer::error(
            401,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            None,
        ));
    };
    if given != st.secret_key {
        let tail: String = given
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let prefix: String = given.chars().take(8).collect();
        return Err(Answer::error(
            401,
            "invalid_request_error",
            Some("api_key_invalid"),
            format!("Invalid API Key provided: {prefix}****{tail}"),
            None,
        ));
    }
    Ok(())
}

fn dispatch(st: &mut FakeState, call: &Call) -> Result<Answer, Answer> {
    let m = call.method;
    match call.segments.as_slice() {
        ["v1", "customers"] if m == Method::POST => create_customer(st, call),
        ["v1", "customers", id] if m == Method::GET => {
            call.only(&[])?;
            let c = st
                .customers
                .get(*id)
                .ok_or_else(|| Answer::no_such("customer", id, None))?;
            Ok(Answer::ok(render::customer(c)))
        }
        ["v1", "customers", id] if m == Method::POST => update_customer(st, call, id),
        ["v1", "payment_methods", id] if m == Method::GET => {
            call.only(&[])?;
            let pm = st
                .payment_methods
                .get(*id)
                .ok_or_else(|| Answer::no_such("PaymentMethod", id, None))?;
            Ok(Answer::ok(render::payment_method(pm)))
        }
        ["v1", "payment_methods", id, "attach"] if m == Method::POST => attach(st, call, id),
        ["v1", "prices"] if m == Method::POST => create_price(st, call),
        ["v1", "prices"] if m == Method::GET => list_prices(st, call),
        ["v1", "prices", id] if m == Method::GET => {
            call.only(&[])?;
            let p = st
                .prices
                .get(*id)
                .ok_or_else(|| Answer::no_such("price", id, None))?;
            Ok(Answer::ok(render::price(p)))
        }
        ["v1", "subscriptions"] if m == Method::POST => create_subscription(st, call),
        ["v1", "subscriptions", id] if m == Method::GET => {
            call.only(&[])?;
            let s = st
                .subscriptions
                .get(*id)
                .ok_or_else(|| Answer::no_such("subscription", id, None))?;
            Ok(Answer::ok(render::subscription(
                st,
                s,
                call.expands("latest_invoice"),
            )))
        }
        ["v1", "subscriptions", id] if m == Method::DELETE => cancel_subscription(st, call, id),
        ["v1", "invoices", id] if m == Method::GET => {
            call.only(&[])?;
            let i = st
                .invoices
                .get(*id)
                .ok_or_else(|| Answer::no_such("invoice", id, None))?;
            Ok(Answer::ok(render::invoice(i)))
        }
        ["v1", "events", id] if m == Method::GET => {
            call.only(&[])?;
            let e = st
                .events
                .iter()
                .find(|e| e.id == *id)
                .ok_or_else(|| Answer::no_such("event", id, None))?;
            Ok(Answer::ok(e.body.clone()))
        }
        _ => Err(Answer::error(
            404,
            "invalid_request_error",
            None,
            format!(
                "Unrecognized request URL ({}: /{}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                call.method,
                call.segments.join("/")
            ),
            None,
        )),
    }
}

/// A test payment method attached to `customer`: a new `pm_…`, or the card error Stripe gives
/// for cards that cannot be attached.
fn attach_test_card(st: &mut FakeState, token: &str, customer: &str) -> Result<String, Answer> {
    let card = test_card(token)
        .ok_or_else(|| Answer::no_such("PaymentMethod", token, Some("payment_method")))?;
    if let Some(decline) = card.attach_decline {
        return Err(Answer::card(decline));
    }
    let id = new_id("pm", 24);
    let created = st.now_secs();
    st.payment_methods.insert(
        id.clone(),
        PaymentMethodRec {
            id: id.clone(),
            customer: Some(customer.to_owned()),
            card,
            created,
        },
    );
    Ok(id)
}

/// Checks that `pm` is attached to `customer`, as Stripe requires of a default.
fn attached_to(st: &FakeState, pm: &str, customer: &str, param: &str) -> Result<(), Answer> {
    match st.payment_methods.get(pm) {
        Some(p) if p.customer.as_deref() == Some(customer) => Ok(()),
        _ => Err(Answer::invalid(
            format!(
                "The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer."
            ),
            Some(param),
        )),
    }
}

fn merge_metadata(target: &mut Metadata, update: Metadata) {
    for (key, value) in update {
        // Stripe unsets a key given an empty value.
        if value.is_empty() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

fn create_customer(st: &mut FakeState, call: &Call) -> Result<Answer, Answer> {
    call.only(&[
        "email",
        "name",
        "description",
        "metadata[*]",
        "payment_method",
        "invoice_settings[default_payment_method]",
    ])?;
    let id = new_id("cus", 14);
    let mut metadata = Metadata::new();
    merge_metadata(&mut metadata, call.metadata());
    let mut default_pm = None;
    if let Some(token) = call.param("payment_method") {
        let pm = attach_test_card(st, token, &id)?;
        if call.param("invoice_settings[default_payment_method]") == Some(token) {
            default_pm = Some(pm);
        }
    }
    if let (Some(wanted), None) = (
        call.param("invoice_settings[default_payment_method]"),
        &default_pm,
    ) {
        attached_to(st, wanted, &id, "invoice_settings[default_payment_method]")?;
    }
    let customer = CustomerRec {
        id: id.clone(),
        email: call.param("email").map(str::to_owned),
        name: call.param("name").map(str::to_owned),
        metadata,
        default_pm,
        created: st.now_secs(),
    };
    let body = render::customer(&customer);
    st.customers.insert(id, customer);
    st.push_event("customer.created", body.clone(), None, call.cause.clone());
    Ok(Answer::ok(body))
}

fn update_customer(st: &mut FakeState, call: &Call, id: &str) -> Result<Answer, Answer> {
    call.only(&[
        "email",
        "name",
        "description",
        "metadata[*]",
        "invoice_settings[default_payment_method]",
    ])?;
    if !st.customers.contains_key(id) {
        return Err(Answer::no_such("customer", id, None));
    }
    if let Some(pm) = call.param("invoice_settings[default_payment_method]") {
        if !pm.is_empty() {
            attached_to(st, pm, id, "invoice_settings[default_payment_method]")?;
        }
    }
    let c = st
        .customers
        .get_mut(id)
        .ok_or_else(|| Answer::no_such("customer", id, None))?;
    if let Some(email) = call.param("email") {
        c.email = Some(email.to_owned()).filter(|e| !e.is_empty());
    }
    if let Some(name) = call.param("name") {
        c.name = Some(name.to_owned()).filter(|n| !n.is_empty());
    }
    if let Some(pm) = call.param("invoice_settings[default_payment_method]") {
        c.default_pm = Some(pm.to_owned()).filter(|p| !p.is_empty());
    }
    merge_metadata(&mut c.metadata, call.metadata());
    let body = render::customer(c);
    st.push_event("customer.updated", body.clone(), None, call.cause.clone());
    Ok(Answer::ok(body))
}

fn attach(st: &mut FakeState, call: &Call, pm: &str) -> Result<Answer, Answer> {
    call.only(&["customer"])?;
    let customer = call
        .param("customer")
        .ok_or_else(|| Answer::missing_param("customer"))?
        .to_owned();
    if !st.customers.contains_key(&customer) {
        return Err(Answer::no_such("customer", &customer, Some("customer")));
    }
    let id = match st.payment_methods.get_mut(pm) {
        Some(existing) => match &existing.customer {
            Some(owner) if *owner != customer => {
                return Err(Answer::invalid(
                    "The payment method you provided has already been attached to a customer.",
                    None,
                ))
            }
            _ => {
                existing.customer = Some(customer.clone());
                existing.id.clone()
            }
        },
        None => {
            if test_card(pm).is_none() {
                return Err(Answer::no_such("PaymentMethod", pm, None));
            }
            attach_test_card(st, pm, &customer)?
        }
    };
    let rec = st
        .payment_methods
        .get(&id)
        .ok_or_else(|| Answer::no_such("PaymentMethod", &id, None))?;
    let body = render::payment_method(rec);
    st.push_event(
        "payment_method.attached",
        body.clone(),
        None,
        call.cause.clone(),
    );
    Ok(Answer::ok(body))
}

fn create_price(st: &mut FakeState, call: &Call) -> Result<Answer, Answer> {
    call.only(&[
        "currency",
        "unit_amount",
        "recurring[interval]",
        "recurring[interval_count]",
        "product",
        "product_data[name]",
        "lookup_key",
        "transfer_lookup_key",
        "metadata[*]",
        "nickname",
        "active",
    ])?;
    let currency = call
        .param("currency")
        .ok_or_else(|| Answer::missing_param("currency"))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Answer::invalid(
            format!("Invalid currency: {currency}. Stripe currently supports these currencies: usd, eur, …"),
            Some("currency"),
        ));
    }
    let raw_amount = call
        .param("unit_amount")
        .ok_or_else(|| Answer::missing_param("unit_amount"))?;
    let unit_amount: i64 = raw_amount.parse().ok().filter(|a| *a >= 0).ok_or_else(|| {
        Answer::invalid(
            format!("Invalid non-negative integer: {raw_amount}"),
            Some("unit_amount"),
        )
    })?;
    // The fake knows recurring prices only: wagate's subscriptions are all it bills.
    let raw_interval = call
        .param("recurring[interval]")
        .ok_or_else(|| Answer::missing_param("recurring[interval]"))?;
    let interval = Interval::parse(raw_interval).ok_or_else(|| {
        Answer::invalid(
            format!("Invalid recurring[interval]: must be one of day, month, week, or year (got {raw_interval})"),
            Some("recurring[interval]"),
        )
    })?;
    let interval_count = match call.param("recurring[interval_count]") {
        None => 1,
        Some(raw) => raw.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Answer::invalid(
                format!("Invalid positive integer: {raw}"),
                Some("recurring[interval_count]"),
            )
        })?,
    };
    let product = match (call.param("product"), call.param("product_data[name]")) {
        (Some(product), None) => {
            if !st.products.contains_key(product) {
                return Err(Answer::no_such("product", product, Some("product")));
            }
            product.to_owned()
        }
        (None, Some(name)) if !name.is_empty() => {
            let id = new_id("prod", 14);
            st.products.insert(id.clone(), name.to_owned());
            id
        }
        _ => {
            return Err(Answer::invalid(
                "You must specify either `product` or `product_data` when creating a price.",
                None,
            ))
        }
    };
    let lookup_key = call.param("lookup_key").map(str::to_owned);
    if let Some(key) = &lookup_key {
        let holder = st
            .prices
            .values()
            .find(|p| p.lookup_key.as_ref() == Some(key))
            .map(|p| p.id.clone());
        if let Some(holder) = holder {
            if call.param("transfer_lookup_key") == Some("true") {
                if let Some(p) = st.prices.get_mut(&holder) {
                    p.lookup_key = None;
                }
            } else {
                return Err(Answer::invalid(
                    format!("A price (`{holder}`) already uses that lookup key."),
                    Some("lookup_key"),
                ));
            }
        }
    }
    let id = new_id("price", 24);
    let price = PriceRec {
        id: id.clone(),
        product,
        unit_amount,
        currency: currency.to_owned(),
        interval,
        interval_count,
        lookup_key,
        metadata: call.metadata(),
        active: call.param("active") != Some("false"),
        created: st.now_secs(),
    };
    let body = render::price(&price);
    st.sequence += 1;
    st.price_sequence.insert(id.clone(), st.sequence);
    st.prices.insert(id, price);
    st.push_event("price.created", body.clone(), None, call.cause.clone());
    Ok(Answer::ok(body))
}

fn list_prices(st: &FakeState, call: &Call) -> Result<Answer, Answer> {
    call.only(&["lookup_keys[]", "active", "product", "limit"])?;
    let keys: Vec<&str> = call
        .params
        .iter()
        .filter(|(k, _)| k == "lookup_keys[]" || k.starts_with("lookup_keys["))
        .map(|(_, v)| v.as_str())
        .collect();
    let limit = match call.param("limit") {
        None => 10,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| Answer::invalid(format!("Invalid integer: {raw}"), Some("limit")))?,
    };
    let active = call.param("active").map(|a| a == "true");
    let mut prices: Vec<&PriceRec> = st
        .prices
        .values()
        .filter(|p| keys.is_empty() || p.lookup_key.as_deref().is_some_and(|k| keys.contains(&k)))
        .filter(|p| active.is_none_or(|a| p.active == a))
        .filter(|p| call.param("product").is_none_or(|prod| p.product == prod))
        .collect();
    // Stripe lists newest first.
    prices.sort_by_key(|p| std::cmp::Reverse(st.price_sequence.get(&p.id).copied().unwrap_or(0)));
    let data = prices.into_iter().take(limit).map(render::price).collect();
    Ok(Answer::ok(render::list("/v1/prices", data)))
}

fn create_subscription(st: &mut FakeState, call: &Call) -> Result<Answer, Answer> {
    call.only(&[
        "customer",
        "items[0][price]",
        "items[0][quantity]",
        "metadata[*]",
        "payment_behavior",
        "default_payment_method",
        "collection_method",
        "off_session",
    ])?;
    let customer = call
        .param("customer")
        .ok_or_else(|| Answer::missing_param("customer"))?
        .to_owned();
    if !st.customers.contains_key(&customer) {
        return Err(Answer::no_such("customer", &customer, Some("customer")));
    }
    let price = call
        .param("items[0][price]")
        .ok_or_else(|| Answer::missing_param("items"))?
        .to_owned();
    match st.prices.get(&price) {
        None => return Err(Answer::no_such("price", &price, Some("items[0][price]"))),
        Some(p) if !p.active => {
            return Err(Answer::invalid(
                format!(
                "The price specified ({price}) is inactive. This field only accepts active prices."
            ),
                Some("items[0][price]"),
            ))
        }
        Some(_) => {}
    }
    if let Some(q) = call.param("items[0][quantity]").filter(|q| *q != "1") {
        return Err(Answer::invalid(
            format!("The fake bills quantity 1 only (got {q})."),
            Some("items[0][quantity]"),
        ));
    }
    if let Some(method) = call
        .param("collection_method")
        .filter(|m| *m != "charge_automatically")
    {
        return Err(Answer::invalid(
            format!(
                "The fake supports collection_method=charge_automatically only (got {method})."
            ),
            Some("collection_method"),
        ));
    }
    let behavior = call.param("payment_behavior").unwrap_or("allow_incomplete");
    if !matches!(
        behavior,
        "allow_incomplete" | "default_incomplete" | "error_if_incomplete"
    ) {
        return Err(Answer::invalid(
            format!("Invalid payment_behavior: must be one of allow_incomplete, default_incomplete, or error_if_incomplete (got {behavior})"),
            Some("payment_behavior"),
        ));
    }
    let default_pm = call.param("default_payment_method").map(str::to_owned);
    if let Some(pm) = &default_pm {
        attached_to(st, pm, &customer, "default_payment_method")?;
    }
    let now = st.now_secs();
    let id = new_id("sub", 24);
    let sub = SubscriptionRec {
        id: id.clone(),
        customer: customer.clone(),
        item_id: new_id("si", 14),
        price,
        status: SubscriptionStatus::Incomplete,
        metadata: call.metadata(),
        anchor: now,
        periods_elapsed: 0,
        latest_invoice: None,
        default_pm,
        created: now,
        canceled_at: None,
        ended_at: None,
    };
    let charge = st.charge(&sub);
    if charge == Err(ChargeFailure::NoPaymentMethod) && behavior != "default_incomplete" {
        return Err(Answer::invalid(
            "This customer has no attached payment source or default payment method. Please consider adding a default payment method. For more information, visit https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority.",
            None,
        ));
    }
    if let (Err(ChargeFailure::Declined(decline)), "error_if_incomplete") = (charge, behavior) {
        // Stripe creates nothing and answers the card error.
        return Err(Answer::card(decline));
    }
    st.subscriptions.insert(id.clone(), sub);
    let invoice_id = st
        .open_invoice(&id, "subscription_create")
        .ok_or_else(|| Answer::error(500, "api_error", None, "the fake lost the price", None))?;
    let attempted = if behavior == "default_incomplete" {
        None
    } else {
        let paid = st.attempt_invoice(&invoice_id, false).is_ok();
        if paid {
            if let Some(s) = st.subscriptions.get_mut(&id) {
                s.status = SubscriptionStatus::Active;
            }
        }
        Some(paid)
    };
    st.creation_events(&id, &invoice_id, attempted, &call.cause);
    let s = st.subscriptions.get(&id).ok_or_else(|| {
        Answer::error(
            500,
            "api_error",
            None,
            "the fake lost the subscription",
            None,
        )
    })?;
    Ok(Answer::ok(render::subscription(
        st,
        s,
        call.expands("latest_invoice"),
    )))
}

fn cancel_subscription(st: &mut FakeState, call: &Call, id: &str) -> Result<Answer, Answer> {
    call.only(&[
        "invoice_now",
        "prorate",
        "cancellation_details[comment]",
        "cancellation_details[feedback]",
    ])?;
    match st.subscriptions.get(id) {
        None => return Err(Answer::no_such("subscription", id, None)),
        Some(s) if s.status == SubscriptionStatus::Canceled => {
            return Err(Answer::invalid(
                format!("The subscription {id} has already been canceled."),
                None,
            ))
        }
        Some(_) => {}
    }
    st.cancel(id, call.cause.clone())
        .map_err(|message| Answer::invalid(message, None))?;
    let s = st
        .subscriptions
        .get(id)
        .ok_or_else(|| Answer::no_such("subscription", id, None))?;
    Ok(Answer::ok(render::subscription(
        st,
        s,
        call.expands("latest_invoice"),
    )))
}
