//! The job scheduler: runs durable jobs when they fall due on the business clock.
//!
//! In production a background loop claims due jobs as real time passes. In the sandbox the
//! same loop runs whatever is due at the (frozen) sandbox time, and
//! [`Scheduler::advance_to`] moves the clock job by job, in due-time order, so a test that
//! advances a month sees every trial end, renewal and retry of that month happen in order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jiff::SignedDuration;
use jiff::Timestamp;
use tokio::sync::{Notify, Semaphore};
use wagate_domain::clock::{Clock, ManualClock, SANDBOX_CLOCK_MAX};
use wagate_domain::ids::JobId;
use wagate_domain::jobs::{retry_delay, Job, JOB_LEASE, JOB_LEASE_HEARTBEAT};
use wagate_store::{Store, StoreResult};

/// How many free slots the background loop gathers (waiting at most [`CLAIM_GATHER`]) before
/// it claims again while jobs are waiting: one claim then serves many jobs.
const CLAIM_BATCH: usize = 32;
/// How long the background loop waits to gather [`CLAIM_BATCH`] slots.
const CLAIM_GATHER: Duration = Duration::from_millis(4);
/// How long the background loop waits after a claim that took every due job.
const CLAIM_PAUSE: Duration = Duration::from_millis(5);
/// The most jobs one claim takes.
const MAX_CLAIM: usize = 64;
/// How many jobs due at one instant a sandbox advance runs at once.
const SAME_INSTANT_BATCH: u32 = 64;
/// The most jobs one [`JobHandler::run_batch`] is offered.
const RUN_BATCH: u32 = 16384;

/// Runs one kind of job.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Does the job's work. An error makes the job due again after a backoff; the work must
    /// therefore be idempotent (every handler's writes are keyed so a rerun does nothing twice).
    async fn run(&self, job: &Job) -> anyhow::Result<()>;

    /// Told of the jobs of this kind one claim took, before any of them runs: a handler
    /// may read what they need in one query instead of one each. Errors are the handler's
    /// own (each job's run reads whatever was not prepared).
    async fn prepare(&self, _jobs: &[&Job]) {}

    /// Whether a successful run already removed the job (in the transaction of its own
    /// work), sparing the scheduler a separate write.
    fn removes_own_job(&self) -> bool {
        false
    }

    /// Runs jobs of this kind as one unit of work — the sandbox advance offers them when they
    /// are the next jobs due, in due order, with nothing else due between them and none
    /// leased. Each must be done exactly as [`JobHandler::run`] would do it alone at business
    /// time `max(due_at, not_before)`, one after the other; a job a run schedules before the
    /// next one's time must end the batch. Returns how many of the first jobs it did (their
    /// rows removed in the same transaction, unless a worker leased one at `wall_now`); the
    /// rest, and all of them on 0 (the default), run one by one.
    async fn run_batch(
        &self,
        _jobs: &[Job],
        _not_before: Timestamp,
        _wall_now: Timestamp,
    ) -> anyhow::Result<usize> {
        Ok(0)
    }
}

/// What a sandbox clock advance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvanceReport {
    /// The clock before.
    pub from: Timestamp,
    /// The clock after.
    pub to: Timestamp,
    /// Jobs that fell due after `from` and ran on the way (jobs already due at `from` run
    /// first, uncounted: whether the background loop got to them first is a race).
    pub jobs_run: u64,
    /// Whether the clock reached the target and every job due by it ran; `false` when the
    /// time budget ran out first (the clock then stands at the last due time it reached;
    /// jobs due at that instant may be left, and the next advance runs them first).
    pub complete: bool,
}

/// Where a sandbox advance goes. Resolved once the advance holds the scheduler, so advances
/// sent together add up: each starts where the one before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceTarget {
    /// This much later than the clock at the start of the advance.
    By(SignedDuration),
    /// This time (not earlier than the clock).
    To(Timestamp),
    /// This time, or just what is due now if the clock is already past it (another advance
    /// got there first).
    AtLeast(Timestamp),
}

