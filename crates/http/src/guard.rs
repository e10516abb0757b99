//! Every request runs to completion, within a server-wide bound on concurrency and time.
//!
//! hyper drops a handler's future when its client hangs up. A handler dropped halfway could
//! leave work half done: a card charged and the ledger not yet written, an idempotency key
//! claimed and never answered, a store call interrupted between two round trips. So the
//! handler runs in a task of its own that nobody cancels; the connection only waits for it.
//! A client that leaves early loses its answer, never the work (the same request with the
//! same `Idempotency-Key` gets that answer later).
//!
//! The same task carries the two server-wide limits: at most
//! [`RequestLimits::max_in_flight`] requests at once (more are refused at once with 503
//! `server_busy`, so an overload sheds load instead of queueing without bound) and an
//! answer within [`RequestLimits::timeout`] (503 `request_timeout`; the work goes on and its
//! permit is held until it ends, so timed-out work still counts against the limit).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode};

/// The server-wide request limits.
#[derive(Debug)]
pub struct RequestLimits {
    max_in_flight: usize,
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl RequestLimits {
    /// Default most requests in flight at once.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
    /// Default time to the answer's head.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Limits of `max_in_flight` requests at once (at least 1) and `timeout` to an answer.
    pub fn new(max_in_flight: usize, timeout: Duration) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            max_in_flight,
            timeout,
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }

    /// The most requests in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// How long a request may take to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Requests running now (including ones whose client timed out or left).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits()
    }

    /// Waits until every running request has finished (shutdown: a handler whose client
    /// left is still writing), or `within` has passed; whether all finished.
    pub async fn drain(&self, within: Duration) -> bool {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        tokio::time::timeout(within, self.permits.acquire_many(all))
            .await
            .is_ok()
    }
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_IN_FLIGHT, Self::DEFAULT_TIMEOUT)
    }
}

/// The middleware: runs the rest of the stack in a task of its own (see the module docs).
pub async fn run_to_completion(
    State(limits): State<Arc<RequestLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(permit) = limits.permits.clone().try_acquire_owned() else {
        return ApiError::new(
            ErrorCode::ServerBusy,
            format!(
                "the server is handling its limit of {} requests at once; retry shortly",
                limits.max_in_flight
            ),
        )
        .retry_after(1)
        .into_response();
    };
    let work = tokio::spawn(
        async move {
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        .instrument(tracing::Span::current()),
    );
    match tokio::time::timeout(limits.timeout, work).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => ApiError::internal(format!("a request task failed: {e}")).into_response(),
        Err(_) => {
            tracing::warn!(timeout = ?limits.timeout, "a request did not answer in time; it goes on in the background");
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request did not finish within {} s; it may still complete: repeat it with the same Idempotency-Key to get its answer",
                    limits.timeout.as_secs()
                ),
            )
            .retry_after(1)
            .into_response()
        }
    }
}
