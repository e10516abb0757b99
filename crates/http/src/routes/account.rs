//! The caller's account.

use serde::Serialize;
use utoipa::ToSchema;
use wagate_domain::account::Account;
use wagate_domain::time::rfc3339;

use crate::auth::Authed;
use crate::error::ApiError;
use crate::json::ApiJson;

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    /// `acct_…`
    pub id: String,
    /// Always `account`.
    pub object: &'static str,
    /// The business's name.
    pub name: String,
    /// Whether the calling rollout is on for this account.
    pub calling_enabled: bool,
    /// `test` (sandbox) or `live`.
    pub mode: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&Account> for AccountOut {
    fn from(a: &Account) -> Self {
        AccountOut {
            id: a.id.to_string(),
            object: "account",
            name: a.name.clone(),
            calling_enabled: a.calling_enabled,
            mode: a.mode.as_str().to_owned(),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// The account the API key belongs to.
#[utoipa::path(get, path = "/api/v1/account", operation_id = "getAccount", tag = "account", security(("api_key" = [])),
    responses((status = 200, description = "The account", body = AccountOut)))]
pub async fn get(Authed(who): Authed) -> Result<ApiJson<AccountOut>, ApiError> {
    Ok(ApiJson(AccountOut::from(&who.account)))
}
