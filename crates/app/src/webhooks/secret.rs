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
        .webhook_secrets(&who.account.id, &initial, app.wall.now())
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
    let wall = app.wall.now();
    Ok(app
        .store
        .rotate_webhook_secret(
            &who.account.id,
            &SigningSecret::generate().to_text(),
            wall,
            wall + ROTATION_OVERLAP,
        )
        .await?)
}
