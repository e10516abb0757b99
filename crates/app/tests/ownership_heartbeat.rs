//! Line ownership's heartbeat against lines being taken at the same time: a line this server
//! takes while a beat runs is still served once the beat is over (the beat once judged it
//! "taken over by another server" and let it go, because the list it read from the store
//! was older than the line).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wagate_app::lines::CreateLine;
use wagate_app::{App, Outside};
use wagate_domain::clock::ManualClock;
use wagate_store::SqlStore;

/// Lines taken one after the other while beats run back to back: each take is a chance for
/// a beat to read the store just before it and look at the server's own map just after.
const LINES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_taken_during_heartbeats_stay_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_sqlite_dir(dir.path()).await.unwrap());
    let clock = Arc::new(ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap()));
    let app = App::sandbox_with(store, clock, Outside::sandbox()).unwrap();
    let who = common::account_with_card(&app, "Owner Co").await;
    let mut lines = Vec::with_capacity(LINES);
    for _ in 0..LINES {
        lines.push(
            app.lines
                .create(&who, CreateLine::default())
                .await
                .unwrap()
                .id,
        );
    }

    let ownership = app.ownership.clone();
    let taking = tokio::spawn(async move {
        for line in &lines {
            assert!(
                ownership.ensure(line).await.unwrap(),
                "nobody else owns {line}"
            );
        }
    });
    let done = Arc::new(AtomicBool::new(false));
    let (ownership, stop) = (app.ownership.clone(), done.clone());
    let beating = tokio::spawn(async move {
        let mut beats = 0u32;
        while !stop.load(Ordering::Relaxed) {
            ownership.beat().await.unwrap();
            beats += 1;
        }
        beats
    });
    taking.await.unwrap();
    done.store(true, Ordering::Relaxed);
    let beats = beating.await.unwrap();
    assert!(beats > 0, "the heartbeat ran while the lines were taken");

    // Once more with nothing being taken: every line is this server's, in the store and here.
    app.ownership.beat().await.unwrap();
    assert_eq!(
        app.ownership.owned_count(),
        LINES,
        "every line taken is still served after {beats} beats"
    );
}
