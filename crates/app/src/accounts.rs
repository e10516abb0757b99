//! Accounts and API keys: creation (the key is shown once), authentication, revocation.

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
    let found = app.store.authenticate(&hash_api_key(presented)).await?;
    Ok(found.map(|(account, key_id)| Principal { account, key_id }))
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
    app.store
        .revoke_api_key(&who.account.id, &key_id, app.clock.now())
        .await?
        .ok_or(AppError::NotFound("api key"))
}
