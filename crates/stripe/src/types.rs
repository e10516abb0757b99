//! Stripe's objects with only the fields wagate reads, and the parameters wagate sends.
//!
//! Each object is read through a private wire type so that Stripe's nesting (and its changes
//! between API versions) stays here: callers see one flat, stable shape. Unknown fields are
//! ignored, as Stripe adds fields without a new API version.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Stripe's `metadata`: string keys to string values (Stripe allows 50 keys of up to 40
/// characters, values of up to 500).
pub type Metadata = BTreeMap<String, String>;

/// The metadata key wagate tags a customer with: the wagate account it pays for.
pub const ACCOUNT_ID_KEY: &str = "account_id";
/// The metadata key wagate tags a subscription with: the line it keeps paid.
pub const LINE_ID_KEY: &str = "line_id";

/// An expandable field: Stripe sends the ID, or the object when asked to `expand` it.
fn expandable_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// `null` and a missing field both read as empty metadata.
fn metadata_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Metadata, D::Error> {
    Ok(Option::<Metadata>::deserialize(d)?.unwrap_or_default())
}

/// Declares a string enum that keeps values this crate does not know (Stripe adds values
/// without a new API version), so parsing never fails on them.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
        #[serde(from = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this crate does not know, as Stripe sent it.
            Other(String),
        }

        impl $name {
            /// Stripe's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(text) => text,
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match text.as_str() {
                    $($text => $name::$variant,)*
                    _ => $name::Other(text),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// A subscription's `status` (Stripe's subscription lifecycle).
    SubscriptionStatus {
        /// The first invoice is not paid yet (at most 23 hours).
        Incomplete => "incomplete",
        /// The first invoice was never paid: terminal, nothing is billed.
        IncompleteExpired => "incomplete_expired",
        /// In a trial period.
        Trialing => "trialing",
        /// Paid and in good standing.
        Active => "active",
        /// The latest invoice's payment failed or was not attempted; Stripe retries.
        PastDue => "past_due",
        /// Ended: terminal.
        Canceled => "canceled",
        /// Retries are exhausted and the subscription was left unpaid.
        Unpaid => "unpaid",
        /// A trial ended without a payment method.
        Paused => "paused",
    }
}

impl SubscriptionStatus {
    /// Whether Stripe considers the subscription paid for its current period (`active` or
    /// `trialing`).
    pub fn is_in_good_standing(&self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active | SubscriptionStatus::Trialing
        )
    }

    /// Whether the subscription can never bill again (`canceled`, `incomplete_expired`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }
}

open_enum! {
    /// An invoice's `status`.
    InvoiceStatus {
        /// Still editable; not payable yet.
        Draft => "draft",
        /// Finalized and awaiting payment.
        Open => "open",
        /// Paid.
        Paid => "paid",
        /// Written off as uncollectible (it can still be paid).
        Uncollectible => "uncollectible",
        /// Cancelled: never to be paid.
        Void => "void",
    }
}

/// A recurring price's billing interval (`recurring[interval]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// Daily.
    Day,
    /// Weekly.
    Week,
    /// Monthly: wagate's `"month"` subscriptions.
    Month,
    /// Yearly: wagate's `"year"` subscriptions.
    Year,
}

