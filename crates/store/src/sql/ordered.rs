//! Ordered group commit for batches that can meet a [`Conflict`]: the Meta notifications
//! (each a strict batch: delivery key, pricing state under its versions, the message's cost,
//! the wallet debit).
//!
//! A caller that prices an event from state it holds in memory hands the batch over *while it
//! still holds its turn on that state* ([`LineStore::commit_in_order`]), so batches that build
//! on one another reach the database in the order they were priced, and the next event can be
//! priced at once instead of waiting for the previous one's commit. One flusher per store
//! takes every batch waiting and applies them in arrival order in one transaction. Conflicts
//! are rare, so a group first runs its batches back to back; the first batch refused (or
//! failing) rolls the whole transaction back, and the group runs again with each batch inside
//! a savepoint of its own: that batch is rolled back to its savepoint and answered alone, and
//! the others commit together (the next few groups then take savepoints from the start: where
//! there was one conflict, Meta's retries often bring more). Two statements fewer per batch
//! is a sixth of a group's round trips to SQLite's thread. If the group's transaction itself
//! fails, its batches are committed one per transaction, in order, so a failure belongs to the
//! batch that caused it.
//!
//! [`LineStore::commit_in_order`]: crate::LineStore::commit_in_order

use std::sync::atomic::{AtomicU32, Ordering};

use jiff::Timestamp;
use sqlx::AnyConnection;
use tokio::sync::oneshot;

use super::meta_group;
use super::queue::FlushQueue;
use super::script::Script;
use super::webhooks::push_insert_events;
use super::SqlStore;
use crate::{Batch, Conflict, NewEvent, StoreError, StoreResult};

/// The most batches one transaction takes: a group holds its rows' locks (PostgreSQL) and the
/// one writer (SQLite) until it commits.
const MAX_GROUP: usize = 128;

/// How many groups after one that met a conflict take savepoints from the start.
const CAREFUL_GROUPS: u32 = 8;

/// What a batch committed in order came to.
pub type OrderedOutcome = StoreResult<Result<(), Conflict>>;

struct Request {
    batch: Box<Batch>,
    now: Timestamp,
    reply: oneshot::Sender<OrderedOutcome>,
}

/// The strict batches waiting for their ordered group transaction.
#[derive(Default)]
pub(crate) struct OrderedGroup {
    waiting: FlushQueue<Request>,
    /// Groups still to run with savepoints from the start (after a conflict).
    careful: AtomicU32,
}

impl std::fmt::Debug for OrderedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedGroup").finish_non_exhaustive()
    }
}

/// A batch handed to the ordered group: resolves once its group committed (or refused it).
pub struct OrderedCommit {
    answer: oneshot::Receiver<OrderedOutcome>,
}

impl std::future::Future for OrderedCommit {
    type Output = OrderedOutcome;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.answer)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(gone())))
    }
}

impl OrderedGroup {
    /// Queues `batch` behind every batch queued before it; the flusher starts if idle.
    pub(crate) fn submit(store: &SqlStore, batch: Batch, now: Timestamp) -> OrderedCommit {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            batch: Box::new(batch),
            now,
            reply,
        };
        if store.ordered.waiting.push(request) {
            // A task of its own: the caller may be cancelled, the others still need answers.
            super::flusher::spawn(flush(store.clone()));
        }
        OrderedCommit { answer }
    }

    /// Whether the next group takes savepoints from the start (a group met a conflict
    /// recently); counts that group off.
    fn careful(&self) -> bool {
        self.careful
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The flusher stopped without answering (it panicked, or the runtime is shutting down).
fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::WorkerCrashed)
}

/// Writes waiting batches, a group per transaction, in arrival order, until none is left.
async fn flush(store: SqlStore) {
    while let Some(mut requests) = store.ordered.waiting.take(MAX_GROUP) {
        let careful = store.ordered.careful();
        // The events of the group go in together, after the batches (see `write_group`);
        // a batch committed alone takes its own back.
        let events: Vec<Vec<NewEvent>> = requests
            .iter_mut()
            .map(|r| std::mem::take(&mut r.batch.events))
            .collect();
        let mut written = match careful {
            true => Ok(None),
            false => write_group(&store, &requests, &events, false).await,
        };
        if matches!(written, Ok(None)) {
            if !careful {
                store
                    .ordered
                    .careful
                    .store(CAREFUL_GROUPS, Ordering::Relaxed);
            }
            written = write_group(&store, &requests, &events, true).await;
        }
        match written.map(Option::unwrap_or_default) {
            Ok(outcomes) => {
                for (r, outcome) in requests.into_iter().zip(outcomes) {
                    // A caller that gave up no longer listens.
                    drop(r.reply.send(outcome));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, batches = requests.len(), "an ordered group failed; committing one by one");
                for (mut r, events) in requests.into_iter().zip(events) {
                    r.batch.events = events;
                    let outcome = store.commit_alone(&r.batch, r.now).await;
                    drop(r.reply.send(outcome));
                }
            }
        }
    }
}

/// One transaction for all `requests`; what each came to. With `savepoints`, each batch runs
/// in a savepoint of its own and one refused is rolled back alone; without, the first batch
/// refused rolls the whole transaction back and the answer is `None` (run the group again
/// with savepoints). The webhook events of the batches that passed (`events`, taken out of
/// the batches) are written last, together, in a few multi-row statements: they meet no
/// conflict and no batch reads them. An error outside a batch (beginning, a savepoint
/// statement, the events, the commit) fails the group.
async fn write_group(
    store: &SqlStore,
    requests: &[Request],
    events: &[Vec<NewEvent>],
    savepoints: bool,
) -> StoreResult<Option<Vec<OrderedOutcome>>> {
    let mut tx = store.begin_flush().await?;
    let bulk = !savepoints && requests.iter().all(|r| meta_group::bulk_shaped(&r.batch));
    let outcomes = if bulk {
        // Meta notifications only: written a kind of row at a time (meta_group.rs).
        let batches: Vec<(&Batch, Timestamp)> =
            requests.iter().map(|r| (&*r.batch, r.now)).collect();
        if !meta_group::write(&mut tx, store.backend, &batches).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        requests.iter().map(|_| Ok(Ok(()))).collect()
    } else {
        let mut outcomes = Vec::with_capacity(requests.len());
        for r in requests {
            if !savepoints {
                let outcome = SqlStore::commit_in(&mut tx, &r.batch, r.now).await;
                if !matches!(outcome, Ok(Ok(()))) {
                    tx.rollback().await?;
                    return Ok(None);
                }
                outcomes.push(outcome);
                continue;
            }
            run(&mut tx, "SAVEPOINT ordered_batch").await?;
            let outcome = SqlStore::commit_in(&mut tx, &r.batch, r.now).await;
            if !matches!(outcome, Ok(Ok(()))) {
                run(&mut tx, "ROLLBACK TO SAVEPOINT ordered_batch").await?;
            }
            run(&mut tx, "RELEASE SAVEPOINT ordered_batch").await?;
            outcomes.push(outcome);
        }
        outcomes
    };
    let passed: Vec<(&NewEvent, Timestamp)> = requests
        .iter()
        .zip(events)
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Ok(Ok(()))))
        .flat_map(|((r, events), _)| events.iter().map(move |e| (e, r.now)))
        .collect();
    let mut script = Script::new(store.backend);
    push_insert_events(&mut tx, &mut script, &passed).await?;
    script.run(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(outcomes))
}

async fn run(conn: &mut AnyConnection, sql: &str) -> StoreResult<()> {
    sqlx::query(sql).execute(&mut *conn).await?;
    Ok(())
}
