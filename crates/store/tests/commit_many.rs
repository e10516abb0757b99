//! `LineStore::commit_many`, on SQLite and on PostgreSQL: several batches and the removal of
//! the jobs they finish in one transaction — what committing the batches one after the other
//! would leave, or nothing at all.
//!
//! PostgreSQL comes from `WAGATE_TEST_POSTGRES_URL`, as in the contract tests.

use jiff::Timestamp;
use wagate_domain::account::{KeyMode, NewApiKey};
use wagate_domain::billing::ledger::{line_charge, topup};
use wagate_domain::ids::{AccountId, EventId, JobId, PaymentId, TransactionId};
use wagate_domain::jobs::NewJob;
use wagate_domain::line::{BillingStatus, LineStatus};
use wagate_domain::money::Micros;
use wagate_domain::page::PageRequest;
use wagate_store::{
    AccountStore, Batch, Conflict, EventFilter, JobStore, LineRecord, LineStore, NewAccount,
    NewEvent, NewLineCharge, NewWalletTxn, PaymentPurpose, PaymentRecord, PaymentStatus, SqlStore,
    WebhookStore,
};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = wagate_store::SqlStore::open_sqlite_dir(dir.path())
                    .await
                    .unwrap();
                super::$name(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let url = wagate_store::testing::fresh_postgres_database()
                    .await
                    .unwrap();
                let store = wagate_store::SqlStore::open(&url, Default::default())
                    .await
                    .unwrap();
                super::$name(store).await;
            }
        }
    };
}

struct Fixture {
    store: SqlStore,
    account: AccountId,
    lines: Vec<LineRecord>,
    jobs: Vec<JobId>,
}

const START: &str = "2026-01-01T00:00:00Z";

/// An account with 50.00 in its wallet, three ready lines and a due job for each.
async fn fixture(store: SqlStore) -> Fixture {
    let now = t(START);
    let account = store
        .create_account(
            NewAccount {
                name: "Batch".into(),
                calling_enabled: false,
                is_demo: false,
            },
            &NewApiKey::generate(KeyMode::Test),
            now,
        )
        .await
        .unwrap()
        .id;
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = LineRecord::pending(
            account.clone(),
            false,
            false,
            wagate_domain::ids::random_base62(32),
            now,
        );
        l.status = LineStatus::Ready;
        l.price = Some(Micros::from_cents(1500));
        l.anchor_at = Some(now);
        let insert = Batch {
            insert_line: Some(l.clone()),
            ..Batch::default()
        };
        store.commit(insert, now).await.unwrap().unwrap();
        lines.push(l);
    }
    let fund = Batch {
        billing_account: Some(account.clone()),
        wallet_txns: vec![NewWalletTxn {
            id: TransactionId::generate(),
            posting: topup(&account, Micros::from_cents(5000)).unwrap(),
            line_id: None,
            payment_id: None,
            reverses: None,
            description: "Top-up".into(),
        }],
        ..Batch::default()
    };
    store.commit(fund, now).await.unwrap().unwrap();
    let due: Vec<NewJob> = lines
        .iter()
        .map(|l| NewJob {
            kind: "charge".into(),
            account_id: Some(account.clone()),
            payload: serde_json::json!({ "line": l.id }),
            due_at: now,
            dedupe_key: Some(format!("{}:0", l.id)),
            line_id: None,
        })
        .collect();
    store.schedule_jobs(&due, now).await.unwrap();
    let jobs = store
        .peek_due_jobs(now, now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    Fixture {
        store,
        account,
        lines,
        jobs,
    }
}

/// The batch that charges `line` `cents` for period 0 at `now`, with its event and next job.
fn charge(f: &Fixture, line: &LineRecord, cents: i64, now: Timestamp) -> (Batch, Timestamp) {
    let debit = TransactionId::generate();
    let mut next = line.clone();
    next.billing_status = BillingStatus::Active;
    next.paid_period = Some(0);
    next.updated_at = now;
    let batch = Batch {
        update_line: Some(next),
        billing_account: Some(f.account.clone()),
        wallet_txns: vec![NewWalletTxn {
            id: debit.clone(),
            posting: line_charge(&f.account, Micros::from_cents(cents)).unwrap(),
            line_id: Some(line.id.clone()),
            payment_id: None,
            reverses: None,
            description: "charge".into(),
        }],
        line_charge: Some(NewLineCharge {
            line_id: line.id.clone(),
            period: 0,
            amount: Micros::from_cents(cents),
            reason: "activation".into(),
            transaction_id: debit,
        }),
        events: vec![NewEvent {
            id: EventId::generate(),
            account_id: f.account.clone(),
            event_type: "charge.succeeded".into(),
            line_id: Some(line.id.to_string()),
            body: format!("{{\"line\":\"{}\"}}", line.id),
            created_at: now,
            only_endpoint: None,
        }],
        jobs: vec![NewJob {
            kind: "charge".into(),
            account_id: Some(f.account.clone()),
            payload: serde_json::json!({ "line": line.id, "period": 1 }),
            due_at: t("2026-02-01T00:00:00Z"),
            dedupe_key: Some(format!("{}:1", line.id)),
            line_id: None,
        }],
        ..Batch::default()
    };
    (batch, now)
}

