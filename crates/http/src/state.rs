//! What every handler shares.

use std::sync::Arc;

use wagate_app::App;

use crate::guard::RequestLimits;
use crate::metrics::Metrics;

/// Shared state of the HTTP layer.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The application (store, clocks, scheduler).
    pub app: App,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// The server-wide limits on requests in flight and time to answer.
    pub limits: Arc<RequestLimits>,
}

impl AppState {
    /// State for `app` with fresh metrics.
    pub fn new(app: App) -> Self {
        Self {
            app,
            metrics: Arc::new(Metrics::default()),
            limits: Arc::new(RequestLimits::default()),
        }
    }

    /// The same state with these request limits.
    pub fn with_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = Arc::new(limits);
        self
    }
}
