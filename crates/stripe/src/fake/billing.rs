//! The fake's billing: invoices for a subscription's periods, charging the card on file, and
//! the events each step creates. Shared by the API routes (creating a subscription) and the
//! driver (renewals, failures, retries).

use serde_json::{json, Value};

use super::{new_id, render, Decline, EventRec, InvoiceRec, State, SubscriptionRec};
use crate::types::{InvoiceStatus, SubscriptionStatus};

/// How long after a failed payment the fake says Stripe will try again (Stripe's Smart
/// Retries pick their own times; three days is within their usual range).
const RETRY_AFTER_SECS: i64 = 3 * 86_400;

/// Why a charge did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChargeFailure {
    /// Neither the subscription nor the customer has a default payment method.
    NoPaymentMethod,
    /// The card refused.
    Declined(Decline),
}

/// The API request that caused an event (`req_…`, idempotency key), for the event's `request`.
pub(crate) type Cause = Option<(String, Option<String>)>;

impl State {
    /// Records an event and returns its ID.
    pub(crate) fn push_event(
        &mut self,
        event_type: &str,
        object: Value,
        previous_attributes: Option<Value>,
        cause: Cause,
    ) -> String {
        let id = new_id("evt", 24);
        let body = render::event(
            &id,
            event_type,
            self.now_secs(),
            object,
            previous_attributes,
            cause,
        );
        self.events.push(EventRec {
            id: id.clone(),
            body,
            delivered: false,
        });
        id
    }

    /// The subscription rendered for an event (its latest invoice as an ID, as in events).
    pub(crate) fn subscription_object(&self, sub_id: &str) -> Value {
        self.subscriptions
            .get(sub_id)
            .map(|s| render::subscription(self, s, false))
            .unwrap_or(Value::Null)
    }

    fn invoice_object(&self, invoice_id: &str) -> Value {
        self.invoices
            .get(invoice_id)
            .map(render::invoice)
            .unwrap_or(Value::Null)
    }

    /// A new open invoice for `sub`'s current period; it becomes the subscription's latest.
    pub(crate) fn open_invoice(
        &mut self,
        sub_id: &str,
        billing_reason: &'static str,
    ) -> Option<String> {
        let sub = self.subscriptions.get(sub_id)?.clone();
        let price = self.prices.get(&sub.price)?.clone();
        let period = self.period(&sub);
        self.invoice_count += 1;
        let id = new_id("in", 24);
        let invoice = InvoiceRec {
            id: id.clone(),
            number: format!("WAGATE-{:04}", self.invoice_count),
            line_id: new_id("il", 24),
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            subscription_item: sub.item_id.clone(),
            subscription_metadata: sub.metadata.clone(),
            price: price.id.clone(),
            product: price.product.clone(),
            status: InvoiceStatus::Open,
            billing_reason,
            amount_due: price.unit_amount,
            amount_paid: 0,
            currency: price.currency.clone(),
            period,
            attempt_count: 0,
            next_payment_attempt: None,
            created: self.now_secs(),
            paid_at: None,
        };
        self.invoices.insert(id.clone(), invoice);
        if let Some(s) = self.subscriptions.get_mut(sub_id) {
            s.latest_invoice = Some(id.clone());
        }
        Some(id)
    }

    /// Charges `sub`'s card (its own default, else its customer's).
    pub(crate) fn charge(&self, sub: &SubscriptionRec) -> Result<(), ChargeFailure> {
        let pm_id = sub.default_pm.clone().or_else(|| {
            self.customers
                .get(&sub.customer)
                .and_then(|c| c.default_pm.clone())
        });
        let pm = pm_id
            .and_then(|id| self.payment_methods.get(&id))
            .ok_or(ChargeFailure::NoPaymentMethod)?;
        match pm.card.charge_decline {
            Some(decline) => Err(ChargeFailure::Declined(decline)),
            None => Ok(()),
        }
    }

    /// One payment attempt on an open invoice. `force_fail` declines whatever the card.
    pub(crate) fn attempt_invoice(
        &mut self,
        invoice_id: &str,
        force_fail: bool,
    ) -> Result<(), ChargeFailure> {
        let now = self.now_secs();
        let sub = self
            .invoices
            .get(invoice_id)
            .and_then(|i| self.subscriptions.get(&i.subscription))
            .cloned();
        let outcome = match (&sub, force_fail) {
            (_, true) => Err(ChargeFailure::Declined(super::GENERIC)),
            (Some(sub), false) => self.charge(sub),
            (None, false) => Err(ChargeFailure::NoPaymentMethod),
        };
        if let Some(invoice) = self.invoices.get_mut(invoice_id) {
            invoice.attempt_count += 1;
            match outcome {
                Ok(()) => {
                    invoice.status = InvoiceStatus::Paid;
                    invoice.amount_paid = invoice.amount_due;
                    invoice.paid_at = Some(now);
                    invoice.next_payment_attempt = None;
                }
                Err(_) => invoice.next_payment_attempt = Some(now + RETRY_AFTER_SECS),
            }
        }
        outcome
    }

    /// The events of a paid invoice.
    fn invoice_paid_events(&mut self, invoice_id: &str, cause: &Cause) -> Vec<String> {
        let object = self.invoice_object(invoice_id);
        vec![
            self.push_event("invoice.paid", object.clone(), None, cause.clone()),
            self.push_event("invoice.payment_succeeded", object, None, cause.clone()),
        ]
    }

