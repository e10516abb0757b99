//! Partner billing in days (PRODUCT.md §11): the days balance and invoices for days.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use wagate_app::billing::days::{days_json, invoice_json};
use wagate_domain::ids::InvoiceId;

use super::webhooks::{query, ListParams};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::AppState;

/// An account's days (accounts billed in days only).
#[derive(Debug, Serialize, ToSchema)]
pub struct DaysOut {
    /// Always `days_balance`.
    pub object: String,
    /// Days bought and not yet handed to a line (below zero only for a postpaid account).
    pub balance_days: i64,
    /// The account's price of one day (decimal string).
    pub day_price: String,
    /// `USD`.
    pub currency: String,
    /// The month's use is invoiced on the 1st instead of bought ahead.
    pub postpaid: bool,
}

/// The invoice object (schema only: the body is built by `wagate_app::billing::days`).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceOut {
    /// `inv_…`
    pub id: String,
    /// Always `invoice`.
    pub object: String,
    /// `open` or `paid`.
    pub status: String,
    /// Days it buys.
    pub days: u32,
    /// The price of a day when it was issued (decimal string).
    pub day_price: String,
    /// `days × day_price` (decimal string).
    pub amount: String,
    /// `USD`.
    pub currency: String,
    /// RFC 3339.
    pub created_at: String,
    /// Payment due (14 days after issue).
    pub due_at: String,
    /// When it was paid.
    pub paid_at: Option<String>,
    /// `card` (paid with the card on file) or `operator` (marked paid: a bank transfer).
    pub paid_by: Option<String>,
    /// A postpaid month's invoice: the first instant of the month whose use it bills.
    pub period_start: Option<String>,
    /// The invoice as a web page (public to whoever has the link, like Stripe's).
    pub hosted_url: String,
    /// The invoice as a PDF.
    pub pdf_url: String,
}

/// A page of invoices.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceList {
    /// Newest first.
    #[schema(value_type = Vec<InvoiceOut>)]
    pub data: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
}

/// Buy days: `channels` (× 30 days each) or `days`, exactly one of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvoiceIn {
    /// Channel-months: 75 channels buy 2,250 days.
    pub channels: Option<u32>,
    /// Days, instead of channels.
    pub days: Option<u32>,
}

/// The invoice's hosted page (HTML). Public to whoever has the link; an unknown token → the
/// friendly 404 page. A browser link, like the connect page: not an API operation, so not in
/// the OpenAPI document.
pub async fn page(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> axum::response::Response {
    use axum::response::{Html, IntoResponse};
    match st.app.days.invoice_page(&token).await {
        Ok((invoice, name)) => {
            Html(crate::invoice_page::render_page(&invoice, &name, &token)).into_response()
        }
        Err(wagate_app::AppError::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            Html(crate::connect_page::render_not_found()),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The invoice as a PDF (a browser link like the page; not in the OpenAPI document).
pub async fn pdf(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.app.days.invoice_page(&token).await {
        Ok((invoice, name)) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/pdf".to_owned(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{}.pdf\"", invoice.id),
                ),
            ],
            crate::invoice_page::render_pdf(&invoice, &name),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn invoice_id(id: &str) -> ApiResult<InvoiceId> {
    InvoiceId::parse(id).map_err(|_| ApiError::not_found("invoice"))
}

/// The account's days balance and price. An account billed flat → 409 `invalid_state`.
#[utoipa::path(get, path = "/api/v1/billing/days", operation_id = "getDaysBalance", tag = "billing", security(("api_key" = [])),
    responses((status = 200, description = "The days balance", body = DaysOut),
        (status = 409, description = "`invalid_state`: the account is billed flat", body = crate::openapi::ErrorOut)))]
pub async fn get_days(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<Value>> {
    let d = st.app.days.settings(&who.account.id).await?;
    Ok(ApiJson(days_json(&d)))
}

/// Issues an invoice for days at the account's day price (`invoice.created`). It is paid by
/// bank transfer, which the operator records (`wagate invoices mark-paid`): the days are then
/// credited once (`invoice.paid`).
#[utoipa::path(post, path = "/api/v1/billing/invoices", operation_id = "createInvoice", tag = "billing", security(("api_key" = [])),
    request_body = CreateInvoiceIn,
    responses((status = 201, description = "The invoice, open", body = InvoiceOut),
        (status = 409, description = "`invalid_state`: the account is billed flat", body = crate::openapi::ErrorOut)))]
