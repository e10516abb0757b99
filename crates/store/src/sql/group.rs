//! Group commit for the frequent small writes: queuing and sending messages, emitting events,
//! and recording webhook delivery attempts (on PostgreSQL, events and attempts only).
//!
//! SQLite has one writer, and a transaction of its own per write spent most of its time on
//! the round trips of `BEGIN`, `COMMIT` and the pool to the connection's thread. Writes that
//! arrive together — messages being queued by the API, sends being recorded by the worker,
//! test events, delivery attempts — therefore share one transaction: the first starts a flusher task, which takes every write
//! waiting at that moment, applies them in arrival order and commits, then answers each, and
//! goes on while writes keep coming. Each write is applied whole and answered only once
//! committed. Only writes that cannot meet a [`Conflict`](crate::Conflict) join a group; if
//! a group's transaction fails, its writes are retried one per transaction, so a failure
//! belongs to the write that caused it.
//!
//! On PostgreSQL writers run side by side, but a webhook event cost three transactions of
//! five or six statements each (its outbox rows, its claim, its attempt): grouping the events
//! and the attempts made the database and the server do a fraction of that work per event.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use tokio::sync::oneshot;
use wagate_domain::jobs::{Job, NewJob};
use wagate_domain::line::LineStatus;
use wagate_domain::time::to_micros;

use super::jobs::{insert_jobs, push_insert_jobs};
use super::lines::{insert_message, push_insert_messages, push_update_message};
use super::queue::FlushQueue;
use super::script::{Arg, Script};
use super::webhooks::{push_insert_events, record_attempt_in, AttemptWrite};
use super::{placeholders, text, SqlStore, MAX_PARAMS};
use crate::error::corrupt;
use crate::{
    AttemptFollowUp, Batch, MessageRecord, MessageUpdate, NewEvent, StoreError, StoreResult,
};

/// The most writes one transaction takes.
const MAX_GROUP: usize = 256;

/// A write that may share a transaction.
enum Write {
    /// Queue an outbound message within its line's daily limit, with its send job.
    Enqueue {
        msg: Box<MessageRecord>,
        day: i64,
        limit: u32,
        send_job: NewJob,
    },
    /// Commit a batch that cannot conflict (see [`can_join`]).
    Commit { batch: Box<Batch>, now: Timestamp },
    /// Record a finished webhook delivery attempt.
    Attempt(Box<AttemptWrite>),
    /// Lease due jobs (SQLite; see [`WriteGroup::claim`]).
    Claim(Box<Claim>),
}

/// A worker's claim of due jobs, as `JobStore::claim_due_jobs` takes it.
pub(crate) struct Claim {
    pub(crate) now: Timestamp,
    pub(crate) wall_now: Timestamp,
    pub(crate) lease_until: Timestamp,
    pub(crate) limit: u32,
    pub(crate) holder: String,
}

/// What a write in a group came to.
enum Outcome {
    /// A queued message's line status, or `None` (see [`Reply::Enqueued`]); nothing for
    /// the other writes.
    Status(Option<LineStatus>),
    /// The jobs a claim leased.
    Jobs(Vec<Job>),
}

/// Whether a batch may join a group: one that changes no line and no money cannot be refused
/// by a [`Conflict`](crate::Conflict), so it never has to be undone alone.
pub(crate) fn can_join(batch: &Batch) -> bool {
    batch.insert_line.is_none()
        && batch.update_line.is_none()
        && batch.billing_account.is_none()
        && batch.meta.is_none()
        && batch.calls.is_none()
        && batch.days.is_none()
        && batch.numbers.is_none()
}

/// Where a write's outcome goes.
enum Reply {
    /// Queued with the line's status, or refused by the line (`None`: not found, not
    /// linked, or at its daily limit).
    Enqueued(oneshot::Sender<StoreResult<Option<LineStatus>>>),
    /// Committed.
    Committed(oneshot::Sender<StoreResult<()>>),
    /// Leased, once committed.
    Claimed(oneshot::Sender<StoreResult<Vec<Job>>>),
}

