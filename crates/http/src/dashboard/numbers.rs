//! `/dashboard/numbers`: the account's virtual numbers (PRODUCT.md §12) with their codes, the
//! price list for a service and country, buying one (once per form, whatever the clicks),
//! canceling a verification and extending a rental — through the same numbers service as
//! `/api/v1/numbers`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wagate_app::numbers::{countries, services};
use wagate_domain::ids::NumberId;
use wagate_domain::number::{NumberKind, NumberStatus, MAX_RENTAL_HOURS, MIN_RENTAL_HOURS};
use wagate_domain::page::PageRequest;
use wagate_store::{IdempotencyBegin, NumberRecord, StoredResponse};

use super::session::{signin_token, Dash, Posted};
use super::view::{render, Chrome, DashResult, Section};
use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// Numbers per page.
const PAGE: i64 = 50;
/// The service and country the price list shows first.
const DEFAULT_SERVICE: &str = "whatsapp";
const DEFAULT_COUNTRY: &str = "GB";

/// A number as a row.
struct NumberRow {
    id: String,
    phone: String,
    service: String,
    country: String,
    kind: &'static str,
    status: &'static str,
    status_text: &'static str,
    price: String,
    code: String,
    hours: String,
    expires: String,
    sms: Vec<String>,
    can_cancel: bool,
    can_extend: bool,
}

/// One line of the price list.
struct PriceRow {
    kind: &'static str,
    price: String,
    stock_text: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/numbers.html")]
struct NumbersTemplate {
    chrome: Chrome,
    services: Vec<&'static str>,
    countries: Vec<&'static str>,
    service: String,
    country: String,
    prices: Vec<PriceRow>,
    /// Why there is no price list (numbers unavailable on this server).
    prices_problem: Option<String>,
    numbers: Vec<NumberRow>,
    next_page: Option<String>,
    order_key: String,
    max_hours: u32,
    notice: Option<&'static str>,
}

/// The query of the page.
#[derive(Debug, Deserialize)]
pub(super) struct NumbersQuery {
    service: Option<String>,
    country: Option<String>,
    starting_after: Option<String>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "bought" => Some("Number bought. Its code shows here when the SMS arrives."),
        "canceled" => Some("Verification canceled; its price was refunded to the wallet."),
        "extended" => Some("Rental extended."),
        _ => None,
    }
}

/// A number's status in words (a verification waiting says what it waits for).
fn status_words(kind: NumberKind, status: NumberStatus, refunded: bool) -> &'static str {
    match (status, kind) {
        (NumberStatus::Active, NumberKind::Verification) => "Waiting for a code",
        (NumberStatus::Active, NumberKind::Rental) => "Active",
        (NumberStatus::CodeReceived, _) => "Code received",
        (NumberStatus::Expired, _) if refunded => "Expired, refunded",
        (NumberStatus::Expired, _) => "Expired",
        (NumberStatus::Canceled, _) => "Canceled, refunded",
    }
}

fn kind_words(kind: NumberKind) -> &'static str {
    match kind {
        NumberKind::Verification => "Verification",
        NumberKind::Rental => "Rental",
    }
}

fn short(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn number_id(id: &str) -> Result<NumberId, ApiError> {
    NumberId::parse(id).map_err(|_| ApiError::not_found("number"))
}

/// `GET /dashboard/numbers`.
pub(super) async fn show(
    State(st): State<AppState>,
    dash: Dash,
    q: Result<Query<NumbersQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let who = &dash.principal;
    let service = q
        .service
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
    let country = q
        .country
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| DEFAULT_COUNTRY.to_owned());

    // The price list as `GET /api/v1/numbers/prices` gives it. A server without providers
    // still shows the account's numbers, with the reason there is nothing to buy.
    let (prices, prices_problem) = match st.app.numbers.prices(&service, &country).await {
        Ok(lines) => (
            lines
                .into_iter()
                .map(|l| PriceRow {
                    kind: kind_words(l.kind),
                    price: l.price.to_decimal(2),
                    stock_text: if l.in_stock {
                        "In stock"
                    } else {
                        "Out of stock"
                    },
                })
                .collect(),
            None,
        ),
        Err(e) => {
            let e = ApiError::from(e);
            if e.code() != ErrorCode::NumbersUnavailable {
                return Err(e.into());
            }
            (Vec::new(), Some(e.message().to_owned()))
        }
    };

    let page = PageRequest::new(Some(PAGE), q.starting_after.filter(|a| !a.is_empty()))
        .map_err(|e| ApiError::invalid("starting_after", e.to_string()))?;
    let found = st.app.numbers.list(who, &page).await?;
    let sms = st
        .app
        .numbers
        .sms(&found.data.iter().collect::<Vec<_>>())
        .await?;
    let next_page = found
        .has_more
        .then(|| found.data.last().map(|n| n.id.to_string()))
        .flatten();
    let numbers = found
        .data
        .iter()
        .map(|n: &NumberRecord| NumberRow {
            id: n.id.to_string(),
            phone: n.phone_number.clone(),
            service: n.service.clone(),
            country: n.country.clone(),
            kind: kind_words(n.kind),
            status: n.status.as_str(),
            status_text: status_words(n.kind, n.status, n.refund_transaction_id.is_some()),
            price: format!("{} {}", n.price.to_decimal(2), n.currency),
            code: n.code.clone().unwrap_or_default(),
            hours: n.hours.map(|h| h.to_string()).unwrap_or_default(),
            expires: short(n.expires_at),
            sms: sms
                .iter()
                .filter(|m| m.number_id == n.id)
                .map(|m| format!("{}: {}", short(m.received_at), m.text))
                .collect(),
            can_cancel: n.kind == NumberKind::Verification && n.status == NumberStatus::Active,
            can_extend: n.kind == NumberKind::Rental && n.status == NumberStatus::Active,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &NumbersTemplate {
            chrome: Chrome::new(&dash, Section::Numbers),
            services: services().collect(),
            countries: countries().collect(),
            service,
            country,
            prices,
            prices_problem,
            numbers,
            next_page,
            order_key: signin_token(),
            max_hours: MAX_RENTAL_HOURS,
            notice: notice(q.done.as_deref()),
        },
    ))
}

