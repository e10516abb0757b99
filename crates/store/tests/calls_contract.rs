//! The calls part of the storage contract, on SQLite and PostgreSQL: one open call per line,
//! changes only under the version read, seconds per UTC day added up.

mod common;
use common::{postgres, sqlite, t};

use jiff::Timestamp;
use wagate_domain::account::{KeyMode, NewApiKey};
use wagate_domain::call::{CallDirection, CallStatus, EndReason};
use wagate_domain::ids::{CallId, LineId};
use wagate_domain::page::PageRequest;
use wagate_store::{
    AccountStore, Batch, CallRecord, CallStore, CallWrite, Conflict, LineRecord, LineStore,
    NewAccount, SqlStore,
};

fn calls(write: CallWrite) -> Batch {
    Batch {
        calls: Some(Box::new(write)),
        ..Batch::default()
    }
}

fn call(line: &LineRecord, now: Timestamp) -> CallRecord {
    CallRecord {
        id: CallId::generate(),
        account_id: line.account_id.clone(),
        line_id: line.id.clone(),
        version: 0,
        direction: CallDirection::Outbound,
        from: Some("+447700900001".into()),
        to: Some("+447700900123".into()),
        status: CallStatus::Ringing,
        end_reason: None,
        provider_id: Some(format!("p-{}", CallId::generate())),
        media_token: "token".into(),
        created_at: now,
        ringing_at: Some(now),
        answered_at: None,
        ended_at: None,
        updated_at: now,
    }
}

async fn call_writes(store: SqlStore) {
    let now = t("2026-03-01T10:00:00Z");
    let account = store
        .create_account(
            NewAccount {
                name: "Calls Ltd".into(),
                calling_enabled: true,
                is_demo: false,
            },
            &NewApiKey::generate(KeyMode::Test),
            now,
        )
        .await
        .unwrap();
    let line = LineRecord::pending(account.id.clone(), true, false, "tok".into(), now);
    let insert_line = Batch {
        insert_line: Some(line.clone()),
        ..Batch::default()
    };
    assert_eq!(store.commit(insert_line, now).await.unwrap(), Ok(()));

    // One open call per line.
    let first = call(&line, now);
    let insert = |c: &CallRecord| {
        calls(CallWrite {
            insert: Some(c.clone()),
            ..CallWrite::default()
        })
    };
    assert_eq!(store.commit(insert(&first), now).await.unwrap(), Ok(()));
    let second = call(&line, now);
    assert_eq!(
        store.commit(insert(&second), now).await.unwrap(),
        Err(Conflict::LineBusy)
    );
    assert!(store.call_by_id(&second.id).await.unwrap().is_none());

    // Changes apply only under the version read.
    let stored = store.call_by_id(&first.id).await.unwrap().unwrap();
    assert_eq!(stored, first);
    let mut ended = stored.clone();
    ended.status = CallStatus::Ended;
    ended.end_reason = Some(EndReason::Completed);
    ended.answered_at = Some(t("2026-03-01T10:00:05Z"));
    ended.ended_at = Some(t("2026-03-02T00:30:00Z"));
    let end = |c: &CallRecord| {
        calls(CallWrite {
            update: Some(c.clone()),
            add_seconds: vec![
                (line.id.clone(), 20513, 50_395),
                (line.id.clone(), 20514, 1800),
            ],
            ..CallWrite::default()
        })
    };
    assert_eq!(store.commit(end(&ended), now).await.unwrap(), Ok(()));
    assert_eq!(
        store.commit(end(&ended), now).await.unwrap(),
        Err(Conflict::CallChanged),
        "a stale version changes nothing, and adds no seconds twice"
    );
    let read = store.call_by_id(&first.id).await.unwrap().unwrap();
    assert_eq!((read.version, read.status), (1, CallStatus::Ended));
    assert_eq!(read.end_reason, Some(EndReason::Completed));

    // The line is free again; seconds add up per day.
    let third = call(&line, now);
    assert_eq!(store.commit(insert(&third), now).await.unwrap(), Ok(()));
    let more = calls(CallWrite {
        add_seconds: vec![(line.id.clone(), 20514, 200)],
        ..CallWrite::default()
    });
    assert_eq!(store.commit(more, now).await.unwrap(), Ok(()));
    let mut seconds = store
        .call_seconds(std::slice::from_ref(&line.id), 20514)
        .await
        .unwrap();
    seconds.sort();
    assert_eq!(seconds, vec![(line.id.clone(), 20514, 2000)]);
    assert!(store.call_seconds(&[], 0).await.unwrap().is_empty());
    assert!(store
        .call_seconds(&[LineId::generate()], 0)
        .await
        .unwrap()
        .is_empty());

    // Reads are scoped to the account; lists are newest first.
    let found = store
        .call_by_provider(&line.id, third.provider_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, third.id);
    assert!(store
        .get_call(&account.id, &third.id)
        .await
        .unwrap()
        .is_some());
    let other = wagate_domain::ids::AccountId::generate();
    assert!(store.get_call(&other, &third.id).await.unwrap().is_none());
    let page = store
        .list_calls(
            &account.id,
            &line.id,
            &PageRequest::new(Some(1), None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(page.has_more);
    assert_eq!(page.data[0].id, third.id);
    let next = store
        .list_calls(
            &account.id,
            &line.id,
            &PageRequest::new(Some(5), Some(third.id.to_string())).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(next.data.len(), 1);
    assert_eq!(next.data[0].id, first.id);
}

#[tokio::test]
async fn call_writes_sqlite() {
    let (store, _dir) = sqlite().await;
    call_writes(store).await;
}

#[tokio::test]
async fn call_writes_postgres() {
    call_writes(postgres().await).await;
}
