//! Which server serves which line (see [`OwnershipStore`]).

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::LineId;
use wagate_domain::time::to_micros;

use super::script::{bind, Arg};
use super::{id, int, opt_text, opt_ts, param_list, SqlStore, MAX_PARAMS};
use crate::{OwnershipStore, PublishedPairing, StoreResult};

#[async_trait]
impl OwnershipStore for SqlStore {
    async fn server_alive(
        &self,
        holder: &str,
        host: &str,
        wall_now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO servers (holder, host, started_at, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(holder)
        .bind(host)
        .bind(to_micros(wall_now))
        .bind(to_micros(until))
        .execute(&mut *tx)
        .await?;
        // Servers dead for a day own nothing worth keeping a row for: their lines were adopted.
        sqlx::query(
            "DELETE FROM servers WHERE expires_at < $1
             AND NOT EXISTS (SELECT 1 FROM line_owners o WHERE o.holder = servers.holder)",
        )
        .bind(to_micros(wall_now) - 86_400_000_000)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_line(
        &self,
        line: &LineId,
        holder: &str,
        wall_now: Timestamp,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin_write().await?;
        // One statement decides: a concurrent taker either sees this row or conflicts on it
        // (PostgreSQL re-checks the WHERE of ON CONFLICT on the locked row), so two servers
        // never both win a line.
        let row = sqlx::query(
            "INSERT INTO line_owners (line_id, holder, epoch, since) VALUES ($1, $2, 1, $3)
             ON CONFLICT (line_id) DO UPDATE SET
                 holder = excluded.holder,
                 epoch = CASE WHEN line_owners.holder = excluded.holder
                         THEN line_owners.epoch ELSE line_owners.epoch + 1 END,
                 since = CASE WHEN line_owners.holder = excluded.holder
                         THEN line_owners.since ELSE excluded.since END,
                 -- A new owner runs a new pairing client: nothing the old one published holds.
                 qr = CASE WHEN line_owners.holder = excluded.holder
                      THEN line_owners.qr ELSE NULL END,
                 qr_expires_at = CASE WHEN line_owners.holder = excluded.holder
                                 THEN line_owners.qr_expires_at ELSE NULL END,
                 pair_request = CASE WHEN line_owners.holder = excluded.holder
                                THEN line_owners.pair_request ELSE NULL END,
                 pair_answer = CASE WHEN line_owners.holder = excluded.holder
                               THEN line_owners.pair_answer ELSE NULL END
             WHERE line_owners.holder = excluded.holder OR NOT EXISTS (
                 SELECT 1 FROM servers s WHERE s.holder = line_owners.holder AND s.expires_at > $3)
             RETURNING epoch",
        )
        .bind(line.as_str())
        .bind(holder)
        .bind(to_micros(wall_now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| int(&r, "epoch")).transpose()
    }

    async fn owned_lines(&self, holder: &str) -> StoreResult<Vec<(LineId, i64)>> {
        let rows = sqlx::query("SELECT line_id, epoch FROM line_owners WHERE holder = $1")
            .bind(holder)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((id(r, "line_id")?, int(r, "epoch")?)))
            .collect()
    }

    async fn orphan_lines(&self, wall_now: Timestamp, limit: u32) -> StoreResult<Vec<LineId>> {
        let rows = sqlx::query(
            "SELECT l.id FROM lines l
             WHERE l.status IN ('ready', 'reconnecting') AND NOT EXISTS (
                 SELECT 1 FROM line_owners o JOIN servers s ON s.holder = o.holder
                 WHERE o.line_id = l.id AND s.expires_at > $1)
             ORDER BY l.id LIMIT $2",
        )
        .bind(to_micros(wall_now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| id(r, "id")).collect()
    }

    async fn give_up_lines(&self, holder: &str, lines: &[LineId]) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in lines.chunks(MAX_PARAMS - 1) {
            let sql = format!(
                "DELETE FROM line_owners WHERE holder = {} AND line_id IN ({})",
                param_list(self.backend, 1, 1),
                param_list(self.backend, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql).bind(holder);
            for l in chunk {
                q = q.bind(l.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn server_gone(&self, holder: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM line_owners WHERE holder = $1")
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM servers WHERE holder = $1")
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn publish_pairing_qr(
        &self,
        line: &LineId,
        holder: &str,
        payload: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let values = vec![payload.into(), to_micros(expires_at).into()];
        self.set_owned(line, holder, "qr = $1, qr_expires_at = $2", values)
            .await
    }

    async fn publish_pair_code(
        &self,
        line: &LineId,
        holder: &str,
        request: &str,
        answer: &str,
    ) -> StoreResult<()> {
        let values = vec![request.into(), answer.into()];
        self.set_owned(line, holder, "pair_request = $1, pair_answer = $2", values)
            .await
    }

    async fn look_at_pairing(
        &self,
        line: &LineId,
        wall_now: Timestamp,
    ) -> StoreResult<Option<PublishedPairing>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE line_owners SET looked_at = $1 WHERE line_id = $2
             RETURNING qr, qr_expires_at, pair_request, pair_answer",
        )
        .bind(to_micros(wall_now))
        .bind(line.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(published).transpose()
    }

    async fn published_pairing(&self, line: &LineId) -> StoreResult<Option<PublishedPairing>> {
        let row = sqlx::query(
            "SELECT qr, qr_expires_at, pair_request, pair_answer FROM line_owners
             WHERE line_id = $1",
        )
        .bind(line.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(published).transpose()
    }

    async fn watched_pairings(&self, holder: &str, since: Timestamp) -> StoreResult<Vec<LineId>> {
        let rows =
            sqlx::query("SELECT line_id FROM line_owners WHERE holder = $1 AND looked_at >= $2")
                .bind(holder)
                .bind(to_micros(since))
                .fetch_all(&self.read)
                .await?;
        rows.iter().map(|r| id(r, "line_id")).collect()
    }
}

/// What a row of `line_owners` holds for other servers' connect pages.
fn published(row: &sqlx::any::AnyRow) -> StoreResult<PublishedPairing> {
    let qr = match (opt_text(row, "qr")?, opt_ts(row, "qr_expires_at")?) {
        (Some(payload), Some(until)) => Some((payload, until)),
        _ => None,
    };
    let pair_code = match (
        opt_text(row, "pair_request")?,
        opt_text(row, "pair_answer")?,
    ) {
        (Some(request), Some(answer)) => Some((request, answer)),
        _ => None,
    };
    Ok(PublishedPairing { qr, pair_code })
}

impl SqlStore {
    /// Sets columns of `line`'s ownership row (`set` numbers its parameters from 1, in the
    /// order of `values`) while `holder` owns the line. One statement: no transaction needed.
    async fn set_owned(
        &self,
        line: &LineId,
        holder: &str,
        set: &str,
        values: Vec<Arg<'_>>,
    ) -> StoreResult<()> {
        let n = values.len();
        let sql = format!(
            "UPDATE line_owners SET {set} WHERE line_id = ${} AND holder = ${}",
            n + 1,
            n + 2
        );
        bind(sqlx::query(&sql), values)
            .bind(line.as_str())
            .bind(holder)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
