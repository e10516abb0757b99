//! Dashboard sessions: a browser signed in with an API key (docs/dashboard.md).

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::account::Account;
use wagate_domain::ids::{AccountId, ApiKeyId};

use crate::StoreResult;

/// A session to store: only the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewDashboardSession {
    /// SHA-256 (hex) of the session's secret, which only the browser's cookie holds.
    pub token_hash: String,
    /// The account signed in.
    pub account_id: AccountId,
    /// The key it signed in with: the session lives only while the key does.
    pub key_id: ApiKeyId,
    /// When it was opened (wall clock).
    pub created_at: Timestamp,
    /// When it stops being valid (wall clock).
    pub expires_at: Timestamp,
}

/// Dashboard sessions.
#[async_trait]
pub trait SessionStore {
    /// Stores a new session (and forgets sessions that expired before its creation).
    async fn create_session(&self, session: &NewDashboardSession) -> StoreResult<()>;
    /// The account and key of a live session: known, not expired at `now`, its key not
    /// revoked. `None` otherwise.
    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Account, ApiKeyId)>>;
    /// Ends a session (sign-out). Ending an unknown session is harmless.
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
}
