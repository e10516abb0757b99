//! The JSON bodies of the Square endpoints we call, as Square's API reference documents them
//! (only the fields we send or read).

use serde::{Deserialize, Serialize};

/// `POST /v2/customers` (Customers API, CreateCustomer).
#[derive(Debug, Serialize)]
pub(super) struct CreateCustomerRequest<'a> {
    pub idempotency_key: &'a str,
    pub company_name: &'a str,
    pub reference_id: &'a str,
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateCustomerResponse {
    pub customer: Option<Customer>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Customer {
    pub id: String,
}

/// `POST /v2/cards` (Cards API, CreateCard).
#[derive(Debug, Serialize)]
pub(super) struct CreateCardRequest<'a> {
    pub idempotency_key: &'a str,
    pub source_id: &'a str,
    pub card: NewCard<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct NewCard<'a> {
    pub customer_id: &'a str,
    pub reference_id: &'a str,
}

/// The answer of CreateCard and DisableCard: `{"card": {...}}`.
#[derive(Debug, Deserialize)]
pub(super) struct CardResponse {
    pub card: Option<Card>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Card {
    pub id: String,
    pub card_brand: Option<String>,
    pub last_4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
    pub customer_id: Option<String>,
}

/// `POST /v2/payments` (Payments API, CreatePayment).
#[derive(Debug, Serialize)]
pub(super) struct CreatePaymentRequest<'a> {
    pub source_id: &'a str,
    pub idempotency_key: &'a str,
    pub amount_money: Money<'a>,
    pub autocomplete: bool,
    pub customer_id: &'a str,
    pub location_id: &'a str,
    pub reference_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub note: &'a str,
}

#[derive(Debug, Serialize)]
pub(super) struct Money<'a> {
    pub amount: i64,
    pub currency: &'a str,
}

/// CreatePayment's answer: `payment` (possibly with status `FAILED`) and/or `errors`.
#[derive(Debug, Deserialize)]
pub(super) struct CreatePaymentResponse {
    pub payment: Option<SquarePayment>,
    #[serde(default)]
    pub errors: Vec<SquareError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SquarePayment {
    pub id: String,
    pub status: Option<String>,
    pub amount_money: Option<MoneyIn>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MoneyIn {
    pub amount: i64,
    pub currency: String,
}

/// Any error answer: `{"errors": [{"category", "code", "detail", "field"}]}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<SquareError>,
}

/// One entry of Square's `errors` list.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct SquareError {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub code: String,
    pub detail: Option<String>,
}
