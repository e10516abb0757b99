//! The SQL implementation of the store, for SQLite and PostgreSQL alike.

mod accounts;
mod calls;
mod days;
mod fast;
mod flusher;
mod group;
mod idempotency;
mod jobs;
mod lines;
mod meta;
mod meta_group;
mod numbers;
mod ordered;
mod ownership;
mod queue;
mod sandbox;
mod script;
mod sessions;
mod wa_sessions;
mod wallet;
mod webhooks;

pub use ordered::OrderedCommit;
pub use webhooks::DELIVER_JOB;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Row};

use crate::error::corrupt;
use crate::{StoreError, StoreResult};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Runs the SQLite migrations on the writer with foreign keys off, as SQLite's documentation
/// prescribes for table rebuilds (a CHECK constraint can only change that way; the pragma is
/// a no-op inside the migration's transaction, so it is set around it), then checks every
/// foreign key before turning them back on.
async fn migrate_sqlite(write: &AnyPool) -> StoreResult<()> {
    let mut conn = write.acquire().await?;
    conn.execute("PRAGMA foreign_keys = OFF").await?;
    let migrated = SQLITE_MIGRATIONS.run(&mut *conn).await;
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *conn)
        .await;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    migrated?;
    if !broken?.is_empty() {
        return Err(corrupt(
            "foreign keys",
            "a migration left rows that refer to missing rows",
        ));
    }
    Ok(())
}

/// Which database a [`SqlStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a data directory: one server process.
    Sqlite,
    /// PostgreSQL: any number of server processes may share it.
    Postgres,
}

impl Backend {
    /// The backend of an open connection.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

/// The store on a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    backend: Backend,
    /// Connections for reads (and, on PostgreSQL, for everything).
    read: AnyPool,
    /// Connections for writes. On SQLite a single connection: SQLite has one writer at a
    /// time anyway, and queueing writers in-process avoids busy errors under load.
    write: AnyPool,
    /// Connections for the group-commit flushers (`group.rs`, `ordered.rs`), which run on a
    /// thread of their own (`flusher.rs`). On SQLite the one writer itself. On PostgreSQL a
    /// pool of their own, opened lazily by the flushers, so that each connection's socket is
    /// registered with the flushers' runtime and its answers are picked up there at once,
    /// not when the API's busy runtime next polls for I/O.
    flush: AnyPool,
    redacted_url: String,
    /// Writes waiting to share a transaction (SQLite).
    group: std::sync::Arc<group::WriteGroup>,
    /// Strict batches waiting to be committed in the order they were handed over.
    ordered: std::sync::Arc<ordered::OrderedGroup>,
    /// PostgreSQL: where the line-job listener connects, and its counter once started.
    wakeups: std::sync::Arc<Wakeups>,
    /// SQLite: point reads on the calling thread (see `fast.rs`).
    fast: Option<std::sync::Arc<fast::FastReads>>,
}

/// The line-job notifications of a PostgreSQL store (see `JobStore::line_job_wakeups`).
#[derive(Default)]
pub(crate) struct Wakeups {
    /// The database URL (with its password: never printed).
    url: Option<String>,
    started: std::sync::OnceLock<tokio::sync::watch::Receiver<u64>>,
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups").finish_non_exhaustive()
    }
}

impl Wakeups {
    /// The counter, starting the listener on first use (needs a Tokio runtime).
    pub(crate) fn subscribe(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        let url = self.url.clone()?;
        Some(
            self.started
                .get_or_init(|| {
                    let (tx, rx) = tokio::sync::watch::channel(0u64);
                    tokio::spawn(listen_for_line_jobs(url, tx));
                    rx
                })
                .clone(),
        )
    }
}

