//! `/dashboard/invoices`: the days-billing invoices of the account (PRODUCT.md §11), each
//! linking to its hosted page and PDF.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use wagate_app::billing::days::invoice_json;
use wagate_domain::page::PageRequest;

use super::session::Dash;
use super::view::{render, s, when, Chrome, DashResult, Section};
use crate::error::ApiError;
use crate::AppState;

/// Invoices per page.
const PAGE: i64 = 50;

/// An invoice as a row.
struct InvoiceRow {
    id: String,
    status: String,
    days: String,
    amount: String,
    created: String,
    due: String,
    hosted_url: String,
    pdf_url: String,
}

#[derive(Template)]
#[template(path = "dashboard/invoices.html")]
struct InvoicesTemplate {
    chrome: Chrome,
    /// `Some(balance in days)` for an account billed in days.
    days_balance: Option<i64>,
    invoices: Vec<InvoiceRow>,
    next_page: Option<String>,
}

/// The query of the page.
#[derive(Debug, Deserialize)]
pub(super) struct InvoicesQuery {
    starting_after: Option<String>,
}

/// `GET /dashboard/invoices`.
pub(super) async fn show(
    State(st): State<AppState>,
    dash: Dash,
    q: Result<Query<InvoicesQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let who = &dash.principal;
    let days = st.app.lines.days_billing(&who.account.id).await?;
    let page = PageRequest::new(Some(PAGE), q.starting_after.filter(|a| !a.is_empty()))
        .map_err(|e| ApiError::invalid("starting_after", e.to_string()))?;
    let found = st.app.days.invoices(who, &page).await?;
    let public = st.app.lines.public_url();
    let next_page = found
        .has_more
        .then(|| found.data.last().map(|i| i.id.to_string()))
        .flatten();
    let invoices = found
        .data
        .iter()
        .map(|i| {
            let v = invoice_json(i, &public);
            InvoiceRow {
                id: s(&v, "id"),
                status: s(&v, "status"),
                days: s(&v, "days"),
                amount: format!("{} {}", s(&v, "amount"), s(&v, "currency")),
                created: when(&v, "created_at"),
                due: when(&v, "due_at"),
                hosted_url: s(&v, "hosted_url"),
                pdf_url: s(&v, "pdf_url"),
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &InvoicesTemplate {
            chrome: Chrome::new(&dash, Section::Invoices),
            days_balance: days.map(|d| d.balance_days),
            invoices,
            next_page,
        },
    ))
}
