//! The storage contract: every test runs against SQLite and against PostgreSQL.
//!
//! PostgreSQL comes from `WAGATE_TEST_POSTGRES_URL` (scripts/test provides one); a missing
//! server fails these tests rather than skipping them.

#[macro_use]
mod common;
use common::{account, sqlite, t};

use jiff::SignedDuration;
use wagate_domain::account::{hash_api_key, KeyMode, NewApiKey};
use wagate_domain::jobs::NewJob;
use wagate_store::{
    testing, AccountStore, IdempotencyBegin, IdempotencyStore, JobStore, OwnershipStore,
    SandboxStore, SqlStore, StoredResponse,
};

contract!(accounts_and_keys, accounts_and_keys_body);
async fn accounts_and_keys_body(store: SqlStore) {
    let (acct, key) = account(&store, "Acme").await;
    let (found, key_id) = store.authenticate(&key.hash).await.unwrap().unwrap();
    assert_eq!(found, acct);
    assert_eq!(key_id, key.id);
    assert!(store
        .authenticate(&hash_api_key("wg_test_nope"))
        .await
        .unwrap()
        .is_none());

    // A second key works beside the first; revoking one leaves the other.
    let second = NewApiKey::generate(KeyMode::Test);
    store
        .create_api_key(&acct.id, &second, t("2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    let keys = store.list_api_keys(&acct.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id, second.id, "newest first");
    let revoked = store
        .revoke_api_key(&acct.id, &key.id, t("2026-01-03T00:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t("2026-01-03T00:00:00Z")));
    assert!(store.authenticate(&key.hash).await.unwrap().is_none());
    assert!(store.authenticate(&second.hash).await.unwrap().is_some());
}

contract!(tenants_cannot_touch_each_others_keys, tenants_body);
async fn tenants_body(store: SqlStore) {
    let (a, a_key) = account(&store, "A").await;
    let (b, _) = account(&store, "B").await;
    assert!(store
        .revoke_api_key(&b.id, &a_key.id, t("2026-01-03T00:00:00Z"))
        .await
        .unwrap()
        .is_none());
    assert!(store.authenticate(&a_key.hash).await.unwrap().is_some());
    assert!(store
        .list_api_keys(&b.id)
        .await
        .unwrap()
        .iter()
        .all(|k| k.account_id == b.id));
    assert_eq!(store.list_api_keys(&a.id).await.unwrap().len(), 1);
}

contract!(store_mode_is_claimed_once, store_mode_body);
async fn store_mode_body(store: SqlStore) {
    assert_eq!(store.store_mode().await.unwrap(), None);
    store.claim_store_mode(KeyMode::Test).await.unwrap();
    store.claim_store_mode(KeyMode::Test).await.unwrap();
    assert!(store.claim_store_mode(KeyMode::Live).await.is_err());
    assert_eq!(store.store_mode().await.unwrap(), Some(KeyMode::Test));
}

contract!(idempotency_keys, idempotency_body);
async fn idempotency_body(store: SqlStore) {
    let (a, _) = account(&store, "A").await;
    let (b, _) = account(&store, "B").await;
    let now = t("2026-01-01T00:00:00Z");
    let lock = now + SignedDuration::from_secs(60);
    let old = now - SignedDuration::from_hours(24);
    let begin = |acct, fp| store.idempotency_begin(acct, "k1", fp, now, lock, old);
    let started = IdempotencyBegin::Started { since: now };
    assert_eq!(begin(&a.id, "fp").await.unwrap(), started);
    assert_eq!(
        begin(&a.id, "fp").await.unwrap(),
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin(&a.id, "other").await.unwrap(),
        IdempotencyBegin::Mismatch
    );
    // Keys are per account.
    assert_eq!(begin(&b.id, "other").await.unwrap(), started);
    let resp = StoredResponse {
        status: 201,
        body: "{\"ok\":true}".into(),
    };
    store.idempotency_finish(&a.id, "k1", &resp).await.unwrap();
    assert_eq!(
        begin(&a.id, "fp").await.unwrap(),
        IdempotencyBegin::Replay(resp)
    );

    // A released key can be used again, even with another body, and keeps its `since`; an
    // abandoned lock can be taken over (by the same request only).
    store.idempotency_release(&b.id, "k1").await.unwrap();
    let retry = now + SignedDuration::from_secs(5);
    assert_eq!(
        store
            .idempotency_begin(
                &b.id,
                "k1",
                "x",
                retry,
                retry + SignedDuration::from_secs(60),
                old
            )
            .await
            .unwrap(),
        started,
        "the retry shares the first use's since"
    );
    let later = lock + SignedDuration::from_secs(6);
    assert_eq!(
        store
            .idempotency_begin(&b.id, "k1", "y", later, later, old)
            .await
            .unwrap(),
        IdempotencyBegin::Mismatch,
        "an abandoned claim is not taken over by another request"
    );
    assert_eq!(
        store
            .idempotency_begin(
                &b.id,
                "k1",
                "x",
                later,
                later + SignedDuration::from_secs(60),
                old
            )
            .await
            .unwrap(),
        started
    );

    // Past the window a key is new again: the sweep forgets it, and its next use has a new
    // `since`.
    let next_day = now + SignedDuration::from_hours(25);
    assert_eq!(
        store
            .idempotency_sweep(next_day - SignedDuration::from_hours(24))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .idempotency_begin(&a.id, "k1", "fp", next_day, next_day, old)
            .await
            .unwrap(),
        IdempotencyBegin::Started { since: next_day }
    );
}

fn new_job(kind: &str, due: &str, dedupe: Option<&str>) -> NewJob {
    NewJob {
        kind: kind.into(),
        account_id: None,
        payload: serde_json::json!({"n": due}),
        due_at: t(due),
        dedupe_key: dedupe.map(Into::into),
        line_id: None,
    }
}

contract!(jobs_are_claimed_in_due_order_once, jobs_body);
async fn jobs_body(store: SqlStore) {
    let now = t("2026-01-01T00:00:00Z");
    let wall = t("2030-01-01T00:00:00Z");
    let lease = wall + SignedDuration::from_secs(60);
    store
        .schedule_jobs(
            &[
                new_job("b", "2026-01-03T00:00:00Z", None),
                new_job("a", "2026-01-02T00:00:00Z", Some("d1")),
                new_job("a", "2026-01-05T00:00:00Z", Some("d1")), // duplicate: ignored
                new_job("c", "2026-02-01T00:00:00Z", None),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store.next_job_due_at().await.unwrap(),
        Some(t("2026-01-02T00:00:00Z"))
    );
    assert!(store
        .claim_due_jobs(now, wall, lease, 10, "srv_test")
        .await
        .unwrap()
        .is_empty());

    let jan10 = t("2026-01-10T00:00:00Z");
    let claimed = store
        .claim_due_jobs(jan10, wall, lease, 10, "srv_test")
        .await
        .unwrap();
    let kinds: Vec<_> = claimed.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["a", "b"], "due order, the duplicate dropped");
    // Leased jobs are not handed out again until the lease passes.
    assert!(store
        .claim_due_jobs(jan10, wall, lease, 10, "srv_test")
        .await
        .unwrap()
        .is_empty());
    // A heartbeat keeps a running job's lease alive past its first end.
    let extended = lease + SignedDuration::from_secs(15);
    assert_eq!(
        store
            .extend_leases(&[claimed[0].id.clone()], wall, extended)
            .await
            .unwrap(),
        1
    );
    let after_lease = lease + SignedDuration::from_secs(1);
    let only_b = store
        .claim_due_jobs(jan10, after_lease, after_lease, 10, "srv_test")
        .await
        .unwrap();
    assert_eq!(
        only_b.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        ["b"],
        "the extended lease still holds; the other one ran out"
    );
    // A lease that ran out is not brought back by a late heartbeat.
    assert_eq!(
        store
            .extend_leases(
                &[claimed[1].id.clone()],
                extended,
                extended + SignedDuration::from_secs(15)
            )
            .await
            .unwrap(),
        0
    );
    let after_lease = extended + SignedDuration::from_secs(1);
    let reclaimed = store
        .claim_due_jobs(jan10, after_lease, after_lease, 10, "srv_test")
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 2);

    store.finish_job(&claimed[0].id).await.unwrap();
    store
        .fail_job(&claimed[1].id, "boom", t("2026-01-11T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.next_job_due_at().await.unwrap(),
        Some(t("2026-01-11T00:00:00Z"))
    );
    let retried = store
        .claim_due_jobs(t("2026-01-11T00:00:00Z"), wall, lease, 10, "srv_test")
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(store.release_all_leases().await.unwrap(), 1);
}

contract!(a_line_has_one_live_owner, ownership_body);
async fn ownership_body(store: SqlStore) {
    let line: wagate_domain::ids::LineId =
        "line_0000000000000000000001".to_owned().try_into().unwrap();
    let now = t("2026-01-01T00:00:00Z");
    let wall = t("2030-01-01T00:00:00Z");
    let later = |s: i64| wall + SignedDuration::from_secs(s);
    let lease = SignedDuration::from_secs(15);
    store
        .server_alive("srv_a", "h1", wall, wall + lease)
        .await
        .unwrap();
    store
        .server_alive("srv_b", "h2", wall, wall + lease)
        .await
        .unwrap();
    assert_eq!(
        store.take_line(&line, "srv_a", wall).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.take_line(&line, "srv_b", wall).await.unwrap(),
        None,
        "a live owner keeps it"
    );
    assert_eq!(
        store.take_line(&line, "srv_a", later(1)).await.unwrap(),
        Some(1),
        "taking again is a no-op"
    );

    // The line's jobs are its owner's; other jobs are anybody's.
    let mut bound = new_job("message.send", "2026-01-01T00:00:00Z", Some("m1"));
    bound.line_id = Some(line.clone());
    store
        .schedule_jobs(&[bound, new_job("free", "2026-01-01T00:00:00Z", None)], now)
        .await
        .unwrap();
    let b = store
        .claim_due_jobs(now, later(1), later(60), 10, "srv_b")
        .await
        .unwrap();
    assert_eq!(
        b.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        ["free"]
    );
    let a = store
        .claim_due_jobs(now, later(1), later(60), 10, "srv_a")
        .await
        .unwrap();
    assert_eq!(
        a.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        ["message.send"]
    );
    // Given back unrun: claimable again at once, no attempt counted.
    store.release_job(&a[0].id).await.unwrap();
    let again = store
        .claim_due_jobs(now, later(2), later(60), 10, "srv_a")
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 0);
    store.release_job(&again[0].id).await.unwrap();

    // srv_a stops proving it is alive: srv_b may claim the line's job, and takes the line
    // with a new epoch; srv_a learns it owns nothing.
    store
        .server_alive("srv_b", "h2", later(16), later(31))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due_jobs(now, later(16), later(60), 10, "srv_b")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.take_line(&line, "srv_b", later(16)).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        store.take_line(&line, "srv_a", later(17)).await.unwrap(),
        None
    );
    assert!(store.owned_lines("srv_a").await.unwrap().is_empty());
    assert_eq!(
        store.owned_lines("srv_b").await.unwrap(),
        vec![(line.clone(), 2)]
    );

    // A clean shutdown gives the line up at once.
    store.server_gone("srv_b").await.unwrap();
    assert!(store.owned_lines("srv_b").await.unwrap().is_empty());
    store
        .server_alive("srv_a", "h1", later(18), later(33))
        .await
        .unwrap();
    assert_eq!(
        store.take_line(&line, "srv_a", later(18)).await.unwrap(),
        Some(1)
    );
    store
        .give_up_lines("srv_a", std::slice::from_ref(&line))
        .await
        .unwrap();
    assert!(store.owned_lines("srv_a").await.unwrap().is_empty());
}

contract!(concurrent_claims_never_share_a_job, concurrent_claims_body);
async fn concurrent_claims_body(store: SqlStore) {
    let now = t("2026-01-01T00:00:00Z");
    let jobs: Vec<_> = (0..200)
        .map(|i| NewJob {
            kind: "k".into(),
            account_id: None,
            payload: serde_json::json!(i),
            due_at: now,
            dedupe_key: Some(i.to_string()),
            line_id: None,
        })
        .collect();
    store.schedule_jobs(&jobs, now).await.unwrap();
    let wall = t("2030-01-01T00:00:00Z");
    let lease = wall + SignedDuration::from_secs(60);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s
                    .claim_due_jobs(now, wall, lease, 7, "srv_test")
                    .await
                    .unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n, 200, "every job claimed");
    assert_eq!(all.len(), 200, "no job claimed twice");
}

contract!(sandbox_clock_never_runs_backwards, sandbox_clock_body);
async fn sandbox_clock_body(store: SqlStore) {
    assert_eq!(store.load_sandbox_clock().await.unwrap(), None);
    store
        .save_sandbox_clock(t("2026-01-05T00:00:00Z"))
        .await
        .unwrap();
    store
        .save_sandbox_clock(t("2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.load_sandbox_clock().await.unwrap(),
        Some(t("2026-01-05T00:00:00Z"))
    );
}

mod money {
    //! The database itself guards the money: no negative wallet, one charge per line and
    //! period, one outcome per payment — whatever the code above it asks.

    use super::*;
    use wagate_domain::billing::ledger::{line_charge, topup};
    use wagate_domain::ids::{PaymentId, TransactionId};
    use wagate_domain::line::LineStatus;
    use wagate_domain::money::Micros;
    use wagate_store::{
        Batch, Conflict, LineRecord, LineStore, NewLineCharge, NewWalletTxn, PaymentPurpose,
        PaymentRecord, PaymentStatus, PaymentUpdate,
    };

    fn line(account: &wagate_domain::ids::AccountId) -> LineRecord {
        let now = t("2026-01-01T00:00:00Z");
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
        l.link_count = 1;
        l.ready_at = Some(now);
        l.linked_at = Some(now);
        l
    }

    fn txn(posting: wagate_domain::billing::ledger::Posting) -> NewWalletTxn {
        NewWalletTxn {
            id: TransactionId::generate(),
            posting,
            line_id: None,
            payment_id: None,
            reverses: None,
            description: "test".into(),
        }
    }

    pub(super) async fn guards_body(store: SqlStore) {
        let now = t("2026-01-01T00:00:00Z");
        let (acct, _) = account(&store, "Money").await;
        let id = acct.id.clone();
        let l = line(&id);
        store
            .commit(
                Batch {
                    insert_line: Some(l.clone()),
                    ..Batch::default()
                },
                now,
            )
            .await
            .unwrap()
            .unwrap();
        // A debit beyond the balance is refused and nothing of the batch is written.
        let overdraw = Batch {
            billing_account: Some(id.clone()),
            wallet_txns: vec![txn(line_charge(&id, Micros::from_cents(1)).unwrap())],
            ..Batch::default()
        };
        assert_eq!(
            store.commit(overdraw, now).await.unwrap(),
            Err(Conflict::InsufficientBalance)
        );
        assert_eq!(store.billing_account(&id).await.unwrap().balance, Micros(0));
        // Fund it, then two racing charges of the same period: exactly one lands.
        store
            .commit(
                Batch {
                    billing_account: Some(id.clone()),
                    wallet_txns: vec![txn(topup(&id, Micros::from_cents(5000)).unwrap())],
                    ..Batch::default()
                },
                now,
            )
            .await
            .unwrap()
            .unwrap();
        let charge = || {
            let debit = txn(line_charge(&id, Micros::from_cents(1500)).unwrap());
            Batch {
                billing_account: Some(id.clone()),
                line_charge: Some(NewLineCharge {
                    line_id: l.id.clone(),
                    period: 0,
                    amount: Micros::from_cents(1500),
                    reason: "activation".into(),
                    transaction_id: debit.id.clone(),
                }),
                wallet_txns: vec![debit],
                ..Batch::default()
            }
        };
        let (a, b) = tokio::join!(store.commit(charge(), now), store.commit(charge(), now));
        let landed = [a, b]
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(()))))
            .count();
        assert_eq!(landed, 1, "one charge per line and period");
        assert!(store.line_charged(&l.id, 0).await.unwrap());
        assert_eq!(
            store.billing_account(&id).await.unwrap().balance,
            Micros::from_cents(3500)
        );
        // A payment's outcome is written once.
        let p = store
            .begin_payment(&PaymentRecord {
                id: PaymentId::generate(),
                account_id: id.clone(),
                purpose: PaymentPurpose::Topup,
                attempt_key: "topup:x".into(),
                line_id: None,
                period: None,
                amount: Micros::from_cents(1000),
                status: PaymentStatus::Pending,
                processor_id: None,
                error_code: None,
                error_message: None,
                created_at: now,
            })
            .await
            .unwrap();
        let settle = || Batch {
            billing_account: Some(id.clone()),
            payment_update: Some(PaymentUpdate {
                id: p.id.clone(),
                status: PaymentStatus::Succeeded,
                processor_id: Some("sq_1".into()),
                error_code: None,
                error_message: None,
            }),
            wallet_txns: vec![txn(topup(&id, Micros::from_cents(1000)).unwrap())],
            ..Batch::default()
        };
        store.commit(settle(), now).await.unwrap().unwrap();
        assert_eq!(
            store.commit(settle(), now).await.unwrap(),
            Err(Conflict::PaymentSettled)
        );
        assert_eq!(
            store.billing_account(&id).await.unwrap().balance,
            Micros::from_cents(4500)
        );
        // The same attempt key finds the first payment instead of a new one.
        let again = store
            .begin_payment(&PaymentRecord {
                id: PaymentId::generate(),
                ..p.clone()
            })
            .await
            .unwrap();
        assert_eq!(again.id, p.id);
        assert_eq!(again.status, PaymentStatus::Succeeded);
        // A stale line write is refused.
        let mut stale = l.clone();
        stale.status = LineStatus::Released;
        let mut fresh = l.clone();
        fresh.status = LineStatus::Reconnecting;
        store
            .commit(
                Batch {
                    update_line: Some(fresh),
                    ..Batch::default()
                },
                now,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .commit(
                    Batch {
                        update_line: Some(stale),
                        ..Batch::default()
                    },
                    now,
                )
                .await
                .unwrap(),
            Err(Conflict::LineChanged)
        );
    }
}
use money::guards_body;
contract!(the_database_guards_the_money, guards_body);

