//! Virtual numbers (PRODUCT.md §12): verification numbers and rentals bought from the
//! cheapest provider in stock at the moment of the order, paid from the wallet.
//!
//! Money moves only in the store's transactions: an order's `number_charge` is committed with
//! the number itself, a refund (`refund`, reversing that charge) with the number's move to
//! `canceled` or `expired`, an extension's charge with its new expiry. A provider is asked
//! before the commit that depends on its answer (an order, an extension) and told after the
//! commit that ends a number (a cancel, an expiry, a code), so no failure there can undo or
//! repeat a movement of money. Expiry and polling are jobs on the business clock.

pub mod handler_api;
mod jobs;
pub mod provider;
pub mod router;
pub mod sandbox;
mod sms;
mod view;

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::json;
use wagate_domain::billing::ledger::{number_charge, reversal};
use wagate_domain::clock::Clock;
use wagate_domain::ids::{AccountId, NumberId, TransactionId};
use wagate_domain::jobs::NewJob;
use wagate_domain::money::Micros;
use wagate_domain::number::{
    self as rules, check_hours, expires_at, order_price, NumberKind, NumberRuleError, NumberStatus,
    Transition,
};
use wagate_domain::page::{Page, PageRequest};
use wagate_store::{
    Batch, Conflict, NewEvent, NewWalletTxn, NumberMessageRecord, NumberRecord, NumberWrite, Store,
};

use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};
use crate::scheduler::Scheduler;
use crate::webhooks::new_event;
use provider::{Ending, NumberProvider};
use router::{NumberRouter, RouteError};

pub use view::{number_json, sms_json};

/// The job that ends a number at its `expires_at` (a verification without a code is refunded).
pub const EXPIRE_JOB: &str = "number.expire";
/// The job that asks a polled provider for a number's SMS every [`POLL_EVERY`].
pub const POLL_JOB: &str = "number.poll";

/// How often a change of a number is tried again when the number moved meanwhile.
const MAX_TRIES: usize = 8;

/// The longest SMS text the sandbox delivers (ten concatenated SMS).
pub const SMS_MAX_CHARS: usize = 1600;

/// The services numbers are sold for (what `service` accepts).
pub fn services() -> impl Iterator<Item = &'static str> {
    wagate_numbers::codes::services()
}

/// The countries numbers are sold in, ISO 3166 alpha-2 (what `country` accepts).
pub fn countries() -> impl Iterator<Item = &'static str> {
    wagate_numbers::codes::countries()
}

/// One line of the price list: the cheapest offer of a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceLine {
    /// The service.
    pub service: String,
    /// The country.
    pub country: String,
    /// The kind.
    pub kind: NumberKind,
    /// The price of the cheapest offer in stock (of the cheapest offer at all when none is).
    pub price: Micros,
    /// Whether any provider has stock.
    pub in_stock: bool,
}

/// Virtual numbers.
pub struct NumberService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    scheduler: Scheduler,
    router: NumberRouter,
}

impl std::fmt::Debug for NumberService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NumberService")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

/// Checks a service name: one wagate sells (lower case, as the price list shows).
fn check_service(service: &str) -> AppResult<()> {
    if services().any(|s| s == service) {
        return Ok(());
    }
    let known: Vec<&str> = services().collect();
    Err(AppError::invalid(
        "service",
        format!("unknown service; one of: {}", known.join(", ")),
    ))
}

/// Checks a country: an ISO 3166 alpha-2 code wagate sells numbers of.
fn check_country(country: &str) -> AppResult<()> {
    if countries().any(|c| c == country) {
        return Ok(());
    }
    let known: Vec<&str> = countries().collect();
    Err(AppError::invalid(
        "country",
        format!(
            "unknown country; an ISO 3166 alpha-2 code, one of: {}",
            known.join(", ")
        ),
    ))
}

fn rule_error(e: NumberRuleError) -> AppError {
    match e {
        NumberRuleError::BadHours | NumberRuleError::HoursNotAllowed => {
            AppError::invalid("hours", e.to_string())
        }
        NumberRuleError::NotNow(m) => RuleError::NumberNotNow(m).into(),
    }
}