impl Interval {
    /// Stripe's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    /// Reads Stripe's (and wagate's API's) spelling.
    pub fn parse(text: &str) -> Option<Interval> {
        match text {
            "day" => Some(Interval::Day),
            "week" => Some(Interval::Week),
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A customer (`cus_…`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WireCustomer")]
pub struct Customer {
    /// `cus_…`.
    pub id: String,
    /// The customer's email, if set.
    pub email: Option<String>,
    /// The customer's name, if set.
    pub name: Option<String>,
    /// The customer's metadata; wagate sets [`ACCOUNT_ID_KEY`].
    pub metadata: Metadata,
    /// `invoice_settings.default_payment_method`: the card subscriptions are charged to.
    pub default_payment_method: Option<String>,
    /// When it was created (Unix seconds).
    pub created: i64,
}

impl Customer {
    /// The wagate account this customer pays for (`metadata.account_id`).
    pub fn account_id(&self) -> Option<&str> {
        self.metadata.get(ACCOUNT_ID_KEY).map(String::as_str)
    }
}

#[derive(Deserialize)]
struct WireCustomer {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    metadata: Metadata,
    #[serde(default)]
    invoice_settings: Option<WireInvoiceSettings>,
    #[serde(default)]
    created: i64,
}

#[derive(Deserialize)]
struct WireInvoiceSettings {
    #[serde(default)]
    default_payment_method: Value,
}

impl From<WireCustomer> for Customer {
    fn from(w: WireCustomer) -> Self {
        Customer {
            id: w.id,
            email: w.email,
            name: w.name,
            metadata: w.metadata,
            default_payment_method: w
                .invoice_settings
                .and_then(|s| expandable_id(&s.default_payment_method)),
            created: w.created,
        }
    }
}

/// A payment method (`pm_…`), as attaching one returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WirePaymentMethod")]
pub struct PaymentMethod {
    /// `pm_…`. Attaching a test token such as `pm_card_visa` creates a new payment method with
    /// its own ID: use this one afterwards.
    pub id: String,
    /// The customer it is attached to.
    pub customer: Option<String>,
    /// `type`, e.g. `card`.
    pub kind: String,
    /// `card.brand`, e.g. `visa`.
    pub card_brand: Option<String>,
    /// `card.last4`.
    pub card_last4: Option<String>,
}

#[derive(Deserialize)]
struct WirePaymentMethod {
    id: String,
    #[serde(default)]
    customer: Value,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    card: Option<WireCard>,
}

#[derive(Deserialize)]
struct WireCard {
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    last4: Option<String>,
}

impl From<WirePaymentMethod> for PaymentMethod {
    fn from(w: WirePaymentMethod) -> Self {
        let (card_brand, card_last4) = w.card.map(|c| (c.brand, c.last4)).unwrap_or_default();
        PaymentMethod {
            id: w.id,
            customer: expandable_id(&w.customer),
            kind: w.kind,
            card_brand,
            card_last4,
        }
    }
}

/// A price (`price_…`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WirePrice")]
pub struct Price {
    /// `price_…`.
    pub id: String,
    /// The product it belongs to (`prod_…`).
    pub product: String,
    /// The amount per period in the currency's smallest unit (cents), when not tiered.
    pub unit_amount: Option<i64>,
    /// Three-letter ISO code, lowercase (`eur`).
    pub currency: String,
    /// `recurring.interval`; `None` for a one-time price.
    pub interval: Option<Interval>,
    /// `recurring.interval_count` (1 for "every month").
    pub interval_count: Option<u32>,
    /// The lookup key it can be found by.
    pub lookup_key: Option<String>,
    /// Whether it can be used for new subscriptions.
    pub active: bool,
    /// The price's metadata.
    pub metadata: Metadata,
}

#[derive(Deserialize)]
struct WirePrice {
    id: String,
    #[serde(default)]
    product: Value,
    #[serde(default)]
    unit_amount: Option<i64>,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    recurring: Option<WireRecurring>,
    #[serde(default)]
    lookup_key: Option<String>,
    #[serde(default)]
    active: bool,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct WireRecurring {
    interval: Interval,
    #[serde(default)]
    interval_count: Option<u32>,
}

impl From<WirePrice> for Price {
    fn from(w: WirePrice) -> Self {
        Price {
            id: w.id,
            product: expandable_id(&w.product).unwrap_or_default(),
            unit_amount: w.unit_amount,
            currency: w.currency,
            interval: w.recurring.as_ref().map(|r| r.interval),
            interval_count: w.recurring.and_then(|r| r.interval_count),
            lookup_key: w.lookup_key,
            active: w.active,
            metadata: w.metadata,
        }
    }
}

/// One item of a subscription (`si_…`): a price and, since API version `2025-03-31.basil`,
/// its own billing period.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WireSubscriptionItem")]
pub struct SubscriptionItem {
    /// `si_…`.
    pub id: String,
    /// The item's price (`price_…`).
    pub price: Option<String>,
    /// How many of the price.
    pub quantity: Option<u64>,
    /// `current_period_start` (Unix seconds), in API versions that put it on items.
    pub current_period_start: Option<i64>,
    /// `current_period_end` (Unix seconds), in API versions that put it on items.
    pub current_period_end: Option<i64>,
}

#[derive(Deserialize)]
struct WireSubscriptionItem {
    id: String,
    #[serde(default)]
    price: Value,
    #[serde(default)]
    quantity: Option<u64>,
    #[serde(default)]
    current_period_start: Option<i64>,
    #[serde(default)]
    current_period_end: Option<i64>,
}

impl From<WireSubscriptionItem> for SubscriptionItem {
    fn from(w: WireSubscriptionItem) -> Self {
        SubscriptionItem {
            id: w.id,
            price: expandable_id(&w.price),
            quantity: w.quantity,
            current_period_start: w.current_period_start,
            current_period_end: w.current_period_end,
        }
    }
}

/// A subscription's latest invoice: its ID, and its status when the invoice was expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRef {
    /// `in_…`.
    pub id: String,
    /// The invoice's status (only when Stripe sent the whole invoice).
    pub status: Option<InvoiceStatus>,
}

impl InvoiceRef {
    fn from_value(value: &Value) -> Option<InvoiceRef> {
        let id = expandable_id(value)?;
        let status = value
            .get("status")
            .and_then(Value::as_str)
            .map(|s| InvoiceStatus::from(s.to_owned()));
        Some(InvoiceRef { id, status })
    }
}

/// A subscription (`sub_…`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WireSubscription")]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// The customer it bills (`cus_…`).
    pub customer: String,
    /// Where it is in Stripe's lifecycle.
    pub status: SubscriptionStatus,
    /// Its metadata; wagate sets [`LINE_ID_KEY`].
    pub metadata: Metadata,
    /// Its items (wagate creates one).
    pub items: Vec<SubscriptionItem>,
    /// Start of the current billing period (Unix seconds): the subscription's own field in API
    /// versions before `2025-03-31.basil`, else the item period that ends first.
    pub current_period_start: Option<i64>,
    /// End of the current billing period (Unix seconds), found like
    /// [`Subscription::current_period_start`]: what a paid period lasts until.
    pub current_period_end: Option<i64>,
    /// The latest invoice (expanded by this crate's client, so with its status).
    pub latest_invoice: Option<InvoiceRef>,
    /// Whether it ends at the end of the current period.
    pub cancel_at_period_end: bool,
    /// When it was cancelled (Unix seconds).
    pub canceled_at: Option<i64>,
    /// When it ended (Unix seconds).
    pub ended_at: Option<i64>,
    /// The payment method it charges, when set on the subscription itself.
    pub default_payment_method: Option<String>,
    /// When it was created (Unix seconds).
    pub created: i64,
}

impl Subscription {
    /// The wagate line this subscription keeps paid (`metadata.line_id`).
    pub fn line_id(&self) -> Option<&str> {
        self.metadata.get(LINE_ID_KEY).map(String::as_str)
    }
}

#[derive(Deserialize)]
struct WireSubscription {
    id: String,
    #[serde(default)]
    customer: Value,
    status: SubscriptionStatus,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    metadata: Metadata,
    #[serde(default)]
    items: Option<WireList<SubscriptionItem>>,
    #[serde(default)]
    current_period_start: Option<i64>,
    #[serde(default)]
    current_period_end: Option<i64>,
    #[serde(default)]
    latest_invoice: Value,
    #[serde(default)]
    cancel_at_period_end: bool,
    #[serde(default)]
    canceled_at: Option<i64>,
    #[serde(default)]
    ended_at: Option<i64>,
    #[serde(default)]
    default_payment_method: Value,
    #[serde(default)]
    created: i64,
}

/// Stripe's list envelope: `{"object": "list", "data": [...], "has_more", "url"}`.
#[derive(Deserialize)]
pub(crate) struct WireList<T> {
    #[serde(default = "Vec::new")]
    pub(crate) data: Vec<T>,
}

impl From<WireSubscription> for Subscription {
    fn from(w: WireSubscription) -> Self {
        let items = w.items.map(|l| l.data).unwrap_or_default();
        // Older API versions carry the period on the subscription; newer ones on each item.
        // With several items, the period that ends first is the one the subscription is
        // certainly paid for.
        let item_period = items
            .iter()
            .filter_map(|i| Some((i.current_period_end?, i.current_period_start)))
            .min_by_key(|(end, _)| *end);
        let (current_period_start, current_period_end) = match w.current_period_end {
            Some(end) => (w.current_period_start, Some(end)),
            None => match item_period {
                Some((end, start)) => (start.or(w.current_period_start), Some(end)),
                None => (w.current_period_start, None),
            },
        };
        Subscription {
            id: w.id,
            customer: expandable_id(&w.customer).unwrap_or_default(),
            status: w.status,
            metadata: w.metadata,
            items,
            current_period_start,
            current_period_end,
            latest_invoice: InvoiceRef::from_value(&w.latest_invoice),
            cancel_at_period_end: w.cancel_at_period_end,
            canceled_at: w.canceled_at,
            ended_at: w.ended_at,
            default_payment_method: expandable_id(&w.default_payment_method),
            created: w.created,
        }
    }
}

/// An invoice (`in_…`), as the `invoice.*` events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "WireInvoice")]
pub struct Invoice {
    /// `in_…`.
    pub id: String,
    /// The customer billed.
    pub customer: Option<String>,
    /// Its status (nullable in Stripe's schema).
    pub status: Option<InvoiceStatus>,
    /// The subscription that generated it: `parent.subscription_details.subscription` since
    /// `2025-03-31.basil`, the top-level `subscription` before.
    pub subscription: Option<String>,
    /// The subscription's metadata when the invoice was finalized
    /// (`parent.subscription_details.metadata`, formerly `subscription_details.metadata`):
    /// carries `line_id` without a second call.
    pub subscription_metadata: Metadata,
    /// Why it was created: `subscription_create`, `subscription_cycle`, `manual`, …
    pub billing_reason: Option<String>,
    /// Amount due, in the currency's smallest unit.
    pub amount_due: i64,
    /// Amount paid, in the currency's smallest unit.
    pub amount_paid: i64,
    /// Three-letter ISO code, lowercase.
    pub currency: String,
    /// Start of the service period it bills: the earliest `period.start` among its lines
    /// (Stripe's top-level `period_start` describes the previous period for subscription
    /// invoices, so it is read only when there are no lines).
    pub service_start: Option<i64>,
    /// End of the service period it bills: the latest `period.end` among its lines (else the
    /// top-level `period_end`). For a renewal this is the new `paid_until`.
    pub service_end: Option<i64>,
    /// How many payment attempts were made.
    pub attempt_count: u32,
    /// When Stripe will try to charge again, if it will.
    pub next_payment_attempt: Option<i64>,
    /// The hosted page where the customer can pay it.
    pub hosted_invoice_url: Option<String>,
    /// When it was created (Unix seconds).
    pub created: i64,
}

impl Invoice {
    /// The wagate line the invoice's subscription pays for (`line_id` in the subscription's
    /// metadata snapshot).
    pub fn line_id(&self) -> Option<&str> {
        self.subscription_metadata
            .get(LINE_ID_KEY)
            .map(String::as_str)
    }
}

#[derive(Deserialize)]
struct WireInvoice {
    id: String,
    #[serde(default)]
    customer: Value,
    #[serde(default)]
    status: Option<InvoiceStatus>,
    #[serde(default)]
    subscription: Value,
    #[serde(default)]
    subscription_details: Option<WireSubscriptionDetails>,
    #[serde(default)]
    parent: Option<WireInvoiceParent>,
    #[serde(default)]
    billing_reason: Option<String>,
    #[serde(default)]
    amount_due: i64,
    #[serde(default)]
    amount_paid: i64,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    period_start: Option<i64>,
    #[serde(default)]
    period_end: Option<i64>,
    #[serde(default)]
    lines: Option<WireList<WireLine>>,
    #[serde(default)]
    attempt_count: u32,
    #[serde(default)]
    next_payment_attempt: Option<i64>,
    #[serde(default)]
    hosted_invoice_url: Option<String>,
    #[serde(default)]
    created: i64,
}

#[derive(Deserialize)]
struct WireInvoiceParent {
    #[serde(default)]
    subscription_details: Option<WireSubscriptionDetails>,
}

#[derive(Deserialize)]
struct WireSubscriptionDetails {
    #[serde(default)]
    subscription: Value,
    #[serde(default, deserialize_with = "metadata_or_empty")]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct WireLine {
    #[serde(default)]
    period: Option<WirePeriod>,
}

#[derive(Deserialize)]
struct WirePeriod {
    start: i64,
    end: i64,
}

impl From<WireInvoice> for Invoice {
    fn from(w: WireInvoice) -> Self {
        let details = w
            .parent
            .and_then(|p| p.subscription_details)
            .or(w.subscription_details);
        let subscription = details
            .as_ref()
            .and_then(|d| expandable_id(&d.subscription))
            .or_else(|| expandable_id(&w.subscription));
        let periods: Vec<WirePeriod> = w
            .lines
            .map(|l| l.data.into_iter().filter_map(|line| line.period).collect())
            .unwrap_or_default();
        let (service_start, service_end) = if periods.is_empty() {
            (w.period_start, w.period_end)
        } else {
            (
                periods.iter().map(|p| p.start).min(),
                periods.iter().map(|p| p.end).max(),
            )
        };
        Invoice {
            id: w.id,
            customer: expandable_id(&w.customer),
            status: w.status,
            subscription,
            subscription_metadata: details.map(|d| d.metadata).unwrap_or_default(),
            billing_reason: w.billing_reason,
            amount_due: w.amount_due,
            amount_paid: w.amount_paid,
            currency: w.currency,
            service_start,
            service_end,
            attempt_count: w.attempt_count,
            next_payment_attempt: w.next_payment_attempt,
            hosted_invoice_url: w.hosted_invoice_url,
            created: w.created,
        }
    }
}

/// What to do when a new subscription's first invoice cannot be paid (`payment_behavior`,
/// for `collection_method=charge_automatically`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaymentBehavior {
    /// Try to pay; if that fails, create the subscription as `incomplete` (Stripe's default).
    AllowIncomplete,
    /// Do not charge yet: the subscription is `incomplete` until its first invoice's payment
    /// is confirmed (a front end confirms it; it expires after 23 hours).
    DefaultIncomplete,
    /// Try to pay; if that fails, answer HTTP 402 and create no subscription. wagate's
    /// default: a declined card becomes the API user's 402 at once.
    #[default]
    ErrorIfIncomplete,
}

impl PaymentBehavior {
    /// Stripe's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentBehavior::AllowIncomplete => "allow_incomplete",
            PaymentBehavior::DefaultIncomplete => "default_incomplete",
            PaymentBehavior::ErrorIfIncomplete => "error_if_incomplete",
        }
    }
}