impl Reply {
    /// Answers with what the write returned.
    fn send(self, outcome: StoreResult<Outcome>) {
        // A caller that gave up (its request was cancelled) no longer listens.
        match self {
            Reply::Enqueued(tx) => drop(tx.send(outcome.map(|o| match o {
                Outcome::Status(s) => s,
                Outcome::Jobs(_) => None,
            }))),
            Reply::Committed(tx) => drop(tx.send(outcome.map(|_| ()))),
            Reply::Claimed(tx) => drop(tx.send(outcome.map(|o| match o {
                Outcome::Jobs(jobs) => jobs,
                Outcome::Status(_) => Vec::new(),
            }))),
        }
    }
}

struct Request {
    write: Write,
    reply: Reply,
    /// When it was queued (for the trace of a group's waits).
    queued: std::time::Instant,
}

/// The writes waiting for the writer.
#[derive(Default)]
pub(crate) struct WriteGroup {
    waiting: FlushQueue<Request>,
}

impl std::fmt::Debug for WriteGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGroup").finish_non_exhaustive()
    }
}

impl WriteGroup {
    /// Queues a message in the next group transaction; its line's status once committed,
    /// or `None` if the line refused it (not found, not linked, or at its daily limit).
    pub(crate) async fn enqueue(
        store: &SqlStore,
        msg: MessageRecord,
        day: i64,
        limit: u32,
        send_job: NewJob,
    ) -> StoreResult<Option<LineStatus>> {
        let (tx, answer) = oneshot::channel();
        let write = Write::Enqueue {
            msg: Box::new(msg),
            day,
            limit,
            send_job,
        };
        Self::submit(store, write, Reply::Enqueued(tx));
        answer.await.map_err(|_| gone())?
    }

    /// Commits a batch that may join (see [`can_join`]) in the next group transaction.
    pub(crate) async fn commit(store: &SqlStore, batch: Batch, now: Timestamp) -> StoreResult<()> {
        let (tx, answer) = oneshot::channel();
        let write = Write::Commit {
            batch: Box::new(batch),
            now,
        };
        Self::submit(store, write, Reply::Committed(tx));
        answer.await.map_err(|_| gone())?
    }

    /// Records a delivery attempt in the next group transaction.
    pub(crate) async fn attempt(store: &SqlStore, attempt: AttemptWrite) -> StoreResult<()> {
        let (tx, answer) = oneshot::channel();
        Self::submit(
            store,
            Write::Attempt(Box::new(attempt)),
            Reply::Committed(tx),
        );
        answer.await.map_err(|_| gone())?
    }

    /// Leases due jobs in the next group transaction (SQLite). A busy worker claims hundreds
    /// of times a second; a transaction of its own each took SQLite's one writer between the
    /// groups, so every group first waited for a claim to finish (bench_lines). In the group,
    /// a claim runs after the group's new jobs are written, so a message queued in it can be
    /// sent at once.
    pub(crate) async fn claim(store: &SqlStore, claim: Claim) -> StoreResult<Vec<Job>> {
        let (tx, answer) = oneshot::channel();
        Self::submit(store, Write::Claim(Box::new(claim)), Reply::Claimed(tx));
        answer.await.map_err(|_| gone())?
    }

    fn submit(store: &SqlStore, write: Write, reply: Reply) {
        if store.group.waiting.push(Request {
            write,
            reply,
            queued: std::time::Instant::now(),
        }) {
            // A task of its own: the caller may be cancelled, the others still need answers.
            super::flusher::spawn(flush(store.clone()));
        }
    }
}

/// The flusher stopped without answering (it panicked).
fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::WorkerCrashed)
}

/// Writes waiting requests, a group per transaction, until none is left.
async fn flush(store: SqlStore) {
    while let Some(requests) = store.group.waiting.take(MAX_GROUP) {
        let started = std::time::Instant::now();
        let written = write_group(&store, &requests).await;
        trace_group(&requests, started);
        match written {
            Ok(outcomes) => {
                for (r, outcome) in requests.into_iter().zip(outcomes) {
                    r.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, writes = requests.len(), "a group transaction failed; writing one by one");
                for r in requests {
                    let outcome = write_alone(&store, &r.write).await;
                    r.reply.send(outcome);
                }
            }
        }
    }
}