/// Bumps `tx` at every notification on the line-jobs channel, reconnecting after a failure
/// (notifications sent meanwhile are lost; the workers' poll finds their jobs), until every
/// receiver is gone.
async fn listen_for_line_jobs(url: String, tx: tokio::sync::watch::Sender<u64>) {
    use sqlx::postgres::PgListener;
    while !tx.is_closed() {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for line jobs; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(jobs::LINE_JOBS_CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for line jobs; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever was committed while nobody listened is found by a claim now.
        tx.send_modify(|n| *n += 1);
        loop {
            match listener.recv().await {
                Ok(_) => tx.send_modify(|n| *n += 1),
                Err(e) => {
                    tracing::warn!(error = %e, "line-job notifications interrupted; reconnecting");
                    break;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
        }
    }
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite store in `data_dir` and applies migrations.
    pub async fn open_sqlite_dir(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::UnsupportedUrl(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let abs = std::path::absolute(data_dir).map_err(|e| {
            StoreError::UnsupportedUrl(format!("bad data dir {}: {e}", data_dir.display()))
        })?;
        let url = format!("sqlite://{}?mode=rwc", abs.join("wagate.db").display());
        Self::open(&url, OpenOptions::default()).await
    }

    /// Opens the store at a `sqlite://` or `postgres://` URL and applies migrations.
    pub async fn open(url: &str, opts: OpenOptions) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let store = match backend {
            Backend::Sqlite => {
                // `cache_kib`: the connection's page cache. The writer's is large: a batch of
                // many line charges touches pages all over the lines, events and ledger
                // indexes, and spilling them mid-transaction costs a write and a read each.
                // No connection memory-maps the file: the kernel counts a mapped page in the
                // process's RSS once per mapping, and the RSS then grows with the database
                // (bench_lines: sixteen mapping readers showed 700 MB; a mapping writer alone
                // 300 MB after 90,000 messages), where page caches stay bounded. Measured
                // without a difference in throughput.
                let options = |cache_kib: u32| {
                    AnyPoolOptions::new()
                        .after_release(release_check)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                // WAL lets readers run beside the writer; the busy timeout covers
                                // another process (e.g. `wagate accounts create`) writing.
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA busy_timeout = 10000").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                // In WAL mode NORMAL survives any process crash (SIGKILL included);
                                // only an OS crash or power loss can drop the last commits. Use
                                // PostgreSQL where that matters.
                                conn.execute("PRAGMA synchronous = NORMAL").await?;
                                // Statement journals (multi-row statements) stay in memory.
                                conn.execute("PRAGMA temp_store = MEMORY").await?;
                                conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
                                    .await?;
                                // The checkpointer task copies the WAL back in the background
                                // (see `spawn_checkpointer`); this is only the backstop for when
                                // it falls behind, at 64 MiB of WAL instead of 4 MiB.
                                conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                                Ok(())
                            })
                        })
                };
                // No ping before handing out a connection: a local file does not go stale, and
                // each ping is a round trip to the connection's thread on every query.
                let write = options(64 * 1024)
                    .test_before_acquire(false)
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                let read = options(2 * 1024)
                    .test_before_acquire(false)
                    .max_connections(opts.max_connections)
                    .connect(url)
                    .await?;
                migrate_sqlite(&write).await?;
                let store = SqlStore {
                    backend,
                    read,
                    flush: write.clone(),
                    write,
                    redacted_url: redact_url(url),
                    group: Default::default(),
                    ordered: Default::default(),
                    wakeups: Default::default(),
                    fast: fast::FastReads::for_url(url).map(std::sync::Arc::new),
                };
                spawn_checkpointer(&store);
                store
            }
            Backend::Postgres => {
                // One connection first: an unreachable or misconfigured server fails at once
                // with its own reason (refused, unknown host, bad password), where the pool
                // would retry it quietly until its acquire timeout.
                use sqlx::Connection;
                let probe = tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::AnyConnection::connect(url),
                )
                .await
                .map_err(|_| {
                    StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer from {} within 10 s", redact_url(url)),
                    )))
                })??;
                probe.close().await?;
                // No ping before handing out a connection (sqlx's default): it doubled the round
                // trips of every single-statement read. A connection that died with its
                // server fails its next query, which is then retried like any other error.
                let pool = AnyPoolOptions::new()
                    .after_release(release_check)
                    .test_before_acquire(false)
                    .max_connections(opts.max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(&with_statement_cache(url))
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                let flush = AnyPoolOptions::new()
                    .after_release(release_check)
                    .test_before_acquire(false)
                    .max_connections(FLUSH_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy(&with_statement_cache(url))?;
                SqlStore {
                    backend,
                    read: pool.clone(),
                    write: pool,
                    flush,
                    redacted_url: redact_url(url),
                    group: Default::default(),
                    ordered: Default::default(),
                    wakeups: std::sync::Arc::new(Wakeups {
                        url: Some(url.to_owned()),
                        started: Default::default(),
                    }),
                    fast: None,
                }
            }
        };
        Ok(store)
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL with any password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Closes every connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.write.close().await;
        self.flush.close().await;
        self.read.close().await;
    }

    /// Begins a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes can never fail to
    /// upgrade when another process wrote in between.
    ///
    /// Cancellation-safe: the `BEGIN` runs in a task of its own, so a caller dropped while it
    /// waits (a client that hung up, a timeout) cannot leave the connection inside a
    /// transaction. sqlx 0.8 opens the transaction on the server before the `Transaction`
    /// that would roll it back on drop exists (SQLite: `BEGIN` then a second round trip to
    /// check it; PostgreSQL: the depth counter is raised only after `BEGIN` is answered), and
    /// a future dropped in between returned the connection to the pool with the transaction
    /// still open. With SQLite's one writer connection every later write then failed with
    /// "attempted to call begin_with at non-zero transaction depth" until a restart. Here the
    /// task always finishes the `BEGIN`: if nobody waits for it any more, the finished
    /// `Transaction` is dropped inside the task and rolls back like any other.
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        self.begin_on(&self.write).await
    }

    /// [`SqlStore::begin_write`] for a group-commit flusher, on its own connections (see
    /// `flush`).
    pub(crate) async fn begin_flush(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        self.begin_on(&self.flush).await
    }

    async fn begin_on(&self, pool: &AnyPool) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let pool = pool.clone();
        let backend = self.backend;
        let begin = tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        });
        match begin.await {
            Ok(tx) => Ok(tx?),
            // The task panicked (or the runtime is shutting down): no transaction was handed out.
            Err(e) => Err(StoreError::Database(sqlx::Error::Io(
                std::io::Error::other(format!("beginning a transaction failed: {e}")),
            ))),
        }
    }
}

