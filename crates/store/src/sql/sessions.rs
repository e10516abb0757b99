//! Dashboard sessions.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::account::Account;
use wagate_domain::ids::ApiKeyId;
use wagate_domain::time::to_micros;

use super::accounts::{account, ACCOUNT_COLS};
use super::{id, SqlStore};
use crate::{NewDashboardSession, SessionStore, StoreResult};

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, s: &NewDashboardSession) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(to_micros(s.created_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (token_hash, account_id, key_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(s.account_id.as_str())
        .bind(s.key_id.as_str())
        .bind(to_micros(s.created_at))
        .bind(to_micros(s.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Account, ApiKeyId)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS}, k.id AS key_id FROM dashboard_sessions s
             JOIN api_keys k ON k.id = s.key_id
             JOIN accounts a ON a.id = s.account_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL"
        ))
        .bind(token_hash)
        .bind(to_micros(now))
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| Ok((account(&r)?, id(&r, "key_id")?)))
            .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