impl NumberService {
    /// The service over these providers (in the router's order).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        scheduler: Scheduler,
        providers: Vec<Arc<dyn NumberProvider>>,
    ) -> Arc<Self> {
        Arc::new(NumberService {
            store,
            clock,
            scheduler,
            router: NumberRouter::new(providers),
        })
    }

    /// Registers the expiry and poll jobs.
    pub fn register(self: &Arc<Self>) {
        self.scheduler
            .register(EXPIRE_JOB, Arc::new(jobs::Expire(self.clone())));
        self.scheduler
            .register(POLL_JOB, Arc::new(jobs::Poll(self.clone())));
    }

    fn unavailable() -> AppError {
        RuleError::NumbersUnavailable(
            "no number provider is configured on this server (numbers_handler_api_url)".into(),
        )
        .into()
    }

    /// The price list for `service` in `country`: per kind, the cheapest offer in stock at
    /// this moment.
    pub async fn prices(&self, service: &str, country: &str) -> AppResult<Vec<PriceLine>> {
        check_service(service)?;
        check_country(country)?;
        if self.router.is_empty() {
            return Err(Self::unavailable());
        }
        let offers = self.router.offers(service, country).await;
        let mut lines = Vec::new();
        for kind in [NumberKind::Verification, NumberKind::Rental] {
            let of_kind = NumberRouter::of_kind(&offers, kind);
            let line = match rules::cheapest_in_stock(&of_kind) {
                Some(o) => Some((o.price, true)),
                None => of_kind.iter().map(|o| o.price).min().map(|p| (p, false)),
            };
            if let Some((price, in_stock)) = line {
                lines.push(PriceLine {
                    service: service.to_owned(),
                    country: country.to_owned(),
                    kind,
                    price,
                    in_stock,
                });
            }
        }
        Ok(lines)
    }

    /// Buys a number from the cheapest provider in stock (failing over to the next on an
    /// error), debiting the wallet in the transaction that records it.
    pub async fn order(
        &self,
        who: &Principal,
        service: &str,
        country: &str,
        kind: NumberKind,
        hours: Option<u32>,
    ) -> AppResult<NumberRecord> {
        check_service(service)?;
        check_country(country)?;
        let hours = check_hours(kind, hours).map_err(rule_error)?;
        if self.router.is_empty() {
            return Err(Self::unavailable());
        }
        let account = &who.account.id;
        let balance = self.store.billing_account(account).await?.balance;
        let placed = self
            .router
            .order(service, country, kind, hours, |unit| {
                order_price(kind, unit, hours) <= balance
            })
            .await
            .map_err(|e| match e {
                RouteError::OutOfStock => RuleError::OutOfStock(format!(
                    "{service} {} numbers in {country}",
                    kind.as_str()
                ))
                .into(),
                RouteError::TooExpensive { cheapest } => RuleError::NumberBalance {
                    required: order_price(kind, cheapest, hours),
                }
                .into(),
                RouteError::Unavailable(m) => AppError::from(RuleError::NumbersUnavailable(
                    format!("no number provider could sell one right now: {m}"),
                )),
            })?;
        let now = self.clock.now();
        let price = order_price(kind, placed.unit_price, hours);
        let id = NumberId::generate();
        let txn = NewWalletTxn {
            id: TransactionId::generate(),
            posting: number_charge(account, price).map_err(|e| AppError::Internal(e.into()))?,
            line_id: None,
            payment_id: None,
            reverses: None,
            description: format!(
                "{} number {} for {service} ({country}), {id}",
                kind.as_str(),
                placed.ordered.phone_number
            ),
        };
        let number = NumberRecord {
            id: id.clone(),
            account_id: account.clone(),
            version: 0,
            kind,
            status: NumberStatus::Active,
            service: service.to_owned(),
            country: country.to_owned(),
            phone_number: placed.ordered.phone_number.clone(),
            provider: placed.provider.name().to_owned(),
            provider_ref: placed.ordered.provider_ref.clone(),
            unit_price: placed.unit_price,
            price,
            currency: "USD".to_owned(),
            hours,
            code: None,
            charge_transaction_id: txn.id.clone(),
            refund_transaction_id: None,
            created_at: now,
            expires_at: expires_at(kind, hours, now),
            code_received_at: None,
            ended_at: None,
            updated_at: now,
        };
        let mut due = vec![jobs::expire_job(&number)];
        if placed.provider.polled() {
            due.extend(jobs::poll_job(&number, now));
        }
        let batch = Batch {
            billing_account: Some(account.clone()),
            start_auto_topup: self.auto_topup_after(account, &txn, now).await?,
            wallet_txns: vec![txn],
            numbers: Some(Box::new(NumberWrite {
                insert: Some(number.clone()),
                ..NumberWrite::default()
            })),
            jobs: due,
            ..Batch::default()
        };
        let committed = self.store.commit(batch, now).await;
        let refused = match committed {
            Ok(Ok(())) => {
                self.scheduler.wake();
                return Ok(number);
            }
            Ok(Err(Conflict::InsufficientBalance)) => {
                AppError::from(RuleError::NumberBalance { required: price })
            }
            Ok(Err(c)) => anyhow::anyhow!("recording a number: {c}").into(),
            Err(e) => e.into(),
        };
        // Not recorded, so not paid: the provider takes its number back.
        if let Err(e) = self
            .router
            .call(placed.provider.end(&number.provider_ref, Ending::Canceled))
            .await
        {
            tracing::warn!(number = %id, error = %e, "could not give back a number that was not recorded");
        }
        Err(refused)
    }

    /// The auto top-up job a debit calls for (§4: after any debit that leaves the balance
    /// below the threshold).
    async fn auto_topup_after(
        &self,
        account: &AccountId,
        debit: &NewWalletTxn,
        now: Timestamp,
    ) -> AppResult<Option<NewJob>> {
        let billing = self.store.billing_account(account).await?;
        let after = Micros(
            billing
                .balance
                .0
                .saturating_add(i64::try_from(debit.posting.wallet_delta(account)).unwrap_or(0)),
        );
        Ok(crate::billing::BillingService::auto_topup_job(
            &billing, account, after, &debit.id, now,
        ))
    }

    /// One number of the account.
    pub async fn get(&self, who: &Principal, id: &NumberId) -> AppResult<NumberRecord> {
        self.store
            .get_number(&who.account.id, id)
            .await?
            .ok_or(AppError::NotFound("number"))
    }

    /// The account's numbers, newest first.
    pub async fn list(&self, who: &Principal, page: &PageRequest) -> AppResult<Page<NumberRecord>> {
        Ok(self.store.list_numbers(&who.account.id, page).await?)
    }

    /// The SMS of these numbers, oldest first.
    pub async fn sms(&self, numbers: &[&NumberRecord]) -> AppResult<Vec<NumberMessageRecord>> {
        let ids: Vec<NumberId> = numbers.iter().map(|n| n.id.clone()).collect();
        Ok(self.store.number_messages(&ids).await?)
    }

    /// The number object with its SMS.
    pub async fn json(&self, n: &NumberRecord) -> AppResult<serde_json::Value> {
        Ok(number_json(n, &self.sms(&[n]).await?))
    }

    /// Cancels a verification before its code: `canceled`, refunded. After the code (or a
    /// rental) → 409.
    pub async fn cancel(&self, who: &Principal, id: &NumberId) -> AppResult<NumberRecord> {
        self.get(who, id).await?;
        self.end(id, |n, now| {
            rules::cancel(n, now).map(Some).map_err(rule_error)
        })
        .await
    }

    /// Ends a number as `decide` says (a cancel, an expiry), refunding it in the same commit
    /// when the rules say so, then tells the provider.
    async fn end(
        &self,
        id: &NumberId,
        decide: impl Fn(&rules::NumberState, Timestamp) -> AppResult<Option<Transition>>,
    ) -> AppResult<NumberRecord> {
        for _ in 0..MAX_TRIES {
            let n = self
                .store
                .number_by_id(id)
                .await?
                .ok_or(AppError::NotFound("number"))?;
            let now = self.clock.now();
            let Some(t) = decide(&n.state(), now)? else {
                return Ok(n);
            };
            let mut next = n.clone();
            next.status = t.status;
            next.ended_at = Some(now);
            next.updated_at = now;
            let mut batch = Batch::default();
            if t.refund && n.refund_transaction_id.is_none() {
                let charge = number_charge(&n.account_id, n.price)
                    .map_err(|e| AppError::Internal(e.into()))?;
                let txn = NewWalletTxn {
                    id: TransactionId::generate(),
                    posting: reversal(&charge).map_err(|e| AppError::Internal(e.into()))?,
                    line_id: None,
                    payment_id: None,
                    // The ledger's unique key on what a refund reverses: once per number.
                    reverses: Some(n.charge_transaction_id.clone()),
                    description: format!(
                        "Refund of {} number {} ({}): {}",
                        n.kind.as_str(),
                        n.phone_number,
                        n.id,
                        if t.status == NumberStatus::Canceled {
                            "canceled before a code"
                        } else {
                            "no code within 20 minutes"
                        }
                    ),
                };
                next.refund_transaction_id = Some(txn.id.clone());
                batch.billing_account = Some(n.account_id.clone());
                batch.wallet_txns.push(txn);
            }
            if t.status == NumberStatus::Expired {
                let sms = self.sms(&[&next]).await?;
                batch
                    .events
                    .push(number_event("number.expired", &next, &sms, None, now));
            }
            batch.numbers = Some(Box::new(NumberWrite {
                update: Some(next.clone()),
                ..NumberWrite::default()
            }));
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    self.scheduler.wake();
                    next.version += 1;
                    self.tell_provider(&next, Ending::Canceled).await;
                    return Ok(next);
                }
                Err(Conflict::NumberChanged) => continue,
                Err(c) => return Err(anyhow::anyhow!("ending a number: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the number kept changing").into())
    }

    /// Tells the number's provider how it ended; a failure is only logged (the number and
    /// its money are settled on our side, and the provider's own timeout ends it there).
    async fn tell_provider(&self, n: &NumberRecord, ending: Ending) {
        let Some(p) = self.router.provider(&n.provider) else {
            return;
        };
        if let Err(e) = self.router.call(p.end(&n.provider_ref, ending)).await {
            tracing::info!(number = %n.id, error = %e, "the provider was not told how the number ended");
        }
    }

    /// Extends a rental by `hours`, charged at its hourly price.
    pub async fn extend(
        &self,
        who: &Principal,
        id: &NumberId,
        hours: u32,
    ) -> AppResult<NumberRecord> {
        let n = self.get(who, id).await?;
        rules::extend(&n.state(), hours, self.clock.now()).map_err(rule_error)?;
        let cost = order_price(NumberKind::Rental, n.unit_price, Some(hours));
        let balance = self.store.billing_account(&who.account.id).await?.balance;
        if balance < cost {
            return Err(RuleError::NumberBalance { required: cost }.into());
        }
        let provider = self.router.provider(&n.provider).ok_or_else(|| {
            RuleError::NumbersUnavailable("the number's provider is no longer configured".into())
        })?;
        self.router
            .call(provider.extend(&n.provider_ref, hours))
            .await
            .map_err(|e| {
                // The provider's own words may name it: they go to the log, not the caller.
                tracing::warn!(number = %n.id, provider = %n.provider, error = %e, "the provider did not extend a rental");
                RuleError::NumbersUnavailable(
                    "the number's provider could not extend it right now; nothing was charged"
                        .into(),
                )
            })?;
        for _ in 0..MAX_TRIES {
            let n = self.get(who, id).await?;
            let now = self.clock.now();
            let until = rules::extend(&n.state(), hours, now).map_err(rule_error)?;
            let txn = NewWalletTxn {
                id: TransactionId::generate(),
                posting: number_charge(&n.account_id, cost)
                    .map_err(|e| AppError::Internal(e.into()))?,
                line_id: None,
                payment_id: None,
                reverses: None,
                description: format!("rental {} extended by {hours} h ({})", n.phone_number, n.id),
            };
            let mut next = n.clone();
            next.expires_at = until;
            next.hours = Some(n.hours.unwrap_or(0).saturating_add(hours));
            next.price = Micros(n.price.0.saturating_add(cost.0));
            next.updated_at = now;
            let batch = Batch {
                billing_account: Some(n.account_id.clone()),
                start_auto_topup: self.auto_topup_after(&n.account_id, &txn, now).await?,
                wallet_txns: vec![txn],
                numbers: Some(Box::new(NumberWrite {
                    update: Some(next.clone()),
                    ..NumberWrite::default()
                })),
                jobs: vec![jobs::expire_job(&next)],
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    self.scheduler.wake();
                    next.version += 1;
                    return Ok(next);
                }
                Err(Conflict::NumberChanged) => continue,
                Err(Conflict::InsufficientBalance) => {
                    return Err(RuleError::NumberBalance { required: cost }.into())
                }
                Err(c) => return Err(anyhow::anyhow!("extending a number: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the number kept changing").into())
    }

    /// The sandbox's simulated providers, in the router's order.
    pub fn sandbox_providers(&self) -> Vec<&sandbox::SandboxProvider> {
        self.router
            .providers()
            .iter()
            .filter_map(|p| p.sandbox())
            .collect()
    }

    /// Runs the expiry of a number (its job).
    pub(super) async fn expire(&self, id: &NumberId) -> AppResult<()> {
        self.end(id, |n, now| Ok(rules::expire(n, now))).await?;
        Ok(())
    }
}

/// A `number.*` event: the number object, and the SMS that caused it.
pub(super) fn number_event(
    kind: &str,
    n: &NumberRecord,
    sms: &[NumberMessageRecord],
    cause: Option<&NumberMessageRecord>,
    now: Timestamp,
) -> NewEvent {
    let mut data = json!({ "number": number_json(n, sms) });
    if let Some(m) = cause {
        data["sms"] = sms_json(m);
    }
    new_event(&n.account_id, kind, None, data, now)
}
