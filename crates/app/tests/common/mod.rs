//! What the app's integration tests share.

use wagate_app::accounts::{authenticate, create_account, Principal};
use wagate_app::App;

/// A new account of `app` named `name`, with a saved sandbox card (most use cases need one):
/// the caller behind its key.
pub async fn account_with_card(app: &App, name: &str) -> Principal {
    let created = create_account(app, name, false).await.unwrap();
    let who = authenticate(app, &created.api_key).await.unwrap().unwrap();
    app.billing
        .add_card(&who, "cnon:card-nonce-ok")
        .await
        .unwrap();
    who
}
