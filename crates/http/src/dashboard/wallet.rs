//! `/dashboard/wallet`: the balance, the card on file, transactions with paging, top-up,
//! auto top-up, and the chart of the balance over time with its 30-day forecast.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use wagate_domain::money::Micros;
use wagate_domain::page::PageRequest;

use super::chart::{balance_chart, ChartPoint};
use super::session::{signin_token, Dash, Posted};
use super::view::{render, short_time, Chrome, DashResult, Section};
use crate::error::ApiError;
use crate::routes::billing::TransactionOut;
use crate::AppState;

/// Transactions per page of the table.
const TABLE_PAGE: i64 = 20;
/// Transactions the chart reads (the newest).
const CHART_POINTS: i64 = 200;

/// A transaction as a table row.
struct TxnRow {
    id: String,
    kind: &'static str,
    amount: String,
    credit: bool,
    balance_after: String,
    description: String,
    at: String,
}

#[derive(Template)]
#[template(path = "dashboard/wallet.html")]
struct WalletTemplate {
    chrome: Chrome,
    balance: String,
    currency: String,
    card: Option<String>,
    auto_enabled: bool,
    auto_threshold: String,
    auto_amount: String,
    chart: String,
    recommended: String,
    monthly_total: String,
    upcoming: Vec<(String, String, String)>,
    txns: Vec<TxnRow>,
    next_page: Option<String>,
    topup_key: String,
    notice: Option<&'static str>,
}

/// The query of the wallet page.
#[derive(Debug, Deserialize)]
pub(super) struct WalletQuery {
    starting_after: Option<String>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "topped_up" => Some("Wallet topped up."),
        "topup_pending" => {
            Some("Top-up sent to the card processor; its outcome shows here once known.")
        }
        "auto_topup" => Some("Auto top-up saved."),
        _ => None,
    }
}

/// `GET /dashboard/wallet`.
pub(super) async fn show(
    State(st): State<AppState>,
    dash: Dash,
    q: Result<Query<WalletQuery>, axum::extract::rejection::QueryRejection>,
) -> DashResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let who = &dash.principal;
    let billing = st.app.billing.account(who).await?;
    let forecast = st.app.billing.forecast(who).await?;
    let page = PageRequest::new(Some(TABLE_PAGE), q.starting_after.filter(|a| !a.is_empty()))
        .map_err(|e| ApiError::invalid("starting_after", e.to_string()))?;
    let table = st.app.billing.transactions(who, &page).await?;
    let recent = st
        .app
        .billing
        .transactions(
            who,
            &PageRequest::new(Some(CHART_POINTS), None)
                .map_err(|e| ApiError::invalid("limit", e.to_string()))?,
        )
        .await?;

    let now = st.app.clock.now();
    let mut history: Vec<ChartPoint> = recent
        .data
        .iter()
        .rev()
        .map(|t| ChartPoint {
            at: t.created_at,
            micros: t.balance_after,
        })
        .collect();
    history.push(ChartPoint {
        at: now,
        micros: billing.balance.0,
    });
    let mut projected = billing.balance.0;
    let mut future = vec![ChartPoint {
        at: now,
        micros: projected,
    }];
    for u in &forecast.upcoming {
        projected = projected.saturating_sub(u.amount.0);
        future.push(ChartPoint {
            at: u.date.max(now),
            micros: projected,
        });
    }
    let horizon = now
        .saturating_add(jiff::SignedDuration::from_hours(24 * 30))
        .unwrap_or(now);
    future.push(ChartPoint {
        at: horizon,
        micros: projected,
    });

    let next_page = table
        .has_more
        .then(|| table.data.last().map(|t| t.id.to_string()))
        .flatten();
    let txns = table
        .data
        .into_iter()
        .map(|t| {
            let credit = t.amount >= 0;
            let out = TransactionOut::from(t);
            TxnRow {
                id: out.id,
                kind: out.txn_type,
                amount: out.amount,
                credit,
                balance_after: out.balance_after,
                description: out.description,
                at: short_time(&out.created_at),
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &WalletTemplate {
            chrome: Chrome::new(&dash, Section::Wallet),
            balance: billing.balance.to_string(),
            currency: billing.currency.clone(),
            card: billing
                .card
                .as_ref()
                .map(|c| format!("{} ending {}", c.brand, c.last4)),
            auto_enabled: billing.auto_topup_enabled,
            auto_threshold: billing.auto_topup_threshold.to_string(),
            auto_amount: billing.auto_topup_amount.to_string(),
            chart: balance_chart(&history, &future, &billing.currency),
            recommended: forecast.recommended_balance.to_string(),
            monthly_total: forecast.monthly_total.to_string(),
            upcoming: forecast
                .upcoming
                .iter()
                .map(|u| {
                    (
                        u.date.strftime("%Y-%m-%d").to_string(),
                        u.line_id.to_string(),
                        u.amount.to_string(),
                    )
                })
                .collect(),
            txns,
            next_page,
            topup_key: signin_token(),
            notice: notice(q.done.as_deref()),
        },
    ))
}

fn amount(param: &str, s: &str) -> Result<Micros, ApiError> {
    Micros::parse(s.trim()).map_err(|e| ApiError::invalid(param, format!("{param}: {e}")))
}

/// The top-up form. `key` is a random value rendered into the form: submitting the same
/// form twice (a double click, a resubmission) finds the first payment instead of charging
/// the card again.
#[derive(Debug, Deserialize)]
pub(super) struct TopupForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    key: String,
}

/// `POST /dashboard/wallet/topup`: the same use case as `POST /api/v1/billing/wallet/topups`.
pub(super) async fn topup(
    State(st): State<AppState>,
    dash: Dash,
    Posted(form): Posted<TopupForm>,
) -> DashResult<Response> {
    let amount = amount("amount", &form.amount)?;
    if form.key.len() != 32 || !form.key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("key", "reload the page and try again").into());
    }
    let key = format!("dashboard:{}", form.key);
    let r = st
        .app
        .billing
        .topup(&dash.principal, amount, Some(&key))
        .await?;
    let done = if r.status == "succeeded" {
        "topped_up"
    } else {
        "topup_pending"
    };
    Ok(Redirect::to(&format!("/dashboard/wallet?done={done}")).into_response())
}

/// The auto top-up form (an unticked checkbox is absent from the form).
#[derive(Debug, Deserialize)]
pub(super) struct AutoTopupForm {
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    amount: String,
}

/// `POST /dashboard/wallet/auto_topup`.
pub(super) async fn auto_topup(
    State(st): State<AppState>,
    dash: Dash,
    Posted(form): Posted<AutoTopupForm>,
) -> DashResult<Response> {
    let threshold = amount("threshold", &form.threshold)?;
    let amt = amount("amount", &form.amount)?;
    st.app
        .billing
        .set_auto_topup(&dash.principal, form.enabled.is_some(), threshold, amt)
        .await?;
    Ok(Redirect::to("/dashboard/wallet?done=auto_topup").into_response())
}
