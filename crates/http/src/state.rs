//! What every handler shares.

use std::sync::Arc;

use wagate_app::App;

use crate::metrics::Metrics;

/// Shared state of the HTTP layer.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The application (store, clocks, scheduler).
    pub app: App,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State for `app` with fresh metrics.
    pub fn new(app: App) -> Self {
        Self {
            app,
            metrics: Arc::new(Metrics::default()),
        }
    }
}
