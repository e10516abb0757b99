//! The card on file, the wallet, top-ups, auto top-up, transactions and the forecast.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_domain::billing::forecast::Forecast;
use wagate_domain::money::Micros;
use wagate_domain::time::rfc3339;
use wagate_store::{BillingAccountRecord, CardRecord, TransactionRecord};

use super::webhooks::{query, DeletedOut, ListOut, ListParams};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::IdempotencyScope;
use crate::json::ApiJson;
use crate::AppState;

/// The card on file (the processor holds the number; wagate never sees it).
#[derive(Debug, Serialize, ToSchema)]
pub struct CardOut {
    /// Always `card`.
    pub object: &'static str,
    /// `VISA`, `MASTERCARD`, …
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u32,
    /// Expiry year.
    pub exp_year: u32,
    /// When it was added.
    pub created_at: String,
}

impl From<CardRecord> for CardOut {
    fn from(c: CardRecord) -> Self {
        CardOut {
            object: "card",
            brand: c.brand,
            last4: c.last4,
            exp_month: c.exp_month,
            exp_year: c.exp_year,
            created_at: rfc3339(c.added_at),
        }
    }
}

/// Store a card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardIn {
    /// The processor's one-time card nonce (Square Web Payments SDK). In the sandbox:
    /// `cnon:card-nonce-ok` or `cnon:card-nonce-declined`.
    pub source_id: String,
}

/// Set auto top-up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoTopupIn {
    /// On or off.
    pub enabled: bool,
    /// A debit that leaves the balance below this tops up: 0.00 to 10000.00 (decimal
    /// string, up to 6 places).
    pub threshold: String,
    /// How much each top-up charges: 5.00 to 10000.00, whole cents.
    pub amount: String,
}

/// Auto top-up settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutoTopupOut {
    /// On or off.
    pub enabled: bool,
    /// A debit that leaves the balance below this tops up (decimal string).
    pub threshold: String,
    /// How much each top-up charges (decimal string).
    pub amount: String,
}

/// The wallet.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletOut {
    /// Always `wallet`.
    pub object: &'static str,
    /// Exact balance (decimal string, up to 6 places).
    pub balance: String,
    /// `USD`.
    pub currency: String,
    /// Auto top-up.
    pub auto_topup: AutoTopupOut,
    /// Whether a card is on file.
    pub has_card: bool,
}

impl From<BillingAccountRecord> for WalletOut {
    fn from(b: BillingAccountRecord) -> Self {
        WalletOut {
            object: "wallet",
            balance: b.balance.to_string(),
            currency: b.currency,
            auto_topup: AutoTopupOut {
                enabled: b.auto_topup_enabled,
                threshold: b.auto_topup_threshold.to_string(),
                amount: b.auto_topup_amount.to_string(),
            },
            has_card: b.card.is_some(),
        }
    }
}

/// Top up the wallet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupIn {
    /// 5.00 to 10000.00, whole cents (decimal string).
    pub amount: String,
}

/// A top-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopupOut {
    /// The card payment, `pay_…`.
    pub id: String,
    /// Always `topup`.
    pub object: &'static str,
    /// Charged to the card.
    pub amount: String,
    /// `USD`.
    pub currency: String,
    /// `succeeded`, or `pending` when the processor's answer is not known yet (the wallet is
    /// credited when it is, with `wallet.topped_up`).
    pub status: &'static str,
    /// The wallet credit.
    pub transaction_id: Option<String>,
    /// The wallet balance after it.
    pub balance: String,
}

/// A wallet transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionOut {
    /// `txn_…`
    pub id: String,
    /// Always `transaction`.
    pub object: &'static str,
    /// `topup`, `line_charge`, `adjustment`, `refund` or `message_charge`.
    #[serde(rename = "type")]
    pub txn_type: &'static str,
    /// Signed change of the wallet (decimal string).
    pub amount: String,
    /// The wallet after it.
    pub balance_after: String,
    /// The line it concerns.
    pub line_id: Option<String>,
    /// What it was.
    pub description: String,
    /// RFC 3339 (business time).
    pub created_at: String,
}

