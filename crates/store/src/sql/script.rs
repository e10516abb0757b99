//! Several write statements sent to the database as one query where the backend allows it.
//!
//! On SQLite every query is a round trip between the calling task and the connection's own
//! thread, and under load those round trips — not SQLite's work — set the pace of the one
//! writer (bench_lines). A [`Script`] collects statements with their arguments and, on
//! SQLite, runs them as one multi-statement query: sqlx prepares and steps them in order on
//! the connection's thread and binds the anonymous `?` parameters of each statement from the
//! one argument list in turn. PostgreSQL's extended protocol takes one statement per query,
//! so there the statements run one after the other.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

use super::{param_list, placeholders, Backend, MAX_PARAMS};
use crate::StoreResult;

/// One bound value of a statement.
pub(crate) enum Arg<'a> {
    /// Text borrowed from the records being written (`None`: NULL).
    Str(Option<&'a str>),
    /// Text made for the statement (`None`: NULL).
    String(Option<String>),
    /// An integer (`None`: NULL).
    Int(Option<i64>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Str(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Str(v)
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::String(Some(v))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::String(v)
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

/// Write statements to run in order, in the caller's transaction.
pub(crate) struct Script<'a> {
    backend: Backend,
    statements: Vec<(String, Vec<Arg<'a>>)>,
}

impl<'a> Script<'a> {
    /// An empty script for `backend`.
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            statements: Vec::new(),
        }
    }

    /// The backend the statements are written for (it decides the placeholder syntax).
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// Adds a statement whose placeholders are numbered from 1 (`$n` on PostgreSQL, `?` on
    /// SQLite), with its arguments in that order.
    pub(crate) fn push(&mut self, sql: String, args: Vec<Arg<'a>>) {
        self.statements.push((sql, args));
    }

    /// Adds a multi-row statement for `rows`, split so that no statement has more than
    /// [`MAX_PARAMS`] parameters: `sql` gets each part's placeholder rows (`(?, ?), (?, ?)`)
    /// and `row` gives one row's `COLS` arguments, in column order.
    pub(crate) fn push_rows<T, const COLS: usize>(
        &mut self,
        rows: &[T],
        sql: impl Fn(&str) -> String,
        row: impl Fn(&T) -> [Arg<'a>; COLS],
    ) {
        for chunk in rows.chunks(MAX_PARAMS / COLS) {
            let values = placeholders(self.backend, chunk.len(), COLS, 1);
            let args = chunk.iter().flat_map(&row).collect();
            self.push(sql(&values), args);
        }
    }

    /// Adds a statement per [`MAX_PARAMS`] of `ids`: `sql` gets the part's parameter list
    /// (`?, ?, ?`), to put in an `IN (…)`.
    pub(crate) fn push_in(&mut self, ids: &[&'a str], sql: impl Fn(&str) -> String) {
        for chunk in ids.chunks(MAX_PARAMS) {
            let list = param_list(self.backend, chunk.len(), 1);
            self.push(sql(&list), chunk.iter().map(|id| Arg::from(*id)).collect());
        }
    }

    /// [`Script::push_rows`] for rows whose arguments are made already (moved in).
    pub(crate) fn push_owned_rows<const COLS: usize>(
        &mut self,
        rows: Vec<[Arg<'a>; COLS]>,
        sql: impl Fn(&str) -> String,
    ) {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<[Arg<'a>; COLS]> = rows.by_ref().take(MAX_PARAMS / COLS).collect();
            let values = placeholders(self.backend, chunk.len(), COLS, 1);
            self.push(sql(&values), chunk.into_iter().flatten().collect());
        }
    }

    /// Runs the statements in order; the first error stops them (the caller's transaction
    /// then rolls back whatever ran).
    pub(crate) async fn run(self, conn: &mut AnyConnection) -> StoreResult<()> {
        match self.backend {
            Backend::Sqlite => {
                if self.statements.is_empty() {
                    return Ok(());
                }
                let mut sql = String::new();
                let mut all = Vec::new();
                for (s, args) in self.statements {
                    sql.push_str(&s);
                    sql.push_str(";\n");
                    all.extend(args);
                }
                bind(sqlx::query(&sql), all).execute(&mut *conn).await?;
            }
            Backend::Postgres => {
                for (s, args) in self.statements {
                    bind(sqlx::query(&s), args).execute(&mut *conn).await?;
                }
            }
        }
        Ok(())
    }
}

/// Binds `args` to `q` in order.
pub(crate) fn bind<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    args: Vec<Arg<'q>>,
) -> Query<'q, Any, AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Str(v) => q.bind(v),
            Arg::String(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
        };
    }
    q
}