mod messages {
    //! Queuing outbound messages: the daily limit holds however many arrive at once (SQLite
    //! writes concurrent ones in one transaction), and each accepted one has its send job.

    use super::*;
    use wagate_domain::ids::MessageId;
    use wagate_domain::line::{LineStatus, MessageStatus};
    use wagate_domain::page::PageRequest;
    use wagate_store::{Batch, Direction, EnqueueRefused, LineRecord, LineStore, MessageRecord};

    /// A ready line of `account` (not stored yet).
    pub(crate) fn ready_line(
        account: &wagate_domain::ids::AccountId,
        now: jiff::Timestamp,
    ) -> LineRecord {
        let mut line = LineRecord::pending(
            account.clone(),
            false,
            false,
            wagate_domain::ids::random_base62(32),
            now,
        );
        line.status = LineStatus::Ready;
        line
    }

    /// An outbound text `i` queued on `line` at `now`.
    pub(crate) fn queued(line: &LineRecord, i: usize, now: jiff::Timestamp) -> MessageRecord {
        MessageRecord {
            id: MessageId::generate(),
            account_id: line.account_id.clone(),
            line_id: line.id.clone(),
            direction: Direction::Outbound,
            kind: wagate_domain::line::MessageKind::Text,
            from: None,
            to: Some("+447700900123".into()),
            text: format!("message {i}"),
            status: MessageStatus::Queued,
            error: None,
            provider_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub(super) async fn limit_body(store: SqlStore) {
        let now = t("2026-01-01T00:00:00Z");
        let (acct, _) = account(&store, "Sender").await;
        let line = ready_line(&acct.id, now);
        let insert = Batch {
            insert_line: Some(line.clone()),
            ..Batch::default()
        };
        store.commit(insert, now).await.unwrap().unwrap();
        let send = |i: usize, day: i64| {
            let msg = queued(&line, i, now);
            let job = NewJob {
                kind: "message.send".into(),
                account_id: Some(acct.id.clone()),
                payload: serde_json::json!({ "line": line.id }),
                due_at: now,
                dedupe_key: Some(msg.id.to_string()),
                line_id: None,
            };
            let store = store.clone();
            tokio::spawn(async move { store.enqueue_message(&msg, day, 5, job).await })
        };
        let sends: Vec<_> = (0..20).map(|i| send(i, 20454)).collect();
        let mut accepted = 0;
        for s in sends {
            match s.await.unwrap().unwrap() {
                Ok(status) => {
                    assert_eq!(status, LineStatus::Ready);
                    accepted += 1;
                }
                Err(refused) => assert_eq!(refused, EnqueueRefused::LimitReached),
            }
        }
        assert_eq!(accepted, 5, "the daily limit holds");
        let page = PageRequest::new(Some(50), None).unwrap();
        let stored = store
            .list_messages(&acct.id, &line.id, &page)
            .await
            .unwrap();
        assert_eq!(
            stored.data.len(),
            5,
            "exactly the accepted messages are stored"
        );
        let wall = t("2026-01-01T00:00:00Z");
        let jobs = store
            .claim_due_jobs(
                now,
                wall,
                wall + SignedDuration::from_secs(60),
                100,
                "srv_test",
            )
            .await
            .unwrap();
        assert_eq!(jobs.len(), 5, "each accepted message has its send job");
        let over = send(20, 20454).await.unwrap().unwrap();
        assert_eq!(over, Err(EnqueueRefused::LimitReached));
        let next_day = send(21, 20455).await.unwrap().unwrap();
        assert_eq!(
            next_day,
            Ok(LineStatus::Ready),
            "a new UTC day starts a new count"
        );
    }
}
use messages::limit_body;
contract!(the_daily_limit_holds_under_concurrent_sends, limit_body);

mod strict_sends {
    //! The worker's send records are strict: each is written only if its message is still
    //! `queued`. Many arriving together share a group (SQLite) and are checked in a few
    //! multi-row statements; one whose message moved meanwhile is refused alone, and its
    //! event is not written.

    use super::*;
    use wagate_domain::ids::EventId;
    use wagate_domain::line::MessageStatus;
    use wagate_store::{
        Batch, Conflict, LineStore, MessageRecord, MessageUpdate, NewEvent, WebhookStore,
    };

    pub(super) async fn body(store: SqlStore) {
        let now = t("2026-01-01T00:00:00Z");
        let (acct, _) = account(&store, "Strict").await;
        let line = super::messages::ready_line(&acct.id, now);
        let msgs: Vec<MessageRecord> = (0..6)
            .map(|i| super::messages::queued(&line, i, now))
            .collect();
        let insert = Batch {
            insert_line: Some(line.clone()),
            insert_messages: msgs.clone(),
            ..Batch::default()
        };
        store.commit(insert, now).await.unwrap().unwrap();
        let sent = |m: &MessageRecord| {
            let event = NewEvent {
                id: EventId::generate(),
                account_id: acct.id.clone(),
                event_type: "message.sent".into(),
                line_id: Some(line.id.to_string()),
                body: "{}".into(),
                created_at: now,
                only_endpoint: None,
            };
            let id = event.id.clone();
            let batch = Batch {
                messages_must_move: true,
                update_messages: vec![MessageUpdate {
                    id: m.id.clone(),
                    from_status: MessageStatus::Queued,
                    status: MessageStatus::Sent,
                    error: None,
                    provider_id: Some(format!("wa-{}", m.id)),
                    at: now,
                }],
                events: vec![event],
                ..Batch::default()
            };
            (batch, id)
        };
        // Message 0 was sent by another sender already.
        store.commit(sent(&msgs[0]).0, now).await.unwrap().unwrap();
        let batches: Vec<_> = msgs.iter().map(sent).collect();
        let commits = batches.iter().map(|(b, _)| store.commit(b.clone(), now));
        let outcomes: Vec<_> = futures_join_all(commits)
            .await
            .into_iter()
            .map(|o| o.unwrap())
            .collect();
        assert_eq!(outcomes[0], Err(Conflict::MessageChanged), "refused alone");
        assert!(outcomes[1..].iter().all(|o| *o == Ok(())), "{outcomes:?}");
        for (i, (_, event)) in batches.iter().enumerate() {
            let stored = store.get_event(&acct.id, event).await.unwrap().is_some();
            assert_eq!(stored, i > 0, "event {i}: only recorded sends announce");
        }
    }

    /// Every future polled together, so that they reach the store in the same group.
    async fn futures_join_all<F: std::future::Future>(
        futures: impl Iterator<Item = F>,
    ) -> Vec<F::Output> {
        let mut set = Vec::new();
        for f in futures {
            set.push(Box::pin(f));
        }
        let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (f, slot) in set.iter_mut().zip(out.iter_mut()) {
                if slot.is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => *slot = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(|o| o.unwrap()).collect()
    }
}
use strict_sends::body as strict_sends_body;
contract!(strict_send_records_are_refused_alone, strict_sends_body);

/// PostgreSQL tells every server (every store on the database) when a job bound to a line is
/// committed, so the line's owner runs it at once; SQLite has one process and says nothing.
#[tokio::test]
async fn line_bound_jobs_wake_the_other_servers_on_postgres() {
    use wagate_domain::ids::LineId;
    use wagate_store::JobStore;
    let url = testing::fresh_postgres_database().await.unwrap();
    let here = SqlStore::open(&url, Default::default()).await.unwrap();
    let there = SqlStore::open(&url, Default::default()).await.unwrap();
    let mut wakeups = there.line_job_wakeups().expect("PostgreSQL notifies");
    let now = t("2026-01-01T00:00:00Z");
    // The listener's first tick (it connected) comes first; then only commits count.
    tokio::time::timeout(std::time::Duration::from_secs(10), wakeups.changed())
        .await
        .expect("the listener connects")
        .unwrap();
    wakeups.borrow_and_update();
    let job = |line: Option<LineId>, key: &str| NewJob {
        kind: "message.send".into(),
        account_id: None,
        payload: serde_json::json!({}),
        due_at: now,
        dedupe_key: Some(key.into()),
        line_id: line,
    };
    here.schedule_jobs(&[job(Some(LineId::generate()), "a")], now)
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), wakeups.changed())
        .await
        .expect("a line-bound job wakes the other server")
        .unwrap();
    let (sqlite, _dir) = sqlite().await;
    assert!(sqlite.line_job_wakeups().is_none());
}
