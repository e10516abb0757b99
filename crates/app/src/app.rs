//! The application: the store, the clocks and the scheduler, shared by every use case.

use std::sync::Arc;

use anyhow::Context;

use wagate_domain::account::KeyMode;
use wagate_domain::clock::{Clock, ManualClock, SystemClock};
use wagate_payments::PaymentProcessor;
use wagate_store::Store;

use crate::billing::BillingService;
use crate::connector::{Connector, ConnectorSink};
use crate::lines::jobs::LineJobs;
use crate::lines::ownership::LineOwnership;
use crate::lines::pairing::Pairing;
use crate::lines::{LineService, LinesConfig};
use crate::scheduler::Scheduler;
use crate::webhooks::delivery::{Deliverer, SecretCache};

/// How the application runs.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Sandbox (test keys, manual clock, simulated outside world) or production.
    pub mode: KeyMode,
}

/// Everything a use case needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Business time: the system clock in production, the manual clock in the sandbox.
    pub clock: Arc<dyn Clock>,
    /// Wall-clock time, for leases, lock expiry and webhook timestamps — never for business
    /// rules. In production it is the same clock as `clock`.
    pub wall: Arc<dyn Clock>,
    /// The manual clock, present only in the sandbox.
    pub sandbox_clock: Option<Arc<ManualClock>>,
    /// The job scheduler.
    pub scheduler: Scheduler,
    /// The configuration.
    pub config: AppConfig,
    /// Lines and messages.
    pub lines: Arc<LineService>,
    /// Card, wallet and line charges.
    pub billing: Arc<BillingService>,
    /// The WhatsApp connection provider.
    pub connector: Arc<dyn Connector>,
    /// Which lines this server serves (see [`crate::lines::ownership`]).
    pub ownership: Arc<LineOwnership>,
    /// QR and pairing codes from whichever server links a line.
    pub pairing: Arc<Pairing>,
    /// The signing secrets the delivery worker holds (a rotation empties its account's).
    pub secret_cache: Arc<SecretCache>,
    /// API keys that authenticated recently (see [`crate::accounts::KEY_CACHE_TTL`]).
    pub keys: Arc<crate::accounts::KeyCache>,
    /// Cloud API lines, Meta's webhooks and Meta billing.
    pub cloud: Arc<crate::cloud::CloudService>,
    /// Calls and their audio.
    pub calls: Arc<crate::calls::CallService>,
    /// Partner billing in days: settings, invoices.
    pub days: Arc<crate::billing::days::DaysService>,
    /// Per-line Stripe subscriptions and Stripe's webhooks.
    pub subscriptions: Arc<crate::billing::subscriptions::SubscriptionService>,
    /// Virtual numbers from the cheapest provider in stock.
    pub numbers: Arc<crate::numbers::NumberService>,
}

/// What the outside world is, for an [`App`]: the WhatsApp connector, the payment processor
/// and the line settings.
pub struct Outside {
    /// The WhatsApp connection provider.
    pub connector: Arc<dyn Connector>,
    /// The card processor.
    pub processor: Arc<dyn PaymentProcessor>,
    /// Line settings (prices, limits, public URL).
    pub lines: LinesConfig,
    /// Meta's Cloud API (`None`: Meta's Graph API, no app secret, no cloud lines).
    pub cloud: Option<crate::cloud::CloudConfig>,
    /// Stripe, for per-line subscriptions (`None`: not configured).
    pub stripe: Option<crate::billing::subscriptions::StripeSetup>,
    /// Virtual number providers, in the router's order (none: numbers are not sold).
    pub numbers: Vec<Arc<dyn crate::numbers::provider::NumberProvider>>,
}

