//! Accounts and API keys: creation (the key is shown once), authentication, revocation.
//!
//! A key that authenticated is trusted by this process for [`KEY_CACHE_TTL`] of wall-clock
//! time without asking the database again (every request presents its key). Revoking a key
//! through this process evicts it at once; another server process sharing the PostgreSQL
//! database (or `wagate` run against the same SQLite store) refuses it within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use wagate_domain::account::{
    hash_api_key, looks_like_api_key, parse_account_name, Account, ApiKeyInfo, NewApiKey,
};
use wagate_domain::ids::ApiKeyId;
use wagate_store::NewAccount;

use crate::{App, AppError, AppResult};

/// Who is calling: the account behind a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account.
    pub account: Account,
    /// The key used.
    pub key_id: ApiKeyId,
}

/// How long a key that authenticated is trusted without asking the database again.
pub const KEY_CACHE_TTL: SignedDuration = SignedDuration::from_secs(10);

/// Most keys remembered at once (expired ones are dropped first when it fills up).
const KEY_CACHE_MAX: usize = 10_000;

/// Keys that authenticated recently: key hash → principal and until when it is trusted.
/// Only valid keys are remembered, so unknown keys cannot fill it.
#[derive(Debug, Default)]
pub struct KeyCache {
    inner: Mutex<KeyCacheInner>,
}

#[derive(Debug, Default)]
struct KeyCacheInner {
    entries: HashMap<String, (Principal, Timestamp)>,
    /// Bumped by every eviction: a lookup that began before one must not store its answer,
    /// which may predate the revocation.
    generation: u64,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyCacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The principal behind `hash` if it was checked less than the TTL before `now`; else
    /// the generation to hand to [`KeyCache::put`] after asking the database.
    pub fn get(&self, hash: &str, now: Timestamp) -> Result<Principal, u64> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some((p, until)) if now < *until => Ok(p.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Remembers a principal the database confirmed at `now`, unless a key was evicted since
    /// the lookup began (`generation`).
    pub fn put(&self, hash: String, principal: Principal, generation: u64, now: Timestamp) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= KEY_CACHE_MAX {
            inner.entries.retain(|_, (_, until)| now < *until);
            if inner.entries.len() >= KEY_CACHE_MAX {
                inner.entries.clear();
            }
        }
        let until = now.saturating_add(KEY_CACHE_TTL).unwrap_or(now);
        inner.entries.insert(hash, (principal, until));
    }

    /// Forgets a key (it was revoked): the next request with it asks the database.
    pub fn evict(&self, key_id: &ApiKeyId) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|_, (p, _)| p.key_id != *key_id);
    }
}

/// A created account with its key's secret, which is never retrievable again.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    /// The account.
    pub account: Account,
    /// The API key secret.
    pub api_key: String,
}

/// Creates an account and its first key.
pub async fn create_account(app: &App, name: &str, calling: bool) -> AppResult<CreatedAccount> {
    create(app, name, calling, false).await
}

async fn create(app: &App, name: &str, calling: bool, is_demo: bool) -> AppResult<CreatedAccount> {
    let name = parse_account_name(name).map_err(|e| AppError::invalid("name", e.to_string()))?;
    let key = NewApiKey::generate(app.config.mode);
    let account = app
        .store
        .create_account(
            NewAccount {
                name,
                calling_enabled: calling,
                is_demo,
            },
            &key,
            app.clock.now(),
        )
        .await?;
    Ok(CreatedAccount {
        account,
        api_key: key.secret,
    })
}

/// The sandbox's demo account with a fresh key: created on first start; on later starts a
/// new key is added (secrets are stored hashed, so an old one cannot be shown again).
pub async fn sandbox_demo_account(app: &App) -> AppResult<CreatedAccount> {
    match app.store.demo_account().await? {
        None => create(app, "Sandbox demo", true, true).await,
        Some(account) => {
            let key = NewApiKey::generate(app.config.mode);
            app.store
                .create_api_key(&account.id, &key, app.clock.now())
                .await?;
            Ok(CreatedAccount {
                account,
                api_key: key.secret,
            })
        }
    }
}

/// The principal behind a presented key, or `None` for an unknown or revoked key.
pub async fn authenticate(app: &App, presented: &str) -> AppResult<Option<Principal>> {
    if !looks_like_api_key(presented) {
        return Ok(None);
    }
    let hash = hash_api_key(presented);
    let generation = match app.keys.get(&hash, app.wall.now()) {
        Ok(principal) => return Ok(Some(principal)),
        Err(generation) => generation,
    };
    let Some((account, key_id)) = app.store.authenticate(&hash).await? else {
        return Ok(None);
    };
    let principal = Principal { account, key_id };
    app.keys
        .put(hash, principal.clone(), generation, app.wall.now());
    Ok(Some(principal))
}

/// Adds a key to the caller's account.
pub async fn create_key(app: &App, who: &Principal) -> AppResult<(ApiKeyInfo, String)> {
    let key = NewApiKey::generate(app.config.mode);
    let info = app
        .store
        .create_api_key(&who.account.id, &key, app.clock.now())
        .await?;
    Ok((info, key.secret))
}

/// The caller's keys.
pub async fn list_keys(app: &App, who: &Principal) -> AppResult<Vec<ApiKeyInfo>> {
    Ok(app.store.list_api_keys(&who.account.id).await?)
}

/// Revokes one of the caller's keys (another account's key is "not found").
pub async fn revoke_key(app: &App, who: &Principal, key_id: &str) -> AppResult<ApiKeyInfo> {
    let key_id = ApiKeyId::parse(key_id).map_err(|_| AppError::NotFound("api key"))?;
    let revoked = app
        .store
        .revoke_api_key(&who.account.id, &key_id, app.clock.now())
        .await?
        .ok_or(AppError::NotFound("api key"))?;
    app.keys.evict(&key_id);
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wagate_domain::account::KeyMode;
    use wagate_domain::ids::AccountId;

    fn principal() -> Principal {
        Principal {
            account: Account {
                id: AccountId::generate(),
                name: "Acme".into(),
                calling_enabled: false,
                mode: KeyMode::Test,
                created_at: Timestamp::UNIX_EPOCH,
            },
            key_id: ApiKeyId::generate(),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_checked_key_is_trusted_for_the_ttl_then_checked_again() {
        let cache = KeyCache::default();
        let p = principal();
        let generation = cache.get("h", at(0)).unwrap_err();
        cache.put("h".into(), p.clone(), generation, at(0));
        assert_eq!(cache.get("h", at(9)), Ok(p));
        assert!(cache.get("h", at(10)).is_err(), "expired after 10 s");
        assert!(cache.get("other", at(1)).is_err());
    }

    #[test]
    fn a_revoked_key_is_forgotten_even_by_a_lookup_that_began_before() {
        let cache = KeyCache::default();
        let (p, q) = (principal(), principal());
        let g = cache.get("p", at(0)).unwrap_err();
        cache.put("p".into(), p.clone(), g, at(0));
        cache.put("q".into(), q.clone(), g, at(0));
        // A lookup of `p` reads the database before the revocation and answers after it.
        let before = cache.get("p2", at(1)).unwrap_err();
        cache.evict(&p.key_id);
        assert!(cache.get("p", at(1)).is_err(), "evicted at once");
        assert_eq!(cache.get("q", at(1)), Ok(q), "other keys stay");
        cache.put("p".into(), p.clone(), before, at(1));
        assert!(
            cache.get("p", at(1)).is_err(),
            "a stale answer is not stored"
        );
    }
}
