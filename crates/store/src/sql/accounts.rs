//! Accounts and API keys.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use wagate_domain::account::{Account, ApiKeyInfo, KeyMode, NewApiKey};
use wagate_domain::ids::{AccountId, ApiKeyId};
use wagate_domain::time::to_micros;

use super::{id, int, opt_ts, text, ts, SqlStore};
use crate::error::corrupt;
use crate::{AccountStore, NewAccount, StoreError, StoreResult};

pub(super) const ACCOUNT_COLS: &str = "a.id, a.name, a.calling_enabled, a.mode, a.created_at";
const KEY_COLS: &str = "id, account_id, hint, mode, created_at, revoked_at";

fn mode(row: &AnyRow) -> StoreResult<KeyMode> {
    let m = text(row, "mode")?;
    KeyMode::from_db(&m).ok_or_else(|| corrupt("mode", m))
}

pub(super) fn account(row: &AnyRow) -> StoreResult<Account> {
    Ok(Account {
        id: id(row, "id")?,
        name: text(row, "name")?,
        calling_enabled: int(row, "calling_enabled")? != 0,
        mode: mode(row)?,
        created_at: ts(row, "created_at")?,
    })
}

fn key_info(row: &AnyRow) -> StoreResult<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        hint: text(row, "hint")?,
        mode: mode(row)?,
        created_at: ts(row, "created_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

impl SqlStore {
    async fn insert_key(
        tx: &mut sqlx::AnyConnection,
        account: &AccountId,
        key: &NewApiKey,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, account_id, hash, hint, mode, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.as_str())
        .bind(account.as_str())
        .bind(&key.hash)
        .bind(&key.hint)
        .bind(key.mode.as_str())
        .bind(to_micros(now))
        .execute(tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn store_mode(&self) -> StoreResult<Option<KeyMode>> {
        let row = sqlx::query("SELECT value FROM store_meta WHERE key = 'mode'")
            .fetch_optional(&self.read)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let v = text(&r, "value")?;
                Ok(Some(
                    KeyMode::from_db(&v).ok_or_else(|| corrupt("store_meta.mode", v))?,
                ))
            }
        }
    }

    async fn claim_store_mode(&self, mode: KeyMode) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO store_meta (key, value) VALUES ('mode', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(mode.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT value FROM store_meta WHERE key = 'mode'")
            .fetch_one(&mut *tx)
            .await?;
        let stored = text(&row, "value")?;
        tx.commit().await?;
        if stored != mode.as_str() {
            let what = |m: &str| {
                if m == "test" {
                    "a sandbox"
                } else {
                    "a production"
                }
            };
            return Err(StoreError::ModeMismatch(format!(
                "this data store belongs to {} server; refusing to use it as {} one",
                what(&stored),
                what(mode.as_str())
            )));
        }
        Ok(())
    }

    async fn create_account(
        &self,
        new: NewAccount,
        key: &NewApiKey,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let account = Account {
            id: AccountId::generate(),
            name: new.name,
            calling_enabled: new.calling_enabled,
            mode: key.mode,
            created_at: now,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO accounts (id, name, calling_enabled, mode, is_demo, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(account.id.as_str())
        .bind(&account.name)
        .bind(i64::from(account.calling_enabled))
        .bind(account.mode.as_str())
        .bind(i64::from(new.is_demo))
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        Self::insert_key(&mut tx, &account.id, key, now).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<(Account, ApiKeyId)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS}, k.id AS key_id FROM api_keys k
             JOIN accounts a ON a.id = k.account_id
             WHERE k.hash = $1 AND k.revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| Ok((account(&r)?, id(&r, "key_id")?)))
            .transpose()
    }

    async fn get_account(&self, account_id: &AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = $1"
        ))
        .bind(account_id.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(account).transpose()
    }

    async fn demo_account(&self) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.is_demo = 1 ORDER BY a.seq LIMIT 1"
        ))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(account).transpose()
    }

    async fn create_api_key(
        &self,
        account: &AccountId,
        key: &NewApiKey,
        now: Timestamp,
    ) -> StoreResult<ApiKeyInfo> {
        let mut tx = self.begin_write().await?;
        Self::insert_key(&mut tx, account, key, now).await?;
        tx.commit().await?;
        Ok(ApiKeyInfo {
            id: key.id.clone(),
            account_id: account.clone(),
            hint: key.hint.clone(),
            mode: key.mode,
            created_at: now,
            revoked_at: None,
        })
    }

    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKeyInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE account_id = $1 ORDER BY seq DESC"
        ))
        .bind(account.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(key_info).collect()
    }

    async fn revoke_api_key(
        &self,
        account: &AccountId,
        key: &ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<Option<ApiKeyInfo>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $1
             WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
        )
        .bind(to_micros(now))
        .bind(key.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE id = $1 AND account_id = $2"
        ))
        .bind(key.as_str())
        .bind(account.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(key_info).transpose()
    }
}
