//! Dashboard sessions (PRODUCT.md §13, docs/dashboard.md): a browser signs in with an API key
//! and gets a session secret in a cookie. The store keeps only the secret's SHA-256; the
//! session is valid while it has not expired and its key is not revoked, so revoking the key
//! ends every session it opened, on every server sharing the store, at the next request.
//!
//! Each session has a CSRF token derived from its secret ([`csrf_token`]): forms carry it,
//! and only a page served to that session can know it.

use jiff::SignedDuration;
use rand::RngCore;
use sha2::{Digest, Sha256};
use wagate_store::NewDashboardSession;

use crate::accounts::{authenticate, Principal};
use crate::{App, AppResult};

/// How long a session lasts from sign-in (wall clock).
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(12);

/// Prefix of a session secret, so a leaked one is recognisable.
const SECRET_PREFIX: &str = "wgs_";

/// A session just opened: its secret goes into the cookie and nowhere else.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// The secret (256 random bits), shown once.
    pub secret: String,
    /// Who signed in.
    pub principal: Principal,
}

/// The stored form of a session secret.
fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `s` has the shape of a session secret (saves a store lookup for garbage).
fn looks_like_secret(s: &str) -> bool {
    s.len() == SECRET_PREFIX.len() + 64
        && s.starts_with(SECRET_PREFIX)
        && s[SECRET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// Signs in with an API key: a new session, or `None` for an unknown or revoked key.
pub async fn sign_in(app: &App, api_key: &str) -> AppResult<Option<OpenedSession>> {
    let Some(principal) = authenticate(app, api_key.trim()).await? else {
        return Ok(None);
    };
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(bytes));
    let now = app.wall.now();
    app.store
        .create_session(&NewDashboardSession {
            token_hash: hash_secret(&secret),
            account_id: principal.account.id.clone(),
            key_id: principal.key_id.clone(),
            created_at: now,
            expires_at: now.saturating_add(SESSION_TTL).unwrap_or(now),
        })
        .await?;
    Ok(Some(OpenedSession { secret, principal }))
}

/// The principal of a live session, or `None` (unknown, expired, or its key revoked).
pub async fn session(app: &App, secret: &str) -> AppResult<Option<Principal>> {
    if !looks_like_secret(secret) {
        return Ok(None);
    }
    let found = app
        .store
        .session(&hash_secret(secret), app.wall.now())
        .await?;
    Ok(found.map(|(account, key_id)| Principal { account, key_id }))
}

/// Ends a session (sign-out).
pub async fn sign_out(app: &App, secret: &str) -> AppResult<()> {
    if looks_like_secret(secret) {
        app.store.delete_session(&hash_secret(secret)).await?;
    }
    Ok(())
}

/// The CSRF token of a session: a keyed digest of its secret, so it cannot be computed
/// without the cookie and needs no storage of its own.
pub fn csrf_token(secret: &str) -> String {
    hex::encode(Sha256::digest(
        format!("wagate-dashboard-csrf\0{secret}").as_bytes(),
    ))
}

/// Compares a presented CSRF token with the expected one in time independent of where they
/// differ.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_by_shape() {
        let s = format!("wgs_{}", "ab".repeat(32));
        assert!(looks_like_secret(&s));
        assert!(!looks_like_secret("wgs_abc"));
        assert!(!looks_like_secret(&format!("wgs_{}", "zz".repeat(32))));
    }

    #[test]
    fn the_csrf_token_is_tied_to_the_session() {
        let a = csrf_token("wgs_a");
        assert_eq!(a, csrf_token("wgs_a"));
        assert_ne!(a, csrf_token("wgs_b"));
        assert!(csrf_matches(&a, &a));
        assert!(!csrf_matches(&a, &csrf_token("wgs_b")));
        assert!(!csrf_matches(&a, ""));
    }
}
