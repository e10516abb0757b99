//! API keys of the caller's account: create (the secret is shown once), list, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use wagate_app::accounts;
use wagate_domain::account::ApiKeyInfo;
use wagate_domain::time::rfc3339;

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::idempotency::SecretFields;
use crate::json::ApiJson;
use crate::AppState;

/// An API key (its secret only in the response that creates it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    /// `key_…`
    pub id: String,
    /// Always `api_key`.
    pub object: &'static str,
    /// The first characters of the secret, to tell keys apart.
    pub hint: String,
    /// `test` or `live`.
    pub mode: String,
    /// The full secret: present only when the key is created. Store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when revoked.
    pub revoked_at: Option<String>,
}

impl ApiKeyOut {
    fn new(k: &ApiKeyInfo, secret: Option<String>) -> Self {
        ApiKeyOut {
            id: k.id.to_string(),
            object: "api_key",
            hint: k.hint.clone(),
            mode: k.mode.as_str().to_owned(),
            secret,
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// A list of API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys, newest first.
    pub data: Vec<ApiKeyOut>,
    /// Always false: an account's keys fit on one page.
    pub has_more: bool,
}

/// Creates another key for the account (to rotate keys without downtime).
#[utoipa::path(post, path = "/api/v1/account/keys", operation_id = "createApiKey", tag = "account", security(("api_key" = [])),
    request_body = super::EmptyIn,
    responses((status = 201, description = "The new key, with its secret", body = ApiKeyOut)))]
pub async fn create(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(super::EmptyIn {}): ApiJson<super::EmptyIn>,
) -> ApiResult<(
    StatusCode,
    axum::Extension<SecretFields>,
    ApiJson<ApiKeyOut>,
)> {
    let (info, secret) = accounts::create_key(&st.app, &who).await?;
    Ok((
        StatusCode::CREATED,
        // The secret is shown once: a replay of this answer comes without it.
        axum::Extension(SecretFields(&["secret"])),
        ApiJson(ApiKeyOut::new(&info, Some(secret))),
    ))
}

/// The account's keys, revoked ones included.
#[utoipa::path(get, path = "/api/v1/account/keys", operation_id = "listApiKeys", tag = "account", security(("api_key" = [])),
    responses((status = 200, description = "The keys", body = ApiKeyList)))]
pub async fn list(
    State(st): State<AppState>,
    Authed(who): Authed,
) -> ApiResult<ApiJson<ApiKeyList>> {
    let keys = accounts::list_keys(&st.app, &who).await?;
    Ok(ApiJson(ApiKeyList {
        data: keys.iter().map(|k| ApiKeyOut::new(k, None)).collect(),
        has_more: false,
    }))
}

/// Revokes a key at once. Revoking the key making the request is allowed.
#[utoipa::path(delete, path = "/api/v1/account/keys/{id}", operation_id = "revokeApiKey", tag = "account", security(("api_key" = [])),
    params(("id" = String, Path, description = "`key_…`")),
    responses((status = 200, description = "The revoked key", body = ApiKeyOut)))]
pub async fn revoke(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ApiKeyOut>> {
    let info = accounts::revoke_key(&st.app, &who, &id).await?;
    Ok(ApiJson(ApiKeyOut::new(&info, None)))
}
