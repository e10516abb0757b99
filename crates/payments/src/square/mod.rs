//! The real processor: Square's Customers, Cards and Payments APIs over HTTPS.

mod config;
mod errors;
mod wire;

use std::fmt;
use std::time::Duration;

pub use config::{
    SquareConfig, SquareConfigError, DEFAULT_SQUARE_VERSION, DEFAULT_TIMEOUT,
    SQUARE_PRODUCTION_URL, SQUARE_SANDBOX_URL,
};

use async_trait::async_trait;
use reqwest::header::ACCEPT;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::idempotency::{derived_key, processor_idempotency_key};
use crate::{ChargeRequest, Payment, PaymentError, PaymentProcessor, StoreCardRequest, StoredCard};
use wire::{
    CardResponse, CreateCardRequest, CreateCustomerRequest, CreateCustomerResponse,
    CreatePaymentRequest, CreatePaymentResponse, Money, NewCard,
};

/// `reference_id` of a payment is limited to 40 characters by Square.
const MAX_PAYMENT_REFERENCE_LEN: usize = 40;
/// `note` of a payment is limited to 500 characters by Square.
const MAX_PAYMENT_NOTE_LEN: usize = 500;
/// `company_name` of a customer is limited to 500 characters by Square.
const MAX_COMPANY_NAME_LEN: usize = 500;

/// The Square processor. Cheap to share behind an `Arc`.
pub struct SquareProcessor {
    client: reqwest::Client,
    base_url: Url,
    access_token: String,
    location_id: String,
    square_version: String,
}

impl fmt::Debug for SquareProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SquareProcessor")
            .field("base_url", &self.base_url.as_str())
            .field("location_id", &self.location_id)
            .field("square_version", &self.square_version)
            .finish_non_exhaustive()
    }
}

/// The first `max` characters of `s`.
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

fn require_key(key: &str) -> Result<(), PaymentError> {
    if key.is_empty() {
        return Err(PaymentError::invalid(
            "MISSING_REQUIRED_PARAMETER",
            "An idempotency key is required.",
        ));
    }
    Ok(())
}

fn transport_error(op: &str, e: &reqwest::Error) -> PaymentError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    PaymentError::Unknown(format!("{op}: {what}: {e}"))
}

/// The payment in CreatePayment's answer, or why there is none.
fn payment_outcome(op: &str, answer: CreatePaymentResponse) -> Result<Payment, PaymentError> {
    let Some(payment) = answer.payment else {
        return Err(if answer.errors.is_empty() {
            PaymentError::Unknown(format!("{op}: answer without a payment"))
        } else {
            errors::classify(op, 400, &answer.errors)
        });
    };
    let status = payment.status.as_deref().unwrap_or("");
    match status {
        "COMPLETED" | "APPROVED" | "PENDING" => {
            let Some(money) = payment.amount_money else {
                return Err(PaymentError::Unknown(format!(
                    "{op}: payment {} without amount_money",
                    payment.id
                )));
            };
            Ok(Payment {
                processor_id: payment.id,
                amount_cents: money.amount,
                currency: money.currency,
            })
        }
        "FAILED" | "CANCELED" => Err(match answer.errors.first() {
            Some(e) => errors::declined(e),
            None => PaymentError::declined(&format!("PAYMENT_{status}"), "The card was declined."),
        }),
        other => Err(PaymentError::Unknown(format!(
            "{op}: payment {} has unexpected status {other:?}",
            payment.id
        ))),
    }
}

impl SquareProcessor {
    /// Checks `config` and builds the HTTP client (timeout, rustls).
    pub fn new(config: SquareConfig) -> Result<Self, SquareConfigError> {
        let base_url = config.validate()?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("wagate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SquareConfigError::Client(e.to_string()))?;
        Ok(SquareProcessor {
            client,
            base_url,
            access_token: config.access_token,
            location_id: config.location_id,
            square_version: config.square_version,
        })
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// POSTs `body` (or nothing) to `url` and reads Square's answer; `op` names the call in
    /// errors and logs.
    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        op: &str,
        url: Url,
        body: Option<&B>,
    ) -> Result<R, PaymentError> {
        let mut request = self
            .client
            .post(url)
            .bearer_auth(&self.access_token)
            .header("Square-Version", &self.square_version)
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let result = async {
            let response = request.send().await.map_err(|e| transport_error(op, &e))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport_error(op, &e))?;
            if status.is_success() {
                serde_json::from_slice(&bytes).map_err(|e| {
                    PaymentError::Unknown(format!("{op}: unreadable answer from Square: {e}"))
                })
            } else {
                Err(errors::from_response(op, status.as_u16(), &bytes))
            }
        }
        .await;
        match &result {
            Err(e @ PaymentError::Unknown(_)) => tracing::warn!(op, error = %e, "Square call"),
            Err(e) => tracing::info!(op, error = %e, "Square call refused"),
            Ok(_) => tracing::debug!(op, "Square call ok"),
        }
        result
    }