impl From<TransactionRecord> for TransactionOut {
    fn from(t: TransactionRecord) -> Self {
        TransactionOut {
            id: t.id.to_string(),
            object: "transaction",
            txn_type: t.txn_type.as_str(),
            amount: Micros(t.amount).to_string(),
            balance_after: Micros(t.balance_after).to_string(),
            line_id: t.line_id,
            description: t.description,
            created_at: rfc3339(t.created_at),
        }
    }
}

/// A charge expected soon.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpcomingOut {
    /// The line.
    pub line_id: String,
    /// When.
    pub date: String,
    /// How much.
    pub amount: String,
}

/// The billing forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastOut {
    /// Always `forecast`.
    pub object: &'static str,
    /// `USD`.
    pub currency: &'static str,
    /// Billed lines on the messaging plan.
    pub messaging_lines: u64,
    /// Billed lines on the calling plan.
    pub calling_lines: u64,
    /// What the billed lines cost per month.
    pub monthly_total: String,
    /// The most the pending lines can cost per month once scanned.
    pub pending_lines_max_cost: String,
    /// `monthly_total + pending_lines_max_cost`.
    pub recommended_balance: String,
    /// Charges in the next 30 days, oldest first.
    pub upcoming: Vec<UpcomingOut>,
}

impl From<Forecast> for ForecastOut {
    fn from(f: Forecast) -> Self {
        ForecastOut {
            object: "forecast",
            currency: "USD",
            messaging_lines: f.messaging_lines,
            calling_lines: f.calling_lines,
            monthly_total: f.monthly_total.to_string(),
            pending_lines_max_cost: f.pending_lines_max_cost.to_string(),
            recommended_balance: f.recommended_balance.to_string(),
            upcoming: f
                .upcoming
                .into_iter()
                .map(|u| UpcomingOut {
                    line_id: u.line_id.to_string(),
                    date: rfc3339(u.date),
                    amount: u.amount.to_string(),
                })
                .collect(),
        }
    }
}

fn amount(param: &str, s: &str) -> ApiResult<Micros> {
    Micros::parse(s).map_err(|e| ApiError::invalid(param, format!("{param}: {e}")))
}

/// Stores a card from a processor nonce (replacing any card on file).
#[utoipa::path(post, path = "/api/v1/billing/card", operation_id = "addCard", tag = "billing", security(("api_key" = [])),
    request_body = CardIn,
    responses((status = 201, description = "The card on file", body = CardOut),
        (status = 402, description = "`card_declined`", body = crate::openapi::ErrorOut),
        (status = 502, description = "`processor_unavailable`", body = crate::openapi::ErrorOut),
        (status = 503, description = "`payments_not_configured`", body = crate::openapi::ErrorOut)))]
pub async fn add_card(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<CardIn>,
) -> ApiResult<(StatusCode, ApiJson<CardOut>)> {
    let card = st.app.billing.add_card(&who, &input.source_id).await?;
    Ok((StatusCode::CREATED, ApiJson(card.into())))
}

/// The card on file.
#[utoipa::path(get, path = "/api/v1/billing/card", operation_id = "getCard", tag = "billing", security(("api_key" = [])),
    responses((status = 200, description = "The card on file", body = CardOut),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorOut)))]
pub async fn get_card(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<CardOut>> {
    let b = st.app.billing.account(&who).await?;
    let card = b.card.ok_or_else(|| ApiError::not_found("card"))?;
    Ok(ApiJson(card.into()))
}

/// Removes the card on file. Lines keep running; a charge the wallet cannot cover then fails
/// and the line goes past due.
#[utoipa::path(delete, path = "/api/v1/billing/card", operation_id = "deleteCard", tag = "billing", security(("api_key" = [])),
    responses((status = 200, description = "The card, removed", body = DeletedOut),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorOut)))]
