//! A sandbox advance over many renewals runs the wallet-funded ones as batches (one read of
//! each kind and one commit for many): each must still happen exactly as it would alone at
//! its own due time, and whatever a batch cannot do (an auto top-up) in between, in order.

mod common;

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use wagate_app::accounts::Principal;
use wagate_app::lines::CreateLine;
use wagate_app::App;
use wagate_domain::clock::{Clock, ManualClock};
use wagate_domain::ids::LineId;
use wagate_domain::money::Micros;
use wagate_domain::page::PageRequest;
use wagate_store::{EventFilter, SqlStore, Store, TransactionRecord};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const START: &str = "2026-01-01T00:00:00Z";
/// Lines scanned 10 minutes apart, after the trial line.
const APART: SignedDuration = SignedDuration::from_mins(10);

struct Sandbox {
    _dir: tempfile::TempDir,
    app: App,
    clock: Arc<ManualClock>,
    who: Principal,
    /// The trial line, then the others in scan order.
    lines: Vec<LineId>,
}

/// An account with a card, `topup` dollars in its wallet, a trial line scanned at START and
/// `n` lines scanned 10 minutes apart from START + 1 h; the clock at Jan 31, when the
/// activations and the trial conversion (Jan 8) have run.
async fn sandbox(n: usize, topup: i64) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(t(START)));
    let app = App::sandbox(store, clock.clone()).unwrap();
    let who = common::account_with_card(&app, "Batch Co").await;
    app.billing
        .topup(&who, Micros::from_cents(topup * 100), None)
        .await
        .unwrap();
    let sim = app.connector.simulator().unwrap();
    let mut lines = Vec::new();
    for i in 0..=n {
        if i > 0 {
            let at = t(START) + SignedDuration::from_hours(1) + APART * (i as i32 - 1);
            app.scheduler.advance_to(&clock, at).await.unwrap();
        }
        let l = app.lines.create(&who, CreateLine::default()).await.unwrap();
        sim.scan(&l.id, format!("+1555000{i:04}"), None)
            .await
            .unwrap();
        lines.push(l.id);
    }
    app.scheduler
        .advance_to(&clock, t("2026-01-31T00:00:00Z"))
        .await
        .unwrap();
    Sandbox {
        _dir: dir,
        app,
        clock,
        who,
        lines,
    }
}

impl Sandbox {
    /// The account's transactions, oldest first.
    async fn transactions(&self) -> Vec<TransactionRecord> {
        let page = PageRequest::new(Some(200), None).unwrap();
        let mut v = self
            .app
            .store
            .list_transactions(&self.who.account.id, &page)
            .await
            .unwrap()
            .data;
        v.reverse();
        v
    }

    /// (line, created_at, body `created_at`) of the events of a type, oldest first.
    async fn events(&self, ty: &str) -> Vec<(String, Timestamp, serde_json::Value)> {
        let page = PageRequest::new(Some(200), None).unwrap();
        let filter = EventFilter {
            event_type: Some(ty.into()),
            line_id: None,
        };
        let mut v: Vec<_> = self
            .app
            .store
            .list_events(&self.who.account.id, &filter, &page)
            .await
            .unwrap()
            .data
            .into_iter()
            .map(|e| {
                let body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
                (e.line_id.unwrap_or_default(), e.created_at, body)
            })
            .collect();
        v.reverse();
        v
    }

    /// When line `i` (1-based, after the trial line) renews for period 1.
    fn renewal(&self, i: usize) -> Timestamp {
        t("2026-02-01T01:00:00Z") + APART * (i as i32 - 1)
    }
}