/// Why a sandbox advance was refused (nothing moved) or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    /// The target is before the clock.
    #[error("the sandbox clock never moves backwards; it is at {now}")]
    Backwards {
        /// The clock.
        now: Timestamp,
    },
    /// The target is past [`SANDBOX_CLOCK_MAX`].
    #[error("the sandbox clock stays at or before {SANDBOX_CLOCK_MAX}; it is at {now}")]
    PastTheEnd {
        /// The clock.
        now: Timestamp,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] wagate_store::StoreError),
}

/// How often, at most, a sandbox server's background loop reads the stored sandbox clock
/// (see [`Scheduler::follow_stored_clock`]).
const CLOCK_CATCH_UP: Duration = Duration::from_millis(100);

/// How the background loop behaves.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How often to look for newly due jobs when nothing wakes the loop.
    pub poll_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 64,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// The scheduler. Cheap to clone; clones share handlers and state.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wall: Arc<dyn Clock>,
    handlers: RwLock<HashMap<String, Arc<dyn JobHandler>>>,
    wake: Notify,
    /// Held by a sandbox advance: the background loop claims nothing meanwhile, so the
    /// advance runs every job itself, strictly in due-time order.
    advance_lock: tokio::sync::Mutex<()>,
    /// Jobs this process has claimed and not yet recorded: the heartbeat renews their leases.
    running: Mutex<HashSet<JobId>>,
    /// This server's identity among the servers sharing the store (see
    /// [`crate::lines::ownership`]).
    holder: String,
    /// The sandbox clock the background loop keeps up with the stored one, which another
    /// sandbox server on the same store may have advanced.
    follow: std::sync::OnceLock<Arc<ManualClock>>,
}

/// A handler's answer that its job is another server's to run (the line it acts on is
/// served elsewhere): the job is given back unrun, with no attempt counted.
#[derive(Debug, thiserror::Error)]
#[error("this job is another server's to run")]
pub struct NotHere;

