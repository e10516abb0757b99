//! Moving subscriptions through their lifecycle and posting the events to a webhook URL,
//! signed like Stripe signs them (`Stripe-Signature: t=…,v1=…` with the endpoint's secret,
//! `t` from the fake's clock).

use reqwest::StatusCode;
use serde_json::Value;

use super::{lock, Shared};
use crate::webhook::{self, SIGNATURE_HEADER};

/// A signing secret nobody configures, for forged signatures.
const FORGED_SECRET: &str = "whsec_forged_by_the_fake";

/// Why the driver could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The subscription cannot take this step (unknown, or in the wrong status).
    #[error("{0}")]
    Subscription(String),
    /// There is no event with this ID.
    #[error("the fake has no event {0}")]
    UnknownEvent(String),
    /// The POST itself failed (connection refused, timeout, …).
    #[error("posting the webhook failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// What the driver posted and what the target answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The target's HTTP status.
    pub status: StatusCode,
    /// The event's ID (`evt_…`), when the body was an event.
    pub event_id: Option<String>,
    /// The event's type, when the body was an event.
    pub event_type: Option<String>,
    /// The exact body posted.
    pub body: String,
    /// The `Stripe-Signature` sent, if any.
    pub signature: Option<String>,
}

/// Moves subscriptions along and delivers events to one webhook URL with one signing secret.
#[derive(Clone)]
pub struct Driver {
    state: Shared,
    http: reqwest::Client,
    target: String,
    secret: String,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("target", &self.target)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub(crate) fn new(state: Shared, http: reqwest::Client, target: &str, secret: &str) -> Self {
        Driver {
            state,
            http,
            target: target.to_owned(),
            secret: secret.to_owned(),
        }
    }

    /// The subscription's period ends and Stripe bills the next one: the period moves on by
    /// one interval and the new invoice is charged to the card on file. Paid: the subscription
    /// is `active`, events `customer.subscription.updated` (new period), `invoice.paid`,
    /// `invoice.payment_succeeded`. Declined (e.g. `pm_card_chargeCustomerFail`): `past_due`,
    /// events `customer.subscription.updated`, `invoice.payment_failed`. Posts those events.
    ///
    /// Set the clock ([`FakeStripe::set_now`](super::FakeStripe::set_now)) to the period's end
    /// first for realistic event times.
    pub async fn advance_period(&self, subscription_id: &str) -> Result<Vec<Posted>, DriverError> {
        let events = lock(&self.state)
            .renew(subscription_id, false)
            .map_err(DriverError::Subscription)?;
        self.deliver(&events).await
    }

    /// Like [`Driver::advance_period`], but the renewal's payment fails whatever the card:
    /// `past_due`, `invoice.payment_failed`.
    pub async fn fail_payment(&self, subscription_id: &str) -> Result<Vec<Posted>, DriverError> {
        let events = lock(&self.state)
            .renew(subscription_id, true)
            .map_err(DriverError::Subscription)?;
        self.deliver(&events).await
    }

    /// Stripe retries the subscription's open latest invoice with the card now on file (after
    /// the customer changed it, say). Paid: `invoice.paid`, and the subscription becomes
    /// `active` (`customer.subscription.updated`); declined: another `invoice.payment_failed`.
    pub async fn retry_payment(&self, subscription_id: &str) -> Result<Vec<Posted>, DriverError> {
        let events = lock(&self.state)
            .retry_payment(subscription_id)
            .map_err(DriverError::Subscription)?;
        self.deliver(&events).await
    }

    /// Stripe gives up after its last retry and cancels the subscription (the "cancel the
    /// subscription" setting for failed payments): `canceled`,
    /// `customer.subscription.deleted`.
    pub async fn cancel_unpaid(&self, subscription_id: &str) -> Result<Vec<Posted>, DriverError> {
        let events = lock(&self.state)
            .cancel(subscription_id, None)
            .map_err(DriverError::Subscription)?;
        self.deliver(&events).await
    }

    /// Posts every event not yet delivered with a 2xx answer (those created by API calls, and
    /// those the target refused before), in order: Stripe's retries, on demand.
    pub async fn deliver_pending(&self) -> Result<Vec<Posted>, DriverError> {
        let pending: Vec<String> = lock(&self.state)
            .events
            .iter()
            .filter(|e| !e.delivered)
            .map(|e| e.id.clone())
            .collect();
        self.deliver(&pending).await
    }

    /// Posts event `event_id` again (Stripe delivers an event more than once at times).
    pub async fn redeliver(&self, event_id: &str) -> Result<Posted, DriverError> {
        let known = lock(&self.state).events.iter().any(|e| e.id == event_id);
        if !known {
            return Err(DriverError::UnknownEvent(event_id.to_owned()));
        }
        let mut posted = self.deliver(&[event_id.to_owned()]).await?;
        posted
            .pop()
            .ok_or_else(|| DriverError::UnknownEvent(event_id.to_owned()))
    }

    /// Posts `body` signed with the endpoint's secret at the fake's clock.
    pub async fn post_signed(&self, body: &str) -> Result<Posted, DriverError> {
        let t = lock(&self.state).now_secs();
        self.post_signed_at(body, t).await
    }

    /// Posts `body` signed with the endpoint's secret at time `t` (Unix seconds): an old `t`
    /// is a replay, a future one a skewed clock.
    pub async fn post_signed_at(&self, body: &str, t: i64) -> Result<Posted, DriverError> {
        let signature = webhook::sign(body.as_bytes(), &self.secret, t);
        self.post_raw(body, Some(&signature)).await
    }

    /// Posts `body` with a valid-looking signature made with another secret.
    pub async fn post_forged(&self, body: &str) -> Result<Posted, DriverError> {
        let t = lock(&self.state).now_secs();
        let signature = webhook::sign(body.as_bytes(), FORGED_SECRET, t);
        self.post_raw(body, Some(&signature)).await
    }

    /// Posts `body` without a `Stripe-Signature` header.
    pub async fn post_unsigned(&self, body: &str) -> Result<Posted, DriverError> {
        self.post_raw(body, None).await
    }

    /// Posts `body` with exactly this `Stripe-Signature` (or none).
    pub async fn post_raw(
        &self,
        body: &str,
        signature: Option<&str>,
    ) -> Result<Posted, DriverError> {
        let mut request = self
            .http
            .post(&self.target)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header(
                reqwest::header::USER_AGENT,
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let status = request.send().await?.status();
        let event: Option<Value> = serde_json::from_str(body).ok();
        let field = |name: &str| {
            event
                .as_ref()
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(Posted {
            status,
            event_id: field("id"),
            event_type: field("type"),
            body: body.to_owned(),
            signature: signature.map(str::to_owned),
        })
    }

    /// Posts the events with these IDs, in order, signed; marks each delivered on a 2xx.
    async fn deliver(&self, event_ids: &[String]) -> Result<Vec<Posted>, DriverError> {
        let mut posted = Vec::with_capacity(event_ids.len());
        for id in event_ids {
            let body = lock(&self.state)
                .events
                .iter()
                .find(|e| &e.id == id)
                .map(|e| e.body.to_string());
            let Some(body) = body else {
                return Err(DriverError::UnknownEvent(id.clone()));
            };
            let answer = self.post_signed(&body).await?;
            if answer.status.is_success() {
                let mut st = lock(&self.state);
                if let Some(e) = st.events.iter_mut().find(|e| &e.id == id) {
                    e.delivered = true;
                }
            }
            posted.push(answer);
        }
        Ok(posted)
    }
}
