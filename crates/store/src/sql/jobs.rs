//! The durable job queue.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use wagate_domain::ids::JobId;
use wagate_domain::jobs::{Job, NewJob};
use wagate_domain::time::to_micros;

use super::script::{Arg, Script};
use super::{count, id, int, opt_text, param_list, text, ts, Backend, SqlStore, MAX_PARAMS};
use crate::error::corrupt;
use crate::{JobStore, StoreResult};

fn job(row: &AnyRow) -> StoreResult<Job> {
    let account_id = opt_text(row, "account_id")?
        .map(|a| a.try_into().map_err(|e| corrupt("jobs.account_id", e)))
        .transpose()?;
    let payload =
        serde_json::from_str(&text(row, "payload")?).map_err(|e| corrupt("jobs.payload", e))?;
    Ok(Job {
        id: id(row, "id")?,
        kind: text(row, "kind")?,
        account_id,
        payload,
        due_at: ts(row, "due_at")?,
        attempts: count(row, "attempts")?,
    })
}

/// Inserts jobs inside an open transaction; used by every use case that schedules work, so
/// the job is committed with the change that made it necessary.
pub(crate) async fn insert_jobs(
    conn: &mut sqlx::AnyConnection,
    jobs: &[NewJob],
    now: Timestamp,
) -> StoreResult<()> {
    for j in jobs {
        sqlx::query(
            "INSERT INTO jobs (id, kind, account_id, payload, due_at, dedupe_key, created_at, line_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (kind, dedupe_key) DO NOTHING",
        )
        .bind(JobId::generate().as_str())
        .bind(&j.kind)
        .bind(j.account_id.as_ref().map(|a| a.as_str()))
        .bind(j.payload.to_string())
        .bind(to_micros(j.due_at))
        .bind(j.dedupe_key.as_deref())
        .bind(to_micros(now))
        .bind(j.line_id.as_ref().map(|l| l.as_str()))
        .execute(&mut *conn)
        .await?;
    }
    if Backend::of(conn) == Backend::Postgres && jobs.iter().any(|j| j.line_id.is_some()) {
        sqlx::query(NOTIFY_LINE_JOBS).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The PostgreSQL channel that tells every server a job bound to a line was committed.
pub(crate) const LINE_JOBS_CHANNEL: &str = "wagate_line_jobs";
/// Sent in the transaction that inserts such a job: PostgreSQL delivers it at commit (and
/// folds repeats within a transaction into one).
const NOTIFY_LINE_JOBS: &str = "SELECT pg_notify('wagate_line_jobs', '')";

/// Adds [`NOTIFY_LINE_JOBS`] to `script` when it inserts a line-bound job on PostgreSQL.
fn push_notify_line_jobs(script: &mut Script<'_>, any_line_bound: bool) {
    if any_line_bound && script.backend() == Backend::Postgres {
        script.push(NOTIFY_LINE_JOBS.to_owned(), Vec::new());
    }
}

/// Inserts jobs, each created at its own time, in multi-row statements (in order; a
/// `(kind, dedupe_key)` already present is kept as it is, as in [`insert_jobs`]).
pub(crate) async fn insert_jobs_many(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    jobs: &[(&NewJob, Timestamp)],
) -> StoreResult<()> {
    let mut script = Script::new(backend);
    push_insert_jobs(&mut script, jobs);
    script.run(conn).await
}

/// Adds the inserts of [`insert_jobs_many`] to `script`.
pub(crate) fn push_insert_jobs<'a>(script: &mut Script<'a>, jobs: &[(&'a NewJob, Timestamp)]) {
    push_notify_line_jobs(script, jobs.iter().any(|(j, _)| j.line_id.is_some()));
    script.push_rows(
        jobs,
        |values| {
            format!(
                "INSERT INTO jobs (id, kind, account_id, payload, due_at, dedupe_key, created_at,
                     line_id)
                 VALUES {values} ON CONFLICT (kind, dedupe_key) DO NOTHING"
            )
        },
        |(j, now)| {
            [
                JobId::generate().to_string().into(),
                j.kind.as_str().into(),
                j.account_id.as_ref().map(|a| a.as_str()).into(),
                j.payload.to_string().into(),
                to_micros(j.due_at).into(),
                j.dedupe_key.as_deref().into(),
                to_micros(*now).into(),
                j.line_id.as_ref().map(|l| l.as_str()).into(),
            ]
        },
    );
}

/// [`push_insert_jobs`] for jobs made by the caller (moved in).
pub(crate) fn push_insert_owned_jobs(script: &mut Script<'_>, jobs: Vec<(NewJob, Timestamp)>) {
    push_notify_line_jobs(script, jobs.iter().any(|(j, _)| j.line_id.is_some()));
    let rows: Vec<[Arg<'_>; 8]> = jobs
        .into_iter()
        .map(|(j, now)| {
            [
                JobId::generate().to_string().into(),
                j.kind.into(),
                j.account_id.map(|a| a.to_string()).into(),
                j.payload.to_string().into(),
                to_micros(j.due_at).into(),
                j.dedupe_key.into(),
                to_micros(now).into(),
                j.line_id.map(|l| l.to_string()).into(),
            ]
        })
        .collect();
    script.push_owned_rows(rows, |values| {
        format!(
            "INSERT INTO jobs (id, kind, account_id, payload, due_at, dedupe_key, created_at,
                 line_id)
             VALUES {values} ON CONFLICT (kind, dedupe_key) DO NOTHING"
        )
    });
}

/// Removes finished jobs that no live lease holds at `wall_now` (inside the transaction of
/// their work); false, with nothing removed for sure only if the caller rolls back, when one
/// is gone or leased — another worker has it.
pub(crate) async fn remove_unleased_jobs(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    ids: &[JobId],
    wall_now: Timestamp,
) -> StoreResult<bool> {
    for chunk in ids.chunks(MAX_PARAMS - 1) {
        let sql = format!(
            "DELETE FROM jobs WHERE (leased_until IS NULL OR leased_until <= {}) AND id IN ({})",
            param_list(backend, 1, 1),
            param_list(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(to_micros(wall_now));
        for id in chunk {
            q = q.bind(id.as_str());
        }
        if q.execute(&mut *conn).await?.rows_affected() != chunk.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The condition that a job row of `jobs` may run on `holder` at `wall_now` (both SQL
/// parameters): it is bound to no line, or its line's owner is `holder` or not alive.
fn owner_allows(holder: &str, wall_now: &str) -> String {
    format!(
        "(jobs.line_id IS NULL OR NOT EXISTS (
             SELECT 1 FROM line_owners o JOIN servers s ON s.holder = o.holder
             WHERE o.line_id = jobs.line_id AND o.holder <> {holder} AND s.expires_at > {wall_now}))"
    )
}

/// Leases up to `limit` jobs due by `now` that no live lease holds at `wall_now` until
/// `lease_until`, inside the caller's transaction; in due order. A job bound to a line is
/// left to the line's owner while that owner is alive (`holder` may take those it owns and
/// those of lines nobody live owns: it adopts the line before running one).
pub(crate) async fn claim_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    now: Timestamp,
    wall_now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    holder: &str,
) -> StoreResult<Vec<Job>> {
    // PostgreSQL: SKIP LOCKED lets concurrent workers pass over each other's candidates;
    // the lease test is repeated in the outer WHERE so a row re-checked after a lock wait
    // is never claimed twice. SQLite has a single writer, so the subquery is enough.
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let free_to_run = owner_allows("$5", "$3");
    let sql = format!(
        "UPDATE jobs SET leased_until = $1
         WHERE id IN (
             SELECT id FROM jobs
             WHERE due_at <= $2 AND (leased_until IS NULL OR leased_until <= $3)
               AND {free_to_run}
             ORDER BY due_at, seq LIMIT $4 {lock}
         ) AND (leased_until IS NULL OR leased_until <= $3)
         RETURNING id, kind, account_id, payload, due_at, attempts, seq"
    );
    let rows = sqlx::query(&sql)
        .bind(to_micros(lease_until))
        .bind(to_micros(now))
        .bind(to_micros(wall_now))
        .bind(i64::from(limit))
        .bind(holder)
        .fetch_all(&mut *conn)
        .await?;
    let mut jobs = rows
        .iter()
        .map(|r| Ok((job(r)?, int(r, "seq")?)))
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING does not promise an order.
    jobs.sort_by_key(|(j, seq)| (j.due_at, *seq));
    Ok(jobs.into_iter().map(|(j, _)| j).collect())
}

#[async_trait]
impl JobStore for SqlStore {
    async fn schedule_jobs(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_due_jobs(
        &self,
        now: Timestamp,
        wall_now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        holder: &str,
    ) -> StoreResult<Vec<Job>> {
        if self.backend == Backend::Sqlite {
            // A busy worker claims again after every job it starts, and most such claims find
            // nothing: a read tells without taking SQLite's one write lock.
            let due = sqlx::query(
                "SELECT 1 AS one FROM jobs
                 WHERE due_at <= $1 AND (leased_until IS NULL OR leased_until <= $2) LIMIT 1",
            )
            .bind(to_micros(now))
            .bind(to_micros(wall_now))
            .fetch_optional(&self.read)
            .await?;
            if due.is_none() {
                return Ok(Vec::new());
            }
        }
        let claim = |conn| {
            claim_in(
                conn,
                self.backend,
                now,
                wall_now,
                lease_until,
                limit,
                holder,
            )
        };
        if self.backend == Backend::Postgres {
            // One statement, atomic on its own: no BEGIN and COMMIT round trips around it
            // (a busy worker claims hundreds of times a second).
            let mut conn = self.write.acquire().await?;
            return claim(&mut conn).await;
        }
        // SQLite: in the next group transaction (see `WriteGroup::claim`).
        let claim = super::group::Claim {
            now,
            wall_now,
            lease_until,
            limit,
            holder: holder.to_owned(),
        };
        super::group::WriteGroup::claim(self, claim).await
    }

    async fn peek_due_jobs(
        &self,
        now: Timestamp,
        wall_now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(
            "SELECT id, kind, account_id, payload, due_at, attempts FROM jobs
             WHERE due_at <= $1 AND (leased_until IS NULL OR leased_until <= $2)
             ORDER BY due_at, seq LIMIT $3",
        )
        .bind(to_micros(now))
        .bind(to_micros(wall_now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(job).collect()
    }

    async fn finish_job(&self, job_id: &JobId) -> StoreResult<()> {
        if self.backend == Backend::Sqlite {
            // A busy worker finishes thousands of jobs a second (a sandbox message's receipts
            // are jobs): a transaction each on SQLite's one writer, between the API's groups.
            // They share the group commit instead, whose finished jobs go in one `DELETE`.
            let finish = crate::Batch {
                finish_job: Some(job_id.clone()),
                ..crate::Batch::default()
            };
            // The time stamps only what a batch inserts, and this one inserts nothing.
            return super::group::WriteGroup::commit(self, finish, Timestamp::UNIX_EPOCH).await;
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_job(&self, job_id: &JobId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE jobs SET leased_until = NULL WHERE id = $1")
            .bind(job_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fail_job(&self, job_id: &JobId, error: &str, retry_at: Timestamp) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE jobs SET attempts = attempts + 1, last_error = $1, due_at = $2, leased_until = NULL
             WHERE id = $3",
        )
        .bind(error)
        .bind(to_micros(retry_at))
        .bind(job_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_job_due_at(&self) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query("SELECT due_at FROM jobs ORDER BY due_at LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| ts(&r, "due_at")).transpose()
    }

    async fn extend_leases(
        &self,
        ids: &[JobId],
        wall_now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut extended = 0;
        for chunk in ids.chunks(MAX_PARAMS - 2) {
            let sql = format!(
                "UPDATE jobs SET leased_until = {} WHERE leased_until > {} AND id IN ({})",
                param_list(self.backend, 1, 1),
                param_list(self.backend, 1, 2),
                param_list(self.backend, chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql)
                .bind(to_micros(lease_until))
                .bind(to_micros(wall_now));
            for id in chunk {
                q = q.bind(id.as_str());
            }
            extended += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(extended)
    }

    fn line_job_wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.wakeups.subscribe()
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE jobs SET leased_until = NULL WHERE leased_until IS NOT NULL")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE servers SET expires_at = 0")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}