    fn invoice_failed_event(&mut self, invoice_id: &str, cause: &Cause) -> String {
        let object = self.invoice_object(invoice_id);
        self.push_event("invoice.payment_failed", object, None, cause.clone())
    }

    fn set_status(&mut self, sub_id: &str, status: SubscriptionStatus) {
        if let Some(s) = self.subscriptions.get_mut(sub_id) {
            s.status = status;
        }
    }

    /// The events of a new subscription whose first invoice was just attempted (or not).
    pub(crate) fn creation_events(
        &mut self,
        sub_id: &str,
        invoice_id: &str,
        attempted: Option<bool>,
        cause: &Cause,
    ) -> Vec<String> {
        let object = self.subscription_object(sub_id);
        let mut events =
            vec![self.push_event("customer.subscription.created", object, None, cause.clone())];
        let finalized = self.invoice_object(invoice_id);
        events.push(self.push_event("invoice.finalized", finalized, None, cause.clone()));
        match attempted {
            Some(true) => events.extend(self.invoice_paid_events(invoice_id, cause)),
            Some(false) => events.push(self.invoice_failed_event(invoice_id, cause)),
            None => {}
        }
        events
    }

    /// The period ends: the subscription moves to its next period and its invoice is charged.
    /// Paid → `active`, `customer.subscription.updated`, `invoice.paid`; declined (or
    /// `force_fail`) → `past_due`, `customer.subscription.updated`, `invoice.payment_failed`.
    pub(crate) fn renew(&mut self, sub_id: &str, force_fail: bool) -> Result<Vec<String>, String> {
        let sub = self
            .subscriptions
            .get(sub_id)
            .cloned()
            .ok_or_else(|| format!("no subscription {sub_id}"))?;
        if !matches!(
            sub.status,
            SubscriptionStatus::Active | SubscriptionStatus::PastDue | SubscriptionStatus::Trialing
        ) {
            return Err(format!(
                "subscription {sub_id} is {}: only active or past_due subscriptions renew",
                sub.status
            ));
        }
        let (old_start, old_end) = self.period(&sub);
        if let Some(s) = self.subscriptions.get_mut(sub_id) {
            s.periods_elapsed += 1;
        }
        let invoice_id = self
            .open_invoice(sub_id, "subscription_cycle")
            .ok_or_else(|| format!("subscription {sub_id}'s price is gone"))?;
        let paid = self.attempt_invoice(&invoice_id, force_fail).is_ok();
        let status = if paid {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::PastDue
        };
        self.set_status(sub_id, status.clone());
        let mut previous = json!({
            "items": {"object": "list", "data": [{
                "id": sub.item_id, "object": "subscription_item",
                "current_period_start": old_start, "current_period_end": old_end
            }]},
            "latest_invoice": sub.latest_invoice,
        });
        if status != sub.status {
            previous["status"] = json!(sub.status.as_str());
        }
        let object = self.subscription_object(sub_id);
        let mut events = vec![self.push_event(
            "customer.subscription.updated",
            object,
            Some(previous),
            None,
        )];
        if paid {
            events.extend(self.invoice_paid_events(&invoice_id, &None));
        } else {
            events.push(self.invoice_failed_event(&invoice_id, &None));
        }
        Ok(events)
    }

    /// Stripe retries the latest open invoice with the card now on file. Paid → the
    /// subscription becomes `active` again; declined → another `invoice.payment_failed`.
    pub(crate) fn retry_payment(&mut self, sub_id: &str) -> Result<Vec<String>, String> {
        let sub = self
            .subscriptions
            .get(sub_id)
            .cloned()
            .ok_or_else(|| format!("no subscription {sub_id}"))?;
        let invoice_id = sub
            .latest_invoice
            .clone()
            .filter(|id| {
                self.invoices
                    .get(id)
                    .is_some_and(|i| i.status == InvoiceStatus::Open)
            })
            .ok_or_else(|| format!("subscription {sub_id} has no open invoice"))?;
        if sub.status.is_terminal() {
            return Err(format!("subscription {sub_id} is {}", sub.status));
        }
        if self.attempt_invoice(&invoice_id, false).is_err() {
            return Ok(vec![self.invoice_failed_event(&invoice_id, &None)]);
        }
        let mut events = self.invoice_paid_events(&invoice_id, &None);
        if sub.status != SubscriptionStatus::Active {
            self.set_status(sub_id, SubscriptionStatus::Active);
            let object = self.subscription_object(sub_id);
            let previous = json!({ "status": sub.status.as_str() });
            events.push(self.push_event(
                "customer.subscription.updated",
                object,
                Some(previous),
                None,
            ));
        }
        Ok(events)
    }

    /// Cancels a subscription now (through the API, or after the last failed retry):
    /// `canceled`, `customer.subscription.deleted`.
    pub(crate) fn cancel(&mut self, sub_id: &str, cause: Cause) -> Result<Vec<String>, String> {
        let now = self.now_secs();
        let sub = self
            .subscriptions
            .get_mut(sub_id)
            .ok_or_else(|| format!("no subscription {sub_id}"))?;
        if sub.status == SubscriptionStatus::Canceled {
            return Err(format!("subscription {sub_id} is already canceled"));
        }
        sub.status = SubscriptionStatus::Canceled;
        sub.canceled_at = Some(now);
        sub.ended_at = Some(now);
        let object = self.subscription_object(sub_id);
        Ok(vec![self.push_event(
            "customer.subscription.deleted",
            object,
            None,
            cause,
        )])
    }
}