impl Outside {
    /// The sandbox's outside world: the simulated connector, the sandbox processor and the
    /// sandbox's network of number providers.
    pub fn sandbox() -> Self {
        Outside {
            connector: Arc::new(crate::connector::simulator::Simulator::new()),
            processor: Arc::new(wagate_payments::SandboxProcessor::new()),
            lines: LinesConfig::default(),
            cloud: None,
            stripe: None,
            numbers: crate::numbers::sandbox::network(),
        }
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl App {
    /// A production application on the system clock. Fails only if the webhook HTTP client
    /// cannot be built (no usable TLS configuration).
    pub fn production(store: Arc<dyn Store>, outside: Outside) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self::assemble(store, clock.clone(), None, KeyMode::Live, outside)
    }

    /// A sandbox application whose business clock is `clock`, with the simulated connector and
    /// the sandbox payment processor.
    pub fn sandbox(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> anyhow::Result<Self> {
        Self::sandbox_with(store, clock, Outside::sandbox())
    }

    /// A sandbox application with a chosen outside world.
    pub fn sandbox_with(
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        outside: Outside,
    ) -> anyhow::Result<Self> {
        Self::assemble(store, clock.clone(), Some(clock), KeyMode::Test, outside)
    }

    fn assemble(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sandbox_clock: Option<Arc<ManualClock>>,
        mode: KeyMode,
        outside: Outside,
    ) -> anyhow::Result<Self> {
        let wall: Arc<dyn Clock> = Arc::new(SystemClock);
        let scheduler = Scheduler::new(store.clone(), clock.clone(), wall.clone());
        let secret_cache = Arc::new(SecretCache::default());
        let deliverer = Deliverer::new(
            store.clone(),
            clock.clone(),
            wall.clone(),
            sandbox_clock.is_some(),
        )
        .context("cannot build the HTTP client for webhook delivery (TLS roots)")?
        .with_secret_cache(secret_cache.clone());
        scheduler.register(wagate_store::DELIVER_JOB, Arc::new(deliverer));
        let lines = Arc::new(LineService::new(
            store.clone(),
            clock.clone(),
            scheduler.clone(),
            outside.lines,
        ));
        let sink: Arc<dyn ConnectorSink> = lines.clone();
        outside.connector.attach(Arc::downgrade(&sink));
        let ownership = LineOwnership::new(
            store.clone(),
            wall.clone(),
            outside.connector.clone(),
            scheduler.holder().to_owned(),
        );
        LineJobs::new(lines.clone(), outside.connector.clone(), ownership.clone()).register();
        let pairing = Pairing::new(
            store.clone(),
            clock.clone(),
            wall.clone(),
            outside.connector.clone(),
            ownership.clone(),
            scheduler.clone(),
        );
        pairing.register();
        if let Some(c) = &sandbox_clock {
            scheduler.follow_stored_clock(c.clone());
        }
        let billing = BillingService::new(
            store.clone(),
            clock.clone(),
            scheduler.clone(),
            outside.processor,
            lines.clone(),
        );
        billing.register();
        let cloud_config = match outside.cloud {
            Some(c) => c,
            None => crate::cloud::CloudConfig::unconfigured()?,
        };
        let cloud = Arc::new(crate::cloud::CloudService::new(
            store.clone(),
            clock.clone(),
            lines.clone(),
            cloud_config,
        )?);
        let calls = crate::calls::CallService::new(
            store.clone(),
            clock.clone(),
            scheduler.clone(),
            outside.connector.clone(),
            lines.clone(),
        );
        calls.register();
        let days = crate::billing::days::DaysService::new(
            store.clone(),
            clock.clone(),
            billing.clone(),
            scheduler.clone(),
            lines.clone(),
        );
        days.register();
        let subscriptions = crate::billing::subscriptions::SubscriptionService::new(
            store.clone(),
            clock.clone(),
            lines.clone(),
            outside.stripe,
        );
        subscriptions.register(&scheduler);
        let numbers = crate::numbers::NumberService::new(
            store.clone(),
            clock.clone(),
            scheduler.clone(),
            outside.numbers,
        );
        numbers.register();
        Ok(App {
            numbers,
            subscriptions,
            days,
            calls,
            cloud,
            lines,
            billing,
            connector: outside.connector,
            store,
            clock,
            wall,
            sandbox_clock,
            scheduler,
            ownership,
            pairing,
            secret_cache,
            config: AppConfig { mode },
            keys: Arc::default(),
        })
    }

    /// Whether this is the sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox_clock.is_some()
    }
}