    async fn create_customer(&self, req: &StoreCardRequest<'_>) -> Result<String, PaymentError> {
        let name = req.account_name.trim();
        let body = CreateCustomerRequest {
            idempotency_key: &derived_key("customer", req.idempotency_key),
            company_name: truncate(
                if name.is_empty() {
                    req.account.as_str()
                } else {
                    name
                },
                MAX_COMPANY_NAME_LEN,
            ),
            reference_id: req.account.as_str(),
        };
        let answer: CreateCustomerResponse = self
            .post(
                "CreateCustomer",
                self.endpoint(&["v2", "customers"]),
                Some(&body),
            )
            .await?;
        answer.customer.map(|c| c.id).ok_or_else(|| {
            PaymentError::Unknown("CreateCustomer: answer without a customer".into())
        })
    }

    /// Sends the CreatePayment for `req`. Identical for `charge` and `resolve`, so Square
    /// recognizes the repeat.
    async fn create_payment(
        &self,
        op: &str,
        req: &ChargeRequest<'_>,
    ) -> Result<Payment, PaymentError> {
        require_key(req.idempotency_key)?;
        let key = processor_idempotency_key(req.idempotency_key);
        let body = CreatePaymentRequest {
            source_id: req.card_id,
            idempotency_key: &key,
            amount_money: Money {
                amount: req.amount_cents,
                currency: req.currency,
            },
            autocomplete: true,
            customer_id: req.customer_id,
            location_id: &self.location_id,
            reference_id: truncate(req.account.as_str(), MAX_PAYMENT_REFERENCE_LEN),
            note: truncate(req.note, MAX_PAYMENT_NOTE_LEN),
        };
        let answer: CreatePaymentResponse = self
            .post(op, self.endpoint(&["v2", "payments"]), Some(&body))
            .await?;
        payment_outcome(op, answer)
    }
}

#[async_trait]
impl PaymentProcessor for SquareProcessor {
    /// CreateCustomer (when `customer_id` is `None`; key `customer:<our key>`, `reference_id`
    /// = account id), then CreateCard (`source_id`, our key, `card.customer_id`).
    async fn store_card(&self, req: &StoreCardRequest<'_>) -> Result<StoredCard, PaymentError> {
        require_key(req.idempotency_key)?;
        let customer_id = match req.customer_id {
            Some(id) => id.to_owned(),
            None => self.create_customer(req).await?,
        };
        let key = processor_idempotency_key(req.idempotency_key);
        let body = CreateCardRequest {
            idempotency_key: &key,
            source_id: req.source_id,
            card: NewCard {
                customer_id: &customer_id,
                reference_id: req.account.as_str(),
            },
        };
        let answer: CardResponse = self
            .post("CreateCard", self.endpoint(&["v2", "cards"]), Some(&body))
            .await?;
        let card = answer
            .card
            .ok_or_else(|| PaymentError::Unknown("CreateCard: answer without a card".into()))?;
        Ok(StoredCard {
            customer_id: card.customer_id.unwrap_or(customer_id),
            card_id: card.id,
            brand: card.card_brand.unwrap_or_else(|| "OTHER_BRAND".into()),
            last4: card.last_4.unwrap_or_default(),
            exp_month: card.exp_month.unwrap_or(0),
            exp_year: card.exp_year.unwrap_or(0),
        })
    }

    /// CreatePayment with the stored card as `source_id`, `autocomplete: true`.
    async fn charge(&self, req: &ChargeRequest<'_>) -> Result<Payment, PaymentError> {
        self.create_payment("CreatePayment", req).await
    }

    /// Re-sends the identical CreatePayment with the same idempotency key. Square documents
    /// that "if you make the same CreatePayment request with the same idempotency key again,
    /// the endpoint knows it's a duplicate request. It doesn't take the payment again" and
    /// returns the first response
    /// (<https://developer.squareup.com/docs/build-basics/common-api-patterns/idempotency>).
    /// Square has no read-only lookup by idempotency key (ListPayments cannot filter by it),
    /// so this is the documented way to learn the outcome. Consequence: if the first attempt
    /// never reached Square, this performs that single charge; it never answers `Ok(None)`.
    async fn resolve(&self, req: &ChargeRequest<'_>) -> Result<Option<Payment>, PaymentError> {
        self.create_payment("CreatePayment (resolve)", req)
            .await
            .map(Some)
    }

    /// `POST /v2/cards/{card_id}/disable`. A card Square does not know (`NOT_FOUND`) counts
    /// as disabled; disabling twice is allowed by Square.
    async fn disable_card(&self, _customer_id: &str, card_id: &str) -> Result<(), PaymentError> {
        let url = self.endpoint(&["v2", "cards", card_id, "disable"]);
        match self
            .post::<(), CardResponse>("DisableCard", url, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(PaymentError::Invalid { code, .. }) if code == "NOT_FOUND" => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