/// What a group held and how long it took, for `WAGATE_LOG=wagate_store::sql::group=trace`
/// (the writer's busy share and what delays a queued message: see bench_lines).
fn trace_group(requests: &[Request], started: std::time::Instant) {
    if !tracing::enabled!(tracing::Level::TRACE) {
        return;
    }
    let mut kinds = [0u32; 4];
    for r in requests {
        kinds[match r.write {
            Write::Enqueue { .. } => 0,
            Write::Commit { .. } => 1,
            Write::Attempt(_) => 2,
            Write::Claim(_) => 3,
        }] += 1;
    }
    let [enqueues, commits, attempts, claims] = kinds;
    let waited: Vec<u128> = requests
        .iter()
        .filter(|r| matches!(r.write, Write::Enqueue { .. }))
        .map(|r| started.duration_since(r.queued).as_micros())
        .collect();
    let enqueue_wait_max = waited.iter().max().copied().unwrap_or(0) as u64;
    let enqueue_wait_mean = (waited.iter().sum::<u128>() / waited.len().max(1) as u128) as u64;
    tracing::trace!(
        enqueue_wait_max,
        enqueue_wait_mean,
        enqueues,
        commits,
        attempts,
        claims,
        micros = started.elapsed().as_micros() as u64,
        "group written"
    );
}