#[tokio::test]
async fn each_renewal_of_a_batch_happens_at_its_own_time() {
    let n = 40;
    let s = sandbox(n, 2000).await;
    let report = s
        .app
        .scheduler
        .advance_to(&s.clock, t("2026-02-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        report.jobs_run, n as u64,
        "one renewal per line, nothing else"
    );
    assert_eq!(s.clock.now(), t("2026-02-02T00:00:00Z"));
    assert_eq!(
        s.app.store.load_sandbox_clock().await.unwrap(),
        Some(t("2026-02-02T00:00:00Z"))
    );

    let txns = s.transactions().await;
    let mut running = 0;
    for tx in &txns {
        running += tx.amount;
        assert_eq!(tx.balance_after, running, "the running balance, in order");
    }
    let renewals: Vec<&TransactionRecord> = txns
        .iter()
        .filter(|tx| tx.created_at >= t("2026-02-01T00:00:00Z"))
        .collect();
    assert_eq!(renewals.len(), n);
    for (i, tx) in renewals.iter().enumerate() {
        assert_eq!(tx.line_id.as_deref(), Some(s.lines[i + 1].as_str()));
        assert_eq!(tx.created_at, s.renewal(i + 1), "at the line's anniversary");
        assert_eq!(tx.amount, -15_000_000);
    }
    assert_eq!(
        s.app
            .store
            .billing_account(&s.who.account.id)
            .await
            .unwrap()
            .balance,
        Micros::from_cents(2000 * 100 - 15 * 100 * (2 * n as i64 + 1))
    );

    let charges: Vec<_> = s
        .events("charge.succeeded")
        .await
        .into_iter()
        .filter(|(_, at, _)| *at >= t("2026-02-01T00:00:00Z"))
        .collect();
    let renewed = s.events("line.renewed").await;
    assert_eq!(charges.len(), n);
    assert_eq!(renewed.len(), n);
    for i in 1..=n {
        let (line, at, body) = &charges[i - 1];
        assert_eq!(line, s.lines[i].as_str());
        assert_eq!(*at, s.renewal(i));
        assert_eq!(
            body["created_at"],
            wagate_domain::time::rfc3339(s.renewal(i))
        );
        assert_eq!(body["data"]["reason"], "renewal");
        assert_eq!(body["data"]["period"], 1);
        let (line, at, body) = &renewed[i - 1];
        assert_eq!(line, s.lines[i].as_str());
        assert_eq!(*at, s.renewal(i));
        assert_eq!(body["data"]["line"]["billing_status"], "active");
        assert_eq!(
            body["data"]["line"]["current_period_start"],
            wagate_domain::time::rfc3339(s.renewal(i))
        );
    }
    for (i, id) in s.lines.iter().enumerate().skip(1) {
        let l = s.app.store.line_by_id(id).await.unwrap().unwrap();
        assert_eq!(l.paid_period, Some(1));
        assert_eq!(l.current_period_start, Some(s.renewal(i)));
    }
    // Each next renewal is scheduled at the line's own next anniversary.
    let due = s
        .app
        .store
        .peek_due_jobs(t("2026-03-01T23:59:59Z"), t(START), 100)
        .await
        .unwrap();
    let march: Vec<Timestamp> = due
        .iter()
        .map(|j| j.due_at)
        .filter(|d| *d >= t("2026-03-01T00:00:00Z"))
        .collect();
    let expected: Vec<Timestamp> = (1..=n)
        .map(|i| t("2026-03-01T01:00:00Z") + APART * (i as i32 - 1))
        .collect();
    assert_eq!(march, expected);
}

#[tokio::test]
async fn an_auto_topup_runs_right_after_the_charge_that_needs_it() {
    // 10 lines and 300.00: after the activations and the trial conversion 300 - 11 × 15 =
    // 135 are left; the renewals take 15 each, and the auto top-up (below 50, add 100) must
    // come right after the renewal that goes below 50, before the next one.
    let n = 10;
    let s = sandbox(n, 300).await;
    s.app
        .billing
        .set_auto_topup(
            &s.who,
            true,
            Micros::from_cents(5000),
            Micros::from_cents(10000),
        )
        .await
        .unwrap();
    s.app
        .scheduler
        .advance_to(&s.clock, t("2026-02-02T00:00:00Z"))
        .await
        .unwrap();
    let txns: Vec<TransactionRecord> = s
        .transactions()
        .await
        .into_iter()
        .filter(|tx| tx.created_at >= t("2026-02-01T00:00:00Z"))
        .collect();
    let mut balance = 135_000_000;
    let mut charged = 0;
    let mut topups = 0;
    for tx in &txns {
        balance += tx.amount;
        assert_eq!(tx.balance_after, balance);
        if tx.amount < 0 {
            charged += 1;
            assert_eq!(tx.created_at, s.renewal(charged));
        } else {
            topups += 1;
            assert_eq!(
                tx.created_at,
                s.renewal(charged),
                "the top-up at the time of the charge that went below the threshold"
            );
            assert!(
                tx.balance_after - tx.amount < 50_000_000,
                "only once the balance went below 50"
            );
        }
    }
    assert_eq!(charged, n);
    assert!(topups >= 1);
    assert!(balance >= 0);
    // The first top-up came right after the sixth renewal (135 - 6 × 15 = 45 < 50).
    let first = txns.iter().position(|tx| tx.amount > 0).unwrap();
    assert_eq!(first, 6);
}

#[tokio::test]
async fn a_webhook_endpoint_keeps_the_charges_one_by_one() {
    // An endpoint that receives the charge events: its deliveries (due at each charge's time)
    // must run between the charges, so nothing is batched — and the outcome is the same.
    let n = 5;
    let s = sandbox(n, 1000).await;
    s.app
        .store
        .create_endpoint(
            &s.who.account.id,
            wagate_store::NewEndpoint {
                url: "http://127.0.0.1:9/hook".into(),
                events: vec!["*".into()],
                enabled: true,
                description: None,
            },
            s.clock.now(),
            16,
        )
        .await
        .unwrap()
        .unwrap();
    s.app
        .scheduler
        .advance_to(&s.clock, t("2026-02-02T00:00:00Z"))
        .await
        .unwrap();
    let renewals: Vec<Timestamp> = s
        .transactions()
        .await
        .into_iter()
        .filter(|tx| tx.created_at >= t("2026-02-01T00:00:00Z"))
        .map(|tx| tx.created_at)
        .collect();
    assert_eq!(renewals, (1..=n).map(|i| s.renewal(i)).collect::<Vec<_>>());
    assert_eq!(s.events("line.renewed").await.len(), n);
}