impl SqlStore {
    /// The first row `sql` answers with `args` bound to `$1`, `$2`, …, mapped (`None` when
    /// it answers none). On SQLite it runs on the calling thread (`fast.rs`), falling back to
    /// the pool if that fails; on PostgreSQL it goes through the pool.
    pub(crate) async fn read_one<T>(
        &self,
        sql: &str,
        args: &[fast::Val<'_>],
        map: impl Fn(&dyn Cols) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        if let Some(fast) = &self.fast {
            match fast.read_one(sql, args, &map) {
                Ok(found) => return Ok(found),
                Err(e) => {
                    tracing::warn!(error = %e, "a point read on the calling thread failed; asking the pool")
                }
            }
        }
        let mut q = sqlx::query(sql);
        for arg in args {
            q = match *arg {
                fast::Val::Text(s) => q.bind(s),
                fast::Val::Int(v) => q.bind(v),
            };
        }
        let row = q.fetch_optional(&self.read).await?;
        row.as_ref().map(|r| map(r)).transpose()
    }
}

/// Prepared statements each PostgreSQL connection keeps (unless the URL sets its own
/// `statement-cache-capacity`). Group commits write N rows in one statement, so a statement
/// kind has one text per group size: with sqlx's default of 100 the cache thrashed and most
/// group statements were parsed and planned again on every use (bench_e2e).
const STATEMENT_CACHE: usize = 1024;

/// `url` with [`STATEMENT_CACHE`] as its statement cache capacity, unless it sets one.
fn with_statement_cache(url: &str) -> String {
    if url.contains("statement-cache-capacity=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}statement-cache-capacity={STATEMENT_CACHE}")
}

/// The pool's check of a connection coming back: a connection still inside a transaction is
/// closed (closing it rolls the transaction back) instead of being handed to the next caller.
///
/// A `Transaction` dropped without commit queues its rollback; the round trip below lets that
/// rollback run before the depth is read again. A connection still in a transaction after it
/// can only come from a path that escaped [`SqlStore::begin_write`]'s guarantee (a driver
/// defect); it is logged, never reused.
fn release_check(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        conn.ping().await?;
        if conn.is_in_transaction() {
            tracing::warn!("a pooled connection came back inside a transaction; closing it");
            return Ok(false);
        }
        Ok(true)
    })
}

/// PostgreSQL connections of the group-commit flushers: the event and attempt group, the
/// ordered group, and a failed group's writes one by one.
const FLUSH_CONNECTIONS: u32 = 4;

/// Pause between two background checkpoints while writes come in.
///
/// Each checkpoint copies what was committed since the one before and `fsync`s it, and that
/// writeback is work for the same two cores the requests run on: bench_lines' open loop
/// (`POST …/messages` at 3,000/s on this machine's ext4 disk) had its p99 at 87–102 ms with a
/// checkpoint every 2 s, 45–46 ms every 200 ms, 31–33 ms every 50 ms and 17.6–18.8 ms every
/// 10 ms (BENCHMARKS.md, session 14): many small writebacks instead of a few bursts.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// Longest pause between two background checkpoints: reached by doubling the pause while a
/// checkpoint finds nothing new in the WAL, so an idle store is not polled 100 times a second.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(640);

