//! The thread the group-commit flushers run on (`group.rs`, `ordered.rs`).
//!
//! A flusher spends a group waiting for the database between its statements: on SQLite
//! each statement is a round trip to the connection's own thread, on PostgreSQL to the
//! server. On the server's runtime every answer then queued behind the HTTP requests and
//! jobs the same two workers were running: in bench_lines a group of ~40 writes took
//! 5.5 ms, of which the SQLite thread worked 2.9 ms, with the CPU 30 % idle. A flusher that
//! is the only task of its own thread runs the moment its answer arrives.
//!
//! SQLite's connections are threads of their own that answer through channels, which any
//! runtime can wait on. A PostgreSQL connection is a socket registered with the runtime
//! that opened it, so the flushers have a pool of their own (`SqlStore::begin_flush`) whose
//! connections they open here.
//!
//! One thread serves every store of the process (tests open hundreds); a flusher there
//! never blocks it (its statements are awaited, never run on it). If the thread cannot be
//! started, flushers run on the caller's runtime: slower, not wrong.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The flushers' runtime, started on first use (`None` if it could not be).
fn runtime() -> Option<&'static Handle> {
    static RUNTIME: OnceLock<Option<Handle>> = OnceLock::new();
    RUNTIME.get_or_init(start).as_ref()
}

fn start() -> Option<Handle> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "no runtime for the group commit; it runs on the server's");
            return None;
        }
    };
    let handle = runtime.handle().clone();
    let started = std::thread::Builder::new()
        .name("wagate-flusher".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()));
    match started {
        Ok(_) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "no thread for the group commit; it runs on the server's runtime");
            None
        }
    }
}

/// Runs a flusher to completion on the flushers' thread (if it runs; on the current runtime
/// otherwise). It is spawned, never awaited by a request: a cancelled caller cannot stop it
/// half way.
pub(crate) fn spawn(flush: impl Future<Output = ()> + Send + 'static) {
    match runtime() {
        Some(handle) => drop(handle.spawn(flush)),
        None => drop(tokio::spawn(flush)),
    }
}
