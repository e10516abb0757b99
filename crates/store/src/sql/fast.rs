//! Point reads on SQLite, run on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement, and
//! every row back, across channels: under a `GET /lines/{id}` load about 40 % of the server's
//! CPU went to those thread switches (perf, BENCHMARKS.md "Lines API, session 11"), for reads
//! whose own work, a lookup by key in a warm page cache, takes a few microseconds. The reads
//! on the hot paths (a line by id, a Meta status's message, pricing state, a wallet) go
//! through these connections instead: opened read-only on the same file, in WAL mode they
//! never wait for the writer, and a lookup by key is shorter than the thread switch it
//! saves, so running it on the async worker holds nothing up. Nothing here awaits, so a
//! cancelled request cannot interrupt a read half way. A read that fails here (a busy file,
//! say) is run again through the pool: this path is an optimisation, never the only way.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Cols;
use crate::error::corrupt;
use crate::StoreResult;

/// Connections kept idle: one is in use per thread running a read, so the runtime's worker
/// threads bound how many exist.
const MAX_IDLE: usize = 16;

/// How long a read waits for a lock (only WAL recovery or a checkpoint restart can hold one
/// against a reader) before it gives up and the pool's connection is asked instead.
const BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// A value bound to a statement's `$n` parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    /// Text.
    Text(&'a str),
    /// An integer.
    Int(i64),
}

/// Read-only connections to one SQLite file, used on the calling thread.
pub(crate) struct FastReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for FastReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FastReads {
    /// Readers of the SQLite file behind a `sqlite://` URL; `None` for a URL that names no
    /// file (an in-memory database), or a file that does not open read-only.
    pub(crate) fn for_url(url: &str) -> Option<Self> {
        let path = url.strip_prefix("sqlite://")?.split('?').next()?;
        if path.is_empty() || path.starts_with(':') {
            return None;
        }
        let fast = FastReads {
            path: PathBuf::from(path),
            idle: Mutex::new(Vec::new()),
        };
        match fast.open() {
            Ok(conn) => {
                fast.give_back(conn);
                Some(fast)
            }
            Err(e) => {
                tracing::warn!(error = %e, "SQLite point reads go through the pool only");
                None
            }
        }
    }

    fn open(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The same page cache as the pool's readers (sql/mod.rs), no memory map.
        conn.execute_batch("PRAGMA cache_size = -2048; PRAGMA query_only = ON;")?;
        Ok(conn)
    }

    fn take(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// The first row `sql` answers with `args` bound to `$1`, `$2`, …, mapped; `None` when
    /// it answers none.
    pub(crate) fn read_one<T>(
        &self,
        sql: &str,
        args: &[Val<'_>],
        map: &dyn Fn(&dyn Cols) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let conn = self.take()?;
        let out = read_on(&conn, sql, args, map);
        self.give_back(conn);
        out
    }
}

fn read_on<T>(
    conn: &Connection,
    sql: &str,
    args: &[Val<'_>],
    map: &dyn Fn(&dyn Cols) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    for (i, arg) in args.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = stmt
            .parameter_index(&name)?
            .ok_or_else(|| corrupt("a point read", format!("no parameter {name}")))?;
        match arg {
            Val::Text(s) => stmt.raw_bind_parameter(index, *s)?,
            Val::Int(v) => stmt.raw_bind_parameter(index, *v)?,
        }
    }
    // Dropping the rows resets the statement, which ends its read transaction.
    let mut rows = stmt.raw_query();
    match rows.next()? {
        Some(row) => Ok(Some(map(row)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::Val;
    use crate::sql::{int, opt_text, text, SqlStore};

    /// The store's SQLite point reads run here, not through the pool after a failure: binding
    /// by `$n` whatever the order, and seeing what the writer committed.
    #[tokio::test]
    async fn point_reads_run_on_the_calling_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite_dir(dir.path()).await.unwrap();
        let fast = store
            .fast
            .as_ref()
            .expect("an SQLite file store reads on the caller");
        let args = [Val::Text("b"), Val::Int(7)];
        let sql = "SELECT $2 AS n, $1 AS s, NULL AS missing";
        let read = fast.read_one(sql, &args, &|r| {
            Ok((int(r, "n")?, text(r, "s")?, opt_text(r, "missing")?))
        });
        assert_eq!(read.unwrap(), Some((7, "b".to_owned(), None)));

        sqlx::query("CREATE TABLE probe (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            .execute(&store.write)
            .await
            .unwrap();
        let get = |k: &'static str| {
            fast.read_one("SELECT v FROM probe WHERE k = $1", &[Val::Text(k)], &|r| {
                int(r, "v")
            })
        };
        assert_eq!(get("a").unwrap(), None);
        sqlx::query("INSERT INTO probe (k, v) VALUES ('a', 42)")
            .execute(&store.write)
            .await
            .unwrap();
        assert_eq!(get("a").unwrap(), Some(42));
        // A NULL where a value must be is a corrupt row, not a panic.
        let null = fast.read_one("SELECT NULL AS v", &[], &|r| int(r, "v"));
        assert!(null.is_err());
    }
}