/// Nothing of a refused `commit_many` was written.
async fn untouched(f: &Fixture) {
    let s = &f.store;
    assert_eq!(
        s.billing_account(&f.account).await.unwrap().balance,
        Micros::from_cents(5000)
    );
    for l in &f.lines {
        assert_eq!(
            s.line_by_id(&l.id).await.unwrap().unwrap().version,
            l.version
        );
        assert!(!s.line_charged(&l.id, 0).await.unwrap());
    }
    let page = PageRequest::new(Some(50), None).unwrap();
    let events = s
        .list_events(&f.account, &EventFilter::default(), &page)
        .await
        .unwrap();
    assert!(events.data.is_empty());
    let due = s.peek_due_jobs(t(START), t(START), 10).await.unwrap();
    assert_eq!(due.len(), 3, "the jobs stay");
    assert_eq!(s.next_job_due_at().await.unwrap(), Some(t(START)));
}

both!(commits_in_order_with_running_balances);
async fn commits_in_order_with_running_balances(store: SqlStore) {
    let f = fixture(store).await;
    let (t1, t2) = (t("2026-01-01T00:00:01Z"), t("2026-01-01T00:00:02Z"));
    let batches = vec![
        charge(&f, &f.lines[0], 1500, t1),
        charge(&f, &f.lines[1], 2000, t2),
    ];
    let done = [f.jobs[0].clone(), f.jobs[1].clone()];
    f.store
        .commit_many(&batches, &done, t(START))
        .await
        .unwrap()
        .unwrap();
    let s = &f.store;
    assert_eq!(
        s.billing_account(&f.account).await.unwrap().balance,
        Micros::from_cents(1500)
    );
    let page = PageRequest::new(Some(50), None).unwrap();
    let txns = s.list_transactions(&f.account, &page).await.unwrap().data;
    let seen: Vec<(i64, i64, Timestamp)> = txns
        .iter()
        .rev()
        .map(|t| (t.amount, t.balance_after, t.created_at))
        .collect();
    assert_eq!(
        seen,
        vec![
            (50_000_000, 50_000_000, t(START)),
            (-15_000_000, 35_000_000, t1),
            (-20_000_000, 15_000_000, t2),
        ],
        "each debit at its own time, with the running balance after it"
    );
    for (i, l) in f.lines.iter().enumerate() {
        let stored = s.line_by_id(&l.id).await.unwrap().unwrap();
        let charged = i < 2;
        assert_eq!(stored.version, l.version + i64::from(charged));
        assert_eq!(stored.paid_period, charged.then_some(0));
        assert_eq!(s.line_charged(&l.id, 0).await.unwrap(), charged);
    }
    let events = s
        .list_events(&f.account, &EventFilter::default(), &page)
        .await
        .unwrap()
        .data;
    let lines: Vec<Option<String>> = events.iter().rev().map(|e| e.line_id.clone()).collect();
    assert_eq!(
        lines,
        vec![
            Some(f.lines[0].id.to_string()),
            Some(f.lines[1].id.to_string())
        ]
    );
    assert_eq!(events[0].created_at, t2);
    let due = s.peek_due_jobs(t(START), t(START), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&f.jobs[2]],
        "the finished jobs are gone"
    );
    let later = s
        .peek_due_jobs(t("2026-02-01T00:00:00Z"), t(START), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 3, "the third job and the two next periods");
}

both!(a_leased_job_refuses_everything);
async fn a_leased_job_refuses_everything(store: SqlStore) {
    let f = fixture(store).await;
    let now = t(START);
    let leased = f
        .store
        .claim_due_jobs(now, now, t("2026-01-01T00:01:00Z"), 1, "srv_test")
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let batches = vec![charge(&f, &f.lines[0], 1500, now)];
    assert_eq!(
        f.store.commit_many(&batches, &f.jobs, now).await.unwrap(),
        Err(Conflict::JobTaken)
    );
    f.store.release_all_leases().await.unwrap();
    untouched(&f).await;
}

both!(an_overdraft_anywhere_refuses_everything);
async fn an_overdraft_anywhere_refuses_everything(store: SqlStore) {
    let f = fixture(store).await;
    let now = t(START);
    // 20 + 20 fit in 50.00, the third 20 does not.
    let batches: Vec<_> = f.lines.iter().map(|l| charge(&f, l, 2000, now)).collect();
    assert_eq!(
        f.store.commit_many(&batches, &f.jobs, now).await.unwrap(),
        Err(Conflict::InsufficientBalance)
    );
    untouched(&f).await;
}