pub async fn delete_card(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<DeletedOut>> {
    let card = st.app.billing.delete_card(&who).await?;
    Ok(ApiJson(DeletedOut {
        id: card.card_id,
        object: "card",
        deleted: true,
    }))
}

/// The wallet: balance and auto top-up.
#[utoipa::path(get, path = "/api/v1/billing/wallet", operation_id = "getWallet", tag = "billing", security(("api_key" = [])),
    responses((status = 200, description = "The wallet", body = WalletOut)))]
pub async fn wallet(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<WalletOut>> {
    Ok(ApiJson(st.app.billing.account(&who).await?.into()))
}

/// Charges the card and credits the wallet. Send an `Idempotency-Key`: a retry then never
/// charges twice.
#[utoipa::path(post, path = "/api/v1/billing/wallet/topups", operation_id = "createTopup", tag = "billing", security(("api_key" = [])),
    request_body = TopupIn,
    responses((status = 201, description = "Charged and credited", body = TopupOut),
        (status = 202, description = "Outcome pending", body = TopupOut),
        (status = 402, description = "`card_required`, `card_declined`", body = crate::openapi::ErrorOut),
        (status = 502, description = "`processor_unavailable`", body = crate::openapi::ErrorOut),
        (status = 503, description = "`payments_not_configured`", body = crate::openapi::ErrorOut)))]
pub async fn topup(
    State(st): State<AppState>,
    Authed(who): Authed,
    scope: Option<axum::Extension<IdempotencyScope>>,
    ApiJson(input): ApiJson<TopupIn>,
) -> ApiResult<(StatusCode, ApiJson<TopupOut>)> {
    let amount = amount("amount", &input.amount)?;
    // The payment is keyed on this use of the Idempotency-Key: retries share it, a reuse of
    // the key after its 24 h window is a new payment.
    let key = scope.map(|axum::Extension(IdempotencyScope(s))| s);
    let r = st.app.billing.topup(&who, amount, key.as_deref()).await?;
    let status = if r.status == "succeeded" {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        ApiJson(TopupOut {
            id: r.payment.id.to_string(),
            object: "topup",
            amount: r.payment.amount.to_string(),
            currency: "USD".into(),
            status: r.status,
            transaction_id: r.transaction_id.map(|t| t.to_string()),
            balance: r.balance.to_string(),
        }),
    ))
}

/// Sets auto top-up: after any debit that leaves the balance below `threshold`, the card is
/// charged `amount` (at most one in flight; after a decline, none for an hour).
#[utoipa::path(put, path = "/api/v1/billing/wallet/auto_topup", operation_id = "setAutoTopup", tag = "billing", security(("api_key" = [])),
    request_body = AutoTopupIn, responses((status = 200, description = "The wallet", body = WalletOut)))]
pub async fn set_auto_topup(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<AutoTopupIn>,
) -> ApiResult<ApiJson<WalletOut>> {
    let threshold = amount("threshold", &input.threshold)?;
    let amt = amount("amount", &input.amount)?;
    let b = st
        .app
        .billing
        .set_auto_topup(&who, input.enabled, threshold, amt)
        .await?;
    Ok(ApiJson(b.into()))
}

/// Every wallet movement, newest first; they add up to the balance.
#[utoipa::path(get, path = "/api/v1/billing/transactions", operation_id = "listTransactions", tag = "billing", security(("api_key" = [])),
    params(ListParams), responses((status = 200, description = "A page of transactions", body = ListOut<TransactionOut>)))]
pub async fn transactions(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<ListOut<TransactionOut>>> {
    let page = query(q)?.page()?;
    let found = st.app.billing.transactions(&who, &page).await?;
    Ok(ApiJson(ListOut::from_page(found, TransactionOut::from)))
}

/// What the account should expect to pay: monthly total, pending lines' maximum cost, the
/// recommended balance and the charges of the next 30 days.
#[utoipa::path(get, path = "/api/v1/billing/forecast", operation_id = "getForecast", tag = "billing", security(("api_key" = [])),
    responses((status = 200, description = "The forecast", body = ForecastOut)))]
pub async fn forecast(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<ForecastOut>> {
    Ok(ApiJson(st.app.billing.forecast(&who).await?.into()))
}
