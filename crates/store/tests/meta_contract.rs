//! The Meta part of the storage contract, on SQLite and PostgreSQL: a Meta notification applies
//! once, pricing state is written only under the versions read, a message is priced once.

#[macro_use]
mod common;
use common::{postgres, sqlite, t};

use wagate_domain::ids::{EventId, LineId, MessageId};
use wagate_domain::money::Micros;
use wagate_store::{
    Batch, Conflict, LineStore, MessagePricingRecord, MetaStore, MetaWrite, NewEvent, PricingKey,
    PricingRows, PricingWrite, SqlStore, WebhookStore,
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
    let (account, _) = common::account(&store, "ordered").await;
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

/// A status batch as the Meta webhook handler builds it: its delivery key, the message moved
/// from `sent`, the pricing state of its user and the market's tier counter, its cost and the
/// wallet debit.
struct Status<'a> {
    account: &'a wagate_domain::ids::AccountId,
    message: &'a wagate_store::MessageRecord,
    key: &'a str,
    user: usize,
    pair_read: Option<i64>,
    tiers_read: Option<(u64, i64)>,
    utility: u64,
    cost: i64,
    version: i64,
}

impl Status<'_> {
    fn batch(&self, now: jiff::Timestamp) -> Batch {
        use wagate_domain::line::MessageStatus;
        let mut k = key();
        k.user = format!("+9198000000{:02}", self.user);
        let read = PricingRows {
            pair: self.pair_read.map(|v| ("0 0 0 0 0 0 0 0".to_string(), v)),
            tiers: self.tiers_read.map(|(u, v)| (u, 0, v)),
            free: Some((k.month, 0, 1)),
        };
        let txn = wagate_store::NewWalletTxn {
            id: wagate_domain::ids::TransactionId::generate(),
            posting: wagate_domain::billing::ledger::message_charge(
                self.account,
                Micros(self.cost),
            )
            .unwrap(),
            line_id: Some(self.message.line_id.clone()),
            payment_id: None,
            reverses: None,
            description: format!("Meta charge for {}", self.message.id),
        };
        Batch {
            update_messages: vec![wagate_store::MessageUpdate {
                id: self.message.id.clone(),
                from_status: MessageStatus::Sent,
                status: MessageStatus::Delivered,
                error: None,
                provider_id: None,
                at: now,
            }],
            messages_must_move: true,
            billing_account: Some(self.account.clone()),
            meta: Some(Box::new(MetaWrite {
                delivery_key: Some(self.key.to_string()),
                pricing: Some(PricingWrite {
                    key: k,
                    read,
                    pair: Some((format!("{} 0 0 0 0 0 0 0", self.user), now)),
                    utility: self.utility,
                    authentication: 0,
                    free_used: 0,
                    version: self.version,
                }),
                message_pricing: Some(MessagePricingRecord {
                    message_id: self.message.id.clone(),
                    account_id: self.account.clone(),
                    line_id: self.message.line_id.clone(),
                    waba_id: "waba1".into(),
                    delivered_at: now,
                    ours: "{}".into(),
                    amount: Micros(self.cost),
                    currency: "USD".into(),
                    transaction_id: Some(txn.id.clone()),
                    meta: None,
                }),
                ..MetaWrite::default()
            })),
            wallet_txns: vec![txn],
            ..Batch::default()
        }
    }
}

