//! What every handler shares.

use std::sync::Arc;

use wagate_app::App;

use crate::guard::RequestLimits;
use crate::metrics::Metrics;

/// Shared state of the HTTP layer.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The application (store, clocks, scheduler).
    pub app: Arc<App>,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// The server-wide limits on requests in flight and time to answer.
    pub limits: Arc<RequestLimits>,
    /// Turns true when the server stops: long-lived answers (the connect page's live updates)
    /// end then, so a graceful shutdown does not wait for them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// State for `app` with fresh metrics.
    pub fn new(app: App) -> Self {
        Self {
            app: Arc::new(app),
            metrics: Arc::new(Metrics::default()),
            limits: Arc::new(RequestLimits::default()),
            stopping: tokio::sync::watch::channel(false).1,
        }
    }

    /// The same state, ending long-lived answers when `stopping` turns true.
    pub fn with_stopping(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stopping = stopping;
        self
    }

    /// The same state with these request limits.
    pub fn with_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = Arc::new(limits);
        self
    }
}