/// Starts the SQLite checkpointer: a task that runs a passive checkpoint on a read connection
/// every [`CHECKPOINT_EVERY`] while the WAL grows (backing off to [`CHECKPOINT_IDLE`] while
/// it does not), for as long as the store is open.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the threshold, on the one
/// writer connection: every write waiting behind it stalls for the whole copy and its fsync
/// (the tail of the `POST …/messages` latencies in bench_lines). A passive checkpoint on
/// another connection copies the same frames while the writer goes on, and the writer then
/// restarts the WAL from its start, so the automatic one, left as a backstop, rarely fires.
fn spawn_checkpointer(store: &SqlStore) {
    let read = store.read.clone();
    // The task must not keep the store alive: it ends once every handle is dropped.
    let alive = std::sync::Arc::downgrade(&store.group);
    tokio::spawn(async move {
        let mut pause = CHECKPOINT_EVERY;
        // The WAL's size and how much of it was copied, as the last checkpoint reported them:
        // the same pair again means nothing was committed in between.
        let mut last: Option<(i64, i64)> = None;
        loop {
            tokio::time::sleep(pause).await;
            if alive.strong_count() == 0 || read.is_closed() {
                return;
            }
            let frames = match read.fetch_one("PRAGMA wal_checkpoint(PASSIVE)").await {
                Ok(row) => row
                    .try_get::<i64, _>(1)
                    .ok()
                    .zip(row.try_get::<i64, _>(2).ok()),
                Err(e) => {
                    tracing::debug!(error = %e, "a background checkpoint failed");
                    None
                }
            };
            pause = next_checkpoint_pause(pause, last, frames);
            last = frames;
        }
    });
}

/// The pause before the next background checkpoint: the shortest after one that found new
/// frames (or whose result is unknown), twice the last (up to [`CHECKPOINT_IDLE`]) after one
/// that found the WAL as the one before had left it.
fn next_checkpoint_pause(
    pause: Duration,
    before: Option<(i64, i64)>,
    now: Option<(i64, i64)>,
) -> Duration {
    match (before, now) {
        (Some(before), Some(now)) if before == now => (pause * 2).min(CHECKPOINT_IDLE),
        _ => CHECKPOINT_EVERY,
    }
}

/// Replaces the password of a database URL with `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Most bound parameters one multi-row statement gets (SQLite allows 32,766, PostgreSQL 65,535).
pub(crate) const MAX_PARAMS: usize = 16_000;

/// The placeholder of parameter `n` (from 1) of a statement whose parameters are numbered in
/// the order they appear: `$n` on PostgreSQL; `?` on SQLite, where sqlx looks every named
/// parameter up by number, which takes quadratic time in a statement with thousands of them.
pub(crate) fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => format!("${n}"),
        Backend::Sqlite => "?".to_owned(),
    }
}

