//! WhatsApp Web sessions (see [`WhatsAppSessionStore`]).

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::LineId;
use wagate_domain::time::to_micros;

use super::{id, opt_int, param_list, placeholders, text, SqlStore, MAX_PARAMS};
use crate::{StoreResult, WaSessionValue, WhatsAppSessionStore};

/// Bound parameters per row of [`WhatsAppSessionStore::wa_put`].
const PUT_COLS: usize = 6;

#[async_trait]
impl WhatsAppSessionStore for SqlStore {
    async fn wa_key_check(&self, check: &str, now: Timestamp) -> StoreResult<String> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO wa_key_check (id, check_value, created_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(check)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT check_value FROM wa_key_check WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        text(&row, "check_value")
    }

    async fn wa_get(&self, line: &LineId, kind: &str, key_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT value FROM wa_session_values WHERE line_id = $1 AND kind = $2 AND key_id = $3",
        )
        .bind(line.as_str())
        .bind(kind)
        .bind(key_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| text(&r, "value")).transpose()
    }

    async fn wa_list(&self, line: &LineId, kind: &str) -> StoreResult<Vec<WaSessionValue>> {
        let rows = sqlx::query(
            "SELECT key_id, value, stamp FROM wa_session_values WHERE line_id = $1 AND kind = $2",
        )
        .bind(line.as_str())
        .bind(kind)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WaSessionValue {
                    kind: kind.to_owned(),
                    key_id: text(r, "key_id")?,
                    value: text(r, "value")?,
                    stamp: opt_int(r, "stamp")?,
                })
            })
            .collect()
    }

    async fn wa_put(
        &self,
        line: &LineId,
        values: &[WaSessionValue],
        now: Timestamp,
    ) -> StoreResult<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in values.chunks(MAX_PARAMS / PUT_COLS) {
            // A key given twice in one call keeps its last value (PostgreSQL refuses a row
            // that one INSERT would update twice).
            let mut rows: Vec<&WaSessionValue> = Vec::with_capacity(chunk.len());
            for v in chunk {
                match rows
                    .iter_mut()
                    .find(|r| r.kind == v.kind && r.key_id == v.key_id)
                {
                    Some(slot) => *slot = v,
                    None => rows.push(v),
                }
            }
            let sql = format!(
                "INSERT INTO wa_session_values (line_id, kind, key_id, value, stamp, updated_at)
                 VALUES {}
                 ON CONFLICT (line_id, kind, key_id) DO UPDATE SET
                     value = excluded.value, stamp = excluded.stamp,
                     updated_at = excluded.updated_at",
                placeholders(self.backend, rows.len(), PUT_COLS, 1)
            );
            let mut q = sqlx::query(&sql);
            for v in rows {
                q = q
                    .bind(line.as_str())
                    .bind(v.kind.as_str())
                    .bind(v.key_id.as_str())
                    .bind(v.value.as_str())
                    .bind(v.stamp)
                    .bind(to_micros(now));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn wa_delete(&self, line: &LineId, kind: &str, key_ids: &[String]) -> StoreResult<()> {
        if key_ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in key_ids.chunks(MAX_PARAMS - 2) {
            let sql = format!(
                "DELETE FROM wa_session_values WHERE line_id = {} AND kind = {} AND key_id IN ({})",
                param_list(self.backend, 1, 1),
                param_list(self.backend, 1, 2),
                param_list(self.backend, chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql).bind(line.as_str()).bind(kind);
            for k in chunk {
                q = q.bind(k.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn wa_delete_kind(&self, line: &LineId, kind: &str) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM wa_session_values WHERE line_id = $1 AND kind = $2")
            .bind(line.as_str())
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn wa_delete_before(&self, line: &LineId, kind: &str, cutoff: i64) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM wa_session_values WHERE line_id = $1 AND kind = $2 AND stamp < $3",
        )
        .bind(line.as_str())
        .bind(kind)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn wa_forget(&self, line: &LineId) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM wa_session_values WHERE line_id = $1")
            .bind(line.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn wa_lines_with(&self, kind: &str) -> StoreResult<Vec<LineId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT line_id FROM wa_session_values WHERE kind = $1 ORDER BY line_id",
        )
        .bind(kind)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| id(r, "line_id")).collect()
    }
}
