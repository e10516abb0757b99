//! The days part of the storage contract, on SQLite and PostgreSQL: an invoice is paid (and
//! its days credited) once, a prepaid balance never goes below zero, a line's `paid_until`
//! moves only from the value read, and the days ledger balances.

use jiff::Timestamp;
use wagate_domain::account::{KeyMode, NewApiKey};
use wagate_domain::billing::days::{extend, invoice_paid, release, BillingMode};
use wagate_domain::ids::InvoiceId;
use wagate_domain::money::Micros;
use wagate_store::{
    testing, AccountStore, Batch, Conflict, DayStore, DaysPostingWrite, DaysWrite, InvoiceRecord,
    InvoiceStatus, LineRecord, LineStore, NewAccount, SqlStore,
};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn days(write: DaysWrite) -> Batch {
    Batch {
        days: Some(Box::new(write)),
        ..Batch::default()
    }
}

async fn days_writes(store: SqlStore) {
    let now = t("2026-03-01T00:00:00Z");
    let account = store
        .create_account(
            NewAccount {
                name: "Partner".into(),
                calling_enabled: false,
                is_demo: false,
            },
            &NewApiKey::generate(KeyMode::Test),
            now,
        )
        .await
        .unwrap();
    let a = account.id.clone();
    assert_eq!(
        store.day_account(&a).await.unwrap(),
        None,
        "flat by default"
    );
    let settings = store
        .set_day_account(&a, BillingMode::Days, Micros(500_000), false, now)
        .await
        .unwrap();
    assert_eq!(
        (settings.mode, settings.balance_days),
        (BillingMode::Days, 0)
    );

    // An invoice is paid once: the second payment changes nothing, credit included.
    let inv = InvoiceRecord {
        id: InvoiceId::generate(),
        account_id: a.clone(),
        status: InvoiceStatus::Open,
        days: 2_250,
        day_price: Micros(500_000),
        amount: Micros(1_125_000_000),
        currency: "USD".into(),
        created_at: now,
        due_at: now,
        paid_at: None,
        paid_by: None,
        payment_id: None,
        period_start: None,
        page_token: wagate_domain::ids::random_base62(32),
    };
    let insert = days(DaysWrite {
        insert_invoice: Some(inv.clone()),
        ..DaysWrite::default()
    });
    assert_eq!(store.commit(insert, now).await.unwrap(), Ok(()));
    let pay = || {
        days(DaysWrite {
            pay_invoice: Some((inv.id.clone(), now, "operator".into(), None)),
            postings: vec![DaysPostingWrite {
                account_id: a.clone(),
                posting: invoice_paid(&a, 2_250),
                invoice_id: Some(inv.id.clone()),
                line_id: None,
                comment: None,
            }],
            ..DaysWrite::default()
        })
    };
    assert_eq!(store.commit(pay(), now).await.unwrap(), Ok(()));
    assert_eq!(
        store.commit(pay(), now).await.unwrap(),
        Err(Conflict::InvoiceSettled)
    );
    assert_eq!(
        store.day_account(&a).await.unwrap().unwrap().balance_days,
        2_250
    );
    let paid = store.get_invoice(&a, &inv.id).await.unwrap().unwrap();
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.paid_by.as_deref(), Some("operator"));

    // A line takes 30 days; its paid_until moves only from the value read.
    let line = LineRecord::pending(a.clone(), false, false, "tok".into(), now);
    let insert_line = Batch {
        insert_line: Some(line.clone()),
        ..Batch::default()
    };
    assert_eq!(store.commit(insert_line, now).await.unwrap(), Ok(()));
    let e = extend(&a, &line.id, 2_250, false, 30, None, now).unwrap();
    let ext = |expected: Option<Timestamp>| {
        days(DaysWrite {
            postings: vec![DaysPostingWrite {
                account_id: a.clone(),
                posting: e.posting.clone(),
                invoice_id: None,
                line_id: Some(line.id.clone()),
                comment: None,
            }],
            paid_until: Some((line.id.clone(), expected, e.paid_until)),
            ..DaysWrite::default()
        })
    };
    assert_eq!(store.commit(ext(None), now).await.unwrap(), Ok(()));
    assert_eq!(
        store.commit(ext(None), now).await.unwrap(),
        Err(Conflict::LineChanged),
        "a stale paid_until moves nothing (and takes no days)"
    );
    let held = store.line_days(&line.id).await.unwrap();
    assert_eq!(
        (held.days_on_line, held.paid_until),
        (30, Some(e.paid_until))
    );
    assert_eq!(
        store.day_account(&a).await.unwrap().unwrap().balance_days,
        2_220
    );

    // A prepaid balance never goes below zero.
    let too_much = extend(&a, &line.id, 5_000, false, 3_000, Some(e.paid_until), now).unwrap();
    let over = days(DaysWrite {
        postings: vec![DaysPostingWrite {
            account_id: a.clone(),
            posting: too_much.posting,
            invoice_id: None,
            line_id: Some(line.id.clone()),
            comment: None,
        }],
        ..DaysWrite::default()
    });
    assert_eq!(
        store.commit(over, now).await.unwrap(),
        Err(Conflict::InsufficientDays)
    );
    assert_eq!(
        store.day_account(&a).await.unwrap().unwrap().balance_days,
        2_220
    );

    // Release after 10 days: 20 back, 10 used; the ledger balances.
    let later = t("2026-03-11T00:00:00Z");
    let r = release(&a, &line.id, 30, Some(e.paid_until), later);
    assert_eq!(r.returned, 20);
    let rel = days(DaysWrite {
        postings: vec![DaysPostingWrite {
            account_id: a.clone(),
            posting: r.posting,
            invoice_id: None,
            line_id: Some(line.id.clone()),
            comment: None,
        }],
        days_returned: Some((line.id.clone(), 20)),
        ..DaysWrite::default()
    });
    assert_eq!(store.commit(rel, later).await.unwrap(), Ok(()));
    assert_eq!(
        store.day_account(&a).await.unwrap().unwrap().balance_days,
        2_240
    );
    assert_eq!(
        store.line_days(&line.id).await.unwrap().days_returned,
        Some(20)
    );
    let totals = store.day_ledger_totals(&a).await.unwrap();
    let get = |k: &str| {
        totals
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, d)| *d)
            .unwrap_or(0)
    };
    assert_eq!(get("sold"), -2_250);
    assert_eq!(get("balance"), 2_240);
    assert_eq!(get("used"), 10);
    assert_eq!(get(&format!("line:{}", line.id)), 0);
    assert_eq!(totals.iter().map(|(_, d)| d).sum::<i64>(), 0);
}

#[tokio::test]
async fn days_writes_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    days_writes(SqlStore::open_sqlite_dir(dir.path()).await.unwrap()).await;
}

#[tokio::test]
async fn days_writes_postgres() {
    let url = testing::fresh_postgres_database().await.unwrap();
    days_writes(SqlStore::open(&url, Default::default()).await.unwrap()).await;
}
