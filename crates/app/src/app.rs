//! The application: the store, the clocks and the scheduler, shared by every use case.

use std::sync::Arc;

use wagate_domain::account::KeyMode;
use wagate_domain::clock::{Clock, ManualClock, SystemClock};
use wagate_store::Store;

use crate::scheduler::Scheduler;
use crate::webhooks::delivery::Deliverer;

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
    pub fn production(store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self::assemble(store, clock.clone(), None, KeyMode::Live)
    }

    /// A sandbox application whose business clock is `clock`.
    pub fn sandbox(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> anyhow::Result<Self> {
        Self::assemble(store, clock.clone(), Some(clock), KeyMode::Test)
    }

    fn assemble(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sandbox_clock: Option<Arc<ManualClock>>,
        mode: KeyMode,
    ) -> anyhow::Result<Self> {
        let wall: Arc<dyn Clock> = Arc::new(SystemClock);
        let scheduler = Scheduler::new(store.clone(), clock.clone(), wall.clone());
        let deliverer = Deliverer::new(
            store.clone(),
            clock.clone(),
            wall.clone(),
            sandbox_clock.is_some(),
        )
        .expect("the HTTP client for webhook delivery (TLS roots) could not be built");
        scheduler.register(wagate_store::DELIVER_JOB, Arc::new(deliverer));
        Ok(App {
            store,
            clock,
            wall,
            sandbox_clock,
            scheduler,
            config: AppConfig { mode },
        })
    }

    /// Whether this is the sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox_clock.is_some()
    }
}