/// One transaction for all `requests`; what each returned.
///
/// Every statement is a round trip to SQLite's connection thread, and those round trips,
/// not SQLite itself, were most of the cost of a queued message (bench_lines). So the group
/// is written kind by kind: each message's daily-limit count (it decides whether the
/// message is taken, in arrival order), then all new messages in multi-row inserts, every
/// status change, the finished jobs in one delete, the events and the new jobs in multi-row
/// inserts — everything after the counts sent as one [`Script`]. That leaves what writing the requests one after the other would: no write in a
/// group reads what another wrote (a message is updated only once its insert committed),
/// and finished jobs go before new ones, so a new job is never dropped as a duplicate of a
/// job the group removes.
async fn write_group(store: &SqlStore, requests: &[Request]) -> StoreResult<Vec<Outcome>> {
    let backend = store.backend;
    let mut tx = store.begin_flush().await?;
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut messages: Vec<&MessageRecord> = Vec::new();
    let mut jobs: Vec<(&NewJob, Timestamp)> = Vec::new();
    let mut commits: Vec<(&Batch, Timestamp)> = Vec::new();
    // A line with one message in the group is counted in a multi-row statement; a line
    // with several, one message at a time, in arrival order (each sees the one before).
    let mut per_line: HashMap<&str, usize> = HashMap::new();
    for r in requests {
        if let Write::Enqueue { msg, .. } = &r.write {
            *per_line.entry(msg.line_id.as_str()).or_default() += 1;
        }
    }
    let lone: Vec<(&MessageRecord, i64, u32)> = requests
        .iter()
        .filter_map(|r| match &r.write {
            Write::Enqueue {
                msg, day, limit, ..
            } if per_line[msg.line_id.as_str()] == 1 => Some((&**msg, *day, *limit)),
            _ => None,
        })
        .collect();
    let mut lone_status = HashMap::new();
    for chunk in lone.chunks(MAX_PARAMS / 4) {
        let sql = format!(
            "WITH v (id, account_id, day, lim) AS (VALUES {})
             UPDATE lines SET
                 sent_today = CASE WHEN lines.sent_day = v.day THEN lines.sent_today + 1 ELSE 1 END,
                 sent_day = v.day
             FROM v
             WHERE lines.id = v.id AND lines.account_id = v.account_id
               AND lines.status IN ('ready', 'reconnecting')
               AND (lines.sent_day <> v.day OR lines.sent_today < v.lim)
             RETURNING lines.id AS id, lines.status AS status",
            placeholders(backend, chunk.len(), 4, 1)
        );
        let mut q = sqlx::query(&sql);
        for (m, day, limit) in chunk {
            q = q
                .bind(m.line_id.as_str())
                .bind(m.account_id.as_str())
                .bind(*day)
                .bind(i64::from(*limit));
        }
        for row in q.fetch_all(&mut *tx).await? {
            lone_status.insert(text(&row, "id")?, line_status(&row)?);
        }
    }
    for r in requests {
        match &r.write {
            Write::Enqueue {
                msg,
                day,
                limit,
                send_job,
            } => {
                let status = if per_line[msg.line_id.as_str()] == 1 {
                    lone_status.get(msg.line_id.as_str()).copied()
                } else {
                    count_one(&mut tx, msg, *day, *limit).await?
                };
                if let Some(s) = status {
                    messages.push(msg);
                    if s == LineStatus::Ready {
                        jobs.push((send_job, msg.created_at));
                    }
                }
                outcomes.push(Outcome::Status(status));
            }
            Write::Commit { batch, now } => {
                commits.push((batch, *now));
                outcomes.push(Outcome::Status(None));
            }
            // Answered below, once run.
            Write::Attempt(_) | Write::Claim(_) => outcomes.push(Outcome::Status(None)),
        }
    }
    messages.extend(commits.iter().flat_map(|(b, _)| &b.insert_messages));
    let events: Vec<(&NewEvent, Timestamp)> = commits
        .iter()
        .flat_map(|(b, now)| b.events.iter().map(move |e| (e, *now)))
        .collect();
    // The rest is writes only: one script, one round trip.
    let mut script = Script::new(backend);
    push_insert_messages(&mut script, &messages);
    // A strict batch's status changes run first, one by one in arrival order, each checked:
    // one that finds its message moved on fails the group, and the writes are then made one
    // by one, so that batch alone is refused (`Conflict::MessageChanged`) and no event of it
    // is written.
    let strict: Vec<&MessageUpdate> = commits
        .iter()
        .filter(|(b, _)| b.messages_must_move)
        .flat_map(|(b, _)| &b.update_messages)
        .collect();
    let strict_ids: HashSet<&str> = strict.iter().map(|u| u.id.as_str()).collect();
    if strict_ids.len() == strict.len() {
        // Distinct messages (the worker's sends, nearly always): a few multi-row statements
        // that say which moved; one missing fails the group just the same.
        if update_messages_checked(&mut tx, backend, &strict).await? < strict.len() {
            return Err(StoreError::Conflict(crate::Conflict::MessageChanged));
        }
    } else {
        for u in strict {
            if !super::lines::update_message(&mut tx, u).await? {
                return Err(StoreError::Conflict(crate::Conflict::MessageChanged));
            }
        }
    }
    let updates: Vec<&MessageUpdate> = commits
        .iter()
        .filter(|(b, _)| !b.messages_must_move)
        .flat_map(|(b, _)| &b.update_messages)
        .collect();
    let distinct: HashSet<&str> = updates.iter().map(|u| u.id.as_str()).collect();
    if distinct.len() == updates.len() {
        push_update_messages(&mut script, &updates);
    } else {
        // A message changed twice in one group: in order, each after the one before.
        for u in updates {
            push_update_message(&mut script, u);
        }
    }
    let finished: Vec<&str> = commits
        .iter()
        .filter_map(|(b, _)| b.finish_job.as_ref().map(|j| j.as_str()))
        .collect();
    script.push_in(&finished, |ids| {
        format!("DELETE FROM jobs WHERE id IN ({ids})")
    });
    push_insert_events(&mut tx, &mut script, &events).await?;
    jobs.extend(
        commits
            .iter()
            .flat_map(|(b, now)| b.jobs.iter().map(move |j| (j, *now))),
    );
    push_insert_jobs(&mut script, &jobs);
    script.run(&mut tx).await?;
    // Attempts last: each removes its own job and may schedule its retry, touching no row
    // the writes above do. Delivered ones (nearly all) are recorded together, the others
    // one after the other.
    let (delivered, others): (Vec<&AttemptWrite>, Vec<&AttemptWrite>) = requests
        .iter()
        .filter_map(|r| match &r.write {
            Write::Attempt(a) => Some(&**a),
            _ => None,
        })
        .partition(|a| matches!(a.follow_up, AttemptFollowUp::Delivered));
    record_delivered_attempts(&mut tx, backend, &delivered).await?;
    for a in others {
        record_attempt_in(&mut tx, a).await?;
    }
    // Claims last: they see the jobs the group wrote and none it removed.
    for (r, outcome) in requests.iter().zip(outcomes.iter_mut()) {
        if let Write::Claim(c) = &r.write {
            *outcome = Outcome::Jobs(claim_in_group(&mut tx, backend, c).await?);
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Runs `c` inside the caller's transaction.
async fn claim_in_group(
    conn: &mut AnyConnection,
    backend: super::Backend,
    c: &Claim,
) -> StoreResult<Vec<Job>> {
    super::jobs::claim_in(
        conn,
        backend,
        c.now,
        c.wall_now,
        c.lease_until,
        c.limit,
        &c.holder,
    )
    .await
}

/// Records attempts that delivered, as [`record_attempt_in`] does one by one, in four
/// statements: their jobs removed, the attempts written (an attempt already recorded by an
/// earlier run of its job is skipped with its follow-up), their deliveries marked
/// `delivered`, and the failing streak of their endpoints ended.
async fn record_delivered_attempts(
    tx: &mut AnyConnection,
    backend: super::Backend,
    attempts: &[&AttemptWrite],
) -> StoreResult<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let mut script = Script::new(backend);
    let jobs: Vec<&str> = attempts.iter().map(|a| a.job.as_str()).collect();
    script.push_in(&jobs, |ids| format!("DELETE FROM jobs WHERE id IN ({ids})"));
    script.run(&mut *tx).await?;
    let mut recorded: HashSet<String> = HashSet::new();
    for chunk in attempts.chunks(MAX_PARAMS / 8) {
        let sql = format!(
            "INSERT INTO delivery_attempts (delivery_id, event_id, endpoint_id, attempt,
                 attempted_at, status_code, latency_ms, error)
             VALUES {} ON CONFLICT (delivery_id, attempt) DO NOTHING RETURNING delivery_id",
            placeholders(backend, chunk.len(), 8, 1)
        );
        let mut q = sqlx::query(&sql);
        for w in chunk {
            let a = &w.attempt;
            q = q
                .bind(a.delivery_id.as_str())
                .bind(w.event_id.as_str())
                .bind(a.endpoint_id.as_str())
                .bind(i64::from(a.attempt))
                .bind(to_micros(a.attempted_at))
                .bind(a.status_code.map(i64::from))
                .bind(a.latency_ms)
                .bind(a.error.as_deref());
        }
        for row in q.fetch_all(&mut *tx).await? {
            recorded.insert(text(&row, "delivery_id")?);
        }
    }
    let fresh: Vec<&AttemptWrite> = attempts
        .iter()
        .copied()
        .filter(|w| recorded.contains(w.attempt.delivery_id.as_str()))
        .collect();
    let mut script = Script::new(backend);
    script.push_rows(
        &fresh,
        |values| {
            format!(
                "WITH v (id, attempts, at) AS (VALUES {values})
                 UPDATE deliveries SET status = 'delivered', attempts = v.attempts,
                     next_attempt_at = NULL, updated_at = v.at
                 FROM v WHERE deliveries.id = v.id"
            )
        },
        |w| {
            [
                w.attempt.delivery_id.as_str().into(),
                i64::from(w.attempt.attempt).into(),
                to_micros(w.now).into(),
            ]
        },
    );
    let mut endpoints: Vec<&str> = fresh
        .iter()
        .map(|w| w.attempt.endpoint_id.as_str())
        .collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    // Touches an endpoint's row only when its streak changes (see `record_attempt_in`).
    script.push_in(&endpoints, |ids| {
        format!(
            "UPDATE webhook_endpoints SET failing_since = NULL
             WHERE failing_since IS NOT NULL AND id IN ({ids})"
        )
    });
    script.run(&mut *tx).await
}

/// `write` in a transaction of its own.
async fn write_alone(store: &SqlStore, w: &Write) -> StoreResult<Outcome> {
    let mut tx = store.begin_flush().await?;
    let outcome = write(&mut tx, w).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Applies one write inside a transaction.
async fn write(conn: &mut AnyConnection, w: &Write) -> StoreResult<Outcome> {
    match w {
        Write::Enqueue {
            msg,
            day,
            limit,
            send_job,
        } => queue_one(conn, msg, *day, *limit, send_job)
            .await
            .map(Outcome::Status),
        Write::Commit { batch, now } => match SqlStore::commit_in(conn, batch, *now).await? {
            Ok(()) => Ok(Outcome::Status(None)),
            // Only a strict batch's message changes can meet a conflict here: nothing of it is
            // committed, and its caller hears of it as the conflict it is.
            Err(c) => Err(StoreError::Conflict(c)),
        },
        Write::Attempt(a) => record_attempt_in(conn, a)
            .await
            .map(|()| Outcome::Status(None)),
        Write::Claim(c) => {
            let backend = super::Backend::of(conn);
            claim_in_group(conn, backend, c).await.map(Outcome::Jobs)
        }
    }
}

/// Queues one message in a transaction of its own (PostgreSQL, where writers run side by
/// side, and a failed group).
pub(crate) async fn enqueue_alone(
    store: &SqlStore,
    msg: &MessageRecord,
    day: i64,
    limit: u32,
    send_job: &NewJob,
) -> StoreResult<Option<LineStatus>> {
    let mut tx = store.begin_write().await?;
    let outcome = queue_one(&mut tx, msg, day, limit, send_job).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Counts `msg` against its line's daily limit and, if the line takes it, writes it with its
/// send job (a `reconnecting` line's message waits for the heal's job).
async fn queue_one(
    conn: &mut AnyConnection,
    msg: &MessageRecord,
    day: i64,
    limit: u32,
    send_job: &NewJob,
) -> StoreResult<Option<LineStatus>> {
    let Some(status) = count_one(conn, msg, day, limit).await? else {
        return Ok(None);
    };
    insert_message(conn, msg).await?;
    if status == LineStatus::Ready {
        insert_jobs(conn, std::slice::from_ref(send_job), msg.created_at).await?;
    }
    Ok(Some(status))
}

/// Counts `msg` against its line's daily limit; the line's status if the line takes it,
/// `None` if not (not found, not linked, or at its limit).
async fn count_one(
    conn: &mut AnyConnection,
    msg: &MessageRecord,
    day: i64,
    limit: u32,
) -> StoreResult<Option<LineStatus>> {
    let row = sqlx::query(
        "UPDATE lines SET
             sent_today = CASE WHEN sent_day = $3 THEN sent_today + 1 ELSE 1 END,
             sent_day = $3
         WHERE id = $1 AND account_id = $2 AND status IN ('ready', 'reconnecting')
           AND (sent_day <> $3 OR sent_today < $4)
         RETURNING status",
    )
    .bind(msg.line_id.as_str())
    .bind(msg.account_id.as_str())
    .bind(day)
    .bind(i64::from(limit))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    line_status(&row).map(Some)
}

/// The `status` column of a row of `lines`.
fn line_status(row: &AnyRow) -> StoreResult<LineStatus> {
    let status_text = text(row, "status")?;
    LineStatus::from_db(&status_text).ok_or_else(|| corrupt("lines.status", &status_text))
}

/// Applies the status changes of distinct messages, each only if its message still has the
/// status it was read with (as [`update_message`](super::lines::update_message) does), in
/// multi-row statements; how many were applied.
async fn update_messages_checked(
    tx: &mut AnyConnection,
    backend: super::Backend,
    updates: &[&MessageUpdate],
) -> StoreResult<usize> {
    let mut applied = 0;
    for chunk in updates.chunks(MAX_PARAMS / 6) {
        let values = placeholders(backend, chunk.len(), 6, 1);
        let sql = format!(
            "{} RETURNING messages.id AS id",
            update_messages_sql(&values)
        );
        let args = chunk.iter().flat_map(|u| message_update_row(u)).collect();
        applied += super::script::bind(sqlx::query(&sql), args)
            .fetch_all(&mut *tx)
            .await?
            .len();
    }
    Ok(applied)
}

/// The status changes of distinct messages in one statement, each only if its message still
/// has the status it was read with; `values` holds rows of [`message_update_row`].
pub(crate) fn update_messages_sql(values: &str) -> String {
    format!(
        "WITH v (id, status, error, provider_id, at, from_status) AS (VALUES {values})
         UPDATE messages SET status = v.status, error = COALESCE(v.error, messages.error),
             provider_id = COALESCE(v.provider_id, messages.provider_id), updated_at = v.at
         FROM v
         WHERE messages.id = v.id AND messages.status = v.from_status"
    )
}

/// One row of [`update_messages_sql`].
pub(crate) fn message_update_row(u: &MessageUpdate) -> [Arg<'_>; 6] {
    [
        u.id.as_str().into(),
        u.status.as_str().into(),
        u.error.as_deref().into(),
        u.provider_id.as_deref().into(),
        to_micros(u.at).into(),
        u.from_status.as_str().into(),
    ]
}

/// Adds the status changes of distinct messages (multi-row statements, each skipped if its
/// message moved meanwhile, as [`update_message`](super::lines::update_message) does) to
/// `script`.
fn push_update_messages<'a>(script: &mut Script<'a>, updates: &[&'a MessageUpdate]) {
    script.push_rows(updates, update_messages_sql, |u| message_update_row(u));
}
