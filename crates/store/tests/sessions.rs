//! The storage contract of dashboard sessions, against SQLite and PostgreSQL: a session is
//! found by its hash until it expires, its key is revoked, or it is deleted; expired ones are
//! swept when the next is opened.

#[macro_use]
mod common;
use common::t;

use wagate_domain::account::NewApiKey;
use wagate_domain::ids::AccountId;
use wagate_store::{AccountStore, NewDashboardSession, SessionStore, SqlStore};

fn session(
    hash: &str,
    account: &AccountId,
    key: &NewApiKey,
    from: &str,
    to: &str,
) -> NewDashboardSession {
    NewDashboardSession {
        token_hash: hash.to_owned(),
        account_id: account.clone(),
        key_id: key.id.clone(),
        created_at: t(from),
        expires_at: t(to),
    }
}

contract!(
    a_session_lives_until_it_expires_is_deleted_or_loses_its_key,
    lifecycle
);
async fn lifecycle(store: SqlStore) {
    let (acct, key) = common::account(&store, "Acme").await;
    let noon = "2026-01-01T12:00:00Z";
    let s = session("h1", &acct.id, &key, "2026-01-01T00:00:00Z", noon);
    store.create_session(&s).await.unwrap();

    let (found, key_id) = store
        .session("h1", t("2026-01-01T11:59:59Z"))
        .await
        .unwrap()
        .expect("live");
    assert_eq!((found.id, key_id), (acct.id.clone(), key.id.clone()));
    assert!(
        store.session("h1", t(noon)).await.unwrap().is_none(),
        "expired"
    );
    assert!(store
        .session("unknown", t("2026-01-01T01:00:00Z"))
        .await
        .unwrap()
        .is_none());

    // Opening a session sweeps the expired ones.
    store
        .create_session(&session(
            "h2",
            &acct.id,
            &key,
            "2026-01-02T00:00:00Z",
            "2026-01-02T12:00:00Z",
        ))
        .await
        .unwrap();
    store
        .create_session(&session(
            "h1",
            &acct.id,
            &key,
            "2026-01-02T00:00:00Z",
            "2026-01-02T12:00:00Z",
        ))
        .await
        .expect("the expired h1 was removed, so its hash can be stored again");

    // Deleting ends one session; deleting twice is harmless.
    let during = t("2026-01-02T01:00:00Z");
    store.delete_session("h1").await.unwrap();
    store.delete_session("h1").await.unwrap();
    assert!(store.session("h1", during).await.unwrap().is_none());
    assert!(store.session("h2", during).await.unwrap().is_some());

    // Revoking the key ends every session it opened.
    store
        .revoke_api_key(&acct.id, &key.id, t("2026-01-02T00:30:00Z"))
        .await
        .unwrap();
    assert!(store.session("h2", during).await.unwrap().is_none());
}
