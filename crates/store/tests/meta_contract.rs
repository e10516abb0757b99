//! The Meta part of the storage contract, on SQLite and PostgreSQL: a Meta notification applies
//! once, pricing state is written only under the versions read, a message is priced once.

mod common;
use common::{postgres, sqlite, t};

use wagate_domain::account::{KeyMode, NewApiKey};
use wagate_domain::ids::{EventId, LineId, MessageId};
use wagate_domain::money::Micros;
use wagate_store::{
    AccountStore, Batch, Conflict, LineStore, MessagePricingRecord, MetaStore, MetaWrite,
    NewAccount, NewEvent, PricingKey, PricingRows, PricingWrite, SqlStore, WebhookStore,
};

fn key() -> PricingKey {
    PricingKey {
        business: "+15550001".into(),
        user: "+919800000001".into(),
        waba: "waba1".into(),
        portfolio: "acme".into(),
        market: "India".into(),
        month: 2026 * 12 + 9,
    }
}

fn meta(write: MetaWrite) -> Batch {
    Batch {
        meta: Some(Box::new(write)),
        ..Batch::default()
    }
}

fn pricing(
    read: PricingRows,
    state: Option<&str>,
    utility: u64,
    free_used: u32,
    version: i64,
) -> MetaWrite {
    MetaWrite {
        pricing: Some(PricingWrite {
            key: key(),
            read,
            pair: state.map(|s| (s.to_string(), t("2026-10-02T00:00:00Z"))),
            utility,
            authentication: 0,
            free_used,
            version,
        }),
        ..MetaWrite::default()
    }
}

async fn meta_writes(store: SqlStore) {
    let now = t("2026-10-01T12:00:00Z");
    // A notification applies once.
    let once = || {
        meta(MetaWrite {
            delivery_key: Some("status:wamid.1:delivered".into()),
            ..MetaWrite::default()
        })
    };
    assert_eq!(store.commit(once(), now).await.unwrap(), Ok(()));
    assert_eq!(
        store.commit(once(), now).await.unwrap(),
        Err(Conflict::AlreadyApplied)
    );

    // Pricing state: created from nothing, then only under the versions read.
    let empty = store.pricing_rows(&key()).await.unwrap();
    assert_eq!(empty, PricingRows::default());
    let first = pricing(empty.clone(), Some("1 2 3 4 5 6 7 0"), 1, 0, 101);
    assert_eq!(store.commit(meta(first), now).await.unwrap(), Ok(()));
    let stale = pricing(empty, Some("9 9 9 9 9 9 9 0"), 5, 0, 102);
    assert_eq!(
        store.commit(meta(stale), now).await.unwrap(),
        Err(Conflict::PricingChanged)
    );
    let read = store.pricing_rows(&key()).await.unwrap();
    assert_eq!(read.pair, Some(("1 2 3 4 5 6 7 0".into(), 101)));
    assert_eq!(read.tiers, Some((1, 0, 101)));
    assert_eq!(read.free, Some((2026 * 12 + 9, 0, 101)));
    // Counters an event did not move are not its business: no conflict on them; a counter
    // it moves from a stale read is one.
    let second = pricing(read.clone(), None, 1, 0, 103);
    assert_eq!(store.commit(meta(second), now).await.unwrap(), Ok(()));
    let moved = pricing(store.pricing_rows(&key()).await.unwrap(), None, 2, 0, 104);
    assert_eq!(store.commit(meta(moved), now).await.unwrap(), Ok(()));
    let stale = pricing(read, None, 2, 0, 105);
    assert_eq!(
        store.commit(meta(stale), now).await.unwrap(),
        Err(Conflict::PricingChanged)
    );
    let read = store.pricing_rows(&key()).await.unwrap();
    assert_eq!(read.pair, None, "an expired pair is deleted");
    assert_eq!(read.tiers, Some((2, 0, 104)));

    // Handed over in order, writes that build on one another's state commit in that order
    // (the second is guarded by the first's version, which only its commit writes); one
    // refused by its guard is refused alone, and one built on it can never pass.
    let built = |read: &PricingRows, utility: u64, guard: i64, version: i64| {
        let mut read = read.clone();
        read.tiers = Some((utility - 1, 0, guard));
        meta(pricing(read, None, utility, 0, version))
    };
    // The webhook event of a refused batch is not written; those of the others are.
    let account = store
        .create_account(
            NewAccount {
                name: "ordered".into(),
                calling_enabled: false,
                is_demo: false,
            },
            &NewApiKey::generate(KeyMode::Test),
            now,
        )
        .await
        .unwrap();
    let event = || NewEvent {
        id: EventId::generate(),
        account_id: account.id.clone(),
        event_type: "message.status".into(),
        line_id: None,
        body: "{}".into(),
        created_at: now,
        only_endpoint: None,
    };
    let with_event = |mut batch: Batch| {
        let e = event();
        let id = e.id.clone();
        batch.events.push(e);
        (batch, id)
    };
    let (first, first_event) = with_event(built(&read, 3, 104, 201));
    let (doomed, doomed_event) = with_event(built(&read, 5, 999, 203));
    let first = store.commit_in_order(first, now);
    let second = store.commit_in_order(built(&read, 4, 201, 202), now);
    let doomed = store.commit_in_order(doomed, now);
    let on_doomed = store.commit_in_order(built(&read, 6, 203, 204), now);
    let (first, second, doomed, on_doomed) = tokio::join!(first, second, doomed, on_doomed);
    assert_eq!(first.unwrap(), Ok(()));
    assert_eq!(second.unwrap(), Ok(()));
    assert_eq!(doomed.unwrap(), Err(Conflict::PricingChanged));
    assert_eq!(on_doomed.unwrap(), Err(Conflict::PricingChanged));
    let read = store.pricing_rows(&key()).await.unwrap();
    assert_eq!(read.tiers, Some((4, 0, 202)));
    let stored = |id: EventId| {
        let (store, account) = (&store, &account.id);
        async move { store.get_event(account, &id).await.unwrap().is_some() }
    };
    assert!(stored(first_event).await);
    assert!(!stored(doomed_event).await);

    // A message is priced once; a failed batch writes nothing of it.
    let priced = |amount: i64| MessagePricingRecord {
        message_id: MessageId::try_from("msg_0000000000000000000001".to_string()).unwrap(),
        account_id: wagate_domain::ids::AccountId::try_from(
            "acct_0000000000000000000001".to_string(),
        )
        .unwrap(),
        line_id: LineId::try_from("line_0000000000000000000001".to_string()).unwrap(),
        waba_id: "waba1".into(),
        delivered_at: now,
        ours: "{}".into(),
        amount: Micros(amount),
        currency: "USD".into(),
        transaction_id: None,
        meta: None,
    };
    let charge = |amount| {
        meta(MetaWrite {
            message_pricing: Some(priced(amount)),
            ..MetaWrite::default()
        })
    };
    assert_eq!(store.commit(charge(11_800), now).await.unwrap(), Ok(()));
    assert_eq!(
        store.commit(charge(99), now).await.unwrap(),
        Err(Conflict::AlreadyPriced)
    );
    let stored = store
        .message_pricing(&priced(0).message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.amount, Micros(11_800));
    let listed = store
        .priced_messages(
            &priced(0).account_id,
            t("2026-10-01T00:00:00Z"),
            t("2026-11-01T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(listed, vec![stored]);
}

#[tokio::test]
async fn meta_writes_sqlite() {
    let (store, _dir) = sqlite().await;
    meta_writes(store).await;
}

#[tokio::test]
async fn meta_writes_postgres() {
    meta_writes(postgres().await).await;
}
