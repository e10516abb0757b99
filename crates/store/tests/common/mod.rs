//! What the storage contract tests share: opening a fresh store on each backend, and
//! `contract!`, which runs one test body on both.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, unused_macros)]

use jiff::Timestamp;
use wagate_domain::account::{Account, KeyMode, NewApiKey};
use wagate_store::{testing, AccountStore, NewAccount, SqlStore};

/// An instant from its RFC 3339 text.
pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
pub async fn sqlite() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqlStore::open_sqlite_dir(dir.path()).await.unwrap(), dir)
}

/// A store on a fresh database of the test PostgreSQL server.
pub async fn postgres() -> SqlStore {
    let url = testing::fresh_postgres_database().await.unwrap();
    SqlStore::open(&url, Default::default()).await.unwrap()
}

/// A new account named `name` (created on 2026-01-01) and its test key.
pub async fn account(store: &SqlStore, name: &str) -> (Account, NewApiKey) {
    let key = NewApiKey::generate(KeyMode::Test);
    let acct = store
        .create_account(
            NewAccount {
                name: name.into(),
                calling_enabled: false,
                is_demo: false,
            },
            &key,
            t("2026-01-01T00:00:00Z"),
        )
        .await
        .unwrap();
    (acct, key)
}

/// Defines `mod $name { sqlite(), postgres() }` running `$body(store)` on each backend.
macro_rules! contract {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = $crate::common::sqlite().await;
                super::$body(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body($crate::common::postgres().await).await;
            }
        }
    };
}
