//! Stripe's objects as its API renders them (API version `2025-03-31.basil`): every field
//! wagate reads, and enough of the rest that the JSON looks like Stripe's.

use serde_json::{json, Value};

use super::{CustomerRec, InvoiceRec, PaymentMethodRec, PriceRec, State, SubscriptionRec};
use crate::client::DEFAULT_API_VERSION;

/// The API version the fake renders objects and events in.
pub(crate) const API_VERSION: &str = DEFAULT_API_VERSION;

pub(crate) fn customer(c: &CustomerRec) -> Value {
    json!({
        "id": c.id, "object": "customer", "address": null, "balance": 0, "created": c.created,
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "email": c.email, "invoice_prefix": invoice_prefix(&c.id),
        "invoice_settings": {"custom_fields": null, "default_payment_method": c.default_pm,
                             "footer": null, "rendering_options": null},
        "livemode": false, "metadata": c.metadata, "name": c.name, "next_invoice_sequence": 1,
        "phone": null, "preferred_locales": [], "shipping": null, "tax_exempt": "none",
        "test_clock": null
    })
}

fn invoice_prefix(customer_id: &str) -> String {
    customer_id
        .trim_start_matches("cus_")
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase()
}

pub(crate) fn payment_method(pm: &PaymentMethodRec) -> Value {
    json!({
        "id": pm.id, "object": "payment_method", "allow_redisplay": "unspecified",
        "billing_details": {"address": {"city": null, "country": null, "line1": null,
                                        "line2": null, "postal_code": null, "state": null},
                            "email": null, "name": null, "phone": null},
        "card": {"brand": pm.card.brand,
                 "checks": {"address_line1_check": null, "address_postal_code_check": null,
                            "cvc_check": "unchecked"},
                 "country": "US", "display_brand": pm.card.brand, "exp_month": 12,
                 "exp_year": 2034, "funding": "credit", "last4": pm.card.last4,
                 "networks": {"available": [pm.card.brand], "preferred": null},
                 "three_d_secure_usage": {"supported": true}, "wallet": null},
        "created": pm.created, "customer": pm.customer, "livemode": false, "metadata": {},
        "type": "card"
    })
}

pub(crate) fn price(p: &PriceRec) -> Value {
    json!({
        "id": p.id, "object": "price", "active": p.active, "billing_scheme": "per_unit",
        "created": p.created, "currency": p.currency, "custom_unit_amount": null,
        "livemode": false, "lookup_key": p.lookup_key, "metadata": p.metadata,
        "nickname": null, "product": p.product,
        "recurring": {"interval": p.interval.as_str(), "interval_count": p.interval_count,
                      "meter": null, "trial_period_days": null, "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
        "type": "recurring", "unit_amount": p.unit_amount,
        "unit_amount_decimal": p.unit_amount.to_string()
    })
}

pub(crate) fn subscription(state: &State, s: &SubscriptionRec, expand_invoice: bool) -> Value {
    let (start, end) = state.period(s);
    let price_object = state.prices.get(&s.price).map(price).unwrap_or(Value::Null);
    let latest_invoice = match (&s.latest_invoice, expand_invoice) {
        (Some(id), true) => state.invoices.get(id).map(invoice).unwrap_or(Value::Null),
        (Some(id), false) => json!(id),
        (None, _) => Value::Null,
    };
    json!({
        "id": s.id, "object": "subscription", "application": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor": s.anchor, "billing_mode": {"type": "classic"},
        "cancel_at": null, "cancel_at_period_end": false, "canceled_at": s.canceled_at,
        "cancellation_details": {"comment": null, "feedback": null, "reason": null},
        "collection_method": "charge_automatically", "created": s.created,
        "currency": state.prices.get(&s.price).map(|p| p.currency.clone()),
        "customer": s.customer, "days_until_due": null,
        "default_payment_method": s.default_pm, "default_source": null, "description": null,
        "discounts": [], "ended_at": s.ended_at,
        "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [{
                "id": s.item_id, "object": "subscription_item", "created": s.created,
                "current_period_end": end, "current_period_start": start, "discounts": [],
                "metadata": {}, "price": price_object, "quantity": 1,
                "subscription": s.id, "tax_rates": []
            }],
            "has_more": false, "total_count": 1,
            "url": format!("/v1/subscription_items?subscription={}", s.id)
        },
        "latest_invoice": latest_invoice, "livemode": false, "metadata": s.metadata,
        "next_pending_invoice_item_invoice": null, "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": null, "pending_setup_intent": null,
        "pending_update": null, "schedule": null, "start_date": s.created,
        "status": s.status.as_str(), "test_clock": null, "transfer_data": null,
        "trial_end": null, "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": null
    })
}

