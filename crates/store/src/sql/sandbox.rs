//! The sandbox's persisted clock.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::time::to_micros;

use super::{ts, SqlStore};
use crate::{SandboxStore, StoreResult};

#[async_trait]
impl SandboxStore for SqlStore {
    async fn load_sandbox_clock(&self) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query("SELECT now FROM sandbox_clock WHERE id = 1")
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| ts(&r, "now")).transpose()
    }

    async fn save_sandbox_clock(&self, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Never moves the stored clock backwards, whichever server writes last.
        sqlx::query(
            "INSERT INTO sandbox_clock (id, now) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET now = CASE WHEN sandbox_clock.now > excluded.now
                 THEN sandbox_clock.now ELSE excluded.now END",
        )
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
