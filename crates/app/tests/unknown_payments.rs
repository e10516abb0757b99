//! A card payment whose outcome is unknown (the processor timed out after charging) is
//! resolved by asking the processor, never by charging again: the wallet is credited once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use wagate_app::accounts::{create_account, Principal};
use wagate_app::lines::CreateLine;
use wagate_app::{App, Outside};
use wagate_domain::clock::{Clock, ManualClock};
use wagate_domain::line::BillingStatus;
use wagate_domain::money::Micros;
use wagate_domain::page::PageRequest;
use wagate_payments::{
    ChargeRequest, Payment, PaymentError, PaymentProcessor, SandboxProcessor, StoreCardRequest,
    StoredCard,
};
use wagate_store::{SqlStore, Store};

/// The sandbox processor, except that the first `timeouts` charges go through but answer
/// "unknown", as a timeout after the processor charged would.
struct Flaky {
    inner: SandboxProcessor,
    timeouts: AtomicU32,
}

#[async_trait]
impl PaymentProcessor for Flaky {
    async fn store_card(&self, req: &StoreCardRequest<'_>) -> Result<StoredCard, PaymentError> {
        self.inner.store_card(req).await
    }
    async fn charge(&self, req: &ChargeRequest<'_>) -> Result<Payment, PaymentError> {
        let charged = self.inner.charge(req).await;
        let left = self.timeouts.load(Ordering::SeqCst);
        if left > 0 {
            self.timeouts.store(left - 1, Ordering::SeqCst);
            return Err(PaymentError::Unknown("timed out".into()));
        }
        charged
    }
    async fn resolve(&self, req: &ChargeRequest<'_>) -> Result<Option<Payment>, PaymentError> {
        self.inner.resolve(req).await
    }
    async fn disable_card(&self, customer_id: &str, card_id: &str) -> Result<(), PaymentError> {
        self.inner.disable_card(customer_id, card_id).await
    }
}

async fn setup(
    timeouts: u32,
) -> (
    App,
    Arc<ManualClock>,
    Arc<Flaky>,
    Principal,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let flaky = Arc::new(Flaky {
        inner: SandboxProcessor::new(),
        timeouts: AtomicU32::new(0),
    });
    let mut outside = Outside::sandbox();
    outside.processor = flaky.clone();
    let app = App::sandbox_with(store, clock.clone(), outside).unwrap();
    let created = create_account(&app, "Flaky Ltd", false).await.unwrap();
    let who = Principal {
        account: created.account,
        key_id: wagate_domain::ids::ApiKeyId::generate(),
    };
    app.billing
        .add_card(&who, "cnon:card-nonce-ok")
        .await
        .unwrap();
    flaky.timeouts.store(timeouts, Ordering::SeqCst);
    (app, clock, flaky, who, dir)
}

async fn balance(app: &App, who: &Principal) -> Micros {
    app.billing.account(who).await.unwrap().balance
}

#[tokio::test]
async fn a_topup_with_an_unknown_outcome_is_credited_once_when_resolved() {
    let (app, clock, flaky, who, _dir) = setup(1).await;
    let r = app
        .billing
        .topup(&who, Micros::from_cents(2500), Some("k1"))
        .await
        .unwrap();
    assert_eq!(r.status, "pending");
    assert_eq!(balance(&app, &who).await, Micros(0));
    app.scheduler
        .advance_to(&clock, clock.now() + SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(balance(&app, &who).await, Micros::from_cents(2500));
    assert_eq!(flaky.inner.charges().len(), 1, "the card was charged once");
    // Asking again with the same key replays; nothing more is credited.
    let again = app
        .billing
        .topup(&who, Micros::from_cents(2500), Some("k1"))
        .await
        .unwrap();
    assert_eq!(again.payment.id, r.payment.id);
    assert_eq!(balance(&app, &who).await, Micros::from_cents(2500));
    assert_eq!(flaky.inner.charges().len(), 1);
}

#[tokio::test]
async fn a_line_charge_with_an_unknown_outcome_is_resolved_not_repeated() {
    let (app, clock, flaky, who, _dir) = setup(0).await;
    // Use up the trial with a first line.
    let first = app.lines.create(&who, CreateLine::default()).await.unwrap();
    let sim = app.connector.simulator().unwrap();
    sim.scan(&first.id, "+447700900001".into(), None)
        .await
        .unwrap();
    flaky.timeouts.store(1, Ordering::SeqCst);
    let line = app.lines.create(&who, CreateLine::default()).await.unwrap();
    sim.scan(&line.id, "+447700900002".into(), None)
        .await
        .unwrap();
    // The charge job runs, gets "unknown", fails and is retried later by the scheduler.
    app.scheduler.advance_to(&clock, clock.now()).await.unwrap();
    let l = app.store.line_by_id(&line.id).await.unwrap().unwrap();
    assert_eq!(
        l.billing_status,
        BillingStatus::None,
        "not charged yet: outcome unknown"
    );
    app.scheduler
        .advance_to(&clock, clock.now() + SignedDuration::from_secs(3600))
        .await
        .unwrap();
    let l = app.store.line_by_id(&line.id).await.unwrap().unwrap();
    assert_eq!(l.billing_status, BillingStatus::Active);
    assert_eq!(
        flaky.inner.charges().len(),
        1,
        "one card charge for the line"
    );
    let page = PageRequest::new(Some(200), None).unwrap();
    let txns = app.billing.transactions(&who, &page).await.unwrap().data;
    assert_eq!(txns.len(), 2, "one credit, one debit: {txns:?}");
    assert_eq!(balance(&app, &who).await, Micros(0));
}
