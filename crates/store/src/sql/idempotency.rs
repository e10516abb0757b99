//! Idempotency keys.
//!
//! A released key keeps its row with `locked_until = 0`: nobody holds it and nothing it did
//! must be replayed, so the next request with the key takes it over (whatever its body), and
//! keeps the row's `created_at` — the `since` that keys the work shared by retries.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::AccountId;
use wagate_domain::time::to_micros;

use super::{int, opt_int, opt_text, text, ts, SqlStore};
use crate::{IdempotencyBegin, IdempotencyStore, StoreResult, StoredResponse};

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn idempotency_begin(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        wall_now: Timestamp,
        lock_until: Timestamp,
        expire_before: Timestamp,
    ) -> StoreResult<IdempotencyBegin> {
        let mut tx = self.begin_write().await?;
        // An expired key is forgotten, like Stripe's 24-hour window.
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND created_at < $3",
        )
        .bind(account.as_str())
        .bind(key)
        .bind(to_micros(expire_before))
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (account_id, key, fingerprint, state, locked_until, created_at)
             VALUES ($1, $2, $3, 'running', $4, $5)
             ON CONFLICT (account_id, key) DO NOTHING",
        )
        .bind(account.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(to_micros(lock_until))
        .bind(to_micros(wall_now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            tx.commit().await?;
            return Ok(IdempotencyBegin::Started { since: wall_now });
        }
        let row = sqlx::query(
            "SELECT fingerprint, state, locked_until, response_status, response_body, created_at
             FROM idempotency_keys WHERE account_id = $1 AND key = $2",
        )
        .bind(account.as_str())
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        let since = ts(&row, "created_at")?;
        let released = text(&row, "state")? == "running" && int(&row, "locked_until")? == 0;
        let outcome = if released {
            // Nothing of the released request is kept: this one runs, with its own body.
            sqlx::query(
                "UPDATE idempotency_keys SET locked_until = $1, fingerprint = $2
                 WHERE account_id = $3 AND key = $4",
            )
            .bind(to_micros(lock_until))
            .bind(fingerprint)
            .bind(account.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await?;
            IdempotencyBegin::Started { since }
        } else if text(&row, "fingerprint")? != fingerprint {
            IdempotencyBegin::Mismatch
        } else if text(&row, "state")? == "done" {
            IdempotencyBegin::Replay(StoredResponse {
                status: opt_int(&row, "response_status")?.unwrap_or(200) as u16,
                body: opt_text(&row, "response_body")?.unwrap_or_default(),
            })
        } else if int(&row, "locked_until")? > to_micros(wall_now) {
            IdempotencyBegin::InProgress
        } else {
            // The holder died without finishing: take the key over.
            sqlx::query(
                "UPDATE idempotency_keys SET locked_until = $1 WHERE account_id = $2 AND key = $3",
            )
            .bind(to_micros(lock_until))
            .bind(account.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await?;
            IdempotencyBegin::Started { since }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn idempotency_finish(
        &self,
        account: &AccountId,
        key: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', response_status = $1, response_body = $2
             WHERE account_id = $3 AND key = $4",
        )
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(account.as_str())
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn idempotency_release(&self, account: &AccountId, key: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE idempotency_keys SET locked_until = 0
             WHERE account_id = $1 AND key = $2 AND state = 'running'",
        )
        .bind(account.as_str())
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn idempotency_sweep(&self, expire_before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(to_micros(expire_before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