/// Form fields, in order, as Stripe's form encoding takes them (`metadata[key]=value`).
pub(crate) type Form = Vec<(String, String)>;

fn push_metadata(form: &mut Form, metadata: &Metadata) {
    for (key, value) in metadata {
        form.push((format!("metadata[{key}]"), value.clone()));
    }
}

/// The parameters of a new customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewCustomer {
    /// The wagate account it pays for, stored as `metadata[account_id]`.
    pub account_id: String,
    /// The billing email, if known.
    pub email: Option<String>,
    /// The name on invoices, if known.
    pub name: Option<String>,
    /// More metadata (an `account_id` here is overridden by [`NewCustomer::account_id`]).
    pub metadata: Metadata,
}

impl NewCustomer {
    /// A customer for `account_id` with nothing else set.
    pub fn for_account(account_id: impl Into<String>) -> Self {
        NewCustomer {
            account_id: account_id.into(),
            ..NewCustomer::default()
        }
    }

    pub(crate) fn form(&self) -> Form {
        let mut form = Form::new();
        if let Some(email) = &self.email {
            form.push(("email".into(), email.clone()));
        }
        if let Some(name) = &self.name {
            form.push(("name".into(), name.clone()));
        }
        let mut metadata = self.metadata.clone();
        metadata.insert(ACCOUNT_ID_KEY.into(), self.account_id.clone());
        push_metadata(&mut form, &metadata);
        form
    }
}