impl Scheduler {
    /// A scheduler over `store`, reading business time from `clock` and lease time from `wall`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, wall: Arc<dyn Clock>) -> Self {
        Scheduler {
            inner: Arc::new(Inner {
                store,
                clock,
                wall,
                handlers: RwLock::new(HashMap::new()),
                wake: Notify::new(),
                advance_lock: tokio::sync::Mutex::new(()),
                running: Mutex::new(HashSet::new()),
                holder: crate::lines::ownership::LineOwnership::new_holder(),
                follow: std::sync::OnceLock::new(),
            }),
        }
    }

    /// This server's identity among the servers sharing the store.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Makes the background loop move `clock` up to the stored sandbox clock whenever it looks
    /// for work, so jobs another sandbox server's advance made due run here too.
    pub fn follow_stored_clock(&self, clock: Arc<ManualClock>) {
        let _ = self.inner.follow.set(clock);
    }

    async fn catch_up_clock(&self) {
        if let Some(clock) = self.inner.follow.get() {
            match self.inner.store.load_sandbox_clock().await {
                Ok(Some(saved)) => {
                    clock.set(saved);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the stored sandbox clock"),
            }
        }
    }

    /// Registers the handler of a job kind (replacing any earlier one).
    pub fn register(&self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind.to_owned(), handler);
    }

    /// Tells the background loop that jobs may have become due (e.g. just scheduled for now).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    fn handler(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .cloned()
    }

    async fn claim(&self, limit: u32) -> StoreResult<Vec<Job>> {
        let wall = self.inner.wall.now();
        let jobs = self
            .inner
            .store
            .claim_due_jobs(
                self.inner.clock.now(),
                wall,
                wall + JOB_LEASE,
                limit,
                &self.inner.holder,
            )
            .await?;
        self.running().extend(jobs.iter().map(|j| j.id.clone()));
        Ok(jobs)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<JobId>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renews the leases of every job this process is still running; how many it renewed.
    pub async fn renew_leases(&self) -> StoreResult<u64> {
        let ids: Vec<JobId> = self.running().iter().cloned().collect();
        let wall = self.inner.wall.now();
        self.inner
            .store
            .extend_leases(&ids, wall, wall + JOB_LEASE)
            .await
    }

    /// The heartbeat: renews the running jobs' leases every [`JOB_LEASE_HEARTBEAT`] (real
    /// time: leases are wall-clock) until the task is aborted.
    async fn heartbeat_forever(self) {
        let every = Duration::try_from(JOB_LEASE_HEARTBEAT).unwrap_or(Duration::from_secs(5));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.renew_leases().await {
                tracing::warn!(error = %e, "could not renew job leases; they run out in {JOB_LEASE}");
            }
        }
    }

    /// Offers the claimed `jobs` to their handlers' [`JobHandler::prepare`], kind by kind.
    async fn prepare(&self, jobs: &[Job]) {
        let mut kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            if let Some(handler) = self.handler(kind) {
                let of_kind: Vec<&Job> = jobs.iter().filter(|j| j.kind == kind).collect();
                handler.prepare(&of_kind).await;
            }
        }
    }

    /// Runs one claimed job and records its outcome.
    async fn execute(&self, job: Job) {
        // Off the heartbeat's list however this ends, a panic included: a job that is not
        // running any more must let its lease run out, so that it is claimed again.
        let _running = NotRunning(self, job.id.clone());
        let handler = self.handler(&job.kind);
        let outcome = match &handler {
            Some(h) => h.run(&job).await,
            None => Err(anyhow::anyhow!("no handler for job kind {:?}", job.kind)),
        };
        let store = &self.inner.store;
        let recorded = match outcome {
            Ok(()) if handler.is_some_and(|h| h.removes_own_job()) => Ok(()),
            Ok(()) => store.finish_job(&job.id).await,
            Err(e) if e.is::<NotHere>() => {
                tracing::debug!(job = %job.id, kind = %job.kind, "job given back to the server that serves its line");
                store.release_job(&job.id).await
            }
            Err(e) => {
                let retry_at = self.inner.clock.now() + retry_delay(job.attempts);
                tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempts + 1, error = %e, "job failed; will retry");
                store.fail_job(&job.id, &format!("{e:#}"), retry_at).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the job is claimed again: handlers are idempotent.
            tracing::error!(job = %job.id, error = %e, "could not record a job's outcome");
        }
    }

    /// Claims and runs every job due now, in due order; returns how many ran. Jobs due at the
    /// same instant have no order between them, so they run concurrently (a renewal day of
    /// many lines anchored at one instant does not run one by one); jobs due at different
    /// instants run strictly one instant after the other.
    pub async fn run_due_now(&self) -> StoreResult<u64> {
        Ok(self.run_due_until(None).await?.0)
    }

    /// [`Scheduler::run_due_now`], stopping between two rounds once `deadline` (real time)
    /// has passed: how many jobs ran, and whether nothing due is left.
    async fn run_due_until(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> StoreResult<(u64, bool)> {
        let mut ran = 0;
        loop {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok((ran, false));
            }
            let now = self.inner.clock.now();
            if let Some((_, n)) = self.run_batch(now, now, None).await? {
                ran += n;
                continue;
            }
            let jobs = self.claim(SAME_INSTANT_BATCH).await?;
            if jobs.is_empty() {
                return Ok((ran, true));
            }
            ran += jobs.len() as u64;
            let mut rest = jobs.into_iter().peekable();
            while let Some(first) = rest.next() {
                let due = first.due_at;
                let mut group = vec![first];
                while let Some(next) = rest.next_if(|j| j.due_at == due) {
                    group.push(next);
                }
                let runs = group.into_iter().map(|job| {
                    let this = self.clone();
                    tokio::spawn(async move { this.execute(job).await })
                });
                for handle in runs.collect::<Vec<_>>() {
                    if let Err(e) = handle.await {
                        tracing::error!(error = %e, "a job task panicked");
                    }
                }
            }
        }
    }

    /// Offers the earliest unleased jobs due by `until` that share the first one's kind to
    /// its handler as a batch (see [`JobHandler::run_batch`]) — when `earliest` is given, only
    /// if the first is due then (else a leased job comes before it). Returns the due time of
    /// the last job done and how many were done, or `None` if the handler ran none.
    async fn run_batch(
        &self,
        until: Timestamp,
        not_before: Timestamp,
        earliest: Option<Timestamp>,
    ) -> StoreResult<Option<(Timestamp, u64)>> {
        let wall = self.inner.wall.now();
        let jobs = self
            .inner
            .store
            .peek_due_jobs(until, wall, RUN_BATCH)
            .await?;
        let Some(first) = jobs.first() else {
            return Ok(None);
        };
        if earliest.is_some_and(|due| first.due_at != due) {
            return Ok(None);
        }
        let Some(handler) = self.handler(&first.kind) else {
            return Ok(None);
        };
        let run = jobs.iter().take_while(|j| j.kind == first.kind).count();
        match handler.run_batch(&jobs[..run], not_before, wall).await {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some((jobs[n.min(run) - 1].due_at, n as u64))),
            Err(e) => {
                // Nothing was written: the jobs run one by one, with their own error handling.
                tracing::warn!(kind = %first.kind, error = %e, "a job batch failed; running its jobs one by one");
                Ok(None)
            }
        }
    }

    /// Moves the sandbox clock to `target` (or leaves it where it is, if another advance
    /// already took it further), running every job that falls due on the way in due-time
    /// order (including jobs those jobs schedule), and returns when all have run.
    pub async fn advance_to(
        &self,
        clock: &ManualClock,
        target: Timestamp,
    ) -> Result<AdvanceReport, AdvanceError> {
        self.advance(clock, AdvanceTarget::AtLeast(target), None)
            .await
    }

    /// Moves the sandbox clock to `target` as [`Scheduler::advance_to`] does. With a
    /// `budget` (real time), it stops at the first due time it reaches after the budget is
    /// spent, with `complete: false`, so a long replay never holds its caller unboundedly.
    pub async fn advance(
        &self,
        clock: &ManualClock,
        target: AdvanceTarget,
        budget: Option<Duration>,
    ) -> Result<AdvanceReport, AdvanceError> {
        let started = std::time::Instant::now();
        // Waiting for another advance of this server counts against the budget too: the
        // caller's answer must never wait longer than it asked for.
        let _exclusive = match budget {
            None => self.inner.advance_lock.lock().await,
            Some(b) => match tokio::time::timeout(b, self.inner.advance_lock.lock()).await {
                Ok(guard) => guard,
                Err(_) => {
                    let now = clock.now();
                    return Ok(AdvanceReport {
                        from: now,
                        to: now,
                        jobs_run: 0,
                        complete: false,
                    });
                }
            },
        };
        let store = &self.inner.store;
        // Several sandbox servers on one PostgreSQL share the stored clock: start from the
        // latest any of them reached.
        if let Some(saved) = store.load_sandbox_clock().await? {
            clock.set(saved);
        }
        let from = clock.now();
        let target = match target {
            AdvanceTarget::By(d) => from
                .checked_add(d)
                .ok()
                .filter(|t| *t <= SANDBOX_CLOCK_MAX)
                .ok_or(AdvanceError::PastTheEnd { now: from })?,
            AdvanceTarget::To(t) if t < from => return Err(AdvanceError::Backwards { now: from }),
            AdvanceTarget::To(t) if t > SANDBOX_CLOCK_MAX => {
                return Err(AdvanceError::PastTheEnd { now: from })
            }
            AdvanceTarget::To(t) => t,
            AdvanceTarget::AtLeast(t) => t.max(from).min(SANDBOX_CLOCK_MAX.max(from)),
        };
        let deadline = budget.map(|b| started + b);
        let incomplete = |jobs_run| AdvanceReport {
            from,
            to: clock.now(),
            jobs_run,
            complete: false,
        };
        // Jobs already due at `from` run first, and are not counted: whether the background
        // loop or this advance runs them is a race, and the answer to the same requests must
        // not depend on it.
        let (_, drained) = self.run_due_until(deadline).await?;
        let mut jobs_run = 0;
        if !drained {
            return Ok(incomplete(jobs_run));
        }
        loop {
            if budget.is_some_and(|b| started.elapsed() >= b) && clock.now() < target {
                return Ok(incomplete(jobs_run));
            }
            match store.next_job_due_at().await? {
                Some(due) if due <= clock.now() => {
                    // Due but leased: a job the background loop started before this advance
                    // is still running. Wait for it (real time, not business time).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Some(due) if due <= target => {
                    // Jobs of one kind due one after the other may run as one batch, each
                    // at its own due time (the clock then stands at the last one's).
                    if let Some((last, n)) = self.run_batch(target, clock.now(), Some(due)).await? {
                        jobs_run += n;
                        clock.set(last);
                    } else {
                        clock.set(due);
                    }
                    store.save_sandbox_clock(clock.now()).await?;
                }
                _ => break,
            }
            let (ran, drained) = self.run_due_until(deadline).await?;
            if clock.now() > from {
                // (At `from` these are jobs the background loop was still running, or made.)
                jobs_run += ran;
            }
            if !drained {
                return Ok(incomplete(jobs_run));
            }
        }
        clock.set(target);
        store.save_sandbox_clock(clock.now()).await?;
        Ok(AdvanceReport {
            from,
            to: clock.now(),
            jobs_run,
            complete: true,
        })
    }

    /// The background loop: runs due jobs with bounded concurrency until `shutdown` fires,
    /// then waits for running jobs to finish.
    pub async fn run_forever(
        &self,
        opts: WorkerOptions,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let concurrency = opts.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let _heartbeat = AbortOnDrop(tokio::spawn(self.clone().heartbeat_forever()));
        // Jobs bound to a line run only on its owner: when another server commits one (a
        // message sent through it to a line this server serves), the store says so at once
        // instead of the poll finding it up to `poll_interval` later.
        let _wakeups = self.inner.store.line_job_wakeups().map(|mut changed| {
            let this = self.clone();
            AbortOnDrop(tokio::spawn(async move {
                while changed.changed().await.is_ok() {
                    this.wake();
                }
            }))
        });
        let mut caught_up = std::time::Instant::now() - CLOCK_CATCH_UP;
        // Whether the last claim got all it asked for: more jobs are likely waiting.
        let mut backlog = false;
        let batch = CLAIM_BATCH.min(concurrency);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Wait for a free slot (not a fixed sleep: a full pool must not idle).
            let mut slots = tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = shutdown.changed() => continue,
            };
            if backlog && permits.available_permits() + 1 < batch {
                // Jobs are waiting and running jobs finish every moment: gather a few more
                // slots first, so that one claim serves many jobs instead of one each.
                let more = permits.clone().acquire_many_owned((batch - 1) as u32);
                if let Ok(Ok(more)) = tokio::time::timeout(CLAIM_GATHER, more).await {
                    slots.merge(more);
                }
            }
            let free = permits.available_permits();
            if free > 0 {
                if let Ok(more) = permits.clone().try_acquire_many_owned(free as u32) {
                    slots.merge(more);
                }
            }
            if caught_up.elapsed() >= CLOCK_CATCH_UP {
                self.catch_up_clock().await;
                caught_up = std::time::Instant::now();
            }
            let want = slots.num_permits().min(MAX_CLAIM) as u32;
            let claimed = match self.inner.advance_lock.try_lock() {
                Ok(_guard) => self.claim(want).await,
                Err(_) => Ok(Vec::new()),
            };
            let jobs = claimed.unwrap_or_else(|e| {
                tracing::error!(error = %e, "could not claim jobs");
                Vec::new()
            });
            backlog = jobs.len() as u32 == want;
            let idle = jobs.is_empty();
            self.prepare(&jobs).await;
            for job in jobs {
                // As many slots as jobs were claimed (at most `want`); the rest go back as
                // `slots` drops.
                let Some(permit) = slots.split(1) else {
                    break;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    this.execute(job).await;
                    drop(permit);
                });
            }
            if idle {
                // Nothing due: wait for a commit of due jobs here (`wake`), or the poll for
                // jobs another server or the clock made due.
                drop(slots);
                tokio::select! {
                    _ = self.inner.wake.notified() => {}
                    _ = tokio::time::sleep(opts.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            } else if !backlog {
                // The claim took every due job: claiming again at once would find only what
                // was committed in the meantime, a handful each time (on PostgreSQL the
                // claims then cost more than the jobs). Let some gather first.
                drop(slots);
                tokio::select! {
                    _ = tokio::time::sleep(CLAIM_PAUSE) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        // Drain: every running job finishes (its lease would otherwise delay a successor).
        let _ = permits.acquire_many(opts.concurrency.max(1) as u32).await;
    }
}

/// Takes a job off the heartbeat's list when dropped.
struct NotRunning<'a>(&'a Scheduler, JobId);

impl Drop for NotRunning<'_> {
    fn drop(&mut self) {
        self.0.running().remove(&self.1);
    }
}

/// Stops a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