pub async fn create_invoice(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<CreateInvoiceIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let invoice = st
        .app
        .days
        .create_invoice(&who, input.channels, input.days)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(invoice_json(&invoice, &st.app.lines.public_url())),
    ))
}

/// The account's invoices, newest first.
#[utoipa::path(get, path = "/api/v1/billing/invoices", operation_id = "listInvoices", tag = "billing", security(("api_key" = [])),
    params(ListParams), responses((status = 200, description = "A page of invoices", body = InvoiceList)))]
pub async fn list_invoices(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<InvoiceList>> {
    let page = query(q)?.page()?;
    let found = st.app.days.invoices(&who, &page).await?;
    Ok(ApiJson(InvoiceList {
        data: found
            .data
            .iter()
            .map(|i| invoice_json(i, &st.app.lines.public_url()))
            .collect(),
        has_more: found.has_more,
    }))
}

/// Pays an open invoice with the card on file: its days are credited once (`invoice.paid`).
/// Paying a paid invoice changes nothing and answers it. A decline → 402 `card_declined`.
#[utoipa::path(post, path = "/api/v1/billing/invoices/{id}/pay", operation_id = "payInvoice", tag = "billing", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = super::EmptyIn, description = "No parameters (`{}` or no body)"),
    responses((status = 200, description = "The invoice, paid", body = InvoiceOut),
        (status = 402, description = "`card_required`, `card_declined`", body = crate::openapi::ErrorOut),
        (status = 502, description = "`processor_unavailable`: pay again to settle it (never charged twice)", body = crate::openapi::ErrorOut)))]
pub async fn pay_invoice(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    _body: ApiJson<super::EmptyIn>,
) -> ApiResult<ApiJson<Value>> {
    let invoice = st.app.days.pay(&who, &invoice_id(&id)?).await?;
    Ok(ApiJson(invoice_json(&invoice, &st.app.lines.public_url())))
}

/// One invoice.
#[utoipa::path(get, path = "/api/v1/billing/invoices/{id}", operation_id = "getInvoice", tag = "billing", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The invoice", body = InvoiceOut)))]
pub async fn get_invoice(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let invoice = st.app.days.invoice(&who, &invoice_id(&id)?).await?;
    Ok(ApiJson(invoice_json(&invoice, &st.app.lines.public_url())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// The documented schemas and the built objects list the same fields.
    #[test]
    fn schemas_match_the_built_objects() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let account = wagate_domain::ids::AccountId::generate();
        let invoice = wagate_store::InvoiceRecord {
            id: InvoiceId::generate(),
            account_id: account.clone(),
            status: wagate_store::InvoiceStatus::Open,
            days: 30,
            day_price: wagate_domain::money::Micros(500_000),
            amount: wagate_domain::money::Micros(15_000_000),
            currency: "USD".into(),
            created_at: now,
            due_at: now,
            paid_at: None,
            paid_by: None,
            payment_id: None,
            period_start: None,
            page_token: wagate_domain::ids::random_base62(32),
        };
        let schema = InvoiceOut {
            id: String::new(),
            object: String::new(),
            status: String::new(),
            days: 0,
            day_price: String::new(),
            amount: String::new(),
            currency: String::new(),
            created_at: String::new(),
            due_at: String::new(),
            paid_at: None,
            paid_by: None,
            period_start: None,
            hosted_url: String::new(),
            pdf_url: String::new(),
        };
        assert_eq!(
            keys(&serde_json::to_value(&schema).unwrap()),
            keys(&invoice_json(&invoice, "http://x"))
        );
        let days = wagate_store::DayAccountRecord {
            account_id: account,
            mode: wagate_domain::billing::days::BillingMode::Days,
            day_price: wagate_domain::money::Micros(500_000),
            postpaid: false,
            balance_days: 0,
        };
        let schema = DaysOut {
            object: String::new(),
            balance_days: 0,
            day_price: String::new(),
            currency: String::new(),
            postpaid: false,
        };
        assert_eq!(
            keys(&serde_json::to_value(&schema).unwrap()),
            keys(&days_json(&days))
        );
    }
}
