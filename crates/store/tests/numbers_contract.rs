//! The numbers part of the storage contract, on SQLite and PostgreSQL: a number and its
//! `number_charge` are written together or not at all, a number is refunded at most once
//! (whoever races to do it: a stale read, or a second refund of the same charge), and an SMS
//! is recorded once.

use jiff::Timestamp;
use wagate_domain::account::{KeyMode, NewApiKey};
use wagate_domain::billing::ledger::{number_charge, reversal, topup, TxnType};
use wagate_domain::ids::{AccountId, NumberId, TransactionId};
use wagate_domain::money::Micros;
use wagate_domain::number::{NumberKind, NumberStatus};
use wagate_domain::page::PageRequest;
use wagate_store::{
    testing, AccountStore, Batch, Conflict, LineStore, NewAccount, NewWalletTxn,
    NumberMessageRecord, NumberRecord, NumberStore, NumberWrite, SqlStore,
};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn txn(
    posting: wagate_domain::billing::ledger::Posting,
    reverses: Option<&TransactionId>,
) -> NewWalletTxn {
    NewWalletTxn {
        id: TransactionId::generate(),
        posting,
        line_id: None,
        payment_id: None,
        reverses: reverses.cloned(),
        description: "test".into(),
    }
}

fn number(a: &AccountId, charge: &TransactionId, now: Timestamp) -> NumberRecord {
    NumberRecord {
        id: NumberId::generate(),
        account_id: a.clone(),
        version: 0,
        kind: NumberKind::Verification,
        status: NumberStatus::Active,
        service: "whatsapp".into(),
        country: "GB".into(),
        phone_number: "+447700900123".into(),
        provider: "p".into(),
        provider_ref: format!("ref-{}", charge),
        unit_price: Micros(500_000),
        price: Micros(500_000),
        currency: "USD".into(),
        hours: None,
        code: None,
        charge_transaction_id: charge.clone(),
        refund_transaction_id: None,
        created_at: now,
        expires_at: t("2026-03-01T00:20:00Z"),
        code_received_at: None,
        ended_at: None,
        updated_at: now,
    }
}

async fn number_writes(store: SqlStore) {
    let now = t("2026-03-01T00:00:00Z");
    let account = store
        .create_account(
            NewAccount {
                name: "Numbers".into(),
                calling_enabled: false,
                is_demo: false,
            },
            &NewApiKey::generate(KeyMode::Test),
            now,
        )
        .await
        .unwrap();
    let a = account.id.clone();
    let fund = Batch {
        billing_account: Some(a.clone()),
        wallet_txns: vec![txn(topup(&a, Micros(700_000)).unwrap(), None)],
        ..Batch::default()
    };
    store.commit(fund, now).await.unwrap().unwrap();

    // The number and its charge: one commit.
    let charge = txn(number_charge(&a, Micros(500_000)).unwrap(), None);
    let n = number(&a, &charge.id, now);
    let order = |n: &NumberRecord, charge: NewWalletTxn| Batch {
        billing_account: Some(a.clone()),
        wallet_txns: vec![charge],
        numbers: Some(Box::new(NumberWrite {
            insert: Some(n.clone()),
            ..NumberWrite::default()
        })),
        ..Batch::default()
    };
    store
        .commit(order(&n, charge.clone()), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.billing_account(&a).await.unwrap().balance,
        Micros(200_000)
    );
    // A second number the wallet cannot pay is not written either.
    let short = txn(number_charge(&a, Micros(500_000)).unwrap(), None);
    let n2 = number(&a, &short.id, now);
    assert_eq!(
        store.commit(order(&n2, short), now).await.unwrap(),
        Err(Conflict::InsufficientBalance)
    );
    assert_eq!(store.number_by_id(&n2.id).await.unwrap(), None);

    // The refund: once, even from a stale read.
    let refund = |read: &NumberRecord| {
        let r = txn(
            reversal(&number_charge(&a, read.price).unwrap()).unwrap(),
            Some(&read.charge_transaction_id),
        );
        let mut next = read.clone();
        next.status = NumberStatus::Expired;
        next.refund_transaction_id = Some(r.id.clone());
        Batch {
            billing_account: Some(a.clone()),
            wallet_txns: vec![r],
            numbers: Some(Box::new(NumberWrite {
                update: Some(next),
                ..NumberWrite::default()
            })),
            ..Batch::default()
        }
    };
    store.commit(refund(&n), now).await.unwrap().unwrap();
    assert_eq!(
        store.commit(refund(&n), now).await.unwrap(),
        Err(Conflict::NumberChanged),
        "the stale read refunds nothing"
    );
    // Even a write that passed the version guard could not reverse the charge twice.
    let fresh = store.number_by_id(&n.id).await.unwrap().unwrap();
    assert!(store.commit(refund(&fresh), now).await.is_err());
    assert_eq!(
        store.billing_account(&a).await.unwrap().balance,
        Micros(700_000)
    );
    let txns = store
        .list_transactions(&a, &PageRequest::new(None, None).unwrap())
        .await
        .unwrap();
    let kinds: Vec<TxnType> = txns.data.iter().map(|t| t.txn_type).collect();
    assert_eq!(
        kinds,
        [TxnType::Refund, TxnType::NumberCharge, TxnType::Topup]
    );
    let got = store.get_number(&a, &n.id).await.unwrap().unwrap();
    assert_eq!(got.status, NumberStatus::Expired);
    assert!(got.refund_transaction_id.is_some());
    assert_eq!(got.version, 1);

    // An SMS is recorded once.
    let sms = NumberMessageRecord {
        number_id: n.id.clone(),
        provider_key: "sms1".into(),
        text: "code 1234".into(),
        code: Some("1234".into()),
        received_at: now,
    };
    let record = Batch {
        numbers: Some(Box::new(NumberWrite {
            messages: vec![sms.clone()],
            ..NumberWrite::default()
        })),
        ..Batch::default()
    };
    store.commit(record.clone(), now).await.unwrap().unwrap();
    assert_eq!(
        store.commit(record, now).await.unwrap(),
        Err(Conflict::AlreadyApplied)
    );
    assert_eq!(
        store
            .number_messages(std::slice::from_ref(&n.id))
            .await
            .unwrap(),
        [sms]
    );
    let list = store
        .list_numbers(&a, &PageRequest::new(None, None).unwrap())
        .await
        .unwrap();
    assert_eq!(list.data.len(), 1);
}

#[tokio::test]
async fn number_writes_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    number_writes(SqlStore::open_sqlite_dir(dir.path()).await.unwrap()).await;
}

#[tokio::test]
async fn number_writes_postgres() {
    let url = testing::fresh_postgres_database().await.unwrap();
    number_writes(SqlStore::open(&url, Default::default()).await.unwrap()).await;
}
