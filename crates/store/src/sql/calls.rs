//! [`CallStore`] and the calls part of a batch's commit.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use wagate_domain::call::{CallDirection, CallStatus, EndReason};
use wagate_domain::ids::{AccountId, CallId, LineId};
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::to_micros;

use super::{id, int, opt_text, opt_ts, param_list, text, ts, SqlStore};
use crate::error::corrupt;
use crate::{CallRecord, CallStore, CallWrite, Conflict, StoreResult};

const CALL_COLS: &str = "id, account_id, line_id, version, direction, from_number, to_number, \
    status, end_reason, provider_id, media_token, created_at, ringing_at, answered_at, \
    ended_at, updated_at";

fn call(row: &AnyRow) -> StoreResult<CallRecord> {
    let direction = text(row, "direction")?;
    let status = text(row, "status")?;
    Ok(CallRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        line_id: id(row, "line_id")?,
        version: int(row, "version")?,
        direction: CallDirection::from_db(&direction)
            .ok_or_else(|| corrupt("calls.direction", direction))?,
        from: opt_text(row, "from_number")?,
        to: opt_text(row, "to_number")?,
        status: CallStatus::from_db(&status).ok_or_else(|| corrupt("calls.status", status))?,
        end_reason: match opt_text(row, "end_reason")? {
            None => None,
            Some(r) => Some(EndReason::from_db(&r).ok_or_else(|| corrupt("calls.end_reason", r))?),
        },
        provider_id: opt_text(row, "provider_id")?,
        media_token: text(row, "media_token")?,
        created_at: ts(row, "created_at")?,
        ringing_at: opt_ts(row, "ringing_at")?,
        answered_at: opt_ts(row, "answered_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Applies the calls part of a batch inside its transaction.
pub(crate) async fn apply_calls(
    conn: &mut AnyConnection,
    write: &CallWrite,
    _now: Timestamp,
) -> StoreResult<Result<(), Conflict>> {
    if let Some(c) = &write.insert {
        // The partial unique index on open calls is the last word on "one call at a time":
        // a second open call on the line is not written, whichever server raced to write it.
        let done = sqlx::query(&format!(
            "INSERT INTO calls ({CALL_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT DO NOTHING"
        ))
        .bind(c.id.as_str())
        .bind(c.account_id.as_str())
        .bind(c.line_id.as_str())
        .bind(c.version)
        .bind(c.direction.as_str())
        .bind(c.from.as_deref())
        .bind(c.to.as_deref())
        .bind(c.status.as_str())
        .bind(c.end_reason.map(EndReason::as_str))
        .bind(c.provider_id.as_deref())
        .bind(&c.media_token)
        .bind(to_micros(c.created_at))
        .bind(c.ringing_at.map(to_micros))
        .bind(c.answered_at.map(to_micros))
        .bind(c.ended_at.map(to_micros))
        .bind(to_micros(c.updated_at))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::LineBusy));
        }
    }
    if let Some(c) = &write.update {
        let done = sqlx::query(
            "UPDATE calls SET version = $2 + 1, status = $3, end_reason = $4, provider_id = $5,
                 ringing_at = $6, answered_at = $7, ended_at = $8, updated_at = $9
             WHERE id = $1 AND version = $2",
        )
        .bind(c.id.as_str())
        .bind(c.version)
        .bind(c.status.as_str())
        .bind(c.end_reason.map(EndReason::as_str))
        .bind(c.provider_id.as_deref())
        .bind(c.ringing_at.map(to_micros))
        .bind(c.answered_at.map(to_micros))
        .bind(c.ended_at.map(to_micros))
        .bind(to_micros(c.updated_at))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::CallChanged));
        }
    }
    for (line, day, seconds) in &write.add_seconds {
        sqlx::query(
            "INSERT INTO call_days (line_id, day, seconds) VALUES ($1, $2, $3)
             ON CONFLICT (line_id, day) DO UPDATE SET seconds = call_days.seconds + excluded.seconds",
        )
        .bind(line.as_str())
        .bind(*day)
        .bind(i64::try_from(*seconds).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    }
    Ok(Ok(()))
}

#[async_trait]
impl CallStore for SqlStore {
    async fn get_call(&self, account: &AccountId, id: &CallId) -> StoreResult<Option<CallRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLS} FROM calls WHERE id = $1 AND account_id = $2"
        ))
        .bind(id.as_str())
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(call).transpose()
    }

    async fn call_by_id(&self, id: &CallId) -> StoreResult<Option<CallRecord>> {
        let row = sqlx::query(&format!("SELECT {CALL_COLS} FROM calls WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(call).transpose()
    }

    async fn call_by_provider(
        &self,
        line: &LineId,
        provider_id: &str,
    ) -> StoreResult<Option<CallRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLS} FROM calls WHERE line_id = $1 AND provider_id = $2"
        ))
        .bind(line.as_str())
        .bind(provider_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(call).transpose()
    }

    async fn list_calls(
        &self,
        account: &AccountId,
        line: &LineId,
        page: &PageRequest,
    ) -> StoreResult<Page<CallRecord>> {
        let rows = super::lines::paged(
            &self.read,
            &format!("SELECT {CALL_COLS} FROM calls WHERE account_id = $1 AND line_id = $2"),
            "calls",
            account,
            Some(line.as_str()),
            page,
        )
        .await?;
        let items = rows.iter().map(call).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn call_seconds(
        &self,
        lines: &[LineId],
        from_day: i64,
    ) -> StoreResult<Vec<(LineId, i64, u64)>> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT line_id, day, seconds FROM call_days WHERE day >= {} AND line_id IN ({})",
            super::param(self.backend, 1),
            param_list(self.backend, lines.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(from_day);
        for l in lines {
            q = q.bind(l.as_str());
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    id(r, "line_id")?,
                    int(r, "day")?,
                    u64::try_from(int(r, "seconds")?).unwrap_or(0),
                ))
            })
            .collect()
    }
}