/// Statuses handed over together commit as one group, written a kind of row at a time: the
/// result is what applying them one by one leaves (a tier counter moved by each in turn, one
/// balance per debit), and a batch that would be refused — a retried delivery, a debit the
/// wallet cannot cover, a stale pricing read — is refused alone while the others commit.
async fn statuses_in_a_group(store: SqlStore) {
    use wagate_domain::line::MessageStatus;
    let now = t("2026-10-01T12:00:00Z");
    let account = common::account(&store, "grouped").await.0.id;
    let mut line =
        wagate_store::LineRecord::pending(account.clone(), false, false, "tok".into(), now);
    line.status = wagate_domain::line::LineStatus::Ready;
    let messages: Vec<wagate_store::MessageRecord> = (0..10)
        .map(|i| wagate_store::MessageRecord {
            id: MessageId::generate(),
            account_id: account.clone(),
            line_id: line.id.clone(),
            direction: wagate_store::Direction::Outbound,
            kind: wagate_domain::line::MessageKind::Text,
            from: None,
            to: Some(format!("+9198000000{i:02}")),
            text: format!("m{i}"),
            status: MessageStatus::Sent,
            error: None,
            provider_id: Some(format!("wamid.{i}")),
            created_at: now,
            updated_at: now,
        })
        .collect();
    let topup = wagate_store::NewWalletTxn {
        id: wagate_domain::ids::TransactionId::generate(),
        posting: wagate_domain::billing::ledger::topup(&account, Micros(10_000)).unwrap(),
        line_id: None,
        payment_id: None,
        reverses: None,
        description: "top-up".into(),
    };
    let setup = Batch {
        insert_line: Some(line),
        insert_messages: messages.clone(),
        billing_account: Some(account.clone()),
        wallet_txns: vec![topup],
        ..Batch::default()
    };
    assert_eq!(store.commit(setup, now).await.unwrap(), Ok(()));
    // The free-tier row every status reads (unchanged by them).
    let free = MetaWrite {
        pricing: Some(PricingWrite {
            key: key(),
            read: PricingRows::default(),
            pair: None,
            utility: 0,
            authentication: 0,
            free_used: 0,
            version: 1,
        }),
        ..MetaWrite::default()
    };
    assert_eq!(store.commit(meta(free), now).await.unwrap(), Ok(()));
    let status = |i: usize, key: &'static str, tiers: (u64, i64), cost: i64, version: i64| Status {
        account: &account,
        message: &messages[i],
        key,
        user: i,
        pair_read: None,
        tiers_read: Some(tiers),
        utility: tiers.0 + 1,
        cost,
        version,
    };

    // Six statuses, each counted on the tier counter the one before it left.
    let keys = ["s0", "s1", "s2", "s3", "s4", "s5"];
    let handed: Vec<_> = (0..6)
        .map(|i| {
            let s = status(
                i,
                keys[i],
                (i as u64, if i == 0 { 1 } else { 299 + i as i64 }),
                1_000,
                300 + i as i64,
            );
            store.commit_in_order(s.batch(now), now)
        })
        .collect();
    // Handed over before any is awaited: the flusher takes them as one group.
    for outcome in handed {
        assert_eq!(outcome.await.unwrap(), Ok(()));
    }
    let mut k = key();
    let rows = store.pricing_rows(&k).await.unwrap();
    assert_eq!(rows.tiers, Some((6, 0, 305)));
    k.user = "+919800000003".into();
    let rows = store.pricing_rows(&k).await.unwrap();
    assert_eq!(rows.pair, Some(("3 0 0 0 0 0 0 0".into(), 303)));
    let page = wagate_domain::page::PageRequest::new(Some(100), None).unwrap();
    let txns = store.list_transactions(&account, &page).await.unwrap().data;
    let after: Vec<i64> = txns.iter().rev().map(|t| t.balance_after).collect();
    assert_eq!(after, [10_000, 9_000, 8_000, 7_000, 6_000, 5_000, 4_000]);
    assert_eq!(
        store.billing_account(&account).await.unwrap().balance,
        Micros(4_000)
    );
    for m in &messages[..6] {
        let stored = store.get_message(&account, &m.id).await.unwrap().unwrap();
        assert_eq!(stored.status, MessageStatus::Delivered);
        assert_eq!(
            store.message_pricing(&m.id).await.unwrap().unwrap().amount,
            Micros(1_000)
        );
    }

    // Refused alone: a retried delivery, a debit above the balance (twice: the second only
    // after the debit between them), a pricing read that is stale. The one between commits.
    let mut stale = status(9, "s9", (6, 305), 100, 309);
    stale.pair_read = Some(999);
    // Meta's retry of a status applied already: the message has moved, so only the key
    // tells.
    let mut retried = status(0, "s0", (6, 305), 100, 310).batch(now);
    retried.update_messages.clear();
    let handed = vec![
        store.commit_in_order(retried, now),
        store.commit_in_order(status(6, "s6", (6, 305), 5_000, 306).batch(now), now),
        store.commit_in_order(status(7, "s7", (6, 305), 3_000, 307).batch(now), now),
        store.commit_in_order(status(8, "s8", (7, 307), 1_500, 308).batch(now), now),
        store.commit_in_order(stale.batch(now), now),
    ];
    let mut outcomes = Vec::new();
    for outcome in handed {
        outcomes.push(outcome.await.unwrap());
    }
    assert_eq!(
        outcomes,
        [
            Err(Conflict::AlreadyApplied),
            Err(Conflict::InsufficientBalance),
            Ok(()),
            Err(Conflict::InsufficientBalance),
            Err(Conflict::PricingChanged),
        ]
    );
    assert_eq!(
        store.billing_account(&account).await.unwrap().balance,
        Micros(1_000)
    );
    assert_eq!(
        store.pricing_rows(&key()).await.unwrap().tiers,
        Some((7, 0, 307))
    );
    for (i, want) in [
        (6, MessageStatus::Sent),
        (7, MessageStatus::Delivered),
        (8, MessageStatus::Sent),
        (9, MessageStatus::Sent),
    ] {
        let stored = store
            .get_message(&account, &messages[i].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, want, "message {i}");
        assert_eq!(
            store
                .message_pricing(&messages[i].id)
                .await
                .unwrap()
                .is_some(),
            i == 7
        );
    }
    let txns = store.list_transactions(&account, &page).await.unwrap().data;
    assert_eq!(txns.len(), 8);
    assert_eq!(txns[0].balance_after, 1_000);
}

contract!(statuses_grouped, statuses_in_a_group);
