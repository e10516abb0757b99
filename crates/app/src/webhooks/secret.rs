//! The account's signing secret and its rotation.

use jiff::SignedDuration;
use wagate_domain::webhook::signing::SigningSecret;
use wagate_store::SecretRecord;

use crate::accounts::Principal;
use crate::{App, AppError, AppResult};

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(24);

/// The secrets signing now, newest (current) first; the first call creates the secret.
pub async fn secrets(app: &App, who: &Principal) -> AppResult<Vec<SecretRecord>> {
    let initial = SigningSecret::generate().to_text();
    let list = app
        .store
        .webhook_secrets(&who.account.id, &initial, app.clock.now())
        .await?;
    if list.is_empty() {
        return Err(AppError::Internal(anyhow::anyhow!(
            "no webhook secret after creating one"
        )));
    }
    Ok(list)
}

/// Makes a new secret current; the old one signs beside it for 24 hours.
pub async fn rotate(app: &App, who: &Principal) -> AppResult<Vec<SecretRecord>> {
    secrets(app, who).await?;
    // Business time, like every other time of the account: in the sandbox, advancing the
    // clock 24 h retires the old secret (signatures' own timestamps stay wall-clock).
    let now = app.clock.now();
    let rotated = app
        .store
        .rotate_webhook_secret(
            &who.account.id,
            &SigningSecret::generate().to_text(),
            now,
            now + ROTATION_OVERLAP,
        )
        .await?;
    // The next attempt of this server signs with the new secret too.
    app.secret_cache.forget(&who.account.id);
    Ok(rotated)
}