fn hours(param: &str, s: &str) -> Result<u32, ApiError> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|h| (MIN_RENTAL_HOURS..=MAX_RENTAL_HOURS).contains(h))
        .ok_or_else(|| ApiError::invalid(param, format!("{param}: a whole number from 1 to 720")))
}

/// The buy form. `key` is a random value rendered into the form: submitting the same form
/// twice (a double click, a resubmission) finds the first number instead of buying another.
#[derive(Debug, Deserialize)]
pub(super) struct OrderForm {
    #[serde(default)]
    service: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    kind: String,
    /// A rental's hours (ignored for a verification).
    #[serde(default)]
    hours: String,
    #[serde(default)]
    key: String,
}

/// `POST /dashboard/numbers`: the same use case as `POST /api/v1/numbers`, run once per
/// form key (the store's idempotency keys, as the API's `Idempotency-Key`).
pub(super) async fn order(
    State(st): State<AppState>,
    dash: Dash,
    Posted(form): Posted<OrderForm>,
) -> DashResult<Response> {
    if form.key.len() != 32 || !form.key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("key", "reload the page and try again").into());
    }
    let kind = NumberKind::parse(&form.kind)
        .ok_or_else(|| ApiError::invalid("kind", "choose a verification or a rental"))?;
    let hours = match kind {
        NumberKind::Verification => None,
        NumberKind::Rental => Some(hours("hours", &form.hours)?),
    };
    let service = form.service.trim();
    let country = form.country.trim();

    let app = &st.app;
    let account = &dash.principal.account.id;
    let key = format!("dashboard-number:{}", form.key);
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "POST /dashboard/numbers\n{service}\n{country}\n{}\n{hours:?}",
        kind.as_str()
    ));
    let fingerprint = hex::encode(hasher.finalize());
    let begun = crate::idempotency::begin(app, account, &key, &fingerprint)
        .await
        .map_err(ApiError::internal)?;
    match begun {
        IdempotencyBegin::Started { .. } => {}
        // The first submission of this form bought it: show that one.
        IdempotencyBegin::Replay(_) => return Ok(bought()),
        IdempotencyBegin::Mismatch => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this form was already used for another number; reload the page",
            )
            .into())
        }
        IdempotencyBegin::InProgress => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "this number is still being bought; reload the page in a moment",
            )
            .into())
        }
    }
    match app
        .numbers
        .order(&dash.principal, service, country, kind, hours)
        .await
    {
        Ok(n) => {
            let stored = StoredResponse {
                status: 201,
                body: n.id.to_string(),
            };
            if let Err(e) = app.store.idempotency_finish(account, &key, &stored).await {
                // The number is bought; the key stays claimed until its lock lapses.
                tracing::error!(error = %e, "could not store a dashboard number order");
            }
            Ok(bought())
        }
        Err(e) => {
            // Nothing was bought (no stock, no balance, no provider, a bad field): the same
            // form may be sent again once that changes.
            if let Err(e) = app.store.idempotency_release(account, &key).await {
                tracing::error!(error = %e, "could not release a dashboard number order");
            }
            Err(e.into())
        }
    }
}

fn bought() -> Response {
    Redirect::to("/dashboard/numbers?done=bought").into_response()
}

/// The cancel form: `confirm=yes` is the confirmation (the page's script also asks).
#[derive(Debug, Deserialize)]
pub(super) struct CancelForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/numbers/{id}/cancel`: a verification before its code, refunded.
pub(super) async fn cancel(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<CancelForm>,
) -> DashResult<Response> {
    let id = number_id(&id)?;
    if form.confirm != "yes" {
        return Err(ApiError::invalid("confirm", "tick the box to confirm the cancel").into());
    }
    st.app.numbers.cancel(&dash.principal, &id).await?;
    Ok(Redirect::to("/dashboard/numbers?done=canceled").into_response())
}

/// The extend form.
#[derive(Debug, Deserialize)]
pub(super) struct ExtendForm {
    #[serde(default)]
    hours: String,
}

/// `POST /dashboard/numbers/{id}/extend`: a rental, by `hours` at its hourly price.
pub(super) async fn extend(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Posted(form): Posted<ExtendForm>,
) -> DashResult<Response> {
    let id = number_id(&id)?;
    let hours = hours("hours", &form.hours)?;
    st.app.numbers.extend(&dash.principal, &id, hours).await?;
    Ok(Redirect::to("/dashboard/numbers?done=extended").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_in_words() {
        for kind in [NumberKind::Verification, NumberKind::Rental] {
            for status in [
                NumberStatus::Active,
                NumberStatus::CodeReceived,
                NumberStatus::Expired,
                NumberStatus::Canceled,
            ] {
                for refunded in [false, true] {
                    let w = status_words(kind, status, refunded);
                    assert!(!w.is_empty() && w.chars().next().unwrap().is_uppercase());
                }
            }
        }
        assert_eq!(
            status_words(NumberKind::Verification, NumberStatus::Active, false),
            "Waiting for a code"
        );
    }

    #[test]
    fn hours_are_checked() {
        assert_eq!(hours("hours", " 24 ").unwrap(), 24);
        for bad in ["", "0", "721", "-1", "1.5", "x"] {
            assert!(hours("hours", bad).is_err(), "{bad}");
        }
    }
}
