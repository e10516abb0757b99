//! The scheduler against a real (SQLite) store: due order, follow-up jobs, retries.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use wagate_app::scheduler::JobHandler;
use wagate_app::App;
use wagate_domain::clock::{Clock, ManualClock};
use wagate_domain::jobs::{Job, NewJob};
use wagate_store::{SqlStore, Store};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Records what ran at which business time; a job whose payload says `then` schedules a
/// follow-up that many seconds later; `fail` fails the first time.
struct Recorder {
    app_store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    log: Mutex<Vec<(String, Timestamp)>>,
    failed_once: Mutex<bool>,
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let name = job.payload["name"].as_str().unwrap().to_owned();
        if job.payload["fail"].as_bool() == Some(true) {
            let mut f = self.failed_once.lock().unwrap();
            if !*f {
                *f = true;
                anyhow::bail!("first run fails");
            }
        }
        self.log
            .lock()
            .unwrap()
            .push((name.clone(), self.clock.now()));
        if let Some(secs) = job.payload["then"].as_i64() {
            let follow = NewJob {
                kind: "rec".into(),
                account_id: None,
                payload: serde_json::json!({"name": format!("{name}+")}),
                due_at: self.clock.now() + SignedDuration::from_secs(secs),
                dedupe_key: Some(format!("{name}+")),
                line_id: None,
            };
            self.app_store
                .schedule_jobs(&[follow], self.clock.now())
                .await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn advance_runs_due_jobs_in_time_order_including_follow_ups_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")));
    let app = App::sandbox(store.clone(), clock.clone()).unwrap();
    let rec = Arc::new(Recorder {
        app_store: store.clone(),
        clock: clock.clone(),
        log: Mutex::new(Vec::new()),
        failed_once: Mutex::new(false),
    });
    app.scheduler.register("rec", rec.clone());
    let job = |name: &str, due: &str, extra: serde_json::Value| {
        let mut payload = serde_json::json!({"name": name});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        NewJob {
            kind: "rec".into(),
            account_id: None,
            payload,
            due_at: t(due),
            dedupe_key: None,
            line_id: None,
        }
    };
    store
        .schedule_jobs(
            &[
                job("c", "2026-01-03T00:00:00Z", serde_json::json!({})),
                job(
                    "a",
                    "2026-01-01T12:00:00Z",
                    serde_json::json!({"then": 86400}),
                ),
                job(
                    "b",
                    "2026-01-02T06:00:00Z",
                    serde_json::json!({"fail": true}),
                ),
                job("late", "2026-02-01T00:00:00Z", serde_json::json!({})),
            ],
            clock.now(),
        )
        .await
        .unwrap();

    let report = app
        .scheduler
        .advance_to(&clock, t("2026-01-10T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(report.to, t("2026-01-10T00:00:00Z"));
    assert_eq!(clock.now(), t("2026-01-10T00:00:00Z"));
    let log = rec.log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            ("a".to_owned(), t("2026-01-01T12:00:00Z")),
            // b failed at 06:00 and was retried one second later.
            ("b".to_owned(), t("2026-01-02T06:00:01Z")),
            ("a+".to_owned(), t("2026-01-02T12:00:00Z")),
            ("c".to_owned(), t("2026-01-03T00:00:00Z")),
        ]
    );
    assert_eq!(report.jobs_run, 5, "a, b (failed), b, a+, c");
    assert_eq!(
        store.next_job_due_at().await.unwrap(),
        Some(t("2026-02-01T00:00:00Z")),
        "the job beyond the target waits"
    );
    assert_eq!(
        store.load_sandbox_clock().await.unwrap(),
        Some(t("2026-01-10T00:00:00Z")),
        "the sandbox clock survives a restart"
    );
}

/// Blocks until released; tells when it started.
struct Blocking {
    started: tokio::sync::mpsc::UnboundedSender<()>,
    release: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl JobHandler for Blocking {
    async fn run(&self, _job: &Job) -> anyhow::Result<()> {
        let _ = self.started.send(());
        let _permit = self.release.acquire().await?;
        Ok(())
    }
}

#[tokio::test]
async fn the_heartbeat_renews_exactly_the_leases_of_running_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new(t("2026-01-01T00:00:00Z")));
    let app = App::sandbox(store.clone(), clock.clone()).unwrap();
    let (started, mut has_started) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    app.scheduler.register(
        "slow",
        Arc::new(Blocking {
            started,
            release: release.clone(),
        }),
    );
    let job = |name: &str| NewJob {
        kind: "slow".into(),
        account_id: None,
        payload: serde_json::json!({}),
        due_at: clock.now(),
        dedupe_key: Some(name.into()),
        line_id: None,
    };
    store
        .schedule_jobs(&[job("a"), job("b")], clock.now())
        .await
        .unwrap();
    assert_eq!(
        app.scheduler.renew_leases().await.unwrap(),
        0,
        "nothing runs yet"
    );
    let scheduler = app.scheduler.clone();
    let run = tokio::spawn(async move { scheduler.run_due_now().await });
    has_started.recv().await.unwrap();
    has_started.recv().await.unwrap();
    assert_eq!(
        app.scheduler.renew_leases().await.unwrap(),
        2,
        "both running jobs are renewed"
    );
    release.add_permits(2);
    assert_eq!(run.await.unwrap().unwrap(), 2);
    assert_eq!(
        app.scheduler.renew_leases().await.unwrap(),
        0,
        "finished jobs are no longer renewed"
    );
    assert_eq!(store.next_job_due_at().await.unwrap(), None);
}