/// `p1, p2, …`: `n` placeholders from parameter `first` (see [`param`]).
pub(crate) fn param_list(backend: Backend, n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| param(backend, i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(p1, p2, …), (…), …`: `rows` tuples of `cols` placeholders from parameter `first`.
pub(crate) fn placeholders(backend: Backend, rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", param_list(backend, cols, first + r * cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A result row read by column name: sqlx's, and rusqlite's for the SQLite point reads that
/// run on the calling thread (`fast.rs`). The row mappers are written once over it.
pub(crate) trait Cols {
    /// A text column, `None` when NULL.
    fn text_col(&self, col: &'static str) -> StoreResult<Option<String>>;
    /// An integer column, `None` when NULL.
    fn int_col(&self, col: &'static str) -> StoreResult<Option<i64>>;
}

impl Cols for AnyRow {
    fn text_col(&self, col: &'static str) -> StoreResult<Option<String>> {
        Ok(self.try_get::<Option<String>, _>(col)?)
    }

    fn int_col(&self, col: &'static str) -> StoreResult<Option<i64>> {
        Ok(self.try_get::<Option<i64>, _>(col)?)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn text_col(&self, col: &'static str) -> StoreResult<Option<String>> {
        Ok(self.get::<_, Option<String>>(col)?)
    }

    fn int_col(&self, col: &'static str) -> StoreResult<Option<i64>> {
        Ok(self.get::<_, Option<i64>>(col)?)
    }
}

/// Reads a non-null text column.
pub(crate) fn text(row: &(impl Cols + ?Sized), col: &'static str) -> StoreResult<String> {
    row.text_col(col)?
        .ok_or_else(|| corrupt(col, "unexpected NULL"))
}

/// Reads a nullable text column.
pub(crate) fn opt_text(
    row: &(impl Cols + ?Sized),
    col: &'static str,
) -> StoreResult<Option<String>> {
    row.text_col(col)
}

/// Reads a non-null integer column.
pub(crate) fn int(row: &(impl Cols + ?Sized), col: &'static str) -> StoreResult<i64> {
    row.int_col(col)?
        .ok_or_else(|| corrupt(col, "unexpected NULL"))
}

/// Reads a non-negative counter column as `u32` (clamped: only a corrupt row is out of range).
pub(crate) fn count(row: &(impl Cols + ?Sized), col: &'static str) -> StoreResult<u32> {
    Ok(int(row, col)?.clamp(0, i64::from(u32::MAX)) as u32)
}

/// Reads a nullable integer column.
pub(crate) fn opt_int(row: &(impl Cols + ?Sized), col: &'static str) -> StoreResult<Option<i64>> {
    row.int_col(col)
}

/// Reads a timestamp column (microseconds).
pub(crate) fn ts(row: &(impl Cols + ?Sized), col: &'static str) -> StoreResult<jiff::Timestamp> {
    Ok(wagate_domain::time::from_micros(int(row, col)?))
}

/// Reads a nullable timestamp column.
pub(crate) fn opt_ts(
    row: &(impl Cols + ?Sized),
    col: &'static str,
) -> StoreResult<Option<jiff::Timestamp>> {
    Ok(opt_int(row, col)?.map(wagate_domain::time::from_micros))
}

/// Reads a typed id column.
pub(crate) fn id<T: TryFrom<String>>(
    row: &(impl Cols + ?Sized),
    col: &'static str,
) -> StoreResult<T>
where
    T::Error: std::fmt::Display,
{
    T::try_from(text(row, col)?).map_err(|e| corrupt(col, e))
}

#[cfg(test)]
mod tests {
    use super::{next_checkpoint_pause, redact_url, CHECKPOINT_EVERY, CHECKPOINT_IDLE};

    #[test]
    fn checkpoints_back_off_only_while_nothing_is_written() {
        let every = CHECKPOINT_EVERY;
        // New frames, or a result not known: the shortest pause.
        assert_eq!(
            next_checkpoint_pause(every * 8, Some((10, 10)), Some((12, 12))),
            every
        );
        assert_eq!(next_checkpoint_pause(every * 8, None, Some((3, 3))), every);
        assert_eq!(next_checkpoint_pause(every * 8, Some((3, 3)), None), every);
        // The WAL as the last checkpoint left it: twice the pause, up to the idle one.
        assert_eq!(
            next_checkpoint_pause(every, Some((5, 5)), Some((5, 5))),
            every * 2
        );
        let mut pause = every;
        for _ in 0..20 {
            pause = next_checkpoint_pause(pause, Some((5, 5)), Some((5, 5)));
        }
        assert_eq!(pause, CHECKPOINT_IDLE);
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/w"),
            "postgres://u:***@db:5432/w"
        );
        assert_eq!(redact_url("sqlite:///x/wagate.db"), "sqlite:///x/wagate.db");
    }

    #[test]
    fn the_statement_cache_is_raised_unless_the_url_sets_it() {
        use super::with_statement_cache;
        assert_eq!(
            with_statement_cache("postgres://u@db/w"),
            "postgres://u@db/w?statement-cache-capacity=1024"
        );
        assert_eq!(
            with_statement_cache("postgres://u@db/w?sslmode=disable"),
            "postgres://u@db/w?sslmode=disable&statement-cache-capacity=1024"
        );
        let own = "postgres://u@db/w?statement-cache-capacity=10";
        assert_eq!(with_statement_cache(own), own);
    }

    #[test]
    fn placeholders_number_rows_in_order() {
        use super::{placeholders, Backend};
        assert_eq!(
            placeholders(Backend::Postgres, 2, 3, 2),
            "($2, $3, $4), ($5, $6, $7)"
        );
        assert_eq!(placeholders(Backend::Sqlite, 2, 2, 1), "(?, ?), (?, ?)");
    }
}