/// The parameters of a new recurring price, created with its product (`product_data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrice {
    /// Amount per period in the currency's smallest unit (cents).
    pub unit_amount: i64,
    /// Three-letter ISO code; sent lowercase.
    pub currency: String,
    /// Billing interval.
    pub interval: Interval,
    /// The new product's name (`product_data[name]`), shown on invoices.
    pub product_name: String,
    /// A lookup key to find the price again (e.g. `wagate:acct_1:year`).
    pub lookup_key: Option<String>,
    /// Move the lookup key from the price that has it to this one (`transfer_lookup_key`):
    /// how an account's individual price changes without orphaning the key.
    pub transfer_lookup_key: bool,
    /// The price's metadata.
    pub metadata: Metadata,
}

impl NewPrice {
    pub(crate) fn form(&self) -> Form {
        let mut form: Form = vec![
            ("currency".into(), self.currency.to_ascii_lowercase()),
            ("unit_amount".into(), self.unit_amount.to_string()),
            ("recurring[interval]".into(), self.interval.as_str().into()),
            ("product_data[name]".into(), self.product_name.clone()),
        ];
        if let Some(key) = &self.lookup_key {
            form.push(("lookup_key".into(), key.clone()));
            if self.transfer_lookup_key {
                form.push(("transfer_lookup_key".into(), "true".into()));
            }
        }
        push_metadata(&mut form, &self.metadata);
        form
    }
}