pub(crate) fn invoice(i: &InvoiceRec) -> Value {
    let finalized = i.created;
    let lines = json!({
        "object": "list",
        "data": [{
            "id": i.line_id, "object": "line_item", "amount": i.amount_due,
            "currency": i.currency, "description": format!("1 × {}", i.product),
            "discount_amounts": [], "discountable": true, "discounts": [],
            "invoice": i.id, "livemode": false, "metadata": {},
            "parent": {
                "type": "subscription_item_details",
                "invoice_item_details": null,
                "subscription_item_details": {
                    "invoice_item": null, "proration": false,
                    "proration_details": {"credited_items": null},
                    "subscription": i.subscription,
                    "subscription_item": i.subscription_item
                }
            },
            "period": {"end": i.period.1, "start": i.period.0},
            "pretax_credit_amounts": [],
            "pricing": {"price_details": {"price": i.price, "product": i.product},
                        "type": "price_details",
                        "unit_amount_decimal": i.amount_due.to_string()},
            "quantity": 1, "taxes": []
        }],
        "has_more": false, "total_count": 1,
        "url": format!("/v1/invoices/{}/lines", i.id)
    });
    let head = json!({
        "id": i.id, "object": "invoice", "account_country": "US",
        "account_name": "wagate fake", "amount_due": i.amount_due,
        "amount_overpaid": 0, "amount_paid": i.amount_paid,
        "amount_remaining": i.amount_due - i.amount_paid, "amount_shipping": 0,
        "application": null, "attempt_count": i.attempt_count,
        "attempted": i.attempt_count > 0, "auto_advance": i.paid_at.is_none(),
        "automatic_tax": {"enabled": false, "liability": null, "status": null},
        "billing_reason": i.billing_reason, "collection_method": "charge_automatically",
        "created": i.created, "currency": i.currency, "customer": i.customer,
        "default_payment_method": null, "description": null, "discounts": [],
        "due_date": null, "effective_at": finalized, "ending_balance": 0,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_wagatefake/test_{}", i.id),
        "invoice_pdf": format!("https://pay.stripe.com/invoice/acct_wagatefake/test_{}/pdf", i.id),
        "issuer": {"type": "self"}, "last_finalization_error": null,
        "lines": lines
    });
    let rest = json!({
        "livemode": false, "metadata": {}, "next_payment_attempt": i.next_payment_attempt,
        "number": i.number, "on_behalf_of": null,
        "parent": {
            "type": "subscription_details", "quote_details": null,
            "subscription_details": {"metadata": i.subscription_metadata,
                                     "subscription": i.subscription}
        },
        // For subscription invoices Stripe's top-level period is the one before the lines'.
        "period_end": i.created, "period_start": i.created,
        "receipt_number": null, "starting_balance": 0, "statement_descriptor": null,
        "status": i.status.as_str(),
        "status_transitions": {"finalized_at": finalized, "marked_uncollectible_at": null,
                               "paid_at": i.paid_at, "voided_at": null},
        "subtotal": i.amount_due, "subtotal_excluding_tax": i.amount_due,
        "test_clock": null, "total": i.amount_due, "total_discount_amounts": [],
        "total_excluding_tax": i.amount_due, "total_taxes": [],
        "webhooks_delivered_at": i.created
    });
    merged(head, rest)
}

/// `a` with `b`'s fields added (`json!` cannot take an object as long as Stripe's invoice).
fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// An event. `request` is the API request that caused it (`req_…`, idempotency key), if any.
pub(crate) fn event(
    id: &str,
    event_type: &str,
    created: i64,
    object: Value,
    previous_attributes: Option<Value>,
    request: Option<(String, Option<String>)>,
) -> Value {
    let mut data = json!({ "object": object });
    if let Some(previous) = previous_attributes {
        data["previous_attributes"] = previous;
    }
    let (request_id, idempotency_key) = request.unwrap_or_default();
    json!({
        "id": id, "object": "event", "api_version": API_VERSION, "created": created,
        "data": data, "livemode": false, "pending_webhooks": 1,
        "request": {"id": (!request_id.is_empty()).then_some(request_id),
                    "idempotency_key": idempotency_key},
        "type": event_type
    })
}

pub(crate) fn list(url: &str, data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data, "has_more": false, "url": url})
}
