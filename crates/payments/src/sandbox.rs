//! The offline processor of `wagate serve --sandbox`: follows Square's sandbox nonces, keeps
//! everything in memory, and lets tests make the next charges of an account decline.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use wagate_domain::ids::{random_base62, AccountId};

use crate::error::decline_message;
use crate::{ChargeRequest, Payment, PaymentError, PaymentProcessor, StoreCardRequest, StoredCard};

/// Expiry month of every sandbox card.
pub const SANDBOX_CARD_EXP_MONTH: u32 = 12;
/// Expiry year of every sandbox card (fixed, far enough in the future).
pub const SANDBOX_CARD_EXP_YEAR: u32 = 2035;

/// Prefix of the card ids the sandbox hands out (Square's cards on file start `ccof:`).
const CARD_ID_PREFIX: &str = "ccof:sandbox-";

/// What a stored-card request was, to detect a key reused for another request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreFingerprint {
    account: AccountId,
    customer_id: Option<String>,
    source_id: String,
}

/// What a charge was, to detect a key reused for another charge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChargeFingerprint {
    account: AccountId,
    customer_id: String,
    card_id: String,
    amount_cents: i64,
    currency: String,
}

impl ChargeFingerprint {
    fn of(req: &ChargeRequest<'_>) -> Self {
        ChargeFingerprint {
            account: req.account.clone(),
            customer_id: req.customer_id.to_owned(),
            card_id: req.card_id.to_owned(),
            amount_cents: req.amount_cents,
            currency: req.currency.to_owned(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Pending forced declines per account.
    fail_next: HashMap<AccountId, u32>,
    /// Every store-card outcome by idempotency key.
    stored: HashMap<String, (StoreFingerprint, Result<StoredCard, PaymentError>)>,
    /// Every charge outcome by idempotency key.
    charges: HashMap<String, (ChargeFingerprint, Result<Payment, PaymentError>)>,
    /// Successful charges in order: (idempotency key, cents).
    succeeded: Vec<(String, i64)>,
    /// Card ids disabled through `disable_card`.
    disabled: HashSet<String>,
}

/// An offline, in-memory payment processor that behaves like Square's sandbox.
///
/// Nonces (`source_id` of [`store_card`](PaymentProcessor::store_card)):
/// - `cnon:card-nonce-ok` stores a VISA ending 1111, expiring
///   [`SANDBOX_CARD_EXP_MONTH`]/[`SANDBOX_CARD_EXP_YEAR`]; the customer is
///   `sandbox-cust-<account id>` unless one is given;
/// - `cnon:card-nonce-declined` → `Declined { code: "CARD_DECLINED" }`;
/// - `cnon:card-nonce-rejected-cvv` → `Declined { code: "CVV_FAILURE" }`;
/// - `cnon:card-nonce-rejected-postalcode` → `Declined { code: "ADDRESS_VERIFICATION_FAILURE" }`;
/// - `cnon:card-nonce-rejected-expiration` → `Declined { code: "INVALID_EXPIRATION" }`;
/// - `cnon:card-nonce-already-used` → `Invalid { code: "CARD_TOKEN_USED" }`;
/// - anything else → `Invalid { code: "INVALID_CARD_DATA" }`.
///
/// Charges succeed unless [`fail_next`](Self::fail_next) is pending for the account. Every
/// call is idempotent by key: a repeat returns the first outcome (payment or decline) and
/// consumes nothing.
#[derive(Default)]
pub struct SandboxProcessor {
    state: Mutex<State>,
}

impl SandboxProcessor {
    /// An empty sandbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `count` new charges of `account` decline with `CARD_DECLINED` (replaces any
    /// pending count; 0 clears it).
    pub fn fail_next(&self, account: &AccountId, count: u32) {
        let mut state = self.lock();
        if count == 0 {
            state.fail_next.remove(account);
        } else {
            state.fail_next.insert(account.clone(), count);
        }
    }

    /// Every successful charge so far, in order, as (idempotency key, cents). A repeated key
    /// appears once: "the card was charged once".
    pub fn charges(&self) -> Vec<(String, i64)> {
        self.lock().succeeded.clone()
    }

    /// Whether `card_id` was disabled through [`disable_card`](PaymentProcessor::disable_card).
    pub fn is_card_disabled(&self, card_id: &str) -> bool {
        self.lock().disabled.contains(card_id)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one insert.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn reused_key() -> PaymentError {
    PaymentError::invalid(
        "IDEMPOTENCY_KEY_REUSED",
        "The idempotency key was already used for a different request.",
    )
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

fn declined(code: &str) -> PaymentError {
    PaymentError::declined(
        code,
        decline_message(code).unwrap_or("The card was declined."),
    )
}

/// The outcome of storing a card from `req.source_id`, following Square's sandbox nonces.
fn store_outcome(req: &StoreCardRequest<'_>) -> Result<StoredCard, PaymentError> {
    match req.source_id {
        "cnon:card-nonce-ok" => Ok(StoredCard {
            customer_id: req
                .customer_id
                .map(str::to_owned)
                .unwrap_or_else(|| format!("sandbox-cust-{}", req.account)),
            card_id: format!("{CARD_ID_PREFIX}{}", random_base62(20)),
            brand: "VISA".to_owned(),
            last4: "1111".to_owned(),
            exp_month: SANDBOX_CARD_EXP_MONTH,
            exp_year: SANDBOX_CARD_EXP_YEAR,
        }),
        "cnon:card-nonce-declined" => Err(declined("CARD_DECLINED")),
        "cnon:card-nonce-rejected-cvv" => Err(declined("CVV_FAILURE")),
        "cnon:card-nonce-rejected-postalcode" => Err(declined("ADDRESS_VERIFICATION_FAILURE")),
        "cnon:card-nonce-rejected-expiration" => Err(declined("INVALID_EXPIRATION")),
        "cnon:card-nonce-already-used" => Err(PaymentError::invalid(
            "CARD_TOKEN_USED",
            "The card nonce has already been used.",
        )),
        _ => Err(PaymentError::invalid(
            "INVALID_CARD_DATA",
            "The card nonce is not valid.",
        )),
    }
}

/// Checks a charge the way Square would before looking at the card.
fn validate_charge(req: &ChargeRequest<'_>) -> Result<(), PaymentError> {
    require_key(req.idempotency_key)?;
    if req.amount_cents < 1 {
        return Err(PaymentError::invalid(
            "VALUE_TOO_LOW",
            "The amount must be at least 1 minor unit.",
        ));
    }
    if req.currency.len() != 3 || !req.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(PaymentError::invalid(
            "INVALID_VALUE",
            "The currency must be an ISO 4217 code such as USD.",
        ));
    }
    Ok(())
}

#[async_trait]
impl PaymentProcessor for SandboxProcessor {
    async fn store_card(&self, req: &StoreCardRequest<'_>) -> Result<StoredCard, PaymentError> {
        require_key(req.idempotency_key)?;
        let fingerprint = StoreFingerprint {
            account: req.account.clone(),
            customer_id: req.customer_id.map(str::to_owned),
            source_id: req.source_id.to_owned(),
        };
        let mut state = self.lock();
        if let Some((seen, outcome)) = state.stored.get(req.idempotency_key) {
            return if *seen == fingerprint {
                outcome.clone()
            } else {
                Err(reused_key())
            };
        }
        let outcome = store_outcome(req);
        state.stored.insert(
            req.idempotency_key.to_owned(),
            (fingerprint, outcome.clone()),
        );
        outcome
    }

    async fn charge(&self, req: &ChargeRequest<'_>) -> Result<Payment, PaymentError> {
        validate_charge(req)?;
        let fingerprint = ChargeFingerprint::of(req);
        let mut state = self.lock();
        if let Some((seen, outcome)) = state.charges.get(req.idempotency_key) {
            return if *seen == fingerprint {
                outcome.clone()
            } else {
                Err(reused_key())
            };
        }
        if !req.card_id.starts_with(CARD_ID_PREFIX) || state.disabled.contains(req.card_id) {
            return Err(PaymentError::invalid(
                "NOT_FOUND",
                "The card was not found or has been disabled.",
            ));
        }
        let outcome = match state.fail_next.get_mut(req.account) {
            Some(pending) if *pending > 0 => {
                *pending -= 1;
                Err(PaymentError::declined(
                    "CARD_DECLINED",
                    "Card declined (sandbox fail_next)",
                ))
            }
            _ => {
                state
                    .succeeded
                    .push((req.idempotency_key.to_owned(), req.amount_cents));
                Ok(Payment {
                    processor_id: format!("sandbox-pay-{}", random_base62(20)),
                    amount_cents: req.amount_cents,
                    currency: req.currency.to_owned(),
                })
            }
        };
        state.charges.insert(
            req.idempotency_key.to_owned(),
            (fingerprint, outcome.clone()),
        );
        outcome
    }

    async fn resolve(&self, req: &ChargeRequest<'_>) -> Result<Option<Payment>, PaymentError> {
        let state = self.lock();
        match state.charges.get(req.idempotency_key) {
            None => Ok(None),
            Some((seen, _)) if *seen != ChargeFingerprint::of(req) => Err(reused_key()),
            Some((_, outcome)) => outcome.clone().map(Some),
        }
    }

    async fn disable_card(&self, _customer_id: &str, card_id: &str) -> Result<(), PaymentError> {
        self.lock().disabled.insert(card_id.to_owned());
        Ok(())
    }

    fn sandbox(&self) -> Option<&SandboxProcessor> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