/// The parameters of a new one-item subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// The customer to bill (`cus_…`).
    pub customer: String,
    /// The price (`price_…`), quantity 1.
    pub price: String,
    /// The wagate line it pays for, stored as `metadata[line_id]`.
    pub line_id: String,
    /// What to do when the first invoice cannot be paid.
    pub payment_behavior: PaymentBehavior,
    /// The card to charge, if not the customer's default.
    pub default_payment_method: Option<String>,
    /// More metadata (a `line_id` here is overridden by [`NewSubscription::line_id`]).
    pub metadata: Metadata,
}

impl NewSubscription {
    /// A subscription of `customer` to `price` for `line_id`, failing with 402 when the first
    /// payment fails.
    pub fn new(
        customer: impl Into<String>,
        price: impl Into<String>,
        line_id: impl Into<String>,
    ) -> Self {
        NewSubscription {
            customer: customer.into(),
            price: price.into(),
            line_id: line_id.into(),
            payment_behavior: PaymentBehavior::default(),
            default_payment_method: None,
            metadata: Metadata::new(),
        }
    }

    pub(crate) fn form(&self) -> Form {
        let mut form: Form = vec![
            ("customer".into(), self.customer.clone()),
            ("items[0][price]".into(), self.price.clone()),
            ("items[0][quantity]".into(), "1".into()),
            (
                "payment_behavior".into(),
                self.payment_behavior.as_str().into(),
            ),
        ];
        if let Some(pm) = &self.default_payment_method {
            form.push(("default_payment_method".into(), pm.clone()));
        }
        let mut metadata = self.metadata.clone();
        metadata.insert(LINE_ID_KEY.into(), self.line_id.clone());
        push_metadata(&mut form, &metadata);
        form
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_basil_subscription_takes_its_period_from_its_items() {
        // The subscription object of API version 2025-03-31.basil: no top-level period.
        let sub: Subscription = serde_json::from_value(json!({
            "id": "sub_1MowQVLkdIwHu7ixeRlqHVzs", "object": "subscription",
            "customer": "cus_Na6dX7aXxi11N4", "status": "active",
            "metadata": {"line_id": "line_42"},
            "items": {"object": "list", "data": [
                {"id": "si_NcLYdDxLHxlFo7", "object": "subscription_item",
                 "current_period_start": 1700000000, "current_period_end": 1731536000,
                 "price": {"id": "price_1MowQULkdIwHu7ixraBm864M", "object": "price"},
                 "quantity": 1}
            ], "has_more": false},
            "latest_invoice": "in_1MowQWLkdIwHu7ixuzkSPfKd",
            "cancel_at_period_end": false, "canceled_at": null, "ended_at": null,
            "default_payment_method": null, "created": 1700000000
        }))
        .unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(sub.current_period_start, Some(1_700_000_000));
        assert_eq!(sub.current_period_end, Some(1_731_536_000));
        assert_eq!(sub.line_id(), Some("line_42"));
        assert_eq!(
            sub.items[0].price.as_deref(),
            Some("price_1MowQULkdIwHu7ixraBm864M")
        );
        assert_eq!(
            sub.latest_invoice,
            Some(InvoiceRef {
                id: "in_1MowQWLkdIwHu7ixuzkSPfKd".into(),
                status: None
            })
        );
    }

    #[test]
    fn an_older_subscription_keeps_its_top_level_period() {
        let sub: Subscription = serde_json::from_value(json!({
            "id": "sub_1", "customer": {"id": "cus_1", "object": "customer"},
            "status": "past_due", "metadata": {},
            "current_period_start": 10, "current_period_end": 20,
            "items": {"data": [{"id": "si_1", "price": "price_1"}]},
            "latest_invoice": {"id": "in_1", "status": "open"}, "created": 5
        }))
        .unwrap();
        assert_eq!(sub.customer, "cus_1");
        assert_eq!(
            (sub.current_period_start, sub.current_period_end),
            (Some(10), Some(20))
        );
        assert_eq!(
            sub.latest_invoice.unwrap().status,
            Some(InvoiceStatus::Open)
        );
        assert_eq!(sub.status, SubscriptionStatus::PastDue);
    }

    #[test]
    fn unknown_statuses_are_kept() {
        let sub: Subscription =
            serde_json::from_value(json!({"id": "sub_1", "status": "something_new"})).unwrap();
        assert_eq!(
            sub.status,
            SubscriptionStatus::Other("something_new".into())
        );
        assert_eq!(sub.status.as_str(), "something_new");
        assert_eq!(sub.current_period_end, None);
    }

    #[test]
    fn an_invoice_finds_its_subscription_in_either_shape() {
        let basil: Invoice = serde_json::from_value(json!({
            "id": "in_1", "customer": "cus_1", "status": "paid",
            "billing_reason": "subscription_cycle", "amount_due": 5000, "amount_paid": 5000,
            "currency": "eur", "period_start": 100, "period_end": 200,
            "parent": {"type": "subscription_details", "quote_details": null,
                       "subscription_details": {"subscription": "sub_1",
                                                "metadata": {"line_id": "line_7"}}},
            "lines": {"object": "list", "data": [
                {"id": "il_1", "period": {"start": 200, "end": 300}}
            ]},
            "attempt_count": 1, "created": 200
        }))
        .unwrap();
        assert_eq!(basil.subscription.as_deref(), Some("sub_1"));
        assert_eq!(basil.line_id(), Some("line_7"));
        assert_eq!(
            (basil.service_start, basil.service_end),
            (Some(200), Some(300))
        );
        assert_eq!(basil.status, Some(InvoiceStatus::Paid));

        let older: Invoice = serde_json::from_value(json!({
            "id": "in_2", "customer": "cus_1", "status": "open", "subscription": "sub_2",
            "subscription_details": {"metadata": {"line_id": "line_8"}},
            "amount_due": 100, "amount_paid": 0, "currency": "eur",
            "period_start": 1, "period_end": 2, "lines": {"data": []}, "created": 2
        }))
        .unwrap();
        assert_eq!(older.subscription.as_deref(), Some("sub_2"));
        assert_eq!(older.line_id(), Some("line_8"));
        assert_eq!((older.service_start, older.service_end), (Some(1), Some(2)));
    }

    #[test]
    fn forms_carry_wagates_tags() {
        let mut c = NewCustomer::for_account("acct_1");
        c.metadata.insert("account_id".into(), "spoofed".into());
        assert!(c
            .form()
            .contains(&("metadata[account_id]".into(), "acct_1".into())));
        let s = NewSubscription::new("cus_1", "price_1", "line_1").form();
        assert!(s.contains(&("metadata[line_id]".into(), "line_1".into())));
        assert!(s.contains(&("payment_behavior".into(), "error_if_incomplete".into())));
        let p = NewPrice {
            unit_amount: 5000,
            currency: "EUR".into(),
            interval: Interval::Year,
            product_name: "Line".into(),
            lookup_key: Some("k".into()),
            transfer_lookup_key: true,
            metadata: Metadata::new(),
        }
        .form();
        assert!(p.contains(&("currency".into(), "eur".into())));
        assert!(p.contains(&("recurring[interval]".into(), "year".into())));
        assert!(p.contains(&("transfer_lookup_key".into(), "true".into())));
    }
}