both!(a_stale_line_refuses_everything);
async fn a_stale_line_refuses_everything(store: SqlStore) {
    let f = fixture(store).await;
    let now = t(START);
    let mut batches = vec![
        charge(&f, &f.lines[0], 1500, now),
        charge(&f, &f.lines[1], 1500, now),
    ];
    if let Some(l) = batches[1].0.update_line.as_mut() {
        l.version += 1;
    }
    assert_eq!(
        f.store
            .commit_many(&batches, &f.jobs[..2], now)
            .await
            .unwrap(),
        Err(Conflict::LineChanged)
    );
    untouched(&f).await;
}

both!(a_period_charged_twice_refuses_everything);
async fn a_period_charged_twice_refuses_everything(store: SqlStore) {
    let f = fixture(store).await;
    let now = t(START);
    // Line 0's period 0 is charged meanwhile (its line write is left out to keep its version).
    let (mut first, _) = charge(&f, &f.lines[0], 100, now);
    first.update_line = None;
    first.events.clear();
    first.jobs.clear();
    f.store.commit(first, now).await.unwrap().unwrap();
    let batches = vec![
        charge(&f, &f.lines[1], 1500, now),
        charge(&f, &f.lines[0], 1500, now),
    ];
    assert_eq!(
        f.store
            .commit_many(&batches, &f.jobs[..2], now)
            .await
            .unwrap(),
        Err(Conflict::AlreadyCharged)
    );
    let s = &f.store;
    assert_eq!(
        s.billing_account(&f.account).await.unwrap().balance,
        Micros::from_cents(4900)
    );
    assert!(!s.line_charged(&f.lines[1].id, 0).await.unwrap());
    assert_eq!(
        s.line_by_id(&f.lines[1].id).await.unwrap().unwrap().version,
        f.lines[1].version
    );
    assert_eq!(s.peek_due_jobs(now, now, 10).await.unwrap().len(), 3);
}

both!(other_batches_commit_one_after_the_other);
async fn other_batches_commit_one_after_the_other(store: SqlStore) {
    // A batch that inserts a line is not written kind by kind, but still all or nothing.
    let f = fixture(store).await;
    let now = t(START);
    let fresh = LineRecord::pending(
        f.account.clone(),
        false,
        false,
        wagate_domain::ids::random_base62(32),
        now,
    );
    let insert = Batch {
        insert_line: Some(fresh.clone()),
        ..Batch::default()
    };
    let batches = vec![(insert, now), charge(&f, &f.lines[0], 1500, now)];
    f.store
        .commit_many(&batches, &f.jobs[..1], now)
        .await
        .unwrap()
        .unwrap();
    assert!(f.store.line_by_id(&fresh.id).await.unwrap().is_some());
    assert!(f.store.line_charged(&f.lines[0].id, 0).await.unwrap());
    assert_eq!(f.store.peek_due_jobs(now, now, 10).await.unwrap().len(), 2);

    // And refused as a whole.
    let again = LineRecord::pending(
        f.account.clone(),
        false,
        false,
        wagate_domain::ids::random_base62(32),
        now,
    );
    let insert = Batch {
        insert_line: Some(again.clone()),
        ..Batch::default()
    };
    let batches = vec![(insert, now), charge(&f, &f.lines[1], 999_999, now)];
    assert_eq!(
        f.store
            .commit_many(&batches, &f.jobs[1..2], now)
            .await
            .unwrap(),
        Err(Conflict::InsufficientBalance)
    );
    assert!(f.store.line_by_id(&again.id).await.unwrap().is_none());
}

both!(reads_many_at_once);
async fn reads_many_at_once(store: SqlStore) {
    let f = fixture(store).await;
    let now = t(START);
    let mut ids: Vec<_> = f.lines.iter().map(|l| l.id.clone()).collect();
    ids.push(wagate_domain::ids::LineId::generate());
    let mut found: Vec<_> = f
        .store
        .lines_by_ids(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    found.sort();
    ids.truncate(3);
    ids.sort();
    assert_eq!(found, ids, "the missing one is left out");
    let batches = vec![charge(&f, &f.lines[1], 1500, now)];
    f.store
        .commit_many(&batches, &f.jobs[..1], now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        f.store.charged_periods(&ids).await.unwrap(),
        vec![(f.lines[1].id.clone(), 0)]
    );
    let payment = f
        .store
        .begin_payment(&PaymentRecord {
            id: PaymentId::generate(),
            account_id: f.account.clone(),
            purpose: PaymentPurpose::LineCharge,
            attempt_key: "line:a:0:0".into(),
            line_id: None,
            period: None,
            amount: Micros::from_cents(1500),
            status: PaymentStatus::Pending,
            processor_id: None,
            error_code: None,
            error_message: None,
            created_at: now,
        })
        .await
        .unwrap();
    let keys = ["line:a:0:0".to_owned(), "line:b:0:0".to_owned()];
    let found = f.store.payments_by_keys(&keys).await.unwrap();
    assert_eq!(found, vec![payment]);
}
